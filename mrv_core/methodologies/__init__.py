"""JCM methodologies as small pure modules; see :class:`Methodology`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

from mrv_core.exact import EXACT


@dataclass(frozen=True)
class Parameter:
    name: str
    symbol: str
    unit: str
    kind: Literal["monitored", "fixed"]
    raises: Literal["RE", "PE"]
    description: str
    required: bool = True


@dataclass(frozen=True)
class Emissions:
    reference_tco2: Decimal
    project_tco2: Decimal

    @property
    def reductions_unrounded_tco2(self) -> Decimal:
        return EXACT.subtract(self.reference_tco2, self.project_tco2)

    @property
    def reductions_tco2(self) -> int:
        """ER_p rounded down to whole tonnes, as JCM monitoring reports do."""
        return int(self.reductions_unrounded_tco2.to_integral_value(rounding=ROUND_FLOOR))


@dataclass(frozen=True)
class Methodology:
    id: str
    title: str
    family: str
    equations: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    calculate: Callable[[Mapping[str, Decimal]], Emissions]

    def parameter(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(name)


def registry() -> dict[str, Methodology]:
    from mrv_core.methodologies import pv_grid  # noqa: PLC0415 - modules register themselves here

    return {m.id: m for m in (pv_grid.METHODOLOGY,)}
