"""The calculation on known numbers: boundaries, gaps, units, rounding."""

import itertools
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrv_core.counters import CounterReading, counter_energy
from mrv_core.methodologies import Emissions
from mrv_core.report import (
    FixedSpec,
    MemoryRecordSource,
    Period,
    PointAccumulator,
    PointSpec,
    ProjectSpec,
    compare_reports,
    compute_report,
)
from mrv_core.units import convert
from tests.factory import Gateway

UTC_DAY = Period(date(2026, 1, 2), date(2026, 1, 2), "UTC")


def _project(points: tuple[PointSpec, ...], ef: str = "0.8", unit: str = "tCO2/MWh") -> ProjectSpec:
    return ProjectSpec(
        "P", "p", "UTC", "pv-grid", "1", "ref", points, {"EF_grid": FixedSpec(Decimal(ef), unit, "doc")}
    )


EG = PointSpec(1, "EG", "gw-test", "m1", "energy_active_export_total")


def _day_of_readings(
    gw: Gateway,
    skip: set[int] = frozenset(),
    device: str = "m1",  # type: ignore[assignment]
    kwh_per_hour: int = 1000,
) -> list[bytes]:
    """Hourly readings from 2026-01-01 20:00 to 2026-01-03 04:00 (UTC), counter rising 1 MWh/h."""
    records = []
    for hour in range(20, 24 + 24 + 5):
        data = gw.record(device, hour * 60, 5000 + hour * kwh_per_hour)
        if hour not in skip:
            records.append(data)
    return records


def test_re_parameter_uses_readings_inside_the_period() -> None:
    gw = Gateway()
    report = compute_report(_project((EG,)), UTC_DAY, MemoryRecordSource(_day_of_readings(gw)))
    point = report["monitored"]["EG"]["points"][0]
    # inside: 00:00 (hour 24) .. 23:00 (hour 47): 23 hours of 1 MWh
    assert (
        point["start"]["time"] == "2026-01-02T00:00:00.000Z"
        and point["end"]["time"] == "2026-01-02T23:00:00.000Z"
    )
    assert report["monitored"]["EG"]["value"] == "23"
    assert report["reference_emissions_tco2"] == "18.4"
    assert report["emission_reductions_unrounded_tco2"] == "18.4"
    assert report["emission_reductions_tco2"] == 18
    assert report["findings"] == []


def test_pe_parameter_uses_readings_covering_the_period() -> None:
    gw = Gateway()
    aux = PointSpec(2, "EG_AUX", "gw-test", "aux", "energy_active_export_total")
    records = _day_of_readings(gw) + _day_of_readings(gw, device="aux", kwh_per_hour=10)
    report = compute_report(_project((EG, aux)), UTC_DAY, MemoryRecordSource(records))
    point = report["monitored"]["EG_AUX"]["points"][0]
    # covering: 23:00 the day before (hour 23) .. 00:00 the day after (hour 48): 25 hours of 10 kWh
    assert (
        point["start"]["time"] == "2026-01-01T23:00:00.000Z"
        and point["end"]["time"] == "2026-01-03T00:00:00.000Z"
    )
    assert report["monitored"]["EG_AUX"]["value"] == "0.25"
    assert report["project_emissions_tco2"] == "0.2"
    assert report["emission_reductions_unrounded_tco2"] == "18.2"
    assert report["emission_reductions_tco2"] == 18


def test_gap_in_re_counts_as_zero_and_is_reported() -> None:
    gw = Gateway()
    records = _day_of_readings(gw, skip={30, 31})  # 06:00 and 07:00 missing
    report = compute_report(_project((EG,)), UTC_DAY, MemoryRecordSource(records))
    point = report["monitored"]["EG"]["points"][0]
    assert point["missing_records"] == 2
    assert point["gaps"] == [
        {
            "rule": "gap_excluded",
            "detail": "2 record(s) missing; the increase across the gap counts as zero",
            "effect": "-3",
            "unit": "MWh",
            "seq_from": 11,
            "seq_to": 12,  # hour 20 is seq 1
            "time_from": "2026-01-02T05:00:00.000Z",
            "time_to": "2026-01-02T08:00:00.000Z",
        }
    ]
    assert report["monitored"]["EG"]["value"] == "20"
    assert report["completeness"]["missing_records"] == 2


def test_emission_factor_units_are_converted() -> None:
    gw = Gateway()
    report = compute_report(
        _project((EG,), ef="0.0008", unit="tCO2/kWh"), UTC_DAY, MemoryRecordSource(_day_of_readings(gw))
    )
    assert report["fixed"]["EF_grid"] == {
        "symbol": "EF_grid",
        "value": "0.8",
        "unit": "tCO2/MWh",
        "source": "doc",
    }
    assert report["emission_reductions_tco2"] == 18


def test_no_data_gives_zero_and_a_finding() -> None:
    report = compute_report(_project((EG,)), UTC_DAY, MemoryRecordSource([]))
    assert report["emission_reductions_tco2"] == 0
    assert [f["kind"] for f in report["findings"]] == ["insufficient_readings"]
    assert report["completeness"]["points_with_data"] == 0


def test_local_dates_follow_the_site_time_zone() -> None:
    gw = Gateway()
    period = Period(date(2026, 1, 2), date(2026, 1, 2), "Asia/Ulaanbaatar")  # UTC+8
    project = ProjectSpec(
        "P",
        "p",
        "Asia/Ulaanbaatar",
        "pv-grid",
        "1",
        "r",
        (EG,),
        {"EF_grid": FixedSpec(Decimal("1"), "tCO2/MWh", "doc")},
    )
    report = compute_report(project, period, MemoryRecordSource(_day_of_readings(gw)))
    assert report["period"]["start_utc"] == "2026-01-01T16:00:00.000Z"
    # readings exist from 20:00 UTC: 20:00 .. 15:00 next day = 19 hours
    assert report["monitored"]["EG"]["value"] == "19"


def test_counter_decrease_is_not_subtracted() -> None:
    readings = [
        CounterReading(f"2026-01-01T0{i}:00:00.000Z", i + 1, Decimal(v), "kWh", "h")
        for i, v in enumerate(["100", "150", "20", "70"])
    ]
    energy = counter_energy(readings, "kWh", "RE")
    assert energy.value == Decimal(100)
    assert [a.rule for a in energy.adjustments] == ["counter_decrease"]


@pytest.mark.parametrize("re,pe,expected", [("10.999", "0", 10), ("5", "5.0001", -1), ("0.3742", "0", 0)])
def test_rounding_is_down_after_subtraction(re: str, pe: str, expected: int) -> None:
    assert Emissions(Decimal(re), Decimal(pe)).reductions_tco2 == expected


def _streamed(project: ProjectSpec, period: Period, records: list[bytes]) -> dict[str, Any]:
    """The report as a verifier computes it: every record fed once, in the order given."""
    import json as _json

    from mrv_core.record import parse_record
    from mrv_core.report import StreamingReport

    streaming = StreamingReport(project, period)
    for data in records:
        record = parse_record(data)
        wanted = streaming.wants(record.gateway, record.device)
        values = _json.loads(data)["values"]
        streaming.feed(wanted, time=record.time, seq=record.seq, record_hash=record.hash, values=values)
    return streaming.finish()


def test_streaming_and_store_paths_agree() -> None:
    """A verifier feeding every record in sequence order gets the collector's report exactly."""
    import json as _json

    from mrv_core.report import compare_reports, project_from_dict, project_to_dict

    gw = Gateway()
    aux = PointSpec(2, "EG_AUX", "gw-test", "aux", "energy_active_export_total")
    records = _day_of_readings(gw, skip={30, 31}) + _day_of_readings(gw, device="aux", kwh_per_hour=10)
    project = project_from_dict(_json.loads(_json.dumps(project_to_dict(_project((EG, aux))))))
    stored = compute_report(project, UTC_DAY, MemoryRecordSource(records))
    again = _streamed(project, UTC_DAY, records)
    assert compare_reports(stored, again) == []
    assert again["emission_reductions_tco2"] == 15  # (20 MWh with the gap excluded - 0.25) x 0.8 = 15.8
    changed = _json.loads(_json.dumps(again))
    changed["monitored"]["EG"]["value"] = "21"
    assert compare_reports(stored, changed) == [("monitored.EG.value", "20", "21")]


def _energy_step_by_step(readings: list[CounterReading], unit: str, direction: str) -> Decimal:
    """The counter rules applied one step at a time, as a person would on paper."""
    total = Decimal(0)
    for before, after in itertools.pairwise(readings):
        step = convert(after.value - before.value, after.unit, unit)
        missing = after.seq - before.seq - 1
        if step < 0 or (missing > 0 and direction == "RE"):
            continue
        total += step
    return total


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 3),  # seq advance: 1 is the next record, more leaves a gap
            st.decimals(min_value=-20, max_value=100, places=3),  # counter change: negative is a fall
            st.sampled_from(["kWh", "MWh"]),
        ),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(["RE", "PE"]),
)
def test_counter_segments_equal_the_step_by_step_sum(
    steps: list[tuple[int, Decimal, str]], direction: str
) -> None:
    """CounterRun sums runs of plain steps as last minus first: the same exact number as step by step."""
    readings, seq, value = [], 0, Decimal(1000)
    for advance, change, unit in steps:
        seq, value = seq + advance, value + change
        readings.append(CounterReading("2026-01-01T00:00:00.000Z", seq, value, unit, "h"))
    energy = counter_energy(readings, "MWh", direction)  # type: ignore[arg-type]
    expected = _energy_step_by_step(readings, "MWh", direction) if len(readings) > 1 else Decimal(0)
    assert energy.value == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 1, 1, 2]),  # mostly the next seq, sometimes a gap
            st.decimals(min_value=-5, max_value=30, places=2),
            st.sampled_from(["kWh", "kWh", "kWh", "MWh"]),
            st.integers(10, 37),  # hour of the reading, mostly inside a one-day period (hours 12 to 35)
        ),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(["RE", "PE"]),
    st.lists(st.integers(1, 8), min_size=1, max_size=10),
)
def test_feeding_runs_equals_feeding_readings_one_by_one(
    steps: list[tuple[int, Decimal, str, int]], direction: str, cuts: list[int]
) -> None:
    """The verifier feeds a device's records a run at a time; the result must not depend on it."""
    seqs, values, units, times, hashes = [], [], [], [], []
    seq, value = 0, Decimal(1000)
    for advance, change, unit, hour in steps:
        seq, value = seq + advance, value + change
        seqs.append(seq)
        values.append(value)
        units.append(unit)
        times.append(f"2026-01-{1 + hour // 24:02d}T{hour % 24:02d}:00:00.000Z")
        hashes.append(f"h{seq}")
    point = PointSpec(1, "EG", "gw", "m", "energy_active_export_total")
    start, end = 1767268800000, 1767355200000  # 2026-01-01T12:00Z, 2026-01-02T12:00Z
    one_by_one = PointAccumulator(point, direction, "MWh", start, end)  # type: ignore[arg-type]
    by_runs = PointAccumulator(point, direction, "MWh", start, end)  # type: ignore[arg-type]
    for i in range(len(seqs)):
        one_by_one.feed(time=times[i], seq=seqs[i], value=values[i], unit=units[i], record_hash=hashes[i])
    i = 0
    for cut in itertools.cycle(cuts):
        if i >= len(seqs):
            break
        j = i + cut
        while j > i + 1 and len(set(units[i:j])) > 1:
            j -= 1  # a run has one unit, as the verifier hands them over
        by_runs.feed_run(times[i:j], seqs[i:j], values[i:j], units[i], hashes[i:j])
        i = j
    assert by_runs.finish() == one_by_one.finish()
    assert by_runs.findings == one_by_one.findings


@pytest.mark.parametrize("clock_goes_back", [False, True])
def test_report_over_days_is_fed_a_day_at_a_time_and_agrees_with_a_verifier(
    clock_goes_back: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store path reads one day at a time; when a gateway's clock went back across midnight it
    starts the point again in memory, so the result is always what a verifier gets in seq order."""

    import mrv_core.report as report_module

    gw = Gateway()
    aux = PointSpec(2, "EG_AUX", "gw-test", "aux", "energy_active_export_total")
    records = []
    for hour in range(20, 24 * 3 + 4):  # 2026-01-01 20:00 .. 2026-01-04 03:00, counters rising
        minute = hour * 60
        if clock_goes_back and hour == 49:
            minute = 48 * 60 - 5  # the record after 2026-01-03 00:00 says 01-02 23:55: the clock went back
        records.append(gw.record("m1", minute, 5000 + hour * 1000))
        records.append(gw.record("aux", minute, 100 + hour * 10))
    project = _project((EG, aux))
    period = Period(date(2026, 1, 2), date(2026, 1, 3), "UTC")
    restarted: list[int] = []
    real = report_module._fed_in_memory

    def counting(spent: PointAccumulator, source: Any) -> PointAccumulator:
        restarted.append(spent.point.no)
        return real(spent, source)

    monkeypatch.setattr(report_module, "_fed_in_memory", counting)
    stored = compute_report(project, period, MemoryRecordSource(records))
    assert restarted == ([1, 2] if clock_goes_back else [])
    assert compare_reports(stored, _streamed(project, period, records)) == []
    assert stored["monitored"]["EG"]["value"] == "47"  # 00:00 day 2 .. 23:00 day 3 in MWh
