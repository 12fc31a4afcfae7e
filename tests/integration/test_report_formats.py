"""`mrv-collector report --format xlsx|csv|html` on stores filled through the real ingest path.

The xlsx check is LibreOffice's: `soffice --headless --convert-to xlsx` opens our workbook, which
holds formulas without cached results, computes them and saves the results; openpyxl reads those
back (data_only=True) and they must equal the report's RE_p, PE_p and ER_p. LibreOffice comes from
`make system-test-deps` (libreoffice-calc-nogui); a missing soffice fails loudly.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import subprocess
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from collector import report_formats
from collector.processing import Ingestor, ingest_messages
from collector.report_formats import FORMULAS, build_workbook, check_daily, daily_values, symbolic_formulas
from collector.store.sqlite import SqliteStore
from mrv_core.methodologies import registry
from mrv_core.record import Value
from mrv_core.report import FixedSpec, MemoryRecordSource, Period, PointSpec, ProjectSpec, compute_report
from tests.factory import Gateway, energy_value
from tests.harness.programs import command, run_on_a_terminal

ROOT = Path(__file__).parents[2]
SCRIPT = "<script>alert('x')</script> & roof"
PV_PERIOD = ("2026-01-02", "2026-01-04")  # local dates, Asia/Ulaanbaatar (UTC+8)


# --------------------------------------------------------------------------- stores and projects


def _store(tmp_path: Path, gw: Gateway, records: list[bytes]) -> Path:
    """Records ingested as the collector does (signed seals of 24, verified, stored), and its config."""
    store = SqliteStore(tmp_path / "c.sqlite")
    ingestor = Ingestor(store, gw.keyring(), clock_ms=lambda: 1_767_225_600_000)
    for first in range(0, len(records), 24):
        chunk = records[first : first + 24]
        result = ingest_messages(ingestor, [(gw.topic, gw.message(gw.seal(chunk)))])
        assert not result.quarantined and result.stored == len(chunk)
    store.close()
    config = tmp_path / "collector.yaml"
    config.write_text(
        json.dumps({"store": {"type": "sqlite", "path": str(tmp_path / "c.sqlite")}, "keyring": "keys.json"})
    )
    return config


def _pv_records(gw: Gateway, skip: frozenset[int] = frozenset()) -> list[bytes]:
    """Hourly readings of two PV meters from 2026-01-01T00:00Z for five days: export rises by day
    (local daytime) and a little at night, import (auxiliaries) every hour, so midnight steps count."""
    records = []
    totals = {"pv-1": [Decimal("120000.37"), Decimal("512.08")], "pv-2": [Decimal("80000"), Decimal("90.5")]}
    for hour in range(24 * 5):
        local = (hour + 8) % 24
        for device, scale in (("pv-1", Decimal("1.0")), ("pv-2", Decimal("0.61"))):
            export, imported = totals[device]
            export += (Decimal(900) if 8 <= local < 18 else Decimal("3.17")) * scale + Decimal(hour % 7)
            imported += Decimal("2.43") + Decimal(hour % 3) * Decimal("0.11")
            totals[device] = [export, imported]
            data = gw.record(
                device,
                hour * 60,
                export,
                extra={"energy_active_import_total": energy_value(imported)},
            )
            if (device, hour) not in skip:
                records.append(data)
    return records


def _pv_project(tmp_path: Path) -> Path:
    body = {
        "id": "TEST-PV-1",
        "name": "Test PV <b>site</b>",
        "host_country": "Mongolia",
        "timezone": "Asia/Ulaanbaatar",
        "methodology": {"id": "pv-grid", "version": "1.0", "reference": "MN_AM003 (structure only)"},
        "monitoring_points": [
            {
                "number": 1,
                "parameter": "EG",
                "description": SCRIPT,
                "gateway": "gw-test",
                "device": "pv-1",
                "quantity": "energy_active_export_total",
                "meter_serial": "SN-0001",
                "accuracy_class": "0.5S",
            },
            {
                "number": 2,
                "parameter": "EG",
                "description": "=1+1 array 2",
                "gateway": "gw-test",
                "device": "pv-2",
                "quantity": "energy_active_export_total",
            },
            {
                "number": 3,
                "parameter": "EG_AUX",
                "description": "auxiliaries of array 1",
                "gateway": "gw-test",
                "device": "pv-1",
                "quantity": "energy_active_import_total",
            },
            {
                "number": 4,
                "parameter": "EG_AUX",
                "description": "auxiliaries of array 2",
                "gateway": "gw-test",
                "device": "pv-2",
                "quantity": "energy_active_import_total",
            },
        ],
        "fixed": {
            "EF_grid": {
                "value": "0.000797",
                "unit": "tCO2/kWh",
                "source": '=HYPERLINK("x","grid factor") <i>national grid</i>, JCM MN 2024',
            }
        },
    }
    path = tmp_path / "pv.yaml"
    path.write_text(json.dumps(body))
    return path


def _chiller_records(gw: Gateway) -> list[bytes]:
    records = []
    totals = {"chiller-1": Decimal("5000"), "chiller-2": Decimal("7300.5"), "chiller-3": Decimal("100")}
    for step in range(4 * 24 * 4):  # every 15 minutes, four days from 2026-01-01T00:00Z
        for device, rate in (("chiller-1", "61.25"), ("chiller-2", "47.3"), ("chiller-3", "12.07")):
            totals[device] += Decimal(rate) + Decimal(step % 5) * Decimal("0.13")
            records.append(
                gw.record(device, step * 15, totals[device], quantity="energy_active_import_total")
            )
    return records


def _chiller_project(tmp_path: Path) -> Path:
    points = [("EC_PJ_1", "chiller-1"), ("EC_PJ_1", "chiller-2"), ("EC_PJ_2", "chiller-3")]
    body = {
        "id": "TEST-CHILLER-1",
        "name": "Test chillers",
        "host_country": "Indonesia",
        "timezone": "Asia/Jakarta",
        "methodology": {"id": "high-efficiency-equipment-2-groups", "version": "1.0", "reference": "ref"},
        "monitoring_points": [
            {
                "number": number,
                "parameter": parameter,
                "description": f"chiller {number}, electricity consumed",
                "gateway": "gw-test",
                "device": device,
                "quantity": "energy_active_import_total",
            }
            for number, (parameter, device) in enumerate(points, 1)
        ],
        "fixed": {
            "COP_PJ_1": {"value": "6.2", "unit": "1", "source": "catalogue"},
            "COP_RE_1": {"value": "4.5", "unit": "1", "source": "methodology default"},
            "COP_PJ_2": {"value": "5.8", "unit": "1", "source": "catalogue"},
            "COP_RE_2": {"value": "5.0", "unit": "1", "source": "methodology default"},
            "EF_elec": {"value": "0.533", "unit": "tCO2/MWh", "source": "Jamali grid"},
        },
    }
    path = tmp_path / "chiller.yaml"
    path.write_text(json.dumps(body))
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command("collector", *args), capture_output=True, text=True, timeout=300)


def _report(
    config: Path, project: Path, first: str, last: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    done = _run(
        "report", "--config", str(config), "--project", str(project), "--from", first, "--to", last, *extra
    )
    assert done.returncode == 0, done.stderr
    return done


def _json_report(config: Path, project: Path, first: str, last: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(_report(config, project, first, last, "--format", "json").stdout)
    return report


# --------------------------------------------------------------------------- LibreOffice


def _soffice() -> str:
    found = shutil.which("soffice") or next(
        (p for p in ("/usr/bin/soffice", "/usr/lib/libreoffice/program/soffice") if Path(p).exists()), None
    )
    if found is None:
        pytest.fail("soffice (LibreOffice) is missing: run `make system-test-deps` (libreoffice-calc-nogui)")
    return found


def _recalculated(workbooks: list[Path], folder: Path) -> dict[Path, Any]:
    """Each workbook as LibreOffice computed it: opened, formulas calculated, saved as xlsx with the
    results; read back with openpyxl (data_only=True gives the results LibreOffice stored)."""
    out = folder / "recalculated"
    out.mkdir()
    profile = folder / "lo-profile"  # its own profile: no clash with another soffice on the machine
    done = subprocess.run(
        [
            _soffice(),
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            "xlsx",
            "--outdir",
            str(out),
            *map(str, workbooks),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    return {path: openpyxl.load_workbook(out / path.name, data_only=True) for path in workbooks}


def _digits15(value: float, exact: Decimal, slack: Decimal = Decimal(0)) -> bool:
    """Whether a spreadsheet's number equals an exact decimal in the 15 significant digits a double
    always holds (DBL_DIG; LibreOffice also stores its results with 15): off by at most 0.6 of a unit
    in the 15th digit (its own rounding to 15 digits, plus a few binary ulps), plus ``slack``."""
    unit = Decimal(1).scaleb(exact.adjusted() - 14) if exact else Decimal("1e-300")
    return abs(Decimal(repr(value)) - exact) <= Decimal("0.6") * unit + slack


def _assert_recalculation_matches(sheet: Any, report: Mapping[str, Any]) -> None:
    """Table 3 column B as LibreOffice computed it = the report, to the digits a double holds; ER
    rounded exactly."""
    re_value, pe_value, er_value, er_rounded = (sheet[f"B{row}"].value for row in range(5, 9))
    reference, project = (
        Decimal(report["reference_emissions_tco2"]),
        Decimal(report["project_emissions_tco2"]),
    )
    unrounded = Decimal(report["emission_reductions_unrounded_tco2"])
    assert _digits15(re_value, reference), (re_value, reference)
    assert _digits15(pe_value, project), (pe_value, project)
    # RE - PE in binary carries the rounding of RE and PE: a few ulps of the larger one
    slack = max(abs(reference), abs(project)) * Decimal("1e-15")
    assert _digits15(er_value, unrounded, slack), (er_value, unrounded)
    assert er_rounded == report["emission_reductions_tco2"]
    assert [sheet[f"F{row}"].value for row in range(5, 9)] == ["yes"] * 4


# --------------------------------------------------------------------------- xlsx


def test_xlsx_pv_grid_layout_and_libreoffice_recalculates(tmp_path: Path) -> None:
    config = _store(tmp_path, gw := Gateway(), _pv_records(gw))
    project = _pv_project(tmp_path)
    report = _json_report(config, project, *PV_PERIOD)
    assert report["emission_reductions_tco2"] > 10 and report["findings"] == []
    out = tmp_path / "report.xlsx"
    done = _report(config, project, *PV_PERIOD, "--format", "xlsx", "--out", str(out))
    assert f"wrote {out}" in done.stdout and done.stderr == ""  # no progress bar into a pipe

    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["Table 1", "Table 2", "Table 3", "Notes"]
    table1 = book["Table 1"]
    assert table1["A1"].value == "Table 1: Parameters monitored ex post"
    headers = [table1.cell(row=4, column=c).value for c in range(1, 12)]
    assert [h.split(")")[0] + ")" for h in headers] == [f"({c})" for c in "abcdefghijk"]
    assert headers[4] == "(e) Monitored value" and headers[10] == "(k) Other comments"
    rows = list(table1.iter_rows(min_row=5, max_row=8, values_only=True))
    points = [p for m in report["monitored"].values() for p in m["points"]]
    assert [r[1] for r in rows] == [1, 2, 3, 4]
    assert [r[2] for r in rows] == ["EG_i,p", "EG_i,p", "EG_AUX,p", "EG_AUX,p"]
    assert [r[0] for r in rows] == ["2026-01-02 to 2026-01-04"] * 4
    assert [r[4] for r in rows] == [float(p["value"]) for p in points]  # (e) numbers
    assert [r[11] for r in rows] == [p["value"] for p in points]  # the exact text beside them
    assert [r[5] for r in rows] == ["MWh"] * 4
    assert rows[0][3].endswith(f"({SCRIPT})")
    assert rows[0][6] == "C: own measurement by meter pv-1 (serial SN-0001) on gateway gw-test"
    assert "accuracy class 0.5S" in rows[0][8] and "signed" in rows[0][8]
    assert rows[0][9] == "continuous, read every 3600 s (mean interval of the readings)"
    assert rows[0][10] == "No gaps or corrections: 72 consecutive readings used."
    table2 = book["Table 2"]
    assert [c.value for c in table2[5]][:5] == [
        "EF_grid",
        "CO2 emission factor of the grid electricity displaced",
        0.797,
        "tCO2/MWh",
        '=HYPERLINK("x","grid factor") <i>national grid</i>, JCM MN 2024 '
        "[given in the project config as 0.000797 tCO2/kWh]",
    ]
    assert table2["E5"].data_type == "s"  # a config text that starts with "=" is no formula
    table3 = book["Table 3"]
    assert table3["B5"].value == "=SUM('Table 1'!$E$5:$E$6)*'Table 2'!$C$5"
    assert table3["B6"].value == "=SUM('Table 1'!$E$7:$E$8)*'Table 2'!$C$5"
    assert table3["B7"].value == "=B5-B6"
    assert "ROUNDDOWN(" in table3["B8"].value
    assert [table3[f"D{r}"].value for r in range(5, 9)] == [
        report["reference_emissions_tco2"],
        report["project_emissions_tco2"],
        report["emission_reductions_unrounded_tco2"],
        str(report["emission_reductions_tco2"]),
    ]
    # openpyxl stores no results: whatever values the formulas have later, a spreadsheet computed them
    assert openpyxl.load_workbook(out, data_only=True)["Table 3"]["B5"].value is None

    # A copy with array 2's generation doubled: the formulas follow Table 1, so RE_p moves with it.
    changed = tmp_path / "changed.xlsx"
    book["Table 1"]["E6"].value = 2 * float(points[1]["value"])
    book.save(changed)
    results = _recalculated([out, changed], tmp_path)
    _assert_recalculation_matches(results[out]["Table 3"], report)
    moved = results[changed]["Table 3"]
    expected = (float(points[0]["value"]) + 2 * float(points[1]["value"])) * 0.797
    assert math.isclose(moved["B5"].value, expected, rel_tol=1e-12)
    assert moved["F5"].value == "CHECK"


def test_xlsx_high_efficiency_equipment_recalculates(tmp_path: Path) -> None:
    config = _store(tmp_path, gw := Gateway(), _chiller_records(gw))
    project = _chiller_project(tmp_path)
    first, last = "2026-01-02", "2026-01-03"
    report = _json_report(config, project, first, last)
    assert report["emission_reductions_tco2"] > 0
    out = tmp_path / "chillers.xlsx"
    _report(config, project, first, last, "--format", "xlsx", "--out", str(out))
    table3 = openpyxl.load_workbook(out)["Table 3"]
    assert table3["B5"].value == (
        "=SUM('Table 1'!$E$5:$E$6)*'Table 2'!$C$5*'Table 2'!$C$9/'Table 2'!$C$6"
        "+SUM('Table 1'!$E$7:$E$7)*'Table 2'!$C$7*'Table 2'!$C$9/'Table 2'!$C$8"
    )
    assert (
        table3["B6"].value
        == "=SUM('Table 1'!$E$5:$E$6)*'Table 2'!$C$9+SUM('Table 1'!$E$7:$E$7)*'Table 2'!$C$9"
    )
    _assert_recalculation_matches(_recalculated([out], tmp_path)[out]["Table 3"], report)


# Fixed values that meet every methodology's conditions (COP_PJ > COP_RE, η_PJ > η_RE).
FIXED = {"COP_PJ": "6.2", "COP_RE": "4.35", "eta_RE": "0.89", "eta_PJ": "0.98", "eta_RE_boiler": "0.9"}
OTHER_FIXED = {"NCV_gas": "0.0389", "SEC_ref": "0.1234"}


def _synthetic(methodology_id: str) -> tuple[ProjectSpec, list[bytes]]:
    """One point per monitored parameter of the methodology, hourly counters in its own unit."""
    methodology = registry()[methodology_id]
    gw = Gateway()
    points, records, fixed = [], [], {}
    for index, parameter in enumerate(methodology.parameters):
        if parameter.kind == "fixed":
            base = parameter.name.rsplit("_", 1)[0] if parameter.name[-1].isdigit() else parameter.name
            value = FIXED.get(base) or OTHER_FIXED.get(parameter.name) or f"0.5{index}3"
            fixed[parameter.name] = FixedSpec(Decimal(value), parameter.unit, "test")
            continue
        device = f"meter-{parameter.name.lower()}"
        quantity = parameter.quantities[0] if parameter.quantities else "energy_active_export_total"
        points.append(PointSpec(len(points) + 1, parameter.name, "gw-test", device, quantity))
        for hour in range(20, 24 + 24 + 5):
            value = Decimal(100) + hour * Decimal(f"{index + 1}.{index + 3}7")
            data = gw.record(
                device, hour * 60, 0, values={quantity: Value(value, parameter.unit, "00000000")}
            )
            records.append(data)
    spec = ProjectSpec("P", "p", "UTC", methodology_id, "1", "ref", tuple(points), fixed)
    return spec, records


def test_every_registered_methodology_has_formulas_that_libreoffice_recalculates(tmp_path: Path) -> None:
    assert sorted(set(registry()) - set(FORMULAS)) == []  # a new methodology needs a formula builder
    period = Period(date(2026, 1, 2), date(2026, 1, 2), "UTC")
    reports, paths = {}, []
    for methodology_id in registry():
        spec, records = _synthetic(methodology_id)
        report = compute_report(spec, period, MemoryRecordSource(records))
        assert report["findings"] == [], methodology_id
        path = tmp_path / f"{methodology_id}.xlsx"
        build_workbook(report).save(path)
        reports[path] = report
        paths.append(path)
    # An ER that is a whole number exactly, which binary floating point computes just below it:
    # 100 MWh x 0.57 tCO2/MWh = 57, as a double 56.99999999999999; ROUNDDOWN alone would give 56.
    gw = Gateway()
    records = [gw.record("m", minute, kwh) for minute, kwh in ((0, 1000), (60, 101000))]
    spec = ProjectSpec(
        "P",
        "p",
        "UTC",
        "pv-grid",
        "1",
        "ref",
        (PointSpec(1, "EG", "gw-test", "m", "energy_active_export_total"),),
        {"EF_grid": FixedSpec(Decimal("0.57"), "tCO2/MWh", "test")},
    )
    whole = compute_report(
        spec, Period(date(2026, 1, 1), date(2026, 1, 1), "UTC"), MemoryRecordSource(records)
    )
    assert (whole["emission_reductions_unrounded_tco2"], whole["emission_reductions_tco2"]) == ("57", 57)
    path = tmp_path / "whole-er.xlsx"
    build_workbook(whole).save(path)
    reports[path] = whole
    paths.append(path)

    results = _recalculated(paths, tmp_path)
    for path in paths:
        _assert_recalculation_matches(results[path]["Table 3"], reports[path])
    # The formulas over parameter names, as docs/calculations.md shows them
    assert symbolic_formulas("boiler-heat") == (
        "SUM(Q)*EF_fuel/eta_RE",
        "SUM(Q)*EF_fuel/eta_PJ+SUM(EC_AUX)*EF_grid",
    )


# --------------------------------------------------------------------------- csv


def _csv_rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    comments = [line for line in text.splitlines() if line.startswith("#")]
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return comments, list(csv.DictReader(io.StringIO(body)))


def _day_values(rows: list[dict[str, str]]) -> dict[int, list[Decimal]]:
    out: dict[int, list[Decimal]] = {}
    for row in rows:
        out.setdefault(int(row["point"]), []).append(Decimal(row["value"]))
    return out


def test_csv_daily_values_add_up_to_the_period(tmp_path: Path) -> None:
    config = _store(tmp_path, gw := Gateway(), _pv_records(gw))
    project = _pv_project(tmp_path)
    report = _json_report(config, project, *PV_PERIOD)
    text = _report(config, project, *PV_PERIOD, "--format", "csv").stdout
    comments, rows = _csv_rows(text)
    assert any("TEST-PV-1" in c for c in comments)
    assert any("pv-grid v1.0" in c for c in comments)
    assert any("2026-01-02 to 2026-01-04" in c and "Asia/Ulaanbaatar" in c for c in comments)
    assert len(rows) == 3 * 4
    assert [r["date"] for r in rows[:3]] == ["2026-01-02", "2026-01-03", "2026-01-04"]
    assert {r["unit"] for r in rows} == {"MWh"}
    assert rows[0]["description"] == SCRIPT and rows[3]["description"] == "'=1+1 array 2"  # no formula
    # hourly readings: 24 per local day, none missing
    assert {(r["readings"], r["missing_records"], r["gaps"]) for r in rows} == {("24", "0", "0")}
    days = _day_values(rows)
    points = {p["no"]: p for m in report["monitored"].values() for p in m["points"]}
    for no, values in days.items():
        assert sum(values) == Decimal(points[no]["value"]), no
        assert all(v > 0 for v in values)
    # Each day is the period's value split at local midnight: report(first..d) - report(first..d-1),
    # the same calculation (here in-process on the same store).
    store = SqliteStore(tmp_path / "c.sqlite")
    spec = _project_spec(project)
    try:
        cumulative = [
            compute_report(
                spec, Period(date(2026, 1, 2), date(2026, 1, 2) + timedelta(days=d), spec.timezone), store
            )
            for d in range(3)
        ]
    finally:
        store.close()
    for no, values in days.items():
        running = [Decimal(_point(c, no)["value"]) for c in cumulative]
        assert values == [running[0], running[1] - running[0], running[2] - running[1]]


def _project_spec(path: Path) -> ProjectSpec:
    from collector.projects import load_project

    return load_project(path).to_spec()


def _point(report: Mapping[str, Any], no: int) -> dict[str, Any]:
    return next(p for m in report["monitored"].values() for p in m["points"] if p["no"] == no)


def test_csv_days_carry_their_gaps(tmp_path: Path) -> None:
    # pv-1 misses the readings of 2026-01-03 05:00 and 06:00 UTC (local 13:00, 14:00 on the 3rd),
    # pv-2 those of 2026-01-03 15:00 and 16:00 UTC (local 23:00 on the 3rd and 00:00 on the 4th).
    skip = frozenset({("pv-1", 48 + 5), ("pv-1", 48 + 6), ("pv-2", 48 + 15), ("pv-2", 48 + 16)})
    config = _store(tmp_path, gw := Gateway(), _pv_records(gw, skip))
    project = _pv_project(tmp_path)
    report = _json_report(config, project, *PV_PERIOD)
    _, rows = _csv_rows(_report(config, project, *PV_PERIOD, "--format", "csv").stdout)
    for no, values in _day_values(rows).items():
        assert sum(values) == Decimal(_point(report, no)["value"]), no  # the days still add up
    by_key = {(int(r["point"]), r["date"]): r for r in rows}
    assert sum(int(r["missing_records"]) for r in rows) == report["completeness"]["missing_records"] == 8
    gap_1 = by_key[(1, "2026-01-03")]  # EG raises RE: the rise across the gap is left out
    assert (gap_1["readings"], gap_1["missing_records"], gap_1["gaps"]) == ("22", "2", "1")
    assert Decimal(gap_1["gap_effect"]) < 0 and "gap_excluded" in gap_1["notes"]
    assert by_key[(1, "2026-01-02")]["gaps"] == by_key[(1, "2026-01-04")]["gaps"] == "0"
    aux_2 = by_key[(4, "2026-01-03")]  # EG_AUX raises PE: kept, carried by the day the step ends after
    assert aux_2["missing_records"] == "2" and "gap_included" in aux_2["notes"] and aux_2["gap_effect"] == "0"
    assert by_key[(4, "2026-01-03")]["readings"] == "23" and by_key[(4, "2026-01-04")]["readings"] == "23"


def test_daily_values_through_gap_records_and_a_clock_that_went_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """In process, on the same accumulators: signed gap records (unread polls) and a device whose clock
    went back across midnight (sequence and time order disagree: the point is read again whole)."""
    gw = Gateway()
    export = PointSpec(1, "EG", "gw-test", "m1", "energy_active_export_total")
    aux = PointSpec(2, "EG_AUX", "gw-test", "m1", "energy_active_import_total")
    spec = ProjectSpec(
        "P",
        "p",
        "UTC",
        "pv-grid",
        "1",
        "ref",
        (export, aux),
        {"EF_grid": FixedSpec(Decimal("0.8"), "tCO2/MWh", "d")},
    )
    period = Period(date(2026, 1, 2), date(2026, 1, 4), "UTC")
    records = []
    for hour in range(20, 24 * 5):
        kwh = Decimal(1000) + hour * Decimal("312.5")
        if hour in (50, 51):
            continue  # not read: the gateway signs a gap record instead
        if hour == 52:
            records.append(gw.gap("m1", 50 * 60, 51 * 60, polls=2))
        # the clock ran 5 minutes ahead at hour 71 and was put back before hour 72: across midnight
        minute = {71: 72 * 60 + 5, 72: 72 * 60 - 5}.get(hour, hour * 60)
        extra = {"energy_active_import_total": energy_value(kwh / 100)}
        records.append(gw.record("m1", minute, kwh, extra=extra))
    source = MemoryRecordSource(records)
    report = compute_report(spec, period, source)
    assert report["completeness"]["unread_polls"] == 4  # two polls, counted for both points
    reread: list[int] = []
    whole = report_formats._in_memory
    monkeypatch.setattr(
        report_formats, "_in_memory", lambda point, *rest: reread.append(point.no) or whole(point, *rest)
    )
    daily = daily_values(spec, period, source)
    assert reread == [1, 2]  # the day-by-day pass found the sequence out of order and read again whole
    check_daily(report, daily)  # each point's days add up to its value in the report
    for point_days in daily:
        point = _point(report, point_days.point.no)
        assert sum(d.unread_polls for d in point_days.days) == point.get("unread_polls", 0) == 2
        assert sum(d.missing_records for d in point_days.days) == point["missing_records"]
        assert [d.unread_polls for d in point_days.days] == [0, 2, 0]
    changed = json.loads(json.dumps(report))
    changed["monitored"]["EG"]["points"][0]["value"] = "1"
    with pytest.raises(ValueError, match="daily values of monitoring point 1 add up to"):
        check_daily(changed, daily)


# --------------------------------------------------------------------------- html


def test_html_pv_grid_is_readable_self_contained_and_escaped(tmp_path: Path) -> None:
    config = _store(tmp_path, gw := Gateway(), _pv_records(gw, frozenset({("pv-2", 40)})))
    project = _pv_project(tmp_path)
    report = _json_report(config, project, *PV_PERIOD)
    page = _report(config, project, *PV_PERIOD, "--format", "html").stdout
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    er = report["emission_reductions_tco2"]
    assert f'id="er">{er} tCO2</div>' in page
    assert page.index('id="er"') < page.index("Parameters monitored ex post")  # the result comes first
    assert report["emission_reductions_unrounded_tco2"] in page and report["reference_emissions_tco2"] in page
    # every config text escaped: no script, no markup from the project name or a source
    assert "<script" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; roof" in page
    assert "<b>site</b>" not in page and "Test PV &lt;b&gt;site&lt;/b&gt;" in page
    assert "<i>national grid</i>" not in page and "&lt;i&gt;national grid&lt;/i&gt;" in page
    # self-contained: inline CSS and SVG, nothing fetched
    assert "<style>" in page and "<link" not in page and "src=" not in page and "url(" not in page
    assert "href=" not in page and "@import" not in page
    assert page.count("<svg") == 4 and page.count("<rect") == 4 * 3
    assert "Completeness per point and day" in page
    # the gap explained in words, and shown in the completeness table (23 readings / 1 missing)
    assert "gap_excluded" in page and "counter&#x27;s increase across the gap is not counted" in page
    assert '<td class="num">23 / 1</td>' in page
    out = tmp_path / "report.html"
    done = _report(config, project, *PV_PERIOD, "--format", "html", "--out", str(out))
    assert f"wrote {out}" in done.stdout and out.read_text() == page


def test_html_and_csv_for_high_efficiency_equipment(tmp_path: Path) -> None:
    config = _store(tmp_path, gw := Gateway(), _chiller_records(gw))
    project = _chiller_project(tmp_path)
    first, last = "2026-01-02", "2026-01-03"
    report = _json_report(config, project, first, last)
    page = _report(config, project, first, last, "--format", "html").stdout
    assert f'id="er">{report["emission_reductions_tco2"]} tCO2</div>' in page
    assert "COP_PJ,1" in page and "methodology default" in page and page.count("<svg") == 3
    _, rows = _csv_rows(_report(config, project, first, last, "--format", "csv").stdout)
    assert {r["parameter"] for r in rows} == {"EC_PJ_1", "EC_PJ_2"} and len(rows) == 2 * 3
    for no, values in _day_values(rows).items():
        assert sum(values) == Decimal(_point(report, no)["value"])
    assert {r["readings"] for r in rows} == {"96"}  # every 15 minutes, local days of Asia/Jakarta


# --------------------------------------------------------------------------- the command


def test_xlsx_needs_out_and_progress_shows_only_on_a_terminal(tmp_path: Path) -> None:
    config = _store(tmp_path, gw := Gateway(), _pv_records(gw))
    project = _pv_project(tmp_path)
    done = _run("report", "--config", str(config), "--project", str(project), "--from", PV_PERIOD[0],
                "--to", PV_PERIOD[1], "--format", "xlsx")  # fmt: skip
    assert done.returncode == 2 and "--format xlsx writes a workbook: give --out" in done.stderr
    # stderr on a terminal: the progress bars of the report and of the daily values
    argv = command("collector", "report", "--config", str(config), "--project", str(project), "--from",
                   PV_PERIOD[0], "--to", PV_PERIOD[1], "--format", "csv")  # fmt: skip
    returncode, stdout, seen = run_on_a_terminal(argv)
    assert returncode == 0
    assert b"report: [" in seen and b"daily values: [" in seen and b"100.0%" in seen
    assert stdout.startswith("# monitoring report")  # stdout stays clean
