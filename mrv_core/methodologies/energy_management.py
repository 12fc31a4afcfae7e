"""Energy management / process control with an output-based reference.

Family 5 of DOMAIN.md (JCM methodologies that credit a lower specific energy
consumption of a process, e.g. energy-saving control of a factory or a plant):

    RE_p = SEC_ref × Output_p × EF_RE
    PE_p = Σ_k E_k,p × EF_k
    ER_p = RE_p − PE_p

SEC_ref is the historical (reference) specific energy consumption per tonne of
product, Output_p the product made in the period (a production counter), E_k,p
the energy of carrier k the process used (electricity from the grid, from a
captive generator, purchased heat: each with its own emission factor EF_k).

**Carriers.** The report sums the monitoring points of a parameter, so carriers
with different emission factors are different parameters E_k / EF_k; the
meters of one carrier are points of the same E_k. The engine needs every fixed
parameter, so each number of carriers is its own methodology id:
``energy-management`` (one carrier), ``energy-management-2-carriers`` ... up to
:data:`MAX_CARRIERS`. E_k is energy in MWh from an electricity or a heat
counter (a fuel measured by volume is not an E_k here: it needs its NCV).

Directions are one-sided: Output, SEC_ref and EF_RE raise ER; E_k and EF_k
lower it. A gap in the output counter counts as zero, a gap in an energy
counter is kept (both conservative). Only products and sums: exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from mrv_core.methodologies import Emissions, Methodology, Parameter, product, total
from mrv_core.units import ELECTRICITY_COUNTERS

MAX_CARRIERS = 3

ENERGY_COUNTERS = (*ELECTRICITY_COUNTERS, "heat_energy_total")


def _calculate(carriers: int, values: Mapping[str, Decimal]) -> Emissions:
    reference = product(values["SEC_ref"], values["OUTPUT"], values["EF_RE"])
    project = total(*(product(values[f"E_{k}"], values[f"EF_{k}"]) for k in range(1, carriers + 1)))
    return Emissions(reference, project)


def _carrier_parameters(k: int) -> tuple[Parameter, ...]:
    return (
        Parameter(
            f"E_{k}",
            f"E_{k},p",
            "MWh",
            "monitored",
            "PE",
            f"Energy of carrier {k} used by the process during period p (electricity or heat)",
            quantities=ENERGY_COUNTERS,
        ),
        Parameter(
            f"EF_{k}",
            f"EF_{k}",
            "tCO2/MWh",
            "fixed",
            "PE",
            f"CO2 emission factor of energy carrier {k}",
        ),
    )


def build(carriers: int) -> Methodology:
    """The methodology for ``carriers`` energy carriers (1 .. MAX_CARRIERS)."""
    if not 1 <= carriers <= MAX_CARRIERS:
        raise ValueError(f"1 to {MAX_CARRIERS} energy carriers, not {carriers}")
    span = "k = 1" if carriers == 1 else f"k = 1..{carriers}"

    def calculate(values: Mapping[str, Decimal]) -> Emissions:
        return _calculate(carriers, values)

    return Methodology(
        id="energy-management" if carriers == 1 else f"energy-management-{carriers}-carriers",
        title="Energy management / process control (output-based reference)"
        + ("" if carriers == 1 else f", {carriers} energy carriers"),
        family="Energy management / process control",
        equations=(
            "RE_p = SEC_ref × Output_p × EF_RE",
            f"PE_p = Σ_k E_k,p × EF_k ({span})",
            "ER_p = RE_p − PE_p (rounded down to whole tCO2)",
        ),
        parameters=(
            Parameter(
                "OUTPUT",
                "Output_p",
                "t",
                "monitored",
                "RE",
                "Product made during period p, from a production counter",
                quantities=("output_mass_total",),
            ),
            Parameter(
                "SEC_ref",
                "SEC_ref",
                "MWh/t",
                "fixed",
                "RE",
                "Reference specific energy consumption per tonne of product (historical, conservative)",
            ),
            Parameter(
                "EF_RE",
                "EF_RE",
                "tCO2/MWh",
                "fixed",
                "RE",
                "CO2 emission factor of the energy the reference process would have used",
            ),
            *(p for k in range(1, carriers + 1) for p in _carrier_parameters(k)),
        ),
        calculate=calculate,
    )


METHODOLOGIES = tuple(build(carriers) for carriers in range(1, MAX_CARRIERS + 1))
