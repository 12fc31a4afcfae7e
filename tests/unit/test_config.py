from pathlib import Path

import pytest

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
        (("type: tcp", "type: rtu"), "devices[0].transport.type"),
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
