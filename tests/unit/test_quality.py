"""Data quality flags: out of range, counters going back (rollover, reset, backwards), frozen reads.
A flag never drops or changes a value."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agent.acquisition import FROZEN_READS, QualityTracker, Reading, decode_reading
from agent.plan import ReadPlan, plan_reads
from mrv_core.config_errors import ConfigError, load_yaml_text
from mrv_core.profile import Profile
from mrv_core.profile_schema import parse_profile
from mrv_core.registers import encode_value

PROFILE = parse_profile(
    load_yaml_text(
        """
schema: 1
id: quality-test
manufacturer: Test
model: counters and power
source: {document: test register map, version: "1"}
registers:
  - {quantity: energy_active_import_total, function: input, address: 0, type: u32, scale: 0.1, unit: kWh,
     rollover: 429496729.5}
  - {quantity: power_active_total, function: input, address: 2, type: i32, unit: W, min: -50000, max: 50000}
""",
        "quality-test",
    ),
    "quality-test",
)
PLAN = plan_reads(PROFILE.registers, 125, 0)


def _reading(kwh: str, watts: int, plan: ReadPlan = PLAN) -> Reading:
    words: dict[tuple[str, int], int] = {}
    for spec, value in zip(PROFILE.registers, (Decimal(kwh), Decimal(watts)), strict=True):
        for i, word in enumerate(encode_value(value, spec.type, spec.order, spec.scale)):
            words[(spec.function, spec.address + i)] = word
    return decode_reading(plan, words)


def test_a_value_outside_the_profiles_range_is_flagged_and_kept() -> None:
    reading = _reading("10", 60_000)
    assert reading.quality == ("out_of_range:power_active_total",)
    assert reading.values["power_active_total"].value == 60_000
    assert _reading("10", -50_000).quality == ()


def test_counters_going_back_are_told_apart() -> None:
    tracker = QualityTracker()
    assert tracker.check(PLAN, _reading("1000", 5)).quality == ()
    assert tracker.check(PLAN, _reading("999.9", 5)).quality == (
        "counter_backwards:energy_active_import_total",
    )
    assert tracker.check(PLAN, _reading("0.5", 5)).quality == ("counter_reset:energy_active_import_total",)
    tracker.check(PLAN, _reading("429496000", 5))
    rolled = tracker.check(PLAN, _reading("12", 5))
    assert rolled.quality == ("counter_rollover:energy_active_import_total",)
    assert rolled.values["energy_active_import_total"].value == Decimal(12), "kept as read"
    assert tracker.check(PLAN, _reading("13", 5)).quality == (), "going up again is normal"


def test_a_reading_frozen_word_for_word_is_flagged() -> None:
    tracker = QualityTracker()
    flags = [tracker.check(PLAN, _reading("100", 7)).quality for _ in range(FROZEN_READS + 1)]
    assert flags[: FROZEN_READS - 1] == [()] * (FROZEN_READS - 1)
    assert flags[FROZEN_READS - 1 :] == [("frozen",), ("frozen",)]
    assert tracker.check(PLAN, _reading("100", 8)).quality == (), "moving again"
    counters_only = plan_reads(PROFILE.registers[:1], 125, 0)
    night = QualityTracker()
    words = {("input", 0): 0, ("input", 1): 1000}
    flags = [night.check(counters_only, decode_reading(counters_only, words)).quality for _ in range(20)]
    assert flags == [()] * 20, "a counter that does not move at night is not frozen"


def test_a_range_upside_down_is_refused_and_limits_join_the_profile_hash() -> None:
    text = """
schema: 1
id: range-test
manufacturer: Test
model: m
source: {document: test register map, version: "1"}
registers:
  - {quantity: power_active_total, function: input, address: 0, type: i32, unit: W, min: 10, max: 5}
"""
    with pytest.raises(ConfigError, match="min 10 is above max 5"):
        parse_profile(load_yaml_text(text, "range-test"), "range-test")
    with_range = parse_profile(load_yaml_text(text.replace("max: 5", "max: 50"), "r"), "r")
    without = parse_profile(load_yaml_text(text.replace(", min: 10, max: 5", ""), "r"), "r")
    assert with_range.sha256 != without.sha256, "a range changes what the records' flags mean"
    assert b'"min"' not in without.canonical_json, "profiles without a range keep their hash"
    assert Profile.from_canonical(with_range.canonical_json) == with_range
