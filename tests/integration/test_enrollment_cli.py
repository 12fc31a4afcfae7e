"""Enrollment, rotation and revocation through the real CLIs, checked by ingest and by mrv-verify."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from agent.keys import load_signer
from collector.processing import Ingestor, ingest_messages
from collector.store.sqlite import SqliteStore
from mrv_core.keyring import parse_keyring
from tests.factory import Gateway
from tests.harness.programs import command


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command(tool, *args), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_enroll_ingest_rotate_revoke(tmp_path: Path) -> None:
    agent_cfg = tmp_path / "agent.yaml"
    agent_cfg.write_text(
        json.dumps(
            {
                "gateway": {"id": "gw-e", "site": "site-e", "key_file": "gateway.key"},
                "devices": [{"id": "m1", "profile": "p", "transport": {"host": "127.0.0.1"}}],
            }
        )
    )
    registry = tmp_path / "gateways.json"
    collector_cfg = tmp_path / "collector.yaml"
    collector_cfg.write_text(
        json.dumps(
            {"store": {"type": "sqlite", "path": str(tmp_path / "c.sqlite")}, "keyring": str(registry)}
        )
    )
    _run("agent", "key", "init", "--config", str(agent_cfg))
    _run("agent", "enroll", "--config", str(agent_cfg), "--out", str(tmp_path / "request.json"))
    request = json.loads((tmp_path / "request.json").read_text())
    assert request["type"] == "mrv-enrollment-request" and request["gateway"] == "gw-e"
    _run("collector", "gateways", "add", str(tmp_path / "request.json"), "--config", str(collector_cfg))
    assert "active" in _run("collector", "gateways", "list", "--config", str(collector_cfg)).stdout

    # The gateway signs with its real key file; the collector ingests through the registry file.
    gw = Gateway(gateway="gw-e", site="site-e", signer=load_signer(tmp_path / "gateway.key"))
    store = SqliteStore(tmp_path / "c.sqlite")
    ingestor = Ingestor(store, parse_keyring(registry.read_text(), "r"), clock_ms=lambda: 0)
    first = ingest_messages(ingestor, [(gw.topic, gw.message(gw.seal([gw.record("m1", 0, 1)])))])
    assert first.stored == 1

    # Rotation: new key on the gateway, registered by the operator; the old key is retired now.
    _run("agent", "key", "rotate", "--config", str(agent_cfg))
    _run("agent", "enroll", "--config", str(agent_cfg), "--out", str(tmp_path / "request2.json"))
    _run("collector", "gateways", "rotate", str(tmp_path / "request2.json"), "--config", str(collector_cfg))
    gw.signer = load_signer(tmp_path / "gateway.key")
    ingestor.keyring = parse_keyring(registry.read_text(), "r")
    second = ingest_messages(ingestor, [(gw.topic, gw.message(gw.seal([gw.record("m1", 1, 2)])))])
    assert second.stored == 1 and not second.quarantined

    # Revocation: the stored seal 2 stays valid, anything later signed with that key is quarantined.
    _run(
        "collector",
        "gateways",
        "revoke",
        "--gateway",
        "gw-e",
        "--reason",
        "gateway stolen",
        "--config",
        str(collector_cfg),
    )
    body = json.loads(registry.read_text())
    states = [k["revoked"] is not None for k in body["gateways"][0]["keys"]]
    assert states == [False, True] and body["gateways"][0]["keys"][1]["valid_through_seal"] == 2
    ingestor.keyring = parse_keyring(registry.read_text(), "r")
    third = ingest_messages(ingestor, [(gw.topic, gw.message(gw.seal([gw.record("m1", 2, 3)])))])
    assert dict(third.quarantined) == {"key_revoked": 1} and third.stored == 0
    store.close()

    # A verifier with the registry: both chains verify, nothing after the revocation was stored.
    export = tmp_path / "bundle.zip"
    _run(
        "collector",
        "export",
        "--config",
        str(collector_cfg),
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-01",
        "--out",
        str(export),
    )
    verdict = json.loads(
        subprocess.run(
            command("verify", str(export), "--keys", str(registry), "--json"), capture_output=True, text=True
        ).stdout
    )
    assert verdict["verified_records"] == 2
    assert {f["kind"] for f in verdict["findings"]} == {"profile_unknown"}
