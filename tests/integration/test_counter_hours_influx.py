"""Hourly counter summaries in InfluxDB: the same report as from every record, also where a summary
was written by another collector that did not see the whole hour (in InfluxDB the last write wins)."""

import random
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

import mrv_core.report as report_module
from collector.processing import Ingestor, ingest_messages
from collector.store.influx import InfluxStore
from mrv_core.counter_hours import ALL, HOUR_MS, HourSpan
from mrv_core.report import Period, compare_reports, compute_report
from tests.factory import Gateway, pv_grid_project
from tests.harness.influxdb import InfluxDB
from tests.unit.test_counter_hours import AUX, EG, RecordsOnly, _ingest, _site

DAY = Period(date(2026, 1, 2), date(2026, 1, 2), "UTC")


def _hour(store: InfluxStore, device: str, hour_ms: int) -> dict[str, HourSpan]:
    spans = store.counter_hours("gw-test", device, EG.quantity, hour_ms, hour_ms + HOUR_MS)
    return {span.quantity: span for span in spans}


def _same_report(store: InfluxStore, zone: str = "UTC") -> None:
    project = replace(pv_grid_project(EG, AUX), timezone=zone)
    period = replace(DAY, timezone=zone)
    oracle = compute_report(project, period, RecordsOnly(store))  # type: ignore[arg-type]
    assert compare_reports(oracle, compute_report(project, period, store)) == []


@pytest.mark.parametrize("troubled", [False, True])
def test_a_report_from_influxdb_summaries_is_the_report_from_records(
    influxdb: InfluxDB, influx_database: str, monkeypatch: pytest.MonkeyPatch, troubled: bool
) -> None:
    rnd = random.Random(4)
    gw = Gateway()
    store = InfluxStore(influxdb.url, org="mrv", bucket=influx_database, points_per_write=500)
    ingestor = Ingestor(store, gw.keyring(), clock_ms=lambda: 0)
    _ingest(rnd, gw, _site(rnd, gw, troubled=troubled), ingestor, troubled=troubled)
    fed: list[bool] = []
    real = report_module.PointAccumulator.feed_span

    def counting(self: Any, span: HourSpan) -> bool:
        fed.append(real(self, span))
        return fed[-1]

    monkeypatch.setattr(report_module.PointAccumulator, "feed_span", counting)
    for zone in ("UTC", "Asia/Jakarta"):
        fed.clear()
        _same_report(store, zone)
        assert sum(fed) > (4 if troubled else 40)  # of 48 point-hours

    # Another collector's summary of part of an hour, written last: the records say otherwise.
    hour_ms = 1767319200000  # 2026-01-02T02:00Z
    held = _hour(store, "m1", hour_ms)
    if held[ALL].clean and held[EG.quantity].clean:
        partial = [replace(span, count=span.count - 1, last_seq=span.last_seq - 1) for span in held.values()]
        store._write.write(bucket=influx_database, org="mrv", record=[store._hour_point(s) for s in partial])
        assert not _hour(store, "m1", hour_ms)[ALL].clean
        _same_report(store)
        # The device's summary of the period's last hour right, the quantity's from another view of
        # the hour (same count, other seqs: nothing after it in the period would show it): not fed.
        last_hour = hour_ms + 21 * HOUR_MS  # 2026-01-02T23:00Z
        counter = _hour(store, "m1", last_hour)[EG.quantity]
        shifted = replace(
            counter,
            first_seq=counter.first_seq + 1,
            last_seq=counter.last_seq + 1,
            last_value=str(Decimal(counter.last_value) + 7),
        )
        store._write.write(bucket=influx_database, org="mrv", record=[store._hour_point(shifted)])
        assert _hour(store, "m1", last_hour)[ALL].clean
        _same_report(store)
    else:
        assert troubled
    store.close()


def test_a_new_collector_process_merges_with_what_influxdb_holds(
    influxdb: InfluxDB, influx_database: str
) -> None:
    """The summaries a process remembers are gone after a restart: the next write reads them back."""
    gw = Gateway()
    records = [gw.record("m1", minute, 100 + minute) for minute in range(0, 60, 5)]
    first = InfluxStore(influxdb.url, org="mrv", bucket=influx_database)
    ingest_messages(
        Ingestor(first, gw.keyring(), clock_ms=lambda: 0), [(gw.topic, gw.message(gw.seal(records[:6])))]
    )
    first.close()
    second = InfluxStore(influxdb.url, org="mrv", bucket=influx_database)
    ingest_messages(
        Ingestor(second, gw.keyring(), clock_ms=lambda: 0), [(gw.topic, gw.message(gw.seal(records[6:])))]
    )
    spans = _hour(second, "m1", 1767225600000)  # 2026-01-01T00:00Z
    assert spans[ALL].clean and (spans[ALL].count, spans[ALL].first_seq, spans[ALL].last_seq) == (12, 1, 12)
    assert spans[EG.quantity].clean and Decimal(spans[EG.quantity].last_value) == 155
    second.close()
