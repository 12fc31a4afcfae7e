"""High-efficiency equipment: chillers, inverter air conditioners, refrigerators, heat pumps.

Family 2 of DOMAIN.md (JCM methodologies such as "Energy saving by introduction of
high efficiency centrifugal chiller" or "... inverter-type air conditioning system"):

    RE_p = Σ_i EC_PJ,i,p × (COP_PJ,i / COP_RE,i) × EF_elec
    PE_p = Σ_i EC_PJ,i,p × EF_elec
    ER_p = RE_p − PE_p = Σ_i EC_PJ,i,p × EF_elec × (COP_PJ,i / COP_RE,i − 1)

The reference equipment would have delivered the same cooling or heating
(EC_PJ × COP_PJ) with its lower COP_RE, a conservative default (the best
commercially available), so it would have used EC_PJ × COP_PJ / COP_RE.

**Equipment groups.** The report sums the monitoring points of a parameter, so
one parameter cannot carry units with different COPs. Units that share
COP_PJ (same model) and COP_RE (same capacity class) form a group i with
its own parameters EC_PJ_i, COP_PJ_i, COP_RE_i; all the meters of a group
are points of EC_PJ_i. The engine needs every fixed parameter of a
methodology, so each number of groups is its own methodology id:
``high-efficiency-equipment`` (one group), ``high-efficiency-equipment-2-groups``
... up to :data:`MAX_GROUPS` (more is one number here).

**Direction of EC_PJ,i.** It appears on both sides; its net effect is
dER/dEC_PJ,i = EF_elec × (COP_PJ,i / COP_RE,i − 1), positive exactly when
COP_PJ,i > COP_RE,i. The conditions refuse a project where that does not hold,
so EC_PJ,i is declared to raise RE: a gap in its counter counts as zero and
its boundary readings are taken inside the period, which lowers RE and PE
alike and ER by EF × (COP_PJ/COP_RE − 1) per MWh left out: conservative.
(Declared PE, a gap would be kept and the span widened, raising ER.) For the
same reason EF_elec raises ER, COP_PJ,i raises ER and COP_RE,i lowers it.

Arithmetic: each group's RE term is EC × COP_PJ × EF / COP_RE, exact products
and one division (exact when the quotient terminates, else correctly rounded
to 80 significant digits); nothing is rounded before ER_p is rounded down.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from decimal import Decimal

from mrv_core.exact import EXACT, decimal_text
from mrv_core.methodologies import Emissions, Methodology, Parameter, monitored, product, total
from mrv_core.units import ELECTRICITY_COUNTERS

MAX_GROUPS = 4


def _calculate(groups: int, values: Mapping[str, Decimal]) -> Emissions:
    ef = values["EF_elec"]
    reference = []
    project = []
    for i in range(1, groups + 1):
        consumed = monitored(values, f"EC_PJ_{i}")
        reference.append(EXACT.divide(product(consumed, values[f"COP_PJ_{i}"], ef), values[f"COP_RE_{i}"]))
        project.append(product(consumed, ef))
    return Emissions(total(*reference), total(*project))


def _conditions(groups: int, fixed: Mapping[str, Decimal], _monitored: Set[str]) -> list[str]:
    errors = []
    for i in range(1, groups + 1):
        cop_pj, cop_re = fixed[f"COP_PJ_{i}"], fixed[f"COP_RE_{i}"]
        if cop_re <= 0:
            errors.append(f"fixed.COP_RE_{i}: must be above 0 (got {decimal_text(cop_re)})")
        elif cop_pj <= cop_re:
            errors.append(
                f"fixed.COP_PJ_{i}: {decimal_text(cop_pj)} must exceed COP_RE_{i} ({decimal_text(cop_re)}): "
                f"the methodology is for equipment more efficient than the reference, and only then does "
                f"EC_PJ_{i} raise ER_p as declared (its gaps count as zero)"
            )
    return errors


def _group_parameters(i: int) -> tuple[Parameter, ...]:
    return (
        Parameter(
            f"EC_PJ_{i}",
            f"EC_PJ,{i},p",
            "MWh",
            "monitored",
            "RE",
            f"Electricity consumed by the project equipment of group {i} during period p "
            "(raises ER_p because COP_PJ > COP_RE)",
            quantities=ELECTRICITY_COUNTERS,
        ),
        Parameter(
            f"COP_PJ_{i}",
            f"COP_PJ,{i}",
            "1",
            "fixed",
            "RE",
            f"Coefficient of performance of the project equipment of group {i} (catalogue, rated conditions)",
        ),
        Parameter(
            f"COP_RE_{i}",
            f"COP_RE,{i}",
            "1",
            "fixed",
            "PE",
            f"Coefficient of performance of the reference equipment of group {i} "
            "(conservative default of the methodology)",
        ),
    )


def build(groups: int) -> Methodology:
    """The methodology for ``groups`` equipment groups (1 .. MAX_GROUPS)."""
    if not 1 <= groups <= MAX_GROUPS:
        raise ValueError(f"1 to {MAX_GROUPS} equipment groups, not {groups}")
    span = "i = 1" if groups == 1 else f"i = 1..{groups}"

    def calculate(values: Mapping[str, Decimal]) -> Emissions:
        return _calculate(groups, values)

    def conditions(fixed: Mapping[str, Decimal], points: Set[str]) -> list[str]:
        return _conditions(groups, fixed, points)

    return Methodology(
        id="high-efficiency-equipment" if groups == 1 else f"high-efficiency-equipment-{groups}-groups",
        title="High-efficiency equipment (chillers, air conditioners, heat pumps)"
        + ("" if groups == 1 else f", {groups} equipment groups"),
        family="High-efficiency equipment",
        equations=(
            f"RE_p = Σ_i EC_PJ,i,p × (COP_PJ,i / COP_RE,i) × EF_elec ({span})",
            f"PE_p = Σ_i EC_PJ,i,p × EF_elec ({span})",
            "ER_p = RE_p − PE_p (rounded down to whole tCO2)",
        ),
        parameters=(
            *(p for i in range(1, groups + 1) for p in _group_parameters(i)),
            Parameter(
                "EF_elec",
                "EF_elec",
                "tCO2/MWh",
                "fixed",
                "RE",
                "CO2 emission factor of the electricity consumed (grid or captive)",
            ),
        ),
        calculate=calculate,
        conditions=conditions,
    )


METHODOLOGIES = tuple(build(groups) for groups in range(1, MAX_GROUPS + 1))
