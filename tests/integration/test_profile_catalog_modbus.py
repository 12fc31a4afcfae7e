"""Every shipped firmware profile, read over real Modbus TCP by the agent's own reading code.

For each profile the project's simulator serves one meter (a PV plant at noon, time standing
still) on 127.0.0.1; the agent reads it once as it reads a device in service (the read plan,
``TcpEndpoint.read`` and ``decode_reading``) and every decoded value must equal exactly the value
the simulator meant to serve. The expected value is worked out here from the plant model and the
register's unit, type and scale, not by decoding the served words again: integers are the
intended value rounded to the register's resolution (half to even, as ``encode_value`` rounds),
floats are the shortest decimal of the float32 (or float64) the intended value becomes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path

import pytest

from agent.acquisition import Reading, decode_reading
from agent.clock import ScaledClock
from agent.meter_model import PvPlant, state
from agent.modbus import TcpEndpoint
from agent.plan import ReadPlan, plan_reads
from agent.simulator import SimulatedMeter, Simulator
from mrv_core.config_errors import load_yaml_text
from mrv_core.profile import Profile, RegisterSpec
from mrv_core.profile_schema import load_profile, parse_profile
from tests.harness.procs import free_port

ROOT = Path(__file__).parents[2]
PROFILE_DIR = ROOT / "firmware_profiles"
SHIPPED = sorted(PROFILE_DIR.rglob("*.yaml"))
UNIT_ID = 7
# 04:00 UTC is noon at the plant (UTC+8): the plant exports, so power is negative (signed registers
# are exercised) and the counters are well above zero. The clock stands still for the whole read.
NOON = ScaledClock(start=datetime(2026, 6, 1, 4, tzinfo=UTC), anchor=0.0, speed=1.0, real=lambda: 0.0)
PLANT = PvPlant(capacity_kw=40.0, seed=UNIT_ID)
WIDE = Context(prec=80)  # wide enough that no division below rounds

# What the plant model's values are in (agent/meter_model.py MODEL_UNITS), and each unit's factor
# to its dimension's base unit: written out here so the expected values do not lean on the code
# under test.
MODEL_UNIT = {
    "energy_active_import_total": "kWh",
    "energy_active_export_total": "kWh",
    "power_active_total": "W",
    "power_active_l1": "W",
    "power_active_l2": "W",
    "power_active_l3": "W",
    "voltage_l1": "V",
    "voltage_l2": "V",
    "voltage_l3": "V",
    "current_l1": "A",
    "current_l2": "A",
    "current_l3": "A",
    "frequency": "Hz",
    "power_factor": "1",
}
FACTOR = {
    "Wh": Decimal(1),
    "kWh": Decimal(1000),
    "MWh": Decimal(1_000_000),
    "W": Decimal(1),
    "kW": Decimal(1000),
    "MW": Decimal(1_000_000),
    "V": Decimal(1),
    "kV": Decimal(1000),
    "A": Decimal(1),
    "Hz": Decimal(1),
    "1": Decimal(1),
}


def _shortest_float32(value: float) -> str:
    """The shortest decimal text that reads back as the same float32 (first length that does)."""
    target = struct.pack(">f", value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.pack(">f", float(text)) == target:
            return text
    raise AssertionError(f"no decimal of at most 9 digits reads back as {value!r}")


def expected_value(spec: RegisterSpec, model: dict[str, float]) -> Decimal:
    """What the agent must decode for ``spec``, from the value the plant model gives."""
    intended = WIDE.divide(
        WIDE.multiply(Decimal(repr(model[spec.quantity])), FACTOR[MODEL_UNIT[spec.quantity]]),
        FACTOR[spec.unit],
    )
    raw = WIDE.divide(intended, spec.scale)
    if spec.type == "f32":
        stored = struct.unpack(">f", struct.pack(">f", float(raw)))[0]
        return WIDE.multiply(Decimal(_shortest_float32(stored)), spec.scale)
    if spec.type == "f64":
        return WIDE.multiply(Decimal(repr(float(raw))), spec.scale)
    return WIDE.multiply(raw.quantize(Decimal(1), rounding=ROUND_HALF_EVEN), spec.scale)


@dataclass
class Served:
    profile: Profile
    plan: ReadPlan
    reading: Reading
    model: dict[str, float]


def _read_once(profile: Profile, plan: ReadPlan) -> Reading:
    """Serve ``profile`` from a simulated meter on a free port, read it once with ``plan`` (normally
    the same profile's), stop the server."""
    port = free_port()
    simulator = Simulator([SimulatedMeter(UNIT_ID, profile, PLANT, NOON)], port=port)
    simulator.start()
    endpoint = TcpEndpoint("127.0.0.1", port, timeout_s=3.0)
    try:
        return decode_reading(plan, endpoint.read(plan, UNIT_ID))
    finally:
        endpoint.close()
        simulator.stop()


@pytest.fixture(params=SHIPPED, ids=lambda p: p.relative_to(PROFILE_DIR).as_posix())
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    path: Path = request.param
    profile = load_profile(path)
    plan = plan_reads(profile.registers, profile.max_registers_per_request, profile.max_gap_registers)
    reading = _read_once(profile, plan)
    yield Served(profile, plan, reading, state(PLANT, NOON.now()))


@pytest.mark.integration
def test_every_value_decodes_to_exactly_what_the_simulator_served(
    served: Served, record_property: Callable[[str, object], None]
) -> None:
    profile, reading = served.profile, served.reading
    covered = [spec for spec in profile.registers if spec.quantity in served.model]
    # Quantities the plant model does not produce (reactive, apparent energy...) are served as zero
    # words by the simulator and cannot be checked against an intended value: name them.
    skipped = sorted(spec.quantity for spec in profile.registers if spec.quantity not in served.model)
    record_property("skipped_quantities", ",".join(skipped) or "none")
    if skipped:
        print(f"{profile.id}: not produced by the plant model, not checked: {', '.join(skipped)}")
    assert set(served.model) <= set(MODEL_UNIT), "every quantity the model produces has a unit here"
    assert "energy_active_import_total" in {spec.quantity for spec in covered}
    assert reading.quality == (), reading.quality
    for spec in covered:
        value = reading.values[spec.quantity]
        expected = expected_value(spec, served.model)
        assert value.unit == spec.unit
        assert value.value == expected, (
            f"{profile.id} {spec.quantity} ({spec.type} {spec.order} x{spec.scale} {spec.unit} at "
            f"{spec.function} {spec.address}): decoded {value.value}, simulator meant {expected} "
            f"(raw {value.raw})"
        )
    for spec in covered:
        if spec.quantity.startswith("energy_"):
            decoded = reading.values[spec.quantity].value
            assert decoded is not None and decoded > 0, f"{spec.quantity}: a plant's counter is above zero"
    if "power_active_total" in {spec.quantity for spec in covered}:
        power = reading.values["power_active_total"].value
        assert power is not None and power < 0, "at noon the plant exports: signed power is negative"


@pytest.mark.integration
@pytest.mark.parametrize(
    "change",
    [
        # the import counter read at the export counter's address
        ("address: 0x5000, type: u64, scale: 0.01", "address: 0x5004, type: u64, scale: 0.01"),
        # the import counter read with ten times its resolution
        ("address: 0x5000, type: u64, scale: 0.01", "address: 0x5000, type: u64, scale: 0.1"),
    ],
    ids=["address", "scale"],
)
def test_a_wrong_profile_does_not_read_what_the_meter_means(change: tuple[str, str]) -> None:
    """The comparison is not circular: a meter served with its true map and read with a profile whose
    import counter has the wrong address or scale decodes to something other than the expected value."""
    relative = "abb/b23-b24.yaml"
    text = (PROFILE_DIR / relative).read_text(encoding="utf-8")
    assert change[0] in text
    right = load_profile(PROFILE_DIR / relative)
    wrong = parse_profile(load_yaml_text(text.replace(change[0], change[1], 1), relative), relative)
    plan = plan_reads(wrong.registers, wrong.max_registers_per_request, wrong.max_gap_registers)
    reading = _read_once(right, plan)
    expected = expected_value(right.register("energy_active_import_total"), state(PLANT, NOON.now()))
    assert reading.values["energy_active_import_total"].value != expected
