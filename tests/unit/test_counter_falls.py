"""A counter that falls is not always lost energy: a rollover at the meter's top value, or a
documented meter replacement, is bridged and counted, with its own rule in the report; any other
fall keeps the conservative rule (nothing counted across it)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from collector.projects import load_project
from mrv_core.config_errors import ConfigError
from mrv_core.counters import Replacement
from mrv_core.report import (
    FixedSpec,
    MemoryRecordSource,
    Period,
    PointSpec,
    ProjectSpec,
    compute_report,
    project_from_dict,
    project_to_dict,
)
from tests.factory import Gateway

DAY = Period(date(2026, 1, 2), date(2026, 1, 2), "UTC")
EG = PointSpec(1, "EG", "gw-test", "m1", "energy_active_export_total")
AUX = PointSpec(2, "EG_AUX", "gw-test", "aux", "energy_active_export_total")


def _project(*points: PointSpec) -> ProjectSpec:
    return ProjectSpec(
        "P", "p", "UTC", "pv-grid", "1", "ref", points, {"EF_grid": FixedSpec(Decimal(1), "tCO2/MWh", "doc")}
    )


def _report(
    kwh: list[float], *points: PointSpec, device: str = "m1", skip: int | None = None
) -> dict[str, Any]:
    """Hourly readings of ``device`` on 2026-01-02 from 01:00 with these counter values (kWh)."""
    gw = Gateway()
    records = [gw.record(device, (24 + 1 + hour) * 60, value) for hour, value in enumerate(kwh)]
    if skip is not None:
        del records[skip]
    return compute_report(_project(*points), DAY, MemoryRecordSource(records))


def _point(report: dict[str, Any], parameter: str = "EG") -> dict[str, Any]:
    point: dict[str, Any] = report["monitored"][parameter]["points"][0]
    return point


ROLLING = [99_980.0, 99_990.0, 99_995.0, 3.0, 8.0]


def test_a_fall_from_the_top_of_the_range_to_its_bottom_is_a_rollover() -> None:
    plain = _report(ROLLING, EG)
    rolled = _report(ROLLING, replace(EG, rollover=(Decimal(100_000), "kWh")))
    assert plain["monitored"]["EG"]["value"] == "0.02"  # 10 + 5 + 5 kWh; the fall counts nothing
    assert rolled["monitored"]["EG"]["value"] == "0.028"  # and 5 + 3 kWh across the rollover
    (rule,) = [c for c in _point(rolled)["corrections"] if c["rule"] == "counter_rollover"]
    assert rule["effect"] == "0.008" and rule["seq_from"] == 3 and rule["seq_to"] == 4
    assert [c["rule"] for c in _point(plain)["corrections"]] == ["counter_decrease"]


def test_a_fall_in_the_middle_of_the_range_is_not_a_rollover() -> None:
    report = _report(
        [50_000.0, 50_010.0, 20_000.0, 20_010.0], replace(EG, rollover=(Decimal(100_000), "kWh"))
    )
    assert [c["rule"] for c in _point(report)["corrections"]] == ["counter_decrease"]
    assert report["monitored"]["EG"]["value"] == "0.02"


REPLACED = replace(
    EG,
    replacements=(
        Replacement("2026-01-02T02:30:00.000Z", Decimal("5012"), Decimal("0.5"), "kWh", "protocol R-1"),
    ),
)


def test_a_documented_replacement_bridges_the_fall() -> None:
    report = _report([5000.0, 5010.0, 2.5, 12.5], REPLACED)
    # 10 kWh, then old meter 5010 -> 5012 (2) and new meter 0.5 -> 2.5 (2), then 10 kWh
    assert report["monitored"]["EG"]["value"] == "0.024"
    (rule,) = [c for c in _point(report)["corrections"] if c["rule"] == "meter_replacement"]
    assert rule["effect"] == "0.004" and "protocol R-1" in rule["detail"]


def test_a_replacement_whose_readings_do_not_fit_keeps_the_fall_rule() -> None:
    report = _report([5000.0, 5020.0, 2.5, 12.5], REPLACED)  # the meter read past the protocol's "last"
    assert [c["rule"] for c in _point(report)["corrections"]] == ["counter_decrease"]


def test_records_missing_around_a_replacement_count_nothing_for_re_and_are_bridged_for_pe() -> None:
    values = [5000.0, 5010.0, 5011.0, 2.5, 12.5]
    re_report = _report(values, REPLACED, skip=2)
    assert [c["rule"] for c in _point(re_report)["corrections"]] == ["counter_decrease"]
    pe_point = replace(AUX, replacements=REPLACED.replacements)
    pe_report = _report(values, EG, pe_point, device="aux", skip=2)
    assert "meter_replacement" in [c["rule"] for c in _point(pe_report, "EG_AUX")["corrections"]]


def test_rollover_and_replacements_travel_in_the_bundle_project() -> None:
    project = _project(replace(REPLACED, rollover=(Decimal("99999.99"), "kWh")))
    assert project_from_dict(project_to_dict(project)) == project
    assert "replacements" not in project_to_dict(_project(EG))["points"][0]  # as before when not given


def test_replacements_in_the_project_config(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "config/projects/demo-pv.yaml").read_text()
    extra = (
        "    rollover: {value: 999999.9, unit: kWh}\n"
        "    replacements:\n"
        "      - {time: '2026-03-01T10:30:00+08:00', old_final: 12345.6, new_initial: 0.2, unit: kWh,\n"
        "         old_serial: A1, new_serial: B2, document: replacement protocol 7}\n"
    )
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("    quantity:"))
    path = tmp_path / "p.yaml"
    path.write_text("".join(lines[: at + 1]) + extra + "".join(lines[at + 1 :]))
    point = load_project(path).to_spec().points[0]
    assert point.rollover == (Decimal("999999.9"), "kWh")
    (replacement,) = point.replacements
    assert replacement.time == "2026-03-01T02:30:00.000Z" and "serial A1 -> B2" in replacement.note
    path.write_text(path.read_text().replace("'2026-03-01T10:30:00+08:00'", "'2026-03-01T10:30:00'"))
    with pytest.raises(ConfigError) as error:
        load_project(path)
    assert "replacements[0].time" in str(error.value) and "UTC offset" in str(error.value)
