"""Ex-ante planning (collector/planning.py) and the pure parts of the portfolio: thresholds at
their boundaries, capacity × hours, units, and bad plan / periods / cost sections."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector import planning
from collector.planning import THRESHOLDS, evaluate, meets
from collector.portfolio import CurrencyTotal, cost_per_tonne
from collector.projects import load_project
from mrv_core.config_errors import ConfigError

ROOT = Path(__file__).parents[2]


def _pv(**plan: Any) -> dict[str, Any]:
    """A pv-grid project with EF_grid 0.8 tCO2/MWh (so 1,250 MWh of EG is exactly 1,000 tCO2)."""
    return {
        "id": "TEST-PV",
        "name": "Test PV",
        "host_country": "Mongolia",
        "timezone": "Asia/Ulaanbaatar",
        "methodology": {"id": "pv-grid", "version": "1.0", "reference": "structure only"},
        "monitoring_points": [
            {
                "number": 1,
                "parameter": "EG",
                "gateway": "gw",
                "device": "pv",
                "quantity": "energy_active_export_total",
            },
            {
                "number": 2,
                "parameter": "EG_AUX",
                "gateway": "gw",
                "device": "pv",
                "quantity": "energy_active_import_total",
            },
        ],
        "fixed": {"EF_grid": {"value": "0.8", "unit": "tCO2/MWh", "source": "test factor"}},
        "plan": {
            "phase": "demonstration",
            "period_years": "1",
            "expected": {
                "EG": {"value": "1250", "unit": "MWh", "basis": "test yield"},
                "EG_AUX": {"value": "0", "unit": "MWh", "basis": "no auxiliaries"},
            },
            **plan,
        },
    }


def _write(tmp_path: Path, body: dict[str, Any]) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps(body))
    return path


def _evaluate(tmp_path: Path, body: dict[str, Any]) -> planning.PlanResult:
    return evaluate(load_project(_write(tmp_path, body)))


# --------------------------------------------------------------------------- thresholds


@pytest.mark.parametrize(
    "phase,er,credited,passed",
    [
        ("demonstration", "1000", 1000, True),
        ("demonstration", "1000.0000001", 1000, True),
        ("demonstration", "999.9999999", 999, False),  # rounded down first: 999 < 1,000
        ("diffusion", "10000", 10000, True),
        ("diffusion", "9999.99", 9999, False),
        ("diffusion", "-3.5", -4, False),
    ],
)
def test_threshold_boundaries(phase: str, er: str, credited: int, passed: bool) -> None:
    assert meets(THRESHOLDS[phase], Decimal(er)) == (credited, passed)


def test_threshold_numbers_and_what_they_count() -> None:
    assert THRESHOLDS["demonstration"].minimum_tco2 == 1_000
    assert THRESHOLDS["demonstration"].over == "monitoring period"
    assert THRESHOLDS["diffusion"].minimum_tco2 == 10_000
    assert THRESHOLDS["diffusion"].over == "year"


@pytest.mark.parametrize(
    "eg,aux,passed,achieved",
    [
        ("1250", "0", True, 1000),  # RE = 1,250 × 0.8 = 1,000 exactly
        ("1249.99875", "0", False, 999),  # RE = 999.999 -> 999
        ("1262.5", "12.5", True, 1000),  # 1,010 − 10 = 1,000: PE is subtracted before rounding
        ("1262.5", "12.50000125", False, 999),  # 999.999999 -> 999
    ],
)
def test_demonstration_at_the_boundary(
    tmp_path: Path, eg: str, aux: str, passed: bool, achieved: int
) -> None:
    body = _pv()
    body["plan"]["expected"]["EG"]["value"] = eg
    body["plan"]["expected"]["EG_AUX"]["value"] = aux
    result = _evaluate(tmp_path, body)
    assert (result.passed, result.achieved_tco2) == (passed, achieved)


def test_demonstration_counts_the_whole_monitoring_period(tmp_path: Path) -> None:
    body = _pv(period_years="2")
    body["plan"]["expected"]["EG"]["value"] = "625"  # 500 tCO2 a year, 1,000 over two years
    result = _evaluate(tmp_path, body)
    assert result.per_year.reductions_unrounded_tco2 == Decimal(500)
    assert result.period.reductions_unrounded_tco2 == Decimal(1000)
    assert result.passed and result.achieved_tco2 == 1000
    body["plan"]["period_years"] = "1.9999"
    result = _evaluate(tmp_path, body)
    assert result.period.reductions_unrounded_tco2 == Decimal("999.95") and not result.passed


def test_diffusion_counts_a_year_not_the_period(tmp_path: Path) -> None:
    body = _pv(phase="diffusion", period_years="3")
    body["plan"]["expected"]["EG"]["value"] = "12500"  # 10,000 tCO2 a year exactly
    result = _evaluate(tmp_path, body)
    assert result.passed and result.achieved_tco2 == 10_000
    assert result.period.reductions_tco2 == 30_000
    body["plan"]["expected"]["EG"]["value"] = "12499.99"  # 9,999.992 a year: 29,999 over the period
    result = _evaluate(tmp_path, body)
    assert not result.passed and result.achieved_tco2 == 9_999


# --------------------------------------------------------------------------- capacity × hours, units


@pytest.mark.parametrize(
    "capacity,unit,hours",
    [("1200", "kWp", "1460"), ("1.2", "MW", "1460"), ("1200000", "W", "1460"), ("1200", "kW", "1460")],
)
def test_capacity_times_hours_is_exact(tmp_path: Path, capacity: str, unit: str, hours: str) -> None:
    body = _pv()
    body["plan"]["expected"]["EG"] = {"capacity": {"value": capacity, "unit": unit}, "hours": hours}
    result = _evaluate(tmp_path, body)
    assert result.expected["EG"].value == Decimal(1752)  # MWh, the parameter's unit
    assert result.per_year.reference_tco2 == Decimal("1401.6")
    assert "h/yr = 1752000 kWh" in result.expected["EG"].given
    assert result.achieved_tco2 == 1401 and result.passed


def test_fractional_capacity_and_hours_stay_exact(tmp_path: Path) -> None:
    body = _pv()
    body["plan"]["expected"]["EG"] = {"capacity": {"value": "333.3", "unit": "kWp"}, "hours": "1234.5"}
    result = _evaluate(tmp_path, body)
    # 333.3 kW × 1,234.5 h = 411,458.85 kWh = 411.45885 MWh; × 0.8 = 329.16708 tCO2
    assert result.expected["EG"].value == Decimal("411.45885")
    assert result.per_year.reductions_unrounded_tco2 == Decimal("329.16708")


def test_units_are_converted_to_the_parameters(tmp_path: Path) -> None:
    body = _pv()
    body["fixed"]["EF_grid"] = {"value": "0.0008", "unit": "tCO2/kWh", "source": "same factor in kWh"}
    body["plan"]["expected"]["EG"] = {"value": "1250000", "unit": "kWh", "basis": "in kWh"}
    body["plan"]["expected"]["EG_AUX"] = {"value": "3.6", "unit": "GJ", "basis": "in GJ"}  # 1 MWh
    result = _evaluate(tmp_path, body)
    assert result.expected["EG"].value == Decimal(1250) and result.expected["EG"].unit == "MWh"
    assert result.expected["EG_AUX"].value == Decimal(1)
    assert result.per_year.reductions_unrounded_tco2 == Decimal("999.2")
    assert not result.passed


def test_a_methodology_with_equipment_groups(tmp_path: Path) -> None:
    body = yaml.safe_load((ROOT / "config/projects/example-chiller.yaml").read_text())
    body["plan"] = {
        "phase": "diffusion",
        "period_years": 1,
        "expected": {
            "EC_PJ_1": {"value": "4500", "unit": "MWh", "basis": "two chillers, 2,250 MWh each"},
            "EC_PJ_2": {"value": "500000", "unit": "kWh", "basis": "screw chiller"},
        },
    }
    result = _evaluate(tmp_path, body)
    # RE = 4500 × 6.2/4.5 × 0.533 + 500 × 5.8/5.0 × 0.533 = 3304.6 + 309.14; PE = 5000 × 0.533 = 2665
    assert result.per_year.reference_tco2 == Decimal("3613.74")
    assert result.per_year.project_tco2 == Decimal("2665")
    assert result.achieved_tco2 == 948 and not result.passed


def test_output_names_the_numbers_and_the_equations(tmp_path: Path) -> None:
    result = _evaluate(tmp_path, _pv())
    text = planning.render_text(result)
    assert "RE_p = Σ_i EG_i,p × EF_grid" in text and "PE_p = EG_AUX,p × EF_grid" in text
    assert "PASS: 1,000 tCO2 >= 1,000 tCO2" in text
    body = planning.to_dict(result)
    assert body["result"] == "pass" and body["threshold"]["minimum_tco2"] == 1000
    assert body["per_year"]["emission_reductions_unrounded_tco2"] == "1000"
    assert "proposal requirements" in body["threshold"]["source"]


def test_the_demo_project_plans_and_passes() -> None:
    result = evaluate(load_project(ROOT / "config/projects/demo-pv.yaml"))
    # 1,200 kWp × 1,460 h = 1,752 MWh; (1,752 − 12) × 0.797 = 1,386.78 -> 1,386 >= 1,000
    assert result.per_year.reductions_unrounded_tco2 == Decimal("1386.78")
    assert result.passed and result.achieved_tco2 == 1386


# --------------------------------------------------------------------------- bad configs


def _expected(name: str, value: Any) -> Any:
    def edit(body: dict[str, Any]) -> None:
        body["plan"]["expected"][name] = value

    return edit


def _plan(key: str, value: Any) -> Any:
    def edit(body: dict[str, Any]) -> None:
        body["plan"][key] = value

    return edit


def _top(key: str, value: Any) -> Any:
    def edit(body: dict[str, Any]) -> None:
        body[key] = value

    return edit


def _drop_expected(name: str) -> Any:
    def edit(body: dict[str, Any]) -> None:
        del body["plan"]["expected"][name]

    return edit


def _periods(*spans: tuple[str, str]) -> Any:
    return _top("periods", [{"from": a, "to": b} for a, b in spans])


@pytest.mark.parametrize(
    "edit,expected",
    [
        (_plan("phase", "pilot"), "plan.phase: Input should be 'demonstration' or 'diffusion'"),
        (
            _plan("period_years", "0"),
            "plan.period_years: Value error, must be a finite number of years above 0",
        ),
        (
            _expected("EG", {"value": "1", "unit": "Nm3", "basis": "gas"}),
            "plan.expected.EG.unit: Nm3 is not convertible to MWh (EG_i,p)",
        ),
        (
            _expected("EG", {"value": "1", "unit": "kWp", "basis": "x"}),
            "plan.expected.EG.unit: Value error, unknown unit 'kWp'",
        ),
        (
            _expected("EG", {"value": "1", "unit": "MWh"}),
            "plan.expected.EG: Value error, basis: say how the value was estimated",
        ),
        (
            _expected("EG", {"value": "-1", "unit": "MWh", "basis": "neg"}),
            "plan.expected.EG.value: Value error, must be a finite number, 0 or more",
        ),
        (
            _expected("EG", {"unit": "MWh", "basis": "no value"}),
            "plan.expected.EG: Value error, give both value and unit",
        ),
        (
            _expected("EG", {"capacity": {"value": 1200, "unit": "kWh"}, "hours": 1460}),
            "plan.expected.EG.capacity.unit: Value error, kWh is not a power",
        ),
        (
            _expected("EG", {"capacity": {"value": 1200, "unit": "kW"}, "hours": 8785}),
            "plan.expected.EG.hours: Value error, full-load hours per year: above 0 and at most 8784",
        ),
        (
            _expected("EG", {"capacity": {"value": 1200, "unit": "kW"}}),
            "plan.expected.EG: Value error, give both capacity and hours",
        ),
        (
            _expected("EG", {"capacity": {"value": 0, "unit": "kW"}, "hours": 1}),
            "plan.expected.EG.capacity.value: Value error, must be a finite number above 0",
        ),
        (
            _expected("EG", {"value": 1, "unit": "MWh", "basis": "b", "hours": 2}),
            "plan.expected.EG: Value error, give either value and unit, or capacity and hours, not both",
        ),
        (_expected("EG", {"basis": "nothing"}), "plan.expected.EG: Value error, give value and unit"),
        (
            _expected("EG", {"value": 1, "unit": "MWh", "basis": "b", "source": "x"}),
            "plan.expected.EG.source: unknown key",
        ),
        (
            _expected("EF_grid", {"value": "1", "unit": "tCO2/MWh", "basis": "a guess"}),
            "plan.expected.EF_grid: EF_grid is fixed ex ante: its value comes from fixed.EF_grid",
        ),
        (
            _expected("EC_PJ", {"value": "1", "unit": "MWh", "basis": "a guess"}),
            "plan.expected.EC_PJ: pv-grid has no parameter 'EC_PJ'; monitored: EG, EG_AUX",
        ),
        (
            _drop_expected("EG_AUX"),
            "plan.expected: no expected value for EG_AUX (EG_AUX,p), monitored by this project",
        ),
        (
            _periods(("2026-01-01", "2025-12-31")),
            "periods[0]: Value error, to 2025-12-31 is before from 2026-01-01",
        ),
        (
            _periods(("2026-01-01", "2026-06-30"), ("2026-06-30", "2026-12-31")),
            "periods[1].from: 2026-06-30 overlaps periods[0] (2026-01-01 to 2026-06-30): the next period starts 2026-07-01",
        ),
        (
            _periods(("2026-01-01", "2026-06-30"), ("2026-07-02", "2026-12-31")),
            "periods[1].from: 2026-07-02 leaves a gap after periods[0] (2026-01-01 to 2026-06-30): the next period starts 2026-07-01",
        ),
        (
            _periods(("2026-07-01", "2026-12-31"), ("2026-01-01", "2026-06-30")),
            "periods[1].from: 2026-01-01 is before periods[0] (2026-07-01 to 2026-12-31): list the periods in order",
        ),
        (
            _periods(
                ("2026-01-01", "2026-02-30"),
            ),
            "periods[0].to: Input should be a valid date",
        ),
        (
            _top("cost", {"amount": 100, "currency": "yen"}),
            "cost.currency: Value error, an ISO 4217 currency code",
        ),
        (
            _top("cost", {"amount": 0, "currency": "JPY"}),
            "cost.amount: Value error, must be a finite amount above 0",
        ),
        (_top("cost", {"currency": "JPY"}), "cost.amount: Field required"),
    ],
)
def test_bad_plan_periods_and_cost_name_file_key_and_reason(tmp_path: Path, edit: Any, expected: str) -> None:
    body = _pv()
    edit(body)
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_project(path)
    assert f"{path}: {expected}" in str(info.value)


def test_capacity_needs_an_energy_parameter(tmp_path: Path) -> None:
    body = yaml.safe_load((ROOT / "config/projects/example-cogeneration.yaml").read_text())
    body["plan"] = {
        "phase": "demonstration",
        "period_years": 1,
        "expected": {
            "EL_CGS": {"capacity": {"value": 1000, "unit": "kW"}, "hours": 6000},
            "Q_CGS": {"value": 20000, "unit": "GJ", "basis": "heat demand"},
            "FC_CGS": {"capacity": {"value": 1000, "unit": "kW"}, "hours": 6000},
        },
    }
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_project(path)
    assert str(info.value) == (
        f"{path}: plan.expected.FC_CGS.capacity: capacity × hours gives energy, but FC_CGS is in Nm3: "
        "give value and unit"
    )
    body["plan"]["expected"]["FC_CGS"] = {"value": 2_500_000, "unit": "Nm3", "basis": "engine at 6,000 h"}
    result = evaluate(load_project(_write(tmp_path, body)))
    assert result.expected["EL_CGS"].value == Decimal(6000)  # MWh


def test_the_new_sections_are_optional_and_valid_ones_load(tmp_path: Path) -> None:
    body = _pv()
    del body["plan"]
    assert load_project(_write(tmp_path, body)).plan is None
    body["periods"] = [{"from": "2026-01-01", "to": "2026-06-30"}, {"from": "2026-07-01", "to": "2026-07-01"}]
    body["cost"] = {"amount": "1e8", "currency": "JPY", "description": "total"}
    project = load_project(_write(tmp_path, body))
    assert [(p.first.isoformat(), p.last.isoformat()) for p in project.periods] == [
        ("2026-01-01", "2026-06-30"),
        ("2026-07-01", "2026-07-01"),
    ]
    assert project.cost is not None and project.cost.amount == Decimal(100_000_000)


# --------------------------------------------------------------------------- portfolio arithmetic


@pytest.mark.parametrize(
    "amount,credits,expected",
    [
        ("1300000", 1000, "1300.00"),
        ("10000000", 3, "3333333.34"),  # rounded up: never understated
        ("1", 3, "0.34"),
        ("5", 0, None),
        ("5", -2, None),
    ],
)
def test_cost_per_tonne(amount: str, credits: int, expected: str | None) -> None:
    result = cost_per_tonne(Decimal(amount), credits)
    assert (None if result is None else str(result)) == expected


def test_average_cost_against_the_programme_aim_is_exact() -> None:
    at_aim = CurrencyTotal("JPY", Decimal(1300 * 7777), 7777, ("A", "B"))
    assert at_aim.meets_target is True
    above = CurrencyTotal("JPY", Decimal(1300 * 7777) + Decimal("0.01"), 7777, ("A",))
    assert above.meets_target is False and above.cost_per_tco2 == Decimal("1300.01")
    assert CurrencyTotal("USD", Decimal(1), 10, ("A",)).meets_target is None  # the aim is in JPY
    assert CurrencyTotal("JPY", Decimal(1), 0, ("A",)).meets_target is None
