"""Is the device the model and firmware its profile is for? Identification registers and Modbus
device identification (43/14), read over real Modbus TCP from the simulator, checked by the agent:
flagged (warn), refused with a signed gap (refuse), and told apart by scan."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.buffer import Buffer
from agent.clock import ScaledClock
from agent.commissioning import scan
from agent.config import DeviceSection
from agent.identification import identify
from agent.meter_model import PvPlant
from agent.modbus import TcpEndpoint
from agent.plan import plan_reads
from agent.service import DevicePoller
from agent.simulator import SimulatedMeter, Simulator
from mrv_core.config_errors import ConfigError, load_yaml_text
from mrv_core.identity import check_identity, firmware_version, register_text
from mrv_core.profile import Profile
from mrv_core.profile_schema import parse_profile
from mrv_core.record import parse_record
from tests.harness.procs import free_port

PROFILE_YAML = """
schema: 1
id: acme-m1
manufacturer: ACME
model: M1
firmware: ">=1.2,<2"
source: {document: ACME M1 register map, version: "3"}
defaults: {function: input, type: f32}
registers:
  - {quantity: voltage_l1, address: 0x00, unit: V}
  - {quantity: power_active_total, address: 0x34, unit: W}
  - {quantity: energy_active_export_total, address: 0x4A, unit: kWh}
identification:
  items:
    - {name: vendor, device_id: vendor_name, expect: ACME}
    - {name: model_code, function: holding, address: 0xFC02, type: u16, expect: 112}
    - {name: firmware, function: holding, address: 0xFC10, type: string, length: 4}
    - {name: serial, function: holding, address: 0xFC00, type: u32}
  firmware_item: firmware
"""


def _profile(text: str = PROFILE_YAML) -> Profile:
    return parse_profile(load_yaml_text(text, "acme.yaml"), "acme.yaml")


def test_the_identity_rule() -> None:
    expected = {"model_code": "112", "serial": None}
    assert check_identity(expected, "*", None, {"model_code": "112", "serial": None}).matches
    wrong = check_identity(expected, "*", None, {"model_code": "113"})
    assert wrong.problems == ("model_code is '113', the profile expects '112'",)
    assert check_identity(expected, ">=1.2,<2", "fw", {"model_code": "112", "fw": "V1.05"}).matches
    (problem,) = check_identity(expected, ">=1.2,<2", "fw", {"model_code": "112", "fw": "V2.01"}).problems
    assert "outside the profile's range" in problem
    assert "no version" in check_identity({}, ">=1", "fw", {"fw": "beta"}).problems[0]
    assert firmware_version("FW 3.2.1 build 7") is not None and str(firmware_version("V1.05")) == "1.5"
    assert register_text("string", [0x5631, 0x2E35, 0x0000]) == "V1.5"
    assert register_text("u32", [0x0001, 0x0002]) == "65538"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ('firmware: ">=1.2,<2"', 'firmware: "newest"'),
        ("type: u16, expect: 112", "type: u16, length: 2, expect: 112"),
        ("firmware_item: firmware", "firmware_item: version"),
        ("{name: vendor, device_id: vendor_name,", "{name: vendor, device_id: vendor_name, address: 1,"),
    ],
)
def test_identification_errors_name_the_key(change: str, reason: str) -> None:
    with pytest.raises(ConfigError) as error:
        _profile(PROFILE_YAML.replace(change, reason))
    assert "acme.yaml" in str(error.value)


def test_identification_is_part_of_the_profile_hash() -> None:
    with_it = _profile()
    without = _profile(PROFILE_YAML.split("identification:", maxsplit=1)[0].replace('">=1.2,<2"', '"*"'))
    assert with_it.sha256 != without.sha256
    assert Profile.from_canonical(with_it.canonical_json) == with_it


@pytest.fixture
def meter() -> Iterator[tuple[SimulatedMeter, TcpEndpoint]]:
    clock = ScaledClock(start=datetime(2026, 6, 1, 4, tzinfo=UTC), anchor=time.time(), speed=60.0)
    device = SimulatedMeter(5, _profile(), PvPlant(capacity_kw=30, seed=5), clock)
    device.identity = {"firmware": "V1.5", "serial": "123456"}
    port = free_port()
    simulator = Simulator([device], port=port)
    simulator.start()
    endpoint = TcpEndpoint("127.0.0.1", port, timeout_s=2)
    try:
        yield device, endpoint
    finally:
        endpoint.close()
        simulator.stop()


@pytest.mark.integration
def test_registers_and_device_identification_are_read_and_compared(
    meter: tuple[SimulatedMeter, TcpEndpoint],
) -> None:
    device, endpoint = meter
    check = identify(endpoint, device.profile, device.unit_id)
    assert check.matches, check.problems
    assert dict(check.texts) == {
        "vendor": "ACME",
        "model_code": "112",
        "firmware": "V1.5",
        "serial": "123456",
    }
    device.identity.update(model_code="113", firmware="V2.0")
    problems = identify(endpoint, device.profile, device.unit_id).problems
    assert len(problems) == 2 and "model_code is '113'" in problems[0] and "range" in problems[1]


def _poller(device: SimulatedMeter, endpoint: TcpEndpoint, buffer: Buffer, policy: str) -> DevicePoller:
    section = DeviceSection.model_validate(
        {
            "id": "m5",
            "profile": device.profile.id,
            "transport": {"type": "tcp", "host": "127.0.0.1", "port": endpoint.port},
            "unit_id": device.unit_id,
            "identity": policy,
        }
    )
    plan = plan_reads(device.profile.registers)
    return DevicePoller(section, device.profile, plan, endpoint, buffer, device.clock, "s", "gw-i")


def _records(path: Path) -> list[tuple[str, tuple[str, ...], str | None]]:
    rows = sqlite3.connect(path).execute("SELECT data FROM records ORDER BY id").fetchall()
    records = [parse_record(bytes(row[0])) for row in rows]
    return [(r.kind, r.quality, r.gap.reason if r.gap else None) for r in records]


@pytest.mark.integration
def test_warn_flags_the_readings_of_a_device_that_is_not_its_profile(
    meter: tuple[SimulatedMeter, TcpEndpoint], tmp_path: Path
) -> None:
    device, endpoint = meter
    buffer = Buffer(tmp_path / "b.sqlite", "gw-i")
    try:
        poller = _poller(device, endpoint, buffer, "warn")
        poller.poll()
        device.identity["model_code"] = "113"  # the meter was swapped for another model
        poller.identified_at = None  # (the daily check is due)
        poller.poll()
        assert _records(tmp_path / "b.sqlite") == [
            ("reading", (), None),
            ("reading", ("identity_mismatch",), None),
        ]
        assert poller.identity is not None and "model_code" in poller.identity.problems[0]
    finally:
        buffer.close()


@pytest.mark.integration
def test_refuse_records_nothing_but_a_signed_gap_until_the_device_matches(
    meter: tuple[SimulatedMeter, TcpEndpoint], tmp_path: Path
) -> None:
    device, endpoint = meter
    device.identity["firmware"] = "V2.3"  # a firmware the register map was not written for
    buffer = Buffer(tmp_path / "b.sqlite", "gw-i")
    try:
        poller = _poller(device, endpoint, buffer, "refuse")
        poller.poll()
        poller.poll()
        assert _records(tmp_path / "b.sqlite") == [] and poller.unread.polls == 2
        assert poller.unread.reason == "identity_mismatch"
        device.identity["firmware"] = "V1.9"  # downgraded by the technician
        poller.poll()
        assert _records(tmp_path / "b.sqlite") == [("gap", (), "identity_mismatch"), ("reading", (), None)]
    finally:
        buffer.close()


@pytest.mark.integration
def test_scan_tells_apart_two_models_with_one_register_layout(
    meter: tuple[SimulatedMeter, TcpEndpoint],
) -> None:
    device, endpoint = meter
    other = _profile(PROFILE_YAML.replace("id: acme-m1", "id: acme-m2").replace("expect: 112", "expect: 113"))
    (finding,) = scan(endpoint, [device.unit_id], {"acme-m1": device.profile, "acme-m2": other})
    assert sorted(p for p, _ in finding.fits) == ["acme-m1", "acme-m2"]  # the layout reads either way
    assert finding.identified == ["acme-m1"]
    assert "model_code is '112', the profile expects '113'" in finding.identities["acme-m2"].problems
