"""Hourly counter summaries: a report that reads them is the report that reads every record.

The store keeps them at ingest (collector/store/sqlite.py); the report feeds a clean
hour as one span (mrv_core/report.py). Sites here misbehave on purpose: counters that
fall, records never delivered, signed gap records, records without the quantity,
clocks that go back, messages delivered twice or late, calibrations that lapse in the
middle of an hour, half-hour time zones.
"""

import random
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import mrv_core.report as report_module
from collector.processing import ingest_messages
from collector.store.sqlite import SqliteStore
from mrv_core.counter_hours import ALL, CounterRow, HourSpan, merge, summarize
from mrv_core.counters import CounterReading, CounterRun
from mrv_core.report import (
    MemoryRecordSource,
    Period,
    PointSpec,
    compare_reports,
    compute_report,
)
from tests.factory import Gateway, pv_grid_project
from tests.harness.bundles import enrolled_store

EG = PointSpec(1, "EG", "gw-test", "m1", "energy_active_export_total")
AUX = PointSpec(2, "EG_AUX", "gw-test", "aux", "energy_active_export_total")


class RecordsOnly:
    """The same store without its summaries: the report reads every record (the oracle)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def records_between(self, gateway: str, device: str, start_ms: int, end_ms: int) -> Any:
        return self.store.records_between(gateway, device, start_ms, end_ms)

    def record_before(self, gateway: str, device: str, at_ms: int) -> Any:
        return self.store.record_before(gateway, device, at_ms)

    def record_at_or_after(self, gateway: str, device: str, at_ms: int) -> Any:
        return self.store.record_at_or_after(gateway, device, at_ms)


def _site(rnd: random.Random, gw: Gateway, *, troubled: bool) -> list[list[bytes]]:
    """Three days of readings every 10 minutes from two meters, in seals of a few records."""
    kwh = {"m1": Decimal(5000), "aux": Decimal(100)}
    clock = {"m1": 0, "aux": 0}
    seals: list[list[bytes]] = []
    pending: list[bytes] = []
    for step in range(3 * 144):
        for device in ("m1", "aux"):
            kwh[device] += Decimal(rnd.choice([0, 1, 2, 5, 13])) / 4
            clock[device] = step * 10
            event = rnd.random() if troubled else 1.0
            if event < 0.01:
                kwh[device] = Decimal(rnd.randrange(10))  # reset
            if event < 0.02 and step > 3:
                clock[device] -= rnd.choice([25, 70])  # clock went back, into the hour before or not
            if 0.02 <= event < 0.04:
                gw.record(device, clock[device], kwh[device])  # never delivered
                continue
            if 0.04 <= event < 0.06:
                pending.append(gw.gap(device, clock[device] - 30, clock[device], polls=3))
                continue
            if 0.06 <= event < 0.08:
                pending.append(gw.record(device, clock[device], kwh[device], "energy_active_import_total"))
                continue
            pending.append(gw.record(device, clock[device], kwh[device]))
        if len(pending) >= rnd.choice([2, 6, 12]):
            seals.append(pending)
            pending = []
    if pending:
        seals.append(pending)
    return seals


def _ingest(
    rnd: random.Random, gw: Gateway, seals: list[list[bytes]], ingestor: Any, *, troubled: bool
) -> None:
    messages = [(gw.topic, gw.message(gw.seal(records))) for records in seals]
    if troubled:
        late = messages.pop(len(messages) // 3)  # delivered a day later: its hours are filled afterwards
        messages.insert(len(messages) * 2 // 3, late)
        messages.insert(len(messages) // 2, messages[len(messages) // 4])  # delivered twice
    while messages:
        size = rnd.choice([1, 3, 8])
        ingest_messages(ingestor, messages[:size])
        messages = messages[size:]


@pytest.mark.parametrize("troubled", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_a_report_from_summaries_is_the_report_from_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, troubled: bool
) -> None:
    rnd = random.Random(seed)
    gw = Gateway()
    store, ingestor = enrolled_store(tmp_path, gw)
    _ingest(rnd, gw, _site(rnd, gw, troubled=troubled), ingestor, troubled=troubled)
    spans_fed: list[int] = []
    real = report_module.PointAccumulator.feed_span

    def counting(self: Any, span: HourSpan) -> bool:
        fed = real(self, span)
        spans_fed.append(fed)
        return fed

    monkeypatch.setattr(report_module.PointAccumulator, "feed_span", counting)
    # Summaries asked for a day at a time here (a month in use), so a two-day period asks twice.
    monkeypatch.setattr(report_module, "SUMMARY_WINDOW_MS", report_module.REPORT_WINDOW_MS)
    calibrated = replace(
        EG, mpe=Decimal("0.02"), calibrated=(("2026-01-02T07:35:00.000Z", "2026-01-03T00:00:00.000Z"),)
    )
    for project in (pv_grid_project(EG, AUX), pv_grid_project(calibrated, AUX)):
        for zone in ("UTC", "Asia/Jakarta", "Asia/Yangon"):  # +7, and +6:30: hours do not fit the day
            period = Period(date(2026, 1, 2), date(2026, 1, 3), zone)
            spans_fed.clear()
            summarised = compute_report(replace(project, timezone=zone), period, store)
            oracle = compute_report(replace(project, timezone=zone), period, RecordsOnly(store))
            assert compare_reports(oracle, summarised) == [], (zone, troubled)
            if zone == "Asia/Yangon":
                assert spans_fed == []
            else:
                assert sum(spans_fed) > (8 if troubled else 80)  # of 96 point-hours
    store.close()


def test_summaries_hold_only_what_continues_exactly() -> None:
    """A batch that continues the stored hour keeps it clean; a repeat, a hole or a fall does not."""

    def row(seq: int, minute: int, value: str, unit: str = "kWh") -> CounterRow:
        counters = {"energy_active_export_total": (unit, value)} if value else {}
        return CounterRow("g", "d", seq, minute * 60_000, f"t{minute:04d}", f"h{seq}", counters)

    def spans(*rows: CounterRow) -> tuple[HourSpan, HourSpan]:
        out = summarize(rows)
        return out[("g", "d", ALL, 0)], out[("g", "d", "energy_active_export_total", 0)]

    every, span = spans(row(2, 1, "10.5"), row(1, 0, "10"), row(3, 2, "11"))  # any order in a batch
    assert every.clean and span.clean and (span.first_value, span.last_value, span.count) == ("10", "11", 3)
    later_every, later = spans(row(4, 3, "11"), row(5, 4, "12.25"))
    assert merge(span, later).clean and merge(span, later).last_value == "12.25"
    assert merge(every, later_every).count == 5
    assert not merge(span, spans(row(5, 3, "12"))[1]).clean  # seq 4 is not there (yet)
    assert not merge(span, spans(row(3, 2, "11"))[1]).clean  # delivered twice
    assert not merge(span, spans(row(4, 3, "10.9"))[1]).clean  # the counter fell
    assert not merge(span, spans(row(4, 3, "12", "MWh"))[1]).clean  # another unit
    assert not spans(row(1, 0, "10"), row(2, 1, "9"))[1].clean
    assert not spans(row(1, 0, "10"), row(3, 1, "11"))[1].clean
    assert not spans(row(1, 0, "10"), row(2, 1, "11", "MWh"))[1].clean
    gap_every, gap_span = spans(row(1, 0, "10"), row(2, 1, ""), row(3, 2, "11"))  # a gap record
    assert gap_every.clean and gap_span.count == 2 != gap_every.count  # the report reads that hour


@pytest.mark.parametrize("valid_before", [True, False, None])
def test_a_span_is_the_same_as_its_readings_one_by_one(valid_before: bool | None) -> None:
    """CounterRun.add_span against add() for each reading, after a fall, a hole, a change of
    calibration or nothing at all."""
    rnd = random.Random(3)
    for _ in range(300):
        readings = []
        seq, value = rnd.randrange(1, 5), Decimal(rnd.randrange(100))
        if valid_before is not None:
            readings.append(CounterReading("t0", seq, value, "kWh", "h", valid_before))
            seq += rnd.choice([1, 1, 2])
            value += Decimal(rnd.choice([-3, 0, 2]))
        valid = rnd.random() < 0.5
        for _ in range(rnd.randrange(1, 6)):
            readings.append(CounterReading(f"t{seq}", seq, value, "kWh", f"h{seq}", valid))
            seq, value = seq + 1, value + Decimal(rnd.randrange(3))
        one_by_one, spanned = CounterRun("MWh", "RE"), CounterRun("MWh", "RE")
        for run in (one_by_one, spanned):
            run.uncalibrated = Decimal("0.98")
        for reading in readings:
            one_by_one.add(reading)
        inside = readings[1:] if valid_before is not None else readings
        for reading in readings[: len(readings) - len(inside)]:
            spanned.add(reading)
        spanned.add_span(inside[0], inside[-1], len(inside))
        assert spanned.result() == one_by_one.result()


def test_the_store_table_holds_hour_span_fields_in_order() -> None:
    from dataclasses import fields

    import collector.store.sqlite as sqlite_module

    names = [f.name for f in fields(HourSpan)]
    assert sqlite_module._SPAN_SELECT.startswith("SELECT " + ", ".join(names) + " FROM")
    assert "(" + ", ".join(names) + ")" in sqlite_module._SPAN_INSERT


def test_memory_source_has_no_summaries() -> None:
    """Exports and verifiers read records: the summaries are the store's index only."""
    assert not hasattr(MemoryRecordSource([]), "counter_hours")


def _rows_one_by_one(records: list[Any]) -> list[CounterRow]:
    """The oracle of summarize_records: each record's counters read from its decoded values."""
    from mrv_core.counter_hours import COUNTERS
    from mrv_core.timefmt import time_ms

    return [
        CounterRow(
            r.gateway,
            r.device,
            r.seq,
            time_ms(r.time),
            r.time,
            r.hash,
            {
                name: (value.unit, str(value.value))
                for name, value in r.values.items()
                if name in COUNTERS and value.value is not None
            },
        )
        for r in records
    ]


@pytest.mark.parametrize("seed", range(6))
def test_summaries_of_records_read_together_are_those_read_one_by_one(seed: int) -> None:
    """Ingest reads a device-hour's counters with one regex over its records' joined values; records
    that lack a counter, hold it without a number, are gap records, change unit or are not in the
    common layout (a unit that JSON escapes) send the hour record by record: same summaries."""
    from mrv_core.counter_hours import summarize_records
    from mrv_core.record import Value, parse_record
    from tests.factory import energy_value

    rnd = random.Random(seed)
    gw = Gateway()
    kwh = {"m1": Decimal(10), "m2": Decimal(500)}
    data: list[bytes] = []
    for minute in range(0, 600, rnd.choice([3, 7, 10])):
        for device in ("m1", "m2"):
            kwh[device] += Decimal(rnd.randrange(0, 300)) / 100
            event = rnd.random()
            values = {
                "energy_active_export_total": energy_value(kwh[device]),
                "energy_active_import_total": energy_value(kwh[device] / 3),
                "power_active_total": Value(Decimal("1.5"), "kW", "0001"),
            }
            if event < 0.03:
                data.append(gw.gap(device, minute - 5, minute, polls=2))
                continue
            if event < 0.06:
                del values["energy_active_import_total"]  # a partial read
            elif event < 0.08:
                values["energy_active_export_total"] = Value(None, "kWh", "ffffffff")  # no number
            elif event < 0.10:
                values["energy_active_import_total"] = Value(Decimal(7), "MWh", "00000007")
            elif event < 0.12:
                values["gas_volume_total"] = Value(Decimal(3), "m\u00b3", "00000003")  # escaped: full parse
            data.append(gw.record(device, minute, 0, values=values))
    records = [parse_record(d) for d in data]
    assert any(r.values.__class__.__name__ != "_LazyValues" for r in records)
    rnd.shuffle(records)
    for size in (1, 5, 40, len(records)):
        for start in range(0, len(records), size):
            batch = records[start : start + size]
            assert summarize_records(batch) == summarize(_rows_one_by_one(batch))
