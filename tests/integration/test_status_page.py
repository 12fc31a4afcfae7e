"""The status page as a person sees it: a real collector process, a real headless Chromium."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, sync_playwright

from collector.gateways import Enrollment, enroll, save_registry
from collector.processing import Ingestor, ingest_messages
from collector.store.sqlite import SqliteStore
from collector.tokens import TokenEntry, Tokens, save_tokens, token_hash
from mrv_core.keyring import Registry
from tests.factory import Gateway
from tests.harness.mosquitto import Mosquitto
from tests.harness.procs import Proc, free_port, port_open, wait_for
from tests.harness.programs import command

TOKEN = "mrv_page-test-token"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        raise RuntimeError("chromium is not installed: run 'make test' (it installs Debian's package)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _fill_store(tmp_path: Path) -> None:
    """Two days of ten-minute readings ending now, with a gap, a failing meter and a quarantined message."""
    now = datetime.now(UTC).replace(microsecond=0)
    gw = Gateway(gateway="gw-page", site="page-site", start=now - timedelta(days=2))
    registry = enroll(Registry(), Enrollment(gw.gateway, gw.site, gw.signer.key_id, gw.public_key.b64), "")
    save_registry(tmp_path / "gateways.json", registry)
    store = SqliteStore(tmp_path / "collector.sqlite")
    now_ms = int(now.timestamp() * 1000)
    ingestor = Ingestor(store, registry.keyring(), clock_ms=lambda: now_ms)
    base = f"mrv/v1/{gw.site}/{gw.gateway}"
    heartbeat = {
        "gateway": gw.gateway,
        "time": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "heartbeat_s": 60,
        "buffer": {"pending_records": 12, "oldest_pending": None},
        "devices": {
            "pv-1": {"poll_interval_s": 600, "consecutive_failures": 0, "last_error": ""},
            "pv-2": {
                "poll_interval_s": 600,
                "consecutive_failures": 4,
                "last_error": "timeout: no answer from unit 2",
            },
        },
    }
    one = [gw.record("pv-1", 10 * i, 5000 + 2 * i) for i in range(288)]
    two = [gw.record("pv-2", 10 * i, 800 + i) for i in range(200)]
    ingest_messages(
        ingestor,
        [
            (f"{base}/status", json.dumps({"gateway": gw.gateway, "state": "online"}).encode()),
            (f"{base}/heartbeat", json.dumps(heartbeat).encode()),
            (gw.topic, gw.message(gw.seal(one[:100] + one[130:]))),  # pv-1 seqs 101..130 missing
            (gw.topic, gw.message(gw.seal(two))),
            (gw.topic, b"\x00not an envelope"),
        ],
    )
    store.close()
    save_tokens(tmp_path / "tokens.json", Tokens((TokenEntry("ops", "operator", token_hash(TOKEN)),)))


@pytest.mark.integration
def test_status_page_in_chromium(tmp_path: Path, mosquitto: Mosquitto, browser: Browser) -> None:
    _fill_store(tmp_path)
    port = free_port()
    config = tmp_path / "collector.yaml"
    config.write_text(
        json.dumps(
            {
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": mosquitto.port,
                    "client_id": f"page-{tmp_path.name}",
                    "topic_prefix": f"mrv-{tmp_path.name}/v1",
                },
                "store": {"type": "sqlite", "path": str(tmp_path / "collector.sqlite")},
                "keyring": str(tmp_path / "gateways.json"),
                "http": {"listen": f"127.0.0.1:{port}", "tokens_file": str(tmp_path / "tokens.json")},
            }
        )
    )
    collector = Proc(command("collector", "run", "--config", str(config)), tmp_path / "collector.log")
    try:
        wait_for(lambda: port_open(port), 30, "the collector's HTTP service")
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        response = page.goto(f"http://127.0.0.1:{port}/")
        assert response is not None and response.status == 401  # the login form, nothing else
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-loaded=yes]", timeout=20_000)
        shot = page.screenshot(full_page=True)
        (tmp_path / "status-page.png").write_bytes(shot)  # kept for a person to look at

        gateway_row = page.locator('#gateways tr[data-gateway="gw-page"]')
        assert gateway_row.get_attribute("data-status") == "online"
        assert "timeout: no answer from unit 2" in gateway_row.inner_text()  # a failing meter is shown...
        assert "alert" in (gateway_row.get_attribute("class") or "")  # ...and highlighted
        pv1 = page.locator('#devices tr[data-device="gw-page/pv-1"]')
        assert pv1.get_attribute("data-gaps") == "1" and "30 missing in 1 gap(s)" in pv1.inner_text()
        assert "notice" in (pv1.get_attribute("class") or "")
        assert page.locator("#devices svg.spark polyline").count() == 2  # a sparkline per device
        assert page.locator("#heatmap .cell").count() == 2 * 30  # device x day
        coloured = page.locator(
            "#heatmap .cell.c100, #heatmap .cell.c90, #heatmap .cell.c50, #heatmap .cell.c0"
        )
        assert coloured.count() >= 4  # two devices with data on at least two days each
        assert page.locator('#heatmap .cell[title*="of 144"]').count() >= 4  # expected from the poll interval
        assert "1 quarantined" in page.locator("#quarantine").inner_text()
        assert "connected" in page.locator("#health").inner_text()

        image = Image.open(io.BytesIO(shot)).convert("RGB")
        colours = image.getcolors(maxcolors=1_000_000) or []
        background = max(colours)[1] if colours else (255, 255, 255)
        painted = sum(n for n, colour in colours if colour != background)
        assert len(colours) > 50, "the screenshot has hardly any colours: blank?"
        assert painted > 0.05 * image.width * image.height, "the screenshot is mostly background"
        page.close()
    finally:
        collector.stop()
