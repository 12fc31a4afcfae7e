"""Readings outside a valid calibration count by the maximum permissible error, conservatively:
RE-raising energy x (1 - MPE), PE-raising x (1 + MPE); each correction is in the report with its
effect, and a verifier's streaming recomputation gives the same numbers."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from collector.projects import load_project
from mrv_core.config_errors import ConfigError
from mrv_core.record import parse_record
from mrv_core.report import (
    FixedSpec,
    MemoryRecordSource,
    Period,
    PointSpec,
    ProjectSpec,
    StreamingReport,
    compare_reports,
    compute_report,
    project_from_dict,
    project_to_dict,
)
from tests.factory import Gateway

TWO_DAYS = Period(date(2026, 1, 2), date(2026, 1, 3), "UTC")
UNTIL_JAN_3 = (("2025-01-01T00:00:00.000Z", "2026-01-03T00:00:00.000Z"),)  # certificate due 2026-01-03


def _project(*points: PointSpec) -> ProjectSpec:
    return ProjectSpec(
        "P", "p", "UTC", "pv-grid", "1", "ref", points, {"EF_grid": FixedSpec(Decimal(1), "tCO2/MWh", "doc")}
    )


def _hourly(gw: Gateway, device: str, kwh_per_hour: int) -> list[bytes]:
    """Readings every hour from 2026-01-01 22:00 to 2026-01-04 02:00, the counter rising steadily."""
    return [gw.record(device, hour * 60, 5000 + hour * kwh_per_hour) for hour in range(22, 24 * 3 + 3)]


def _report(*points: PointSpec) -> dict[str, Any]:
    gw = Gateway()
    records = _hourly(gw, "m1", 1000) + _hourly(gw, "aux", 10)
    return compute_report(_project(*points), TWO_DAYS, MemoryRecordSource(records))


EG = PointSpec(1, "EG", "gw-test", "m1", "energy_active_export_total")
AUX = PointSpec(2, "EG_AUX", "gw-test", "aux", "energy_active_export_total")


def _calibrated(point: PointSpec) -> PointSpec:
    """The point's meter with MPE 0.5 % and a certificate due 2026-01-03."""
    return replace(point, mpe=Decimal("0.005"), calibrated=UNTIL_JAN_3)


def test_re_energy_after_the_certificate_expired_counts_less() -> None:
    plain = _report(EG)
    corrected = _report(_calibrated(EG))
    # inside: 01-02 00:00 .. 01-03 23:00 = 47 MWh; from 01-02 23:00 on (the step into 01-03 has an
    # uncalibrated end) 24 MWh without valid calibration: x 0.995
    assert plain["monitored"]["EG"]["value"] == "47"
    assert corrected["monitored"]["EG"]["value"] == "46.88"
    (correction,) = corrected["monitored"]["EG"]["points"][0]["corrections"]
    assert correction["rule"] == "calibration_correction" and correction["effect"] == "-0.12"
    assert (
        correction["time_from"] == "2026-01-02T23:00:00.000Z"
        and correction["time_to"] == "2026-01-03T23:00:00.000Z"
    )
    assert "calibration_correction" in [f["kind"] for f in corrected["findings"]]
    assert corrected["emission_reductions_tco2"] == 46 and plain["emission_reductions_tco2"] == 47


def test_pe_energy_without_calibration_counts_more() -> None:
    report = _report(EG, _calibrated(AUX))
    # PE covers the period: 01-01 23:00 .. 01-04 00:00 = 49 h x 10 kWh; 25 h of them (01-02 23:00 on) x 1.005
    assert report["monitored"]["EG_AUX"]["value"] == "0.49125"  # (240 + 250 x 1.005) kWh


def test_no_certificate_at_all_corrects_everything_and_none_configured_corrects_nothing() -> None:
    nothing_valid = _report(replace(EG, mpe=Decimal("0.01"), calibrated=()))
    assert nothing_valid["monitored"]["EG"]["value"] == "46.53"  # 47 x 0.99
    assert "calibration" not in _report(EG)["monitored"]["EG"]["points"][0]  # reports as before


def test_a_verifier_streaming_the_records_gets_the_same_corrections() -> None:
    gw = Gateway()
    records = _hourly(gw, "m1", 1000)
    project = _project(_calibrated(EG))
    assert project_from_dict(project_to_dict(project)) == project
    streamed = StreamingReport(project_from_dict(project_to_dict(project)), TWO_DAYS)
    for data in records:
        record = parse_record(data)
        value = record.values["energy_active_export_total"]
        streamed.feed(
            streamed.wants("gw-test", "m1"),
            time=record.time,
            seq=record.seq,
            record_hash=record.hash,
            values={"energy_active_export_total": {"value": str(value.value), "unit": value.unit}},
        )
    assert (
        compare_reports(compute_report(project, TWO_DAYS, MemoryRecordSource(records)), streamed.finish())
        == []
    )


@pytest.mark.parametrize("steps", [1, 5, 24])
def test_feeding_runs_equals_feeding_readings(steps: int) -> None:
    """The verifier's fast path (runs of one validity) and reading-by-reading give the same report."""
    gw = Gateway()
    records = [parse_record(r) for r in _hourly(gw, "m1", 1000)]
    project = _project(_calibrated(EG))
    results = []
    for size in (1, steps):
        streamed = StreamingReport(project, TWO_DAYS)
        (accumulator,) = streamed.wants("gw-test", "m1")
        for at in range(0, len(records), size):
            chunk = records[at : at + size]
            accumulator.feed_run(
                [r.time for r in chunk],
                [r.seq for r in chunk],
                [r.values["energy_active_export_total"].value or Decimal(0) for r in chunk],
                "kWh",
                [r.hash for r in chunk],
            )
        results.append(streamed.finish())
    assert compare_reports(results[0], results[1]) == []
    assert results[0]["monitored"]["EG"]["value"] == "46.88"


def test_project_config_calibration(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "config/projects/demo-pv.yaml").read_text()
    path = tmp_path / "p.yaml"
    point_extra = (
        "    accuracy_class: 0.5S\n"
        "    calibrations:\n"
        "      - {issuer: KEMA, certificate: C-1, date: 2025-03-01, due: 2026-03-01}\n"
        "      - {issuer: KEMA, certificate: C-2, date: 2026-03-01, due: 2027-03-01}\n"
    )
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if "quantity:" in line and lines[i].startswith("    "))
    path.write_text("".join(lines[: at + 1]) + point_extra + "".join(lines[at + 1 :]))
    spec = load_project(path).to_spec()
    point = spec.points[0]
    assert point.mpe == Decimal("0.005")
    # two certificates back to back: one window, from and to local midnights (UTC+8) in UTC
    assert point.calibrated == (("2025-02-28T16:00:00.000Z", "2027-02-28T16:00:00.000Z"),)
    path.write_text(path.read_text().replace("    accuracy_class: 0.5S\n", ""))
    with pytest.raises(ConfigError) as error:
        load_project(path)
    assert "monitoring_points[0]" in str(error.value) and "maximum permissible error" in str(error.value)
