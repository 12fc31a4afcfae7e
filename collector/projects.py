"""Project configuration (config/projects/*.yaml): methodology, monitoring points, fixed values."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mrv_core.config_errors import ConfigError, read_yaml_file, validate_document
from mrv_core.counters import Replacement
from mrv_core.exact import EXACT, decimal_text
from mrv_core.methodologies import Methodology, Parameter, registry
from mrv_core.report import FixedSpec, PointSpec, ProjectSpec
from mrv_core.timefmt import format_time
from mrv_core.units import QUANTITIES, UnitError, convert, dimension


class ProjectError(ValueError):
    """A project that does not fit its methodology: (key, reason) for each problem."""

    def __init__(self, key: str, reason: str, *more: tuple[str, str]) -> None:
        self.problems = ((key, reason), *more)
        super().__init__("; ".join(f"{k}: {r}" for k, r in self.problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MethodologyRef(_Strict):
    id: str
    version: str
    reference: str = Field(description="the approved methodology document this follows")


# Accuracy class index = maximum permissible error in percent (IEC 62053-21/22; EN 50470-3 A/B/C).
CLASS_MPE_PERCENT: dict[str, Decimal] = {
    "0.2S": Decimal("0.2"),
    "0.5S": Decimal("0.5"),
    "0.5": Decimal("0.5"),
    "1": Decimal(1),
    "2": Decimal(2),
    "A": Decimal(2),
    "B": Decimal(1),
    "C": Decimal("0.5"),
}


class Calibration(_Strict):
    """One calibration certificate of a meter: valid from ``date`` until ``due`` (local dates)."""

    issuer: str = Field(min_length=2)
    certificate: str = ""
    date: dt.date
    due: dt.date
    error_found_percent: Decimal | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Calibration:
        if self.due <= self.date:
            raise ValueError(f"due {self.due} is not after date {self.date}")
        return self


class Quantity(_Strict):
    value: Decimal
    unit: str


class MeterReplacement(_Strict):
    """A meter replaced during monitoring, from its replacement protocol."""

    time: dt.datetime = Field(description="when, with its UTC offset (e.g. 2026-03-01T10:30:00+08:00)")
    old_final: Decimal = Field(ge=0, description="the old meter's last reading")
    new_initial: Decimal = Field(ge=0, description="the new meter's first reading")
    unit: str
    old_serial: str = ""
    new_serial: str = ""
    document: str = Field(min_length=3, description="the replacement protocol")

    @field_validator("time")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("give the time with its UTC offset, e.g. 2026-03-01T10:30:00+08:00")
        return value


class MonitoringPoint(_Strict):
    # "No." in the Monitoring Plan/Report Sheets; not `no`, which YAML 1.1 reads as false.
    number: int = Field(ge=1)
    parameter: str
    description: str = ""
    gateway: str
    device: str
    quantity: str
    meter_serial: str = ""
    accuracy_class: str = Field(default="", description="IEC 62053 class, e.g. 0.5S, 1; sets the MPE")
    mpe_percent: Decimal | None = Field(
        default=None, gt=0, lt=10, description="maximum permissible error, if not the class index"
    )
    rollover: Quantity | None = Field(default=None, description="the counter's rollover value")
    replacements: list[MeterReplacement] = Field(default_factory=list)
    calibrations: list[Calibration] | None = Field(
        default=None,
        description="the meter's calibration certificates; when given (even empty), readings outside "
        "them are corrected by the maximum permissible error in the conservative direction",
    )

    @model_validator(mode="after")
    def _error_known(self) -> MonitoringPoint:
        if self.calibrations is not None and self.mpe() is None:
            raise ValueError(
                f"calibrations need the meter's maximum permissible error: accuracy_class one of "
                f"{', '.join(CLASS_MPE_PERCENT)}, or mpe_percent"
            )
        return self

    def mpe(self) -> Decimal | None:
        """The maximum permissible error as a fraction (class index of IEC 62053-21/22 unless given)."""
        percent = (
            self.mpe_percent if self.mpe_percent is not None else CLASS_MPE_PERCENT.get(self.accuracy_class)
        )
        return None if percent is None else percent / 100

    @field_validator("quantity")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in QUANTITIES:
            raise ValueError(f"unknown quantity; known: {', '.join(sorted(QUANTITIES))}")
        return value


class FixedValue(_Strict):
    value: Decimal
    unit: str
    source: str = Field(min_length=3, description="document and version the value comes from")


# --------------------------------------------------------------------------- plan, periods, cost
# Optional sections for `mrv-collector plan` (collector/planning.py) and `mrv-collector portfolio`
# (collector/portfolio.py); docs/calculations.md, "Planning and portfolio".

# Peak power of PV modules (Wp, under standard test conditions) is a power: kWp × full-load hours
# (kWh/kWp) is kWh. Accepted for a planned capacity only, as the power unit it names.
PEAK_POWER_UNITS: dict[str, str] = {"Wp": "W", "kWp": "kW", "MWp": "MW"}
HOURS_PER_YEAR_MAX = Decimal(8784)  # 366 days


def _finite_at_least_zero(value: Decimal | None) -> Decimal | None:
    if value is not None and (not value.is_finite() or value < 0):
        raise ValueError("must be a finite number, 0 or more")
    return value


class PlannedCapacity(_Strict):
    """A rated capacity (power) for an expected value of capacity × full-load hours."""

    value: Decimal
    unit: str = Field(description="W, kW, MW (or Wp, kWp, MWp for PV modules)")

    @field_validator("value")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value <= 0:
            raise ValueError("must be a finite number above 0")
        return value

    @field_validator("unit")
    @classmethod
    def _power(cls, unit: str) -> str:
        if dimension(PEAK_POWER_UNITS.get(unit, unit)) != "power":
            raise ValueError(
                f"{unit} is not a power (W, kW, MW, Wp, kWp, MWp): capacity × hours must give energy"
            )
        return unit

    def kw(self) -> Decimal:
        return convert(self.value, PEAK_POWER_UNITS.get(self.unit, self.unit), "kW")


class PlannedValue(_Strict):
    """The expected value of one monitored parameter per year: ``value`` and ``unit`` with their
    ``basis``, or ``capacity`` × ``hours`` (full-load hours per year), computed exactly."""

    value: Decimal | None = None
    unit: str | None = None
    capacity: PlannedCapacity | None = None
    hours: Decimal | None = Field(default=None, description="full-load hours per year")
    basis: str = Field(default="", description="how the value was estimated (required with value)")

    _nonnegative = field_validator("value")(_finite_at_least_zero)

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str | None) -> str | None:
        if unit is not None:
            dimension(unit)  # UnitError (a ValueError) names the known units
        return unit

    @field_validator("hours")
    @classmethod
    def _hours(cls, hours: Decimal | None) -> Decimal | None:
        if hours is not None and (not hours.is_finite() or hours <= 0 or hours > HOURS_PER_YEAR_MAX):
            raise ValueError("full-load hours per year: above 0 and at most 8784 (366 days × 24 h)")
        return hours

    @model_validator(mode="after")
    def _one_form(self) -> PlannedValue:
        given = self.value is not None or self.unit is not None
        computed = self.capacity is not None or self.hours is not None
        if given and computed:
            raise ValueError("give either value and unit, or capacity and hours, not both")
        if given:
            if self.value is None or self.unit is None:
                raise ValueError("give both value and unit (per year)")
            if len(self.basis.strip()) < 3:
                raise ValueError("basis: say how the value was estimated (e.g. '1,200 kWp × 1,460 h/yr')")
        elif computed:
            if self.capacity is None or self.hours is None:
                raise ValueError("give both capacity and hours (full-load hours per year)")
        else:
            raise ValueError("give value and unit (per year, with basis), or capacity and hours")
        return self

    def per_year(self) -> tuple[Decimal, str, str]:
        """(value, unit, how it is given) per year; capacity × hours in kWh, exactly."""
        if self.capacity is not None and self.hours is not None:
            kwh = EXACT.multiply(self.capacity.kw(), self.hours)
            given = (
                f"{decimal_text(self.capacity.value)} {self.capacity.unit} × {decimal_text(self.hours)} h/yr "
                f"= {decimal_text(kwh)} kWh"
            )
            return kwh, "kWh", given
        assert self.value is not None and self.unit is not None  # _one_form
        return self.value, self.unit, f"{decimal_text(self.value)} {self.unit}"


class Plan(_Strict):
    """Ex-ante planning, as the JCM Monitoring Plan Sheet estimates emission reductions."""

    phase: Literal["demonstration", "diffusion"]
    period_years: Decimal = Field(description="planned length of the monitoring period, in years")
    expected: dict[str, PlannedValue] = Field(
        min_length=1, description="each monitored parameter's expected value per year"
    )

    @field_validator("period_years")
    @classmethod
    def _years(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value <= 0:
            raise ValueError("must be a finite number of years above 0 (e.g. 1, 1.5, 2)")
        return value


@dataclass(frozen=True)
class Expected:
    """A planned value per year in its parameter's own unit (exact), with where it came from."""

    name: str
    value: Decimal
    unit: str
    given: str  # as the project gives it, e.g. "1752 MWh" or "1200 kWp × 1460 h/yr = 1752000 kWh"
    basis: str


class MonitoringPeriod(_Strict):
    """A monitoring period: a closed range of local dates of the site."""

    first: dt.date = Field(alias="from")
    last: dt.date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> MonitoringPeriod:
        if self.last < self.first:
            raise ValueError(f"to {self.last} is before from {self.first}")
        return self


class Cost(_Strict):
    """The project's cost, for the cost per tonne of credits (mrv-collector portfolio)."""

    amount: Decimal
    currency: str = Field(description="ISO 4217 code, e.g. JPY")
    description: str = Field(default="", description="what the amount covers")

    @field_validator("currency")
    @classmethod
    def _iso_code(cls, value: str) -> str:
        if len(value) != 3 or not value.isascii() or not value.isalpha() or not value.isupper():
            raise ValueError("an ISO 4217 currency code, three capital letters (e.g. JPY, USD)")
        return value

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value <= 0:
            raise ValueError("must be a finite amount above 0")
        return value


class ProjectConfig(_Strict):
    id: str
    name: str
    host_country: str
    timezone: str
    methodology: MethodologyRef
    monitoring_points: list[MonitoringPoint] = Field(min_length=1)
    fixed: dict[str, FixedValue] = Field(default_factory=dict)
    plan: Plan | None = Field(default=None, description="ex-ante planning (mrv-collector plan)")
    periods: list[MonitoringPeriod] = Field(
        default_factory=list, description="the monitoring periods, in order (mrv-collector portfolio)"
    )
    cost: Cost | None = Field(default=None, description="the project's cost (mrv-collector portfolio)")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown time zone (use an IANA name such as Asia/Ulaanbaatar)") from None
        return value

    @model_validator(mode="after")
    def _fits_methodology(self) -> ProjectConfig:
        methodology = self.get_methodology()
        names = {p.name for p in methodology.parameters}
        for index, point in enumerate(self.monitoring_points):
            key = f"monitoring_points[{index}]"
            if point.parameter not in names:
                raise ProjectError(
                    f"{key}.parameter",
                    f"monitoring point {point.number}: {methodology.id} has no parameter {point.parameter!r}",
                )
            parameter = methodology.parameter(point.parameter)
            if parameter.kind != "monitored":
                raise ProjectError(
                    f"{key}.parameter",
                    f"monitoring point {point.number}: {point.parameter} is fixed ex ante, not monitored",
                )
            _check_quantity(f"{key}.quantity", point, parameter)
        fixed: dict[str, Decimal] = {}
        for parameter in methodology.parameters:
            if parameter.kind == "fixed":
                fixed[parameter.name] = self._fixed_value(parameter)
            elif parameter.required and not any(
                p.parameter == parameter.name for p in self.monitoring_points
            ):
                raise ProjectError(
                    "monitoring_points",
                    f"monitored parameter {parameter.name} ({parameter.symbol}) has no monitoring point",
                )
        for name in self.fixed:
            if name not in names:
                raise ProjectError(f"fixed.{name}", f"{methodology.id} has no parameter {name!r}")
        # The methodology's applicability conditions, on the values in its own units; each message
        # starts with the key it is about ("fixed.COP_PJ_1: ...").
        problems = methodology.conditions(fixed, frozenset(p.parameter for p in self.monitoring_points))
        if problems:
            first, *more = (_keyed(problem) for problem in problems)
            raise ProjectError(*first, *more)
        return self

    @model_validator(mode="after")
    def _periods_in_order(self) -> ProjectConfig:
        """Each period starts the day after the previous one ends: contiguous, non-overlapping."""
        for index in range(1, len(self.periods)):
            before, period = self.periods[index - 1], self.periods[index]
            key = f"periods[{index}].from"
            previous = f"periods[{index - 1}] ({before.first} to {before.last})"
            following = before.last + dt.timedelta(days=1)
            if period.first < before.first:
                raise ProjectError(key, f"{period.first} is before {previous}: list the periods in order")
            if period.first <= before.last:
                raise ProjectError(
                    key, f"{period.first} overlaps {previous}: the next period starts {following}"
                )
            if period.first > following:
                raise ProjectError(
                    key,
                    f"{period.first} leaves a gap after {previous}: the next period starts {following}",
                )
        return self

    @model_validator(mode="after")
    def _plan_fits_methodology(self) -> ProjectConfig:
        if self.plan is not None:
            self.expected_per_year()
        return self

    def expected_per_year(self) -> dict[str, Expected]:
        """The plan's expected values per year, in the methodology's units (exact), by parameter.

        Every monitored parameter with a monitoring point needs one (so that no planned PE is left
        out); a parameter that is fixed, unknown or not monitored by the project is refused.
        """
        if self.plan is None:
            raise ProjectError("plan", "the project has no plan section")
        methodology = self.get_methodology()
        monitored = [p.name for p in methodology.parameters if p.kind == "monitored"]
        points = {p.parameter for p in self.monitoring_points}
        out: dict[str, Expected] = {}
        for name, planned in self.plan.expected.items():
            key = f"plan.expected.{name}"
            if name not in {p.name for p in methodology.parameters}:
                raise ProjectError(
                    key, f"{methodology.id} has no parameter {name!r}; monitored: {', '.join(monitored)}"
                )
            parameter = methodology.parameter(name)
            if parameter.kind != "monitored":
                raise ProjectError(key, f"{name} is fixed ex ante: its value comes from fixed.{name}")
            if name not in points:
                raise ProjectError(
                    key, f"{name} ({parameter.symbol}) has no monitoring point in this project"
                )
            value, unit, given = planned.per_year()
            if planned.capacity is not None and dimension(parameter.unit) != "energy":
                raise ProjectError(
                    f"{key}.capacity",
                    f"capacity × hours gives energy, but {name} is in {parameter.unit}: give value and unit",
                )
            if dimension(unit) != dimension(parameter.unit):
                raise ProjectError(
                    f"{key}.unit", f"{unit} is not convertible to {parameter.unit} ({parameter.symbol})"
                )
            value = convert(value, unit, parameter.unit)
            out[name] = Expected(name, value, parameter.unit, given, planned.basis)
        missing = [
            p
            for p in methodology.parameters
            if p.kind == "monitored" and p.name in points and p.name not in out
        ]
        if missing:
            names = ", ".join(f"{p.name} ({p.symbol})" for p in missing)
            raise ProjectError("plan.expected", f"no expected value for {names}, monitored by this project")
        return out

    def fixed_values(self) -> dict[str, Decimal]:
        """The fixed parameters in the methodology's own units (exact), as the report takes them."""
        return {p.name: self._fixed_value(p) for p in self.get_methodology().parameters if p.kind == "fixed"}

    def _fixed_value(self, parameter: Parameter) -> Decimal:
        """The given value of a fixed parameter in the parameter's own unit (exact)."""
        key = f"fixed.{parameter.name}"
        value = self.fixed.get(parameter.name)
        if value is None:
            raise ProjectError("fixed", f"fixed parameter {parameter.name} ({parameter.symbol}) is missing")
        try:
            same = dimension(value.unit) == dimension(parameter.unit)
        except UnitError as exc:
            raise ProjectError(f"{key}.unit", str(exc)) from None
        if not same:
            raise ProjectError(f"{key}.unit", f"{value.unit} is not convertible to {parameter.unit}")
        if not value.value.is_finite() or value.value < 0:
            raise ProjectError(f"{key}.value", "must be a finite number, 0 or more")
        return convert(value.value, value.unit, parameter.unit)

    def to_spec(self) -> ProjectSpec:
        """The plain form the pure calculation takes (and a verifier rebuilds)."""
        return ProjectSpec(
            id=self.id,
            name=self.name,
            timezone=self.timezone,
            methodology_id=self.methodology.id,
            methodology_version=self.methodology.version,
            methodology_reference=self.methodology.reference,
            points=tuple(
                PointSpec(
                    p.number,
                    p.parameter,
                    p.gateway,
                    p.device,
                    p.quantity,
                    p.description,
                    mpe=p.mpe() if p.calibrations is not None else None,
                    calibrated=_windows(p.calibrations or [], self.timezone),
                    rollover=None if p.rollover is None else (p.rollover.value, p.rollover.unit),
                    replacements=tuple(
                        Replacement(
                            format_time(r.time),
                            r.old_final,
                            r.new_initial,
                            r.unit,
                            f"{r.document}; serial {r.old_serial or '?'} -> {r.new_serial or '?'}",
                        )
                        for r in sorted(p.replacements, key=lambda r: r.time)
                    ),
                )
                for p in self.monitoring_points
            ),
            fixed={k: FixedSpec(v.value, v.unit, v.source) for k, v in self.fixed.items()},
        )

    def get_methodology(self) -> Methodology:
        methodologies = registry()
        if self.methodology.id not in methodologies:
            raise ProjectError(
                "methodology.id",
                f"unknown methodology {self.methodology.id!r}; known: {', '.join(methodologies)}",
            )
        return methodologies[self.methodology.id]


def _windows(certificates: list[Calibration], timezone: str) -> tuple[tuple[str, str], ...]:
    """Certificates' validity as [from, until) in record-time text (UTC), from local midnights,
    sorted and merged where they touch or overlap."""
    zone = ZoneInfo(timezone)
    spans = sorted(
        (
            format_time(dt.datetime.combine(c.date, dt.time(0), zone)),
            format_time(dt.datetime.combine(c.due, dt.time(0), zone)),
        )
        for c in certificates
    )
    merged: list[tuple[str, str]] = []
    for start, until in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], until))
        else:
            merged.append((start, until))
    return tuple(merged)


def _check_quantity(key: str, point: MonitoringPoint, parameter: Parameter) -> None:
    """The point's quantity is a counter of the parameter's dimension, and of its kind of energy."""
    quantity_dimension, counter = QUANTITIES[point.quantity]
    where = f"monitoring point {point.number}: {point.quantity} cannot measure {point.parameter}"
    if quantity_dimension != dimension(parameter.unit):
        raise ProjectError(key, f"{where} (in {parameter.unit})")
    if not counter:
        raise ProjectError(key, f"{where}: it is not a cumulative counter")
    if parameter.quantities and point.quantity not in parameter.quantities:
        raise ProjectError(
            key, f"{where}: {parameter.symbol} is measured by {', '.join(parameter.quantities)}"
        )


def _keyed(problem: str) -> tuple[str, str]:
    key, _, reason = problem.partition(": ")
    return key, reason


def load_project(path: Path) -> ProjectConfig:
    """A project config; every error names the file, the key and the reason (ConfigError)."""
    data = read_yaml_file(path)
    if isinstance(data, dict):
        try:
            return ProjectConfig.model_validate(data)
        except ValidationError as exc:
            # A check across the file (methodology, points, fixed values) knows its key: say it, in
            # place of pydantic's "(top level)" and a dump of the whole document.
            errors = exc.errors()
            cause = errors[0].get("ctx", {}).get("error") if len(errors) == 1 else None
            if isinstance(cause, ProjectError):
                raise ConfigError("\n".join(f"{path}: {k}: {r}" for k, r in cause.problems)) from None
    return validate_document(data, ProjectConfig, str(path), "a project")


def load_projects(directory: Path) -> dict[str, ProjectSpec]:
    """Every project in ``directory`` by id (for exports by id); a broken file names itself."""
    if not directory.exists():
        return {}
    projects: dict[str, ProjectSpec] = {}
    for path in sorted(directory.glob("*.yaml")):
        project = load_project(path)
        projects[project.id] = project.to_spec()
    return projects
