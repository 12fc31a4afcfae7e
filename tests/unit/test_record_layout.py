"""The common-layout reader of records never accepts what the full parse refuses, and reads the same.

``parse_record`` takes a regex path for the records the agent writes nearly always and the full
canonical JSON parse for everything else; ingest throughput rests on the first, correctness on both
agreeing. The full parse is the oracle here.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrv_core.canonical import canonical_bytes, is_canonical
from mrv_core.record import (
    MAX_SHAPES,
    RecordError,
    Value,
    _common_record,
    _parse_full,
    parse_record,
    value_of,
)
from tests.factory import Gateway, energy_value

GW = Gateway()
PLAIN = GW.record("m1", 0, 12.5, extra={"power_active_total": Value(Decimal("-3.25"), "W", "c050")})
NO_VALUE = GW.record("m2", 0, 1, extra={"frequency": Value(None, "Hz", "")})


def _body(data: bytes) -> dict[str, object]:
    body = json.loads(data)
    assert isinstance(body, dict)
    return body


def _variant(change: dict[str, object]) -> bytes:
    return canonical_bytes({**_body(PLAIN), **change})


def _assert_same(data: bytes) -> None:
    common = _common_record(data)
    try:
        full = _parse_full(data, strict=True)
    except RecordError:
        assert common is None, f"the common path accepted bytes the full parse refuses: {data!r}"
        return
    if common is not None:
        assert common == full
        names = [*full.values, "energy_active_total", "nothing"]
        fresh = _common_record(data)  # values not decoded yet: value_of takes its regex path
        assert fresh is not None
        # one quantity read by its own regex (the report's path) = the same quantity decoded
        assert [value_of(fresh.values, n) for n in names] == [full.values.get(n) for n in names]
        assert dict(common.values) == dict(full.values)


def test_the_agents_records_take_the_common_path_and_read_the_same() -> None:
    for data in (PLAIN, NO_VALUE):
        _assert_same(data)
        common = _common_record(data)
        assert common is not None, "the agent's usual records must take the common path"
        assert common == _parse_full(data, strict=True)
        assert parse_record(data) == common
    values = parse_record(PLAIN).values
    assert values["power_active_total"] == Value(Decimal("-3.25"), "W", "c050")
    assert values["energy_active_export_total"] == energy_value(12.5)


@pytest.mark.parametrize(
    "change",
    [
        {"quality": ["counter_backwards"]},  # flags: full path
        {"device": "m\u00e9ter"},  # escaped non-ASCII
        {"device": 'say "hi"'},  # escaped quote
        {"site": "a\\b"},
        {"time": "2026-02-30T00:00:00.000Z"},  # no such day: refused by both
        {"time": "2026-01-01T24:00:00.000Z"},
        {"values": {"x": {"raw": "", "unit": "", "value": "1e3"}}},  # accepted by the full parse only
        {"values": {"x": {"raw": "", "unit": "", "value": 1}}},  # a number, not text: refused by both
        {"values": {}},
        {"extra": 1},
    ],
)
def test_other_shapes_go_to_the_full_parse(change: dict[str, object]) -> None:
    data = _variant(change)
    _assert_same(data)
    if change != {"values": {}}:
        assert _common_record(data) is None


def test_non_canonical_bytes_never_take_the_common_path() -> None:
    beyond_safe = PLAIN.replace(b'"seq":1,', b'"seq":9007199254740992,')
    with pytest.raises(RecordError):
        parse_record(beyond_safe)
    for data in (
        beyond_safe,
        PLAIN.replace(b'"seq":1', b'"seq":01'),
        PLAIN.replace(b',"v":1', b', "v":1'),
        PLAIN + b"\n",
    ):
        assert not is_canonical(data)
        assert _common_record(data) is None
    for data in (  # canonical JSON, but decimal text the agent never writes: the full parse reads it
        PLAIN.replace(b'"value":"12.5"', b'"value":"12.50"'),
        PLAIN.replace(b'"value":"12.5"', b'"value":"+12.5"'),
    ):
        assert _common_record(data) is None
        assert parse_record(data).values["energy_active_export_total"].value == Decimal("12.5")


def test_value_names_out_of_order_are_refused_after_a_shape_was_learnt() -> None:
    assert _common_record(PLAIN) is not None  # learns this profile's names
    swapped = PLAIN.replace(b'"energy_active_export_total"', b'"zz_export"')
    assert _common_record(swapped) is None, "names out of order are not canonical"
    with pytest.raises(RecordError):
        parse_record(swapped)


def test_many_profiles_do_not_grow_the_shape_cache_without_bound() -> None:
    from mrv_core import record

    for n in range(MAX_SHAPES + 10):
        assert _common_record(_variant({"profile": {"id": "p", "sha256": f"{n:064x}"}})) is not None
    assert len(record._SHAPES) <= MAX_SHAPES


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(PLAIN)
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(data) - 1))
        data[index] = draw(st.sampled_from(b'"\\{}[],:.-0123456789az \x00\x7f\xe9'))
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_records_read_the_same_on_both_paths(data: bytes) -> None:
    _assert_same(data)
    if _common_record(data) is not None:
        assert is_canonical(data)
