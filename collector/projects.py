"""Project configuration (config/projects/*.yaml): methodology, monitoring points, fixed values."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mrv_core.config_errors import load_document
from mrv_core.methodologies import Methodology, registry
from mrv_core.report import FixedSpec, PointSpec, ProjectSpec
from mrv_core.units import QUANTITIES, UnitError, dimension


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MethodologyRef(_Strict):
    id: str
    version: str
    reference: str = Field(description="the approved methodology document this follows")


class MonitoringPoint(_Strict):
    # "No." in the Monitoring Plan/Report Sheets; not `no`, which YAML 1.1 reads as false.
    number: int = Field(ge=1)
    parameter: str
    description: str = ""
    gateway: str
    device: str
    quantity: str
    meter_serial: str = ""
    accuracy_class: str = ""

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
        for point in self.monitoring_points:
            if point.parameter not in names:
                raise ValueError(
                    f"monitoring point {point.number}: {methodology.id} has no parameter {point.parameter!r}"
                )
            parameter = methodology.parameter(point.parameter)
            if parameter.kind != "monitored":
                raise ValueError(
                    f"monitoring point {point.number}: {point.parameter} is fixed ex ante, not monitored"
                )
            if QUANTITIES[point.quantity][0] != dimension(parameter.unit):
                raise ValueError(
                    f"monitoring point {point.number}: {point.quantity} cannot measure "
                    f"{point.parameter} (in {parameter.unit})"
                )
        for parameter in methodology.parameters:
            if parameter.kind == "fixed":
                value = self.fixed.get(parameter.name)
                if value is None:
                    raise ValueError(f"fixed parameter {parameter.name} ({parameter.symbol}) is missing")
                try:
                    same = dimension(value.unit) == dimension(parameter.unit)
                except UnitError as exc:
                    raise ValueError(f"fixed.{parameter.name}.unit: {exc}") from None
                if not same:
                    raise ValueError(
                        f"fixed.{parameter.name}.unit: {value.unit} is not convertible to {parameter.unit}"
                    )
            elif parameter.required and not any(
                p.parameter == parameter.name for p in self.monitoring_points
            ):
                raise ValueError(
                    f"monitored parameter {parameter.name} ({parameter.symbol}) has no monitoring point"
                )
        for name in self.fixed:
            if name not in names:
                raise ValueError(f"fixed.{name}: {methodology.id} has no parameter {name!r}")
        return self

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
                PointSpec(p.number, p.parameter, p.gateway, p.device, p.quantity, p.description)
                for p in self.monitoring_points
            ),
            fixed={k: FixedSpec(v.value, v.unit, v.source) for k, v in self.fixed.items()},
        )

    def get_methodology(self) -> Methodology:
        methodologies = registry()
        if self.methodology.id not in methodologies:
            raise ValueError(
                f"unknown methodology {self.methodology.id!r}; known: {', '.join(methodologies)}"
            )
        return methodologies[self.methodology.id]


def load_project(path: Path) -> ProjectConfig:
    return load_document(path, ProjectConfig, "a project")


def load_projects(directory: Path) -> dict[str, ProjectSpec]:
    """Every project in ``directory`` by id (for exports by id); a broken file names itself."""
    if not directory.exists():
        return {}
    projects: dict[str, ProjectSpec] = {}
    for path in sorted(directory.glob("*.yaml")):
        project = load_project(path)
        projects[project.id] = project.to_spec()
    return projects
