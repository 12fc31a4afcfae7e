"""Secrets stay secret: never in logs, and files that hold them must be private or nothing starts."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from collector.tokens import TokenEntry, Tokens, save_tokens, token_hash
from mrv_core.keyring import keyring_json
from tests.harness.mosquitto import Mosquitto
from tests.harness.procs import Proc, free_port, port_open, wait_for
from tests.harness.programs import command

PASSWORD = "pw-9f2d7c1e-never-log-me"
TOKEN = "mrv_token-5b1e9a-never-log-me"


def _private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def _configs(tmp_path: Path, broker: Mosquitto) -> tuple[Path, Path, int]:
    password_file = _private(tmp_path / "mqtt-password", PASSWORD + "\n")
    save_tokens(tmp_path / "tokens.json", Tokens((TokenEntry("ops", "operator", token_hash(TOKEN)),)))
    (tmp_path / "keys.json").write_text(keyring_json([]))
    port = free_port()
    mqtt = {
        "host": "127.0.0.1",
        "port": broker.port,
        "username": "someone",
        "password_file": str(password_file),
        "topic_prefix": f"mrv-{tmp_path.name}/v1",
    }
    collector = tmp_path / "collector.yaml"
    collector.write_text(
        json.dumps(
            {
                "mqtt": {**mqtt, "client_id": f"c-{tmp_path.name}"},
                "store": {"type": "sqlite", "path": str(tmp_path / "c.sqlite")},
                "keyring": str(tmp_path / "keys.json"),
                "http": {"listen": f"127.0.0.1:{port}", "tokens_file": str(tmp_path / "tokens.json")},
            }
        )
    )
    agent = tmp_path / "agent.yaml"
    agent.write_text(
        json.dumps(
            {
                "gateway": {"id": "gw-s", "site": "s", "key_file": "gateway.key"},
                "mqtt": {**mqtt, "client_id": f"a-{tmp_path.name}", "heartbeat_s": 0.5},
                "devices": [
                    {
                        "id": "m1",
                        "profile": "eastron-sdm630-v2",
                        "poll_interval_s": 0.5,
                        "transport": {"host": "127.0.0.1", "port": free_port(), "timeout_s": 0.2},
                    }
                ],
                "profiles_dir": str(Path(__file__).parents[2] / "firmware_profiles"),
            }
        )
    )
    return collector, agent, port


def _get(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_no_secret_in_any_log(tmp_path: Path, mosquitto: Mosquitto) -> None:
    collector_cfg, agent_cfg, port = _configs(tmp_path, mosquitto)
    collector = Proc(
        command("collector", "-v", "run", "--config", str(collector_cfg), "--stats-every", "0.5"),
        tmp_path / "collector.log",
    )
    agent = Proc(command("agent", "-v", "run", "--config", str(agent_cfg)), tmp_path / "agent.log")
    try:
        wait_for(lambda: port_open(port), 20, "the HTTP service")
        assert _get(f"http://127.0.0.1:{port}/api/v1/gateways", TOKEN) == 200
        assert _get(f"http://127.0.0.1:{port}/api/v1/gateways", TOKEN + "x") == 401
        time.sleep(2)  # polls fail (nothing listens), heartbeats go out, the collector logs stats
    finally:
        agent.stop()
        collector.stop()
    logs = collector.output() + agent.output()
    assert "connected to mqtt" in logs and "subscribed to" in logs  # the logs are real and verbose
    assert PASSWORD not in logs and TOKEN not in logs and TOKEN[:12] not in logs


def test_exposed_secret_files_stop_the_programs(tmp_path: Path, mosquitto: Mosquitto) -> None:
    collector_cfg, agent_cfg, _ = _configs(tmp_path, mosquitto)
    (tmp_path / "tokens.json").chmod(0o644)
    done = subprocess.run(
        command("collector", "run", "--config", str(collector_cfg)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        done.returncode == 2 and "tokens.json: the API tokens file is readable by other users" in done.stderr
    )
    (tmp_path / "tokens.json").chmod(0o600)
    (tmp_path / "mqtt-password").chmod(0o640)
    done = subprocess.run(
        command("agent", "run", "--config", str(agent_cfg)), capture_output=True, text=True, timeout=60
    )
    assert (
        done.returncode == 2
        and "mqtt-password: the MQTT password file is readable by other users" in done.stderr
    )
