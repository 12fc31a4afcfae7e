"""mrv-verify on a real export: clean passes; each tampering gets its own finding and exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from collector.processing import Ingestor, ingest_messages
from collector.store.sqlite import SqliteStore
from mrv_core.evidence import record_line, seal_line
from mrv_core.keyring import keyring_json
from mrv_core.signing import Signer
from tests.factory import Gateway

ROOT = Path(__file__).parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture
def export(tmp_path: Path) -> tuple[Path, Path, Gateway]:
    """A store filled through the real ingest path, exported with the real CLI."""
    gw = Gateway(gateway="gw-v", site="site-v")
    store = SqliteStore(tmp_path / "c.sqlite")
    ingestor = Ingestor(store, gw.keyring(), clock_ms=lambda: 0)
    for block in range(4):
        batch = gw.seal(
            [gw.record(d, block * 10 + i, 1000 + block * 10 + i) for i in range(5) for d in ("a", "b")]
        )
        ingest_messages(ingestor, [(gw.topic, gw.message(batch))])
    store.close()
    keys = tmp_path / "keys.json"
    keys.write_text(
        keyring_json(
            [
                {
                    "gateway": gw.gateway,
                    "site": gw.site,
                    "key_id": gw.signer.key_id,
                    "public_key": gw.public_key.b64,
                }
            ]
        )
    )
    config = tmp_path / "collector.yaml"
    config.write_text(
        json.dumps(
            {
                "store": {"type": "sqlite", "path": str(tmp_path / "c.sqlite")},
                "keyring": str(keys),
                "profiles_dir": str(tmp_path / "no-profiles"),
            }
        )
    )
    out = tmp_path / "export.jsonl"
    done = _run(
        "collector.cli",
        "export",
        "--config",
        str(config),
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-01",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    return out, keys, gw


def _verify(path: Path, keys: Path) -> tuple[int, set[str], dict[str, object]]:
    done = _run("collector.verify_cli", str(path), "--keys", str(keys), "--json")
    result = json.loads(done.stdout)
    return done.returncode, {f["kind"] for f in result["findings"]}, result


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    tampered = path.with_name("tampered.jsonl")
    tampered.write_text("\n".join(lines) + "\n")
    return tampered


def _record_indexes(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if json.loads(line)["type"] == "record"]


def test_clean_export_verifies(export: tuple[Path, Path, Gateway]) -> None:
    path, keys, _ = export
    _code, kinds, result = _verify(path, keys)
    # Test records name a profile that is not shipped: the only finding allowed is that one.
    assert kinds == {"profile_unknown"}
    assert result["records"] == 40 and result["verified_records"] == 40 and result["seals"] == 4
    human = _run("collector.verify_cli", str(path), "--keys", str(keys))
    assert human.returncode == 1 and "profile_unknown" in human.stdout


def test_each_tampering_is_named(export: tuple[Path, Path, Gateway]) -> None:
    path, keys, gw = export
    lines = _lines(path)
    records = _record_indexes(lines)
    baseline = {"profile_unknown"}

    flipped = list(lines)
    target = records[5]
    flipped[target] = flipped[target].replace('\\"value\\":\\"10', '\\"value\\":\\"90', 1)
    assert flipped[target] != lines[target]

    deleted = [line for i, line in enumerate(lines) if i != records[6]]

    swapped = list(lines)
    swapped[records[2]], swapped[records[4]] = swapped[records[4]], swapped[records[2]]

    stranger = Gateway(gateway=gw.gateway, site=gw.site, signer=Signer.generate())
    forged = stranger.seal([stranger.record("a", 100, 5)])
    unknown = [
        *lines,
        seal_line(gw.gateway, 99, forged.seal, forged.signature),
        record_line(gw.gateway, 99, 0, forged.records[0]),
    ]

    outcomes = {}
    for name, tampered in {"flip": flipped, "delete": deleted, "swap": swapped, "unknown": unknown}.items():
        code, kinds, _ = _verify(_write(path, tampered), keys)
        assert code == 1, name
        outcomes[name] = kinds - baseline
    assert "record_altered" in outcomes["flip"]
    assert "record_missing" in outcomes["delete"] and "sequence_gap" in outcomes["delete"]
    assert outcomes["swap"] == {"out_of_order"}
    assert "unknown_key" in outcomes["unknown"]
    # distinct: no tampering is reported under another's primary name
    assert "record_altered" not in outcomes["delete"] | outcomes["swap"] | outcomes["unknown"]
    assert "unknown_key" not in outcomes["flip"] | outcomes["delete"] | outcomes["swap"]
    assert "record_missing" not in outcomes["flip"] | outcomes["swap"]


def test_unreadable_inputs_exit_2(tmp_path: Path) -> None:
    keys = tmp_path / "k.json"
    keys.write_text("{}")
    done = _run("collector.verify_cli", str(tmp_path / "missing.jsonl"), "--keys", str(keys))
    assert done.returncode == 2 and "k.json: not a jcm-mrv-keyring" in done.stderr
