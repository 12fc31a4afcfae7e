"""The systemd unit and gateway config we ship for site gateways are valid as shipped."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

from agent.config import load_agent_config

ROOT = Path(__file__).parents[2]
UNIT = ROOT / "config/systemd/mrv-agent.service"


def test_the_unit_runs_the_agent_unprivileged_with_the_serial_ports(tmp_path: Path) -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read(UNIT)
    service = unit["Service"]
    assert service["User"] == "mrv-agent" and "dialout" in service["SupplementaryGroups"].split()
    assert service["ExecStart"].split()[1:4] == ["run", "--config", "/etc/mrv-agent/agent.yaml"]
    assert service["Restart"] == "on-failure" and service["StateDirectory"] == "mrv-agent"
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
    drain = float(service["ExecStart"].split("--drain-timeout")[1].split()[0])
    assert float(service["TimeoutStopSec"]) > drain, "systemd must let the agent finish delivering"
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:  # systemd's own check, where systemd is installed
        local = tmp_path / UNIT.name
        agent = Path(sys.executable).parent / "mrv-agent"
        local.write_text(UNIT.read_text().replace("/opt/mrv-agent/venv/bin/mrv-agent", str(agent)))
        done = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr


def test_the_gateway_config_template_is_valid() -> None:
    config = load_agent_config(ROOT / "config/systemd/agent.yaml")
    assert str(config.buffer.path).startswith("/var/lib/mrv-agent/")
    assert str(config.gateway.key_file).startswith("/var/lib/mrv-agent/")
    assert {d.transport.type for d in config.devices} == {"tcp", "rtu"}
