"""Ex-ante planning (`mrv-collector plan`): expected emission reductions from a project's plan.

As the JCM Monitoring Plan Sheet estimates them for a feasibility study: each monitored
parameter's expected value per year (the project's ``plan.expected``, in the methodology's
units), the fixed values of the project, and the methodology's own ``calculate``, all exact.
ER is rounded down to whole tCO2 only at the end, and checked against the programme's proposal
threshold for the project's phase (:data:`THRESHOLDS`; docs/calculations.md, "Planning and
portfolio").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Literal

from collector.projects import Expected, ProjectConfig
from mrv_core.exact import EXACT, decimal_text
from mrv_core.methodologies import Emissions, Methodology

THRESHOLD_SOURCE = (
    "JCM programme proposal requirements, as given in the issue 'Monitoring-period calculations and "
    "reports that a JCM project can submit'"
)


@dataclass(frozen=True)
class Threshold:
    """A minimum of creditable emission reductions: ER (rounded down) >= ``minimum_tco2``."""

    phase: str
    minimum_tco2: int
    over: Literal["monitoring period", "year"]
    source: str = THRESHOLD_SOURCE

    @property
    def rule(self) -> str:
        what = "ER over the monitoring period" if self.over == "monitoring period" else "ER per year"
        return f"{self.phase}: {what}, rounded down, >= {self.minimum_tco2:,} tCO2"


THRESHOLDS: Mapping[str, Threshold] = {
    # at least 1,000 tCO2 creditable in the demonstration monitoring period
    "demonstration": Threshold("demonstration", 1_000, "monitoring period"),
    # at least 10,000 tCO2 a year in the diffusion phase
    "diffusion": Threshold("diffusion", 10_000, "year"),
}


def rounded_down(value: Decimal) -> int:
    """Whole tCO2, rounded down (as ER_p of a monitoring report)."""
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def meets(threshold: Threshold, reductions_unrounded: Decimal) -> tuple[int, bool]:
    """(ER rounded down, whether it reaches the threshold's minimum)."""
    credited = rounded_down(reductions_unrounded)
    return credited, credited >= threshold.minimum_tco2


@dataclass(frozen=True)
class PlanResult:
    project: ProjectConfig
    methodology: Methodology
    expected: Mapping[str, Expected]
    fixed: Mapping[str, Decimal]
    per_year: Emissions
    period: Emissions  # over plan.period_years
    threshold: Threshold
    achieved_tco2: int  # ER rounded down, over what the threshold counts
    passed: bool


def evaluate(project: ProjectConfig) -> PlanResult:
    """The plan's RE, PE and ER per year and over the planned monitoring period, and the verdict."""
    plan = project.plan
    if plan is None:
        raise ValueError("the project has no plan section")
    methodology = project.get_methodology()
    expected = project.expected_per_year()
    fixed = project.fixed_values()
    annual = {name: e.value for name, e in expected.items()}
    per_year = methodology.calculate({**annual, **fixed})
    # The period: each expected value times the period's length, through the same equations.
    scaled = {name: EXACT.multiply(value, plan.period_years) for name, value in annual.items()}
    period = methodology.calculate({**scaled, **fixed})
    threshold = THRESHOLDS[plan.phase]
    counted = period if threshold.over == "monitoring period" else per_year
    achieved, passed = meets(threshold, counted.reductions_unrounded_tco2)
    return PlanResult(project, methodology, expected, fixed, per_year, period, threshold, achieved, passed)


def _emissions(emissions: Emissions) -> dict[str, Any]:
    return {
        "reference_emissions_tco2": decimal_text(emissions.reference_tco2),
        "project_emissions_tco2": decimal_text(emissions.project_tco2),
        "emission_reductions_unrounded_tco2": decimal_text(emissions.reductions_unrounded_tco2),
        "emission_reductions_tco2": emissions.reductions_tco2,
    }


def to_dict(result: PlanResult) -> dict[str, Any]:
    project, methodology = result.project, result.methodology
    plan = project.plan
    assert plan is not None  # evaluate
    return {
        "project": {"id": project.id, "name": project.name, "host_country": project.host_country},
        "methodology": {
            "id": methodology.id,
            "title": methodology.title,
            "version": project.methodology.version,
            "reference": project.methodology.reference,
            "equations": list(methodology.equations),
        },
        "phase": plan.phase,
        "period_years": decimal_text(plan.period_years),
        "expected_per_year": {
            name: {
                "symbol": methodology.parameter(name).symbol,
                "value": decimal_text(e.value),
                "unit": e.unit,
                "given": e.given,
                "basis": e.basis,
            }
            for name, e in result.expected.items()
        },
        "fixed": {
            name: {
                "symbol": methodology.parameter(name).symbol,
                "value": decimal_text(value),
                "unit": methodology.parameter(name).unit,
                "source": project.fixed[name].source,
            }
            for name, value in result.fixed.items()
        },
        "per_year": _emissions(result.per_year),
        "monitoring_period": _emissions(result.period),
        "rounding": "ER rounded down to whole tCO2 at the end; all intermediate values exact",
        "threshold": {
            "rule": result.threshold.rule,
            "over": result.threshold.over,
            "minimum_tco2": result.threshold.minimum_tco2,
            "achieved_tco2": result.achieved_tco2,
            "source": result.threshold.source,
        },
        "result": "pass" if result.passed else "fail",
    }


def render_text(result: PlanResult) -> str:
    body = to_dict(result)
    plan = result.project.plan
    assert plan is not None
    years = body["period_years"]
    lines = [
        f"Plan (ex ante): {body['project']['id']} ({body['project']['name']})",
        f"Methodology: {body['methodology']['title']} [{body['methodology']['id']} "
        f"v{body['methodology']['version']}; {body['methodology']['reference']}]",
        f"Phase: {plan.phase}; planned monitoring period: {years} year(s)",
        "",
        "Expected monitored values per year:",
    ]
    for item in body["expected_per_year"].values():
        basis = f"; basis: {item['basis']}" if item["basis"] else ""
        lines.append(f"  {item['symbol']:<10} = {item['value']} {item['unit']}/yr  ({item['given']}{basis})")
    lines.append("Fixed parameters:")
    for item in body["fixed"].values():
        lines.append(f"  {item['symbol']:<10} = {item['value']} {item['unit']}  (source: {item['source']})")
    lines += ["", "Calculation:"] + [f"  {eq}" for eq in body["methodology"]["equations"]]
    for label, key in (("per year", "per_year"), (f"monitoring period ({years} yr)", "monitoring_period")):
        e = body[key]
        lines.append(
            f"  {label}: RE = {e['reference_emissions_tco2']} tCO2, PE = {e['project_emissions_tco2']} tCO2, "
            f"ER = {e['emission_reductions_unrounded_tco2']} -> {e['emission_reductions_tco2']} tCO2 "
            "(rounded down)"
        )
    lines.append(f"  (the monitoring period: each expected value × {years}, through the same equations)")
    threshold = body["threshold"]
    verdict = "PASS" if result.passed else "FAIL"
    relation = ">=" if result.passed else "<"
    lines += [
        "",
        f"Threshold: {threshold['rule']}",
        f"  source: {threshold['source']}",
        f"  {verdict}: {threshold['achieved_tco2']:,} tCO2 {relation} {threshold['minimum_tco2']:,} tCO2",
    ]
    return "\n".join(lines)
