"""The portfolio (`mrv-collector portfolio`): credits of every project and monitoring period.

Each period's credits are ER_p of :func:`mrv_core.report.compute_report` over the store, the
very calculation `mrv-collector report` runs for the same period (rounded down per period, as
each period's monitoring report is). Cumulative credits add them up period by period; where a
project gives its cost, the cost per tonne is cost / cumulative credits. Totals across projects:
credits, the credit-weighted average cost per tonne per currency (sum of costs / sum of credits)
against the programme's aim, and the projects below the minimum credited (docs/calculations.md,
"Planning and portfolio").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any, Protocol

from collector.projects import ProjectConfig, load_project
from collector.report_formats import CountingSource
from mrv_core.config_errors import ConfigError
from mrv_core.exact import EXACT, decimal_text
from mrv_core.report import Period, RecordSource, compute_report

# Programme figures, as given in the issue that asked for this command (docs/calculations.md).
TARGET_COST_PER_TCO2 = Decimal(1300)  # the programme aims at 1,300 JPY/tCO2 on average
TARGET_CURRENCY = "JPY"
MINIMUM_CREDITED_TCO2 = 5_000  # projects credited less than this are flagged
COST_PER_TCO2_STEP = Decimal("0.01")  # shown rounded up to this step (never understated)


class Progress(Protocol):
    def __call__(self, done: int, total: int) -> None: ...

    def close(self) -> None: ...


ProgressFactory = Callable[[str], Progress]  # a progress bar for a label (TerminalProgress)


@dataclass(frozen=True)
class PeriodCredits:
    period: Period
    report: dict[str, Any]  # as `mrv-collector report --format json` gives it
    cumulative_tco2: int

    @property
    def credits_tco2(self) -> int:
        return int(self.report["emission_reductions_tco2"])


@dataclass(frozen=True)
class ProjectCredits:
    path: Path
    project: ProjectConfig
    periods: tuple[PeriodCredits, ...]

    @property
    def credits_tco2(self) -> int:
        return self.periods[-1].cumulative_tco2 if self.periods else 0

    @property
    def below_minimum(self) -> bool:
        return self.credits_tco2 < MINIMUM_CREDITED_TCO2

    @property
    def cost_per_tco2(self) -> Decimal | None:
        cost = self.project.cost
        return None if cost is None else cost_per_tonne(cost.amount, self.credits_tco2)


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    cost: Decimal
    credits_tco2: int
    projects: tuple[str, ...]

    @property
    def cost_per_tco2(self) -> Decimal | None:
        return cost_per_tonne(self.cost, self.credits_tco2)

    @property
    def meets_target(self) -> bool | None:
        """Whether the average is at or below the programme's aim (JPY only; exact, no division)."""
        if self.currency != TARGET_CURRENCY or self.credits_tco2 <= 0:
            return None
        return self.cost <= EXACT.multiply(TARGET_COST_PER_TCO2, self.credits_tco2)


@dataclass(frozen=True)
class Portfolio:
    projects: tuple[ProjectCredits, ...]
    costs: tuple[CurrencyTotal, ...] = field(default=())

    @property
    def credits_tco2(self) -> int:
        return sum(p.credits_tco2 for p in self.projects)

    @property
    def below_minimum(self) -> list[str]:
        return [p.project.id for p in self.projects if p.below_minimum]


def cost_per_tonne(amount: Decimal, credits_tco2: int) -> Decimal | None:
    """amount / credits, rounded up to :data:`COST_PER_TCO2_STEP`; None without credits."""
    if credits_tco2 <= 0:
        return None
    quotient = EXACT.divide(amount, Decimal(credits_tco2))
    return quotient.quantize(COST_PER_TCO2_STEP, rounding=ROUND_CEILING, context=EXACT)


def load_portfolio(directory: Path) -> list[tuple[Path, ProjectConfig]]:
    """Every project YAML of ``directory``, by file name; a broken file names itself."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such folder of project YAMLs (--projects, or projects_dir)")
    projects: list[tuple[Path, ProjectConfig]] = []
    seen: dict[str, Path] = {}
    for path in sorted(directory.glob("*.yaml")):
        project = load_project(path)
        if project.id in seen:
            raise ConfigError(f"{path}: id: {project.id} is also the id of {seen[project.id]}")
        seen[project.id] = path
        projects.append((path, project))
    if not projects:
        raise ConfigError(f"{directory}: no project YAMLs (*.yaml)")
    return projects


def summarize(
    projects: Sequence[tuple[Path, ProjectConfig]],
    source: RecordSource,
    *,
    progress: ProgressFactory | None = None,
) -> Portfolio:
    """Each project's periods computed from ``source`` (the store), cumulative credits and totals."""
    summaries = []
    for path, project in projects:
        spec = project.to_spec()
        periods: list[PeriodCredits] = []
        cumulative = 0
        for item in project.periods:
            period = Period(item.first, item.last, project.timezone)
            reader = source
            bar = None
            if progress is not None:  # the report command's progress: windows read / windows to read
                bar = progress(f"{project.id} {item.first} to {item.last}")
                reader = CountingSource(source, spec, period, bar)
            try:
                report = compute_report(spec, period, reader)
            finally:
                if bar is not None:
                    bar.close()
            cumulative += int(report["emission_reductions_tco2"])
            periods.append(PeriodCredits(period, report, cumulative))
        summaries.append(ProjectCredits(path, project, tuple(periods)))
    return Portfolio(tuple(summaries), _costs(summaries))


def _costs(projects: Sequence[ProjectCredits]) -> tuple[CurrencyTotal, ...]:
    totals: dict[str, CurrencyTotal] = {}
    for summary in projects:
        cost = summary.project.cost
        if cost is None:
            continue
        known = totals.get(cost.currency, CurrencyTotal(cost.currency, Decimal(0), 0, ()))
        totals[cost.currency] = CurrencyTotal(
            cost.currency,
            EXACT.add(known.cost, cost.amount),
            known.credits_tco2 + summary.credits_tco2,
            (*known.projects, summary.project.id),
        )
    return tuple(totals[c] for c in sorted(totals))


def _text(value: Decimal | None) -> str | None:
    """A cost per tCO2 (already at its 0.01 step) as plain text, e.g. "1050.06"."""
    return None if value is None else str(value)


def _amount(value: Decimal) -> str:
    """An amount with thousands separators, no exponent: 1E+8 -> 100,000,000."""
    return format(Decimal(decimal_text(value)), ",f")


def to_dict(portfolio: Portfolio) -> dict[str, Any]:
    return {
        "projects": [
            {
                "id": p.project.id,
                "name": p.project.name,
                "file": str(p.path),
                "methodology": p.project.methodology.id,
                "periods": [
                    {
                        "from": c.period.first_day.isoformat(),
                        "to": c.period.last_day.isoformat(),
                        "reference_emissions_tco2": c.report["reference_emissions_tco2"],
                        "project_emissions_tco2": c.report["project_emissions_tco2"],
                        "emission_reductions_unrounded_tco2": c.report["emission_reductions_unrounded_tco2"],
                        "credits_tco2": c.credits_tco2,
                        "cumulative_credits_tco2": c.cumulative_tco2,
                        "completeness": c.report["completeness"],
                        "findings": len(c.report["findings"]),
                    }
                    for c in p.periods
                ],
                "credits_tco2": p.credits_tco2,
                "cost": None
                if p.project.cost is None
                else {
                    "amount": decimal_text(p.project.cost.amount),
                    "currency": p.project.cost.currency,
                    "description": p.project.cost.description,
                },
                "cost_per_tco2": _text(p.cost_per_tco2),
                "below_minimum": p.below_minimum,
            }
            for p in portfolio.projects
        ],
        "totals": {
            "projects": len(portfolio.projects),
            "credits_tco2": portfolio.credits_tco2,
            "costs": [
                {
                    "currency": t.currency,
                    "cost": decimal_text(t.cost),
                    "credits_tco2": t.credits_tco2,
                    "projects": list(t.projects),
                    "cost_per_tco2": _text(t.cost_per_tco2),
                    **(
                        {
                            "target_cost_per_tco2": decimal_text(TARGET_COST_PER_TCO2),
                            "meets_target": t.meets_target,
                        }
                        if t.currency == TARGET_CURRENCY
                        else {}
                    ),
                }
                for t in portfolio.costs
            ],
            "minimum_credited_tco2": MINIMUM_CREDITED_TCO2,
            "below_minimum": portfolio.below_minimum,
        },
        "notes": [
            "credits of a period: ER_p of the monitoring report of that period (mrv-collector report), "
            "rounded down; cumulative: their running sum",
            f"cost per tCO2: cost / cumulative credits, rounded up to {COST_PER_TCO2_STEP}; average per "
            "currency: sum of costs / sum of credits of the projects that give a cost",
        ],
    }


def _money(value: Decimal | None, currency: str) -> str:
    return "-" if value is None else f"{value:,f} {currency}/tCO2"


def render_text(portfolio: Portfolio) -> str:
    lines = [f"Portfolio: {len(portfolio.projects)} project(s)", ""]
    for p in portfolio.projects:
        lines.append(f"{p.project.id} ({p.project.name}) [{p.project.methodology.id}]")
        if not p.periods:
            lines.append("  no monitoring periods in the project (periods:)")
        else:
            lines.append(
                f"  {'PERIOD':<26} {'CREDITS':>9} {'CUMULATIVE':>11}  {'POINTS WITH DATA':<17} MISSING"
            )
        for c in p.periods:
            done = c.report["completeness"]
            span = f"{c.period.first_day} to {c.period.last_day}"
            lines.append(
                f"  {span:<26} {c.credits_tco2:>9,} {c.cumulative_tco2:>11,}  "
                f"{str(done['points_with_data']) + '/' + str(done['points']):<17} {done['missing_records']}"
            )
        cost = p.project.cost
        lines.append(f"  credits: {p.credits_tco2:,} tCO2")
        if cost is not None:
            lines.append(
                f"  cost: {_amount(cost.amount)} {cost.currency}; per tCO2 credited: "
                f"{_money(p.cost_per_tco2, cost.currency)}"
            )
        if p.below_minimum:
            lines.append(f"  FLAG: below {MINIMUM_CREDITED_TCO2:,} tCO2 credited")
        lines.append("")
    lines.append(f"Totals: {portfolio.credits_tco2:,} tCO2 credited by {len(portfolio.projects)} project(s)")
    for t in portfolio.costs:
        line = (
            f"  average cost ({', '.join(t.projects)}): {_amount(t.cost)} {t.currency} / "
            f"{t.credits_tco2:,} tCO2 = {_money(t.cost_per_tco2, t.currency)}"
        )
        if t.meets_target is not None:
            verdict = "met" if t.meets_target else "not met"
            line += f"; programme aim {TARGET_COST_PER_TCO2:,} {TARGET_CURRENCY}/tCO2 on average: {verdict}"
        lines.append(line)
    flagged = portfolio.below_minimum
    lines.append(
        f"  below {MINIMUM_CREDITED_TCO2:,} tCO2 credited: {', '.join(flagged) if flagged else 'none'}"
    )
    return "\n".join(lines)
