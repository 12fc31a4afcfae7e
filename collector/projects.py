"""Project configuration (config/projects/*.yaml): methodology, monitoring points, fixed values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mrv_core.config_errors import ConfigError, read_yaml_file, validate_document
from mrv_core.counters import Replacement
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


class ProjectConfig(_Strict):
    id: str
    name: str
    host_country: str
    timezone: str
    methodology: MethodologyRef
    monitoring_points: list[MonitoringPoint] = Field(min_length=1)
    fixed: dict[str, FixedValue] = Field(default_factory=dict)

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
