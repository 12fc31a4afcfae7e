"""Boiler replacement / heat supply with a heat meter.

Family 3 of DOMAIN.md (JCM methodologies such as "Introduction of high efficiency
once-through boiler"):

    ER_p = (1/η_RE − 1/η_PJ) × Q_p × EF_fuel − EC_aux,p × EF_grid

split into the emissions of the two boilers delivering the same heat Q_p
with the same fuel:

    RE_p = Q_p × EF_fuel / η_RE
    PE_p = Q_p × EF_fuel / η_PJ + EC_aux,p × EF_grid   (no EC_aux point: 0)

**Direction of Q_p.** It appears on both sides; dER/dQ = EF_fuel × (1/η_RE − 1/η_PJ),
positive exactly when η_PJ > η_RE. The conditions refuse a project where that
does not hold, so Q_p is declared to raise RE: a gap in the heat meter counts
as zero and its boundary readings lie inside the period (conservative). EC_aux
raises PE (gaps kept, the counted span covers the period). Of the fixed values
η_PJ and EF_fuel raise ER, η_RE and EF_grid lower it.

Efficiencies are on the net calorific value basis of EF_fuel (a condensing
boiler may exceed 1 on that basis, so no upper bound is imposed). Products are
exact; each RE/PE term has one division (exact when it terminates, else
correctly rounded to 80 significant digits); only ER_p is rounded, down.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from decimal import Decimal

from mrv_core.exact import EXACT, decimal_text
from mrv_core.methodologies import Emissions, Methodology, Parameter, monitored, product, total
from mrv_core.units import ELECTRICITY_COUNTERS


def calculate(values: Mapping[str, Decimal]) -> Emissions:
    heat_fuel = product(values["Q"], values["EF_fuel"])
    reference = EXACT.divide(heat_fuel, values["eta_RE"])
    project = total(
        EXACT.divide(heat_fuel, values["eta_PJ"]),
        product(monitored(values, "EC_AUX"), values["EF_grid"]),
    )
    return Emissions(reference, project)


def conditions(fixed: Mapping[str, Decimal], _monitored: Set[str]) -> list[str]:
    eta_re, eta_pj = fixed["eta_RE"], fixed["eta_PJ"]
    if eta_re <= 0:
        return [f"fixed.eta_RE: must be above 0 (got {decimal_text(eta_re)})"]
    if eta_pj <= eta_re:
        return [
            f"fixed.eta_PJ: {decimal_text(eta_pj)} must exceed eta_RE ({decimal_text(eta_re)}): "
            "the methodology is for a boiler more efficient than the reference, and only then does "
            "Q raise ER_p as declared (its gaps count as zero)"
        ]
    return []


METHODOLOGY = Methodology(
    id="boiler-heat",
    title="Boiler replacement / heat supply (heat meter)",
    family="Boiler replacement / heat supply",
    equations=(
        "ER_p = (1/η_RE − 1/η_PJ) × Q_p × EF_fuel − EC_aux,p × EF_grid, that is:",
        "RE_p = Q_p × EF_fuel / η_RE",
        "PE_p = Q_p × EF_fuel / η_PJ + EC_aux,p × EF_grid",
        "ER_p = RE_p − PE_p (rounded down to whole tCO2)",
    ),
    parameters=(
        Parameter(
            "Q",
            "Q_p",
            "GJ",
            "monitored",
            "RE",
            "Heat supplied by the project boiler(s) during period p, from a heat meter "
            "(raises ER_p because η_PJ > η_RE)",
            quantities=("heat_energy_total",),
        ),
        Parameter(
            "EC_AUX",
            "EC_aux,p",
            "MWh",
            "monitored",
            "PE",
            "Electricity consumed by the project boiler's auxiliaries (pumps, fans) during period p",
            required=False,
            quantities=ELECTRICITY_COUNTERS,
        ),
        Parameter(
            "eta_RE",
            "η_RE",
            "1",
            "fixed",
            "PE",
            "Efficiency of the reference boiler (conservative default of the methodology)",
        ),
        Parameter(
            "eta_PJ",
            "η_PJ",
            "1",
            "fixed",
            "RE",
            "Efficiency of the project boiler (catalogue or acceptance test)",
        ),
        Parameter(
            "EF_fuel",
            "EF_fuel",
            "tCO2/GJ",
            "fixed",
            "RE",
            "CO2 emission factor of the boiler fuel (net calorific value basis)",
        ),
        Parameter(
            "EF_grid",
            "EF_grid",
            "tCO2/MWh",
            "fixed",
            "PE",
            "CO2 emission factor of the auxiliary electricity (needed even without an EC_AUX point)",
        ),
    ),
    calculate=calculate,
    conditions=conditions,
)
