"""Signed gap records: a device that could not be read says so in its own chain, and the report
treats that absence like missing readings (conservatively) while telling the two apart."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from agent.acquisition import UnreadPolls
from mrv_core.canonical import is_canonical
from mrv_core.record import RecordError, build_gap_record, parse_record
from mrv_core.report import MemoryRecordSource, Period, PointSpec, compute_report
from tests.factory import PROFILE_SHA, Gateway, pv_grid_project

T0 = datetime(2026, 1, 2, 10, tzinfo=UTC)
DAY = Period(date(2026, 1, 2), date(2026, 1, 2), "UTC")


def _gap(**change: object) -> bytes:
    fields: dict[str, object] = {
        "site": "s",
        "gateway": "g",
        "device": "m1",
        "profile_id": "test-energy-meter",
        "profile_sha256": PROFILE_SHA,
        "seq": 7,
        "prev": "ab" * 32,
        "time": T0 + timedelta(minutes=15),
        "clock": "synced",
        "start": T0,
        "end": T0 + timedelta(minutes=14),
        "polls": 15,
        "reason": "exception:2",
    }
    fields.update(change)
    data, _ = build_gap_record(**fields)  # type: ignore[arg-type]
    return data


def test_a_gap_record_is_canonical_and_parses_back() -> None:
    data = _gap()
    assert is_canonical(data)
    record = parse_record(data)
    assert record.kind == "gap" and not record.values and record.seq == 7
    assert record.gap is not None
    assert (record.gap.start, record.gap.end, record.gap.polls, record.gap.reason) == (
        "2026-01-02T10:00:00.000Z",
        "2026-01-02T10:14:00.000Z",
        15,
        "exception:2",
    )
    assert parse_record(data, strict=False) == record


@pytest.mark.parametrize(
    "change",
    [
        {"polls": 0},
        {"reason": "tired"},
        {"start": T0 + timedelta(minutes=20)},  # after its end
        {"end": T0 + timedelta(minutes=16)},  # after the record's own time
    ],
)
def test_a_gap_record_that_says_nothing_coherent_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(RecordError):
        _gap(**change)


def test_a_gap_record_with_values_or_a_bad_span_does_not_parse() -> None:
    good = _gap()
    with_values = good.replace(b'"values":{}', b'"values":{"x":{"raw":"0001","unit":"kWh","value":"1"}}')
    backwards = good.replace(b'"from":"2026-01-02T10:00:00.000Z"', b'"from":"2026-01-02T11:00:00.000Z"')
    for data in (with_values, backwards):
        with pytest.raises(RecordError):
            parse_record(data, strict=False)


def test_unread_polls_span_count_and_reason() -> None:
    unread = UnreadPolls()
    assert not unread.due(T0, 60)
    unread.miss(T0, "timeout")
    unread.miss(T0 + timedelta(seconds=30), None)  # skipped while backing off: the reason stands
    unread.miss(T0 + timedelta(seconds=60), "exception:4")
    assert (unread.start, unread.end, unread.polls, unread.reason) == (
        T0,
        T0 + timedelta(seconds=60),
        3,
        "exception:4",
    )
    assert unread.due(T0 + timedelta(seconds=60), 60) and not unread.due(T0 + timedelta(seconds=59), 60)
    unread.clear()
    assert unread.polls == 0 and unread.start is None and not unread.due(T0 + timedelta(days=1), 60)


EG = PointSpec(1, "EG", "gw-test", "m1", "energy_active_export_total")
AUX = PointSpec(2, "EG_AUX", "gw-test", "m1", "energy_active_export_total")


def _hours(gw: Gateway, *, signed_gap: bool, device: str = "m1") -> list[bytes]:
    """Hourly readings over 2026-01-02 (1 MWh/h); the 10:00 and 11:00 polls read nothing: with
    ``signed_gap`` the agent's gap record says so at 12:00, otherwise two records are missing."""
    records = []
    for hour in range(24, 48):
        if hour in (34, 35):
            if not signed_gap:
                gw.record(device, hour * 60, 5000 + hour * 1000)  # signed, then lost
            continue
        if hour == 36 and signed_gap:
            records.append(gw.gap(device, 34 * 60, 35 * 60, polls=2))
        records.append(gw.record(device, hour * 60, 5000 + hour * 1000))
    return records


def test_the_report_tells_signed_absence_from_missing_records() -> None:
    signed = compute_report(pv_grid_project(EG), DAY, MemoryRecordSource(_hours(Gateway(), signed_gap=True)))
    lost = compute_report(pv_grid_project(EG), DAY, MemoryRecordSource(_hours(Gateway(), signed_gap=False)))
    for report in (signed, lost):  # the same conservative result: the 3 MWh from 09:00 to 12:00 excluded
        assert report["monitored"]["EG"]["value"] == "20"
        (gap,) = report["monitored"]["EG"]["points"][0]["gaps"]
        assert gap["rule"] == "gap_excluded" and gap["effect"] == "-3"
    signed_point, lost_point = (r["monitored"]["EG"]["points"][0] for r in (signed, lost))
    assert (signed_point["missing_records"], signed_point["unread_polls"]) == (0, 2)
    assert lost_point["missing_records"] == 2 and "unread_polls" not in lost_point  # as before gap records
    assert "device not read: 2 poll(s) from 2026-01-02T10:00:00.000Z" in signed_point["gaps"][0]["detail"]
    assert "timeout, gap record seq 11" in signed_point["gaps"][0]["detail"]
    assert "2 record(s) missing" in lost_point["gaps"][0]["detail"]
    assert [f["kind"] for f in signed["findings"]].count("device_not_read") == 1
    assert "device_not_read" not in [f["kind"] for f in lost["findings"]]
    assert "unread_polls" not in lost["completeness"]
    assert signed["completeness"]["unread_polls"] == 2 and signed["completeness"]["missing_records"] == 0


def test_a_pe_parameter_keeps_the_increase_across_a_signed_gap() -> None:
    report = compute_report(
        pv_grid_project(EG, AUX), DAY, MemoryRecordSource(_hours(Gateway(), signed_gap=True))
    )
    (gap,) = report["monitored"]["EG_AUX"]["points"][0]["gaps"]
    assert gap["rule"] == "gap_included" and "device not read" in gap["detail"]
