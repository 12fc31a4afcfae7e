from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from agent.acquisition import decode_reading
from agent.meter_model import PvPlant, state
from agent.plan import ReadRequest, plan_reads
from mrv_core.profile import RegisterSpec
from mrv_core.profile_schema import load_profile
from mrv_core.registers import encode_value

ROOT = Path(__file__).parents[2]


def _spec(q: str, addr: int, rtype: str = "f32", function: str = "input") -> RegisterSpec:
    return RegisterSpec(q, function, addr, rtype, "ABCD", Decimal(1), "kWh", True)


def test_merges_within_gap_and_limit() -> None:
    regs = [_spec("a", 0), _spec("b", 2), _spec("c", 10), _spec("d", 0, function="holding")]
    assert plan_reads(regs, 125, 0).requests == (
        ReadRequest("holding", 0, 2),
        ReadRequest("input", 0, 4),
        ReadRequest("input", 10, 2),
    )
    assert plan_reads(regs, 125, 6).requests == (ReadRequest("holding", 0, 2), ReadRequest("input", 0, 12))
    assert plan_reads(regs, 8, 6).requests == (
        ReadRequest("holding", 0, 2),
        ReadRequest("input", 0, 4),
        ReadRequest("input", 10, 2),
    )


def test_sdm630_is_one_request() -> None:
    profile = load_profile(ROOT / "firmware_profiles/eastron/sdm630-modbus-v2.yaml")
    plan = plan_reads(profile.registers, profile.max_registers_per_request, profile.max_gap_registers)
    assert plan.requests == (ReadRequest("input", 0, 0x4C),)


def test_decode_flags_nan_instead_of_dropping() -> None:
    plan = plan_reads([_spec("energy_active_import_total", 0), _spec("power_active_total", 2)])
    words = dict(enumerate([*encode_value(Decimal("5.5"), "f32", "ABCD", Decimal(1)), 0x7FC0, 0]))
    reading = decode_reading(plan, {("input", a): w for a, w in words.items()})
    assert reading.values["energy_active_import_total"].value == Decimal("5.5")
    assert reading.values["power_active_total"].value is None
    assert reading.values["power_active_total"].raw == "7fc00000"
    assert reading.quality == ("invalid_value:power_active_total",)


def test_plan_rejects_bad_limits() -> None:
    with pytest.raises(ValueError):
        plan_reads([_spec("a", 0)], 126)


PLANT = PvPlant(capacity_kw=100)
DAY = datetime(2026, 6, 1, tzinfo=UTC) - timedelta(hours=PLANT.utc_offset_h)  # local midnight


def test_counters_only_rise_and_power_is_their_derivative() -> None:
    previous = state(PLANT, DAY)
    step = timedelta(minutes=7)
    for i in range(1, 3 * 24 * 60 // 7):
        now = state(PLANT, DAY + i * step)
        for counter in ("energy_active_export_total", "energy_active_import_total"):
            assert now[counter] >= previous[counter]
        previous = now
    # d(export)/dt (kWh per hour) matches export power at noon within 0.1 %
    noon = DAY + timedelta(hours=12)
    h = timedelta(seconds=30)
    slope = (
        state(PLANT, noon + h)["energy_active_export_total"]
        - state(PLANT, noon - h)["energy_active_export_total"]
    ) * 60
    assert slope == pytest.approx(-state(PLANT, noon)["power_active_total"] / 1000, rel=1e-3)


def test_pv_curve_is_daylight_only_and_bounded() -> None:
    night = state(PLANT, DAY + timedelta(hours=2))
    assert night["power_active_total"] == pytest.approx(PLANT.night_load_kw * 1000)
    peak = max(-state(PLANT, DAY + timedelta(minutes=m))["power_active_total"] for m in range(0, 1440, 10))
    assert 0.5 * PLANT.capacity_kw * 1000 < peak <= PLANT.capacity_kw * 1000
    one_day = (
        state(PLANT, DAY + timedelta(days=1))["energy_active_export_total"]
        - state(PLANT, DAY)["energy_active_export_total"]
    )
    assert 0 < one_day < PLANT.capacity_kw * PLANT.daylight_h
