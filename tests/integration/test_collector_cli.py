"""mrv-collector's read-only commands on a store filled through the real ingest path."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from collector.processing import Ingestor, ingest_messages
from collector.store.sqlite import SqliteStore
from tests.factory import Gateway
from tests.harness.programs import command


def _filled(tmp_path: Path) -> Path:
    gw = Gateway()
    store = SqliteStore(tmp_path / "c.sqlite")
    ingestor = Ingestor(store, gw.keyring(), clock_ms=lambda: 1_767_225_600_000)
    records = [gw.record("m1", i, 10 + i) for i in range(5)]
    ingest_messages(ingestor, [(gw.topic, gw.message(gw.seal(records[:2] + records[3:])))])
    ingest_messages(ingestor, [(gw.topic, b"\x00garbage")])
    store.close()
    config = tmp_path / "collector.yaml"
    config.write_text(
        json.dumps({"store": {"type": "sqlite", "path": str(tmp_path / "c.sqlite")}, "keyring": "keys.json"})
    )
    return config


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command("collector", *args), capture_output=True, text=True)


def test_status_shows_gaps_and_quarantine(tmp_path: Path) -> None:
    config = _filled(tmp_path)
    status = json.loads(_run("status", "--json", "--config", str(config)).stdout)
    assert status["records"] == 4 and status["quarantined"] == 1
    (device,) = status["devices"]
    assert device["last_seq"] == 5 and device["missing_records"] == 1
    assert [(g["first_seq"], g["last_seq"]) for g in device["open_gaps"]] == [(3, 3)]
    assert status["quarantine"]["recent_reasons"] == {"malformed_message": 1}
    (gateway,) = status["gateways"]
    assert (
        gateway["gateway"] == "gw-test" and gateway["status"] == "not enrolled"
    )  # heard from, no key registered
    text = _run("status", "--config", str(config)).stdout
    assert "gw-test/m1" in text and "1 missing in 1" in text and "malformed_message" in text


def test_quarantine_keeps_the_payload_whole(tmp_path: Path) -> None:
    config = _filled(tmp_path)
    (item,) = json.loads(_run("quarantine", "--json", "--config", str(config)).stdout)
    assert item["reason"] == "malformed_message" and item["topic"].endswith("/records")
    assert base64.b64decode(item["payload_b64"]) == b"\x00garbage"
    human = _run("quarantine", "--config", str(config)).stdout
    assert "malformed_message" in human and "8 bytes kept" in human


def test_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    config = _filled(tmp_path)
    project = Path(__file__).parents[2] / "config/projects/demo-pv.yaml"
    done = _run(
        "report",
        "--config",
        str(config),
        "--project",
        str(project),
        "--from",
        "2026-13-01",
        "--to",
        "2026-01-02",
    )
    assert done.returncode == 2 and "--from and --to are local dates" in done.stderr
    done = _run("status", "--config", str(tmp_path / "missing.yaml"))
    assert done.returncode == 2 and "missing.yaml: cannot read" in done.stderr
    methodologies = _run("methodologies").stdout
    assert "pv-grid" in methodologies and "RE_p = Σ_i EG_i,p × EF_grid" in methodologies
