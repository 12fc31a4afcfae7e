"""JCM methodologies as small pure modules; see :class:`Methodology`.

Shipped (docs/methodologies/): ``pv-grid`` (solar PV), ``high-efficiency-equipment``
(chillers, inverter air conditioners, heat pumps; 1 to 4 equipment groups),
``boiler-heat`` (boiler replacement / heat supply), ``cogeneration`` (cogeneration and
waste-heat recovery), ``energy-management`` (output-based reference; 1 to 3 energy
carriers): the five families of DOMAIN.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

from mrv_core.exact import EXACT


@dataclass(frozen=True)
class Parameter:
    """One parameter of a methodology.

    ``raises`` is the direction in which the parameter moves ER_p: "RE" when a
    larger value gives a larger ER_p (it raises reference emissions, or lowers
    project emissions), "PE" when a larger value gives a smaller ER_p. For a
    monitored parameter it decides the conservative treatment of its counter
    (mrv_core.counters: boundaries and gaps); for a parameter that appears on
    both sides (EC_PJ of high-efficiency equipment) it is the direction of the
    net effect, which the methodology's ``conditions`` guarantee.

    ``quantities`` are the counters that can measure a monitored parameter
    (heat and electricity are both energy: a heat meter must not feed an
    electricity parameter); empty means any counter of the unit's dimension.
    """

    name: str
    symbol: str
    unit: str
    kind: Literal["monitored", "fixed"]
    raises: Literal["RE", "PE"]
    description: str
    required: bool = True
    quantities: tuple[str, ...] = ()


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


Conditions = Callable[[Mapping[str, Decimal], Set[str]], list[str]]


def no_conditions(_fixed: Mapping[str, Decimal], _monitored: Set[str]) -> list[str]:
    return []


@dataclass(frozen=True)
class Methodology:
    id: str
    title: str
    family: str
    equations: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    calculate: Callable[[Mapping[str, Decimal]], Emissions]
    # Applicability conditions a project must meet, checked when its config is loaded: called with
    # the fixed values (in the parameters' units) and the names of the monitored parameters that
    # have a monitoring point; returns what is wrong, one message each ("fixed.X: ...").
    conditions: Conditions = no_conditions

    def parameter(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(name)


def monitored(values: Mapping[str, Decimal], name: str) -> Decimal:
    """A monitored value; an optional parameter without a monitoring point is 0."""
    return values.get(name, Decimal(0))


def product(*factors: Decimal) -> Decimal:
    """Exact product (EXACT has the digits for every product of our inputs)."""
    result = Decimal(1)
    for factor in factors:
        result = EXACT.multiply(result, factor)
    return result


def total(*terms: Decimal) -> Decimal:
    result = Decimal(0)
    for term in terms:
        result = EXACT.add(result, term)
    return result


def registry() -> dict[str, Methodology]:
    # The modules import this one for the types above, so they are imported here, when asked for.
    import mrv_core.methodologies.boiler_heat  # noqa: PLC0415
    import mrv_core.methodologies.cogeneration  # noqa: PLC0415
    import mrv_core.methodologies.energy_management  # noqa: PLC0415
    import mrv_core.methodologies.high_efficiency  # noqa: PLC0415
    import mrv_core.methodologies.pv_grid  # noqa: PLC0415

    modules = mrv_core.methodologies
    shipped = (
        modules.pv_grid.METHODOLOGY,
        *modules.high_efficiency.METHODOLOGIES,
        modules.boiler_heat.METHODOLOGY,
        modules.cogeneration.METHODOLOGY,
        *modules.energy_management.METHODOLOGIES,
    )
    return {m.id: m for m in shipped}
