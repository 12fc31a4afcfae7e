import json
from pathlib import Path

import pytest

from agent import cli as agent_cli
from agent.config import load_agent_config
from collector.config import load_collector_config
from collector.projects import load_project
from mrv_core.config_errors import ConfigError

ROOT = Path(__file__).parents[2]


def test_examples_are_valid() -> None:
    agent = load_agent_config(ROOT / "config/agent.example.yaml")
    assert agent.buffer.path.is_absolute() and agent.buffer.synchronous == "FULL"
    load_collector_config(ROOT / "config/collector.example.yaml")
    project = load_project(ROOT / "config/projects/demo-pv.yaml")
    assert project.get_methodology().id == "pv-grid"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


AGENT = """
gateway: {id: gw-1, site: s}
devices:
  - {id: m1, profile: p, transport: {type: tcp, host: 127.0.0.1, port: 502}}
"""


@pytest.mark.parametrize(
    "change,expected",
    [
        (
            ("port: 502", "port: 70000"),
            "devices[0].transport.port: Input should be less than or equal to 65535",
        ),
        (("id: gw-1", "id: 'gw 1'"), "gateway.id: String should match pattern"),
        (("site: s}", "site: s, colour: red}"), "gateway.colour: unknown key"),
        (
            ("type: tcp", "type: modbus"),
            "devices[0].transport: transport type must be 'tcp' (Modbus TCP) or 'rtu'",
        ),
        (("type: tcp", "type: rtu"), "devices[0].transport.serial: Field required"),
        (
            ("type: tcp, host: 127.0.0.1, port: 502", "type: rtu, serial: /dev/ttyUSB0, baudrate: 9601"),
            "devices[0].transport.baudrate: Value error, 9601 is not a standard rate",
        ),
        (
            ("type: tcp, host: 127.0.0.1, port: 502", "type: rtu, serial: /dev/ttyUSB0, parity: X"),
            "devices[0].transport.parity: Input should be 'N', 'E' or 'O'",
        ),
    ],
)
def test_agent_config_errors(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    path = _write(tmp_path, "agent.yaml", AGENT.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_agent_config(path)
    assert f"{path}: {expected}" in str(info.value)


def test_duplicate_device_ids(tmp_path: Path) -> None:
    text = AGENT + "  - {id: m1, profile: p, transport: {host: 127.0.0.1}}\n"
    with pytest.raises(ConfigError, match="device id 'm1' appears twice"):
        load_agent_config(_write(tmp_path, "agent.yaml", text))


def test_a_serial_line_is_one_bus(tmp_path: Path) -> None:
    rtu = "transport: {type: rtu, serial: /dev/ttyS0, baudrate: 19200}"
    config = load_agent_config(
        _write(
            tmp_path,
            "ok.yaml",
            AGENT + f"  - {{id: m2, profile: p, {rtu}}}\n  - {{id: m3, profile: p, unit_id: 2, {rtu}}}\n",
        )
    )
    assert [d.transport.type for d in config.devices] == ["tcp", "rtu", "rtu"]
    assert config.devices[1].transport == config.devices[2].transport
    other = rtu.replace("19200", "9600")
    text = AGENT + f"  - {{id: m2, profile: p, {rtu}}}\n  - {{id: m3, profile: p, unit_id: 2, {other}}}\n"
    with pytest.raises(
        ConfigError, match="'m2' and 'm3' share serial line /dev/ttyS0 with different settings"
    ):
        load_agent_config(_write(tmp_path, "settings.yaml", text))
    text = AGENT + f"  - {{id: m2, profile: p, {rtu}}}\n  - {{id: m3, profile: p, {rtu}}}\n"
    with pytest.raises(ConfigError, match="'m2' and 'm3' are both unit 1 on /dev/ttyS0"):
        load_agent_config(_write(tmp_path, "units.yaml", text))
    legacy = AGENT.replace("type: tcp, ", "")  # configs from before RTU: TCP
    assert load_agent_config(_write(tmp_path, "legacy.yaml", legacy)).devices[0].transport.type == "tcp"


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.yaml: cannot read"):
        load_agent_config(tmp_path / "nope.yaml")


def test_collector_store_type(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.yaml", "keyring: k.json\nstore: {type: mongodb}\n")
    with pytest.raises(ConfigError, match=r"c.yaml: store: Input tag 'mongodb'"):
        load_collector_config(path)


PROJECT = (ROOT / "config/projects/demo-pv.yaml").read_text()


@pytest.mark.parametrize(
    "change,expected",
    [
        (("id: pv-grid", "id: pv-gird"), "unknown methodology 'pv-gird'"),
        (("unit: tCO2/MWh", "unit: tCO2/kWh"), None),  # convertible: accepted
        (("unit: tCO2/MWh", "unit: MWh"), "fixed.EF_grid.unit: MWh is not convertible to tCO2/MWh"),
        (
            ("timezone: Asia/Ulaanbaatar", "timezone: Mars/Olympus"),
            "timezone: Value error, unknown time zone",
        ),
        (
            ("quantity: energy_active_import_total", "quantity: voltage_l1"),
            "voltage_l1 cannot measure EG_AUX",
        ),
        (("    parameter: EG\n", "    parameter: EF_grid\n"), "EF_grid is fixed ex ante, not monitored"),
    ],
)
def test_project_errors(tmp_path: Path, change: tuple[str, str], expected: str | None) -> None:
    path = _write(tmp_path, "p.yaml", PROJECT.replace(*change, 1))
    if expected is None:
        load_project(path)
        return
    with pytest.raises(ConfigError) as info:
        load_project(path)
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


def test_project_without_emission_factor(tmp_path: Path) -> None:
    text = PROJECT.split("fixed:")[0]
    with pytest.raises(ConfigError, match="fixed parameter EF_grid"):
        load_project(_write(tmp_path, "p.yaml", text))


def test_check_config_says_what_run_would_refuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``mrv-agent check-config``: the summary for a good config; file, key and reason for a bad one."""
    good = _write(
        tmp_path,
        "agent.yaml",
        AGENT.replace("profile: p", "profile: eastron-sdm630-v2")
        + f"profiles_dir: {ROOT / 'firmware_profiles'}\n",
    )
    assert agent_cli.main(["check-config", "--config", str(good)]) == 0
    out = capsys.readouterr().out
    assert f"{good}: valid" in out and "m1: Eastron SDM630-Modbus V2 (eastron-sdm630-v2), unit 1" in out
    bad = _write(tmp_path, "bad.yaml", good.read_text().replace("eastron-sdm630-v2", "no-such-meter"))
    assert agent_cli.main(["check-config", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: devices[0].profile: no profile 'no-such-meter'" in err and "eastron-sdm630-v2" in err


def test_profiles_lists_model_firmware_and_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert agent_cli.main(["profiles", "--dir", str(ROOT / "firmware_profiles")]) == 0
    out = capsys.readouterr().out
    assert "eastron-sdm630-v2" in out and "SDM630-Modbus V2" in out and "Modbus Protocol" in out
    assert agent_cli.main(["profiles", "--dir", str(ROOT / "firmware_profiles"), "--json"]) == 0
    listed = {entry["id"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert len(listed) >= 10  # the shipped catalogue
    sdm630 = listed["eastron-sdm630-v2"]
    assert len(sdm630["sha256"]) == 64 and sdm630["registers"]
