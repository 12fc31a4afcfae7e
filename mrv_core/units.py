"""Units and the shared quantity vocabulary.

A quantity name means the same thing in every profile, record and project;
units are converted by exact decimal factors, never assumed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from mrv_core.exact import EXACT

# unit -> (dimension, factor to the dimension's base unit)
#
# Every factor is an exact (terminating) decimal: within a dimension the base
# unit is chosen so that every unit's factor can be one. Energy is based on the joule
# (1 Wh = 3600 J), because with the watt-hour as base 1 GJ would be
# 277.77... kWh, which no decimal holds. A conversion multiplies by the
# source factor (exact) and divides by the target factor: the result is exact
# whenever the value can be written in the target unit at all (1 MWh = 3.6 GJ
# always; 1 GJ = 0.2777... MWh cannot be written exactly in any base, and is
# then correctly rounded to 80 significant digits, mrv_core.exact.EXACT).
# Factors of the units that existed before the joule base are integers, so
# their conversions give the same numbers, digit for digit, as before.
UNITS: Final[dict[str, tuple[str, Decimal]]] = {
    # energy (electricity and heat): base J
    "J": ("energy", Decimal(1)),
    "kJ": ("energy", Decimal(1000)),
    "MJ": ("energy", Decimal(1_000_000)),
    "GJ": ("energy", Decimal(1_000_000_000)),
    "TJ": ("energy", Decimal(1_000_000_000_000)),
    "Wh": ("energy", Decimal(3600)),
    "kWh": ("energy", Decimal(3_600_000)),
    "MWh": ("energy", Decimal(3_600_000_000)),
    "GWh": ("energy", Decimal(3_600_000_000_000)),
    "varh": ("reactive_energy", Decimal(1)),
    "kvarh": ("reactive_energy", Decimal(1000)),
    "W": ("power", Decimal(1)),
    "kW": ("power", Decimal(1000)),
    "MW": ("power", Decimal(1_000_000)),
    "var": ("reactive_power", Decimal(1)),
    "kvar": ("reactive_power", Decimal(1000)),
    "VA": ("apparent_power", Decimal(1)),
    "kVA": ("apparent_power", Decimal(1000)),
    "V": ("voltage", Decimal(1)),
    "kV": ("voltage", Decimal(1000)),
    "A": ("current", Decimal(1)),
    "Hz": ("frequency", Decimal(1)),
    "1": ("ratio", Decimal(1)),
    "tCO2": ("mass_co2", Decimal(1)),
    # tCO2 per unit of energy, electricity or fuel (the dimension keeps its first name): base tCO2/MWh,
    # so that the per-joule units have terminating factors (1 tCO2/GJ = 3.6 tCO2/MWh).
    "tCO2/MWh": ("emission_factor_electricity", Decimal(1)),
    "tCO2/kWh": ("emission_factor_electricity", Decimal(1000)),
    "kgCO2/kWh": ("emission_factor_electricity", Decimal(1)),
    "tCO2/GJ": ("emission_factor_electricity", Decimal("3.6")),
    "tCO2/MJ": ("emission_factor_electricity", Decimal(3600)),
    "tCO2/TJ": ("emission_factor_electricity", Decimal("0.0036")),
    "kgCO2/GJ": ("emission_factor_electricity", Decimal("0.0036")),
    "kgCO2/TJ": ("emission_factor_electricity", Decimal("0.0000036")),
    # gas volume at normal conditions (0 °C, 101.325 kPa), as volume correctors and invoices count it
    "Nm3": ("gas_volume_normal", Decimal(1)),
    # volume at line conditions: NOT normalised, so not convertible to Nm3 (that needs the pressure
    # and temperature of the gas); no quantity has it, it is here so that "m3" is refused by name
    "m3": ("volume", Decimal(1)),
    # net calorific value of a gas: base J/Nm3
    "GJ/Nm3": ("calorific_value_gas", Decimal(1_000_000_000)),
    "MJ/Nm3": ("calorific_value_gas", Decimal(1_000_000)),
    "kWh/Nm3": ("calorific_value_gas", Decimal(3_600_000)),
    # mass of products (output of a process), not of CO2: base kg
    "kg": ("mass", Decimal(1)),
    "t": ("mass", Decimal(1000)),
    # specific energy consumption per mass of product: base J/kg
    "MWh/t": ("specific_energy", Decimal(3_600_000)),
    "kWh/t": ("specific_energy", Decimal(3600)),
    "kWh/kg": ("specific_energy", Decimal(3_600_000)),
    "GJ/t": ("specific_energy", Decimal(1_000_000)),
    "MJ/t": ("specific_energy", Decimal(1000)),
    "MJ/kg": ("specific_energy", Decimal(1_000_000)),
}

# quantity -> (dimension, cumulative counter?)
QUANTITIES: Final[dict[str, tuple[str, bool]]] = {
    "energy_active_import_total": ("energy", True),
    "energy_active_export_total": ("energy", True),
    "energy_active_total": ("energy", True),
    "energy_reactive_import_total": ("reactive_energy", True),
    "energy_reactive_export_total": ("reactive_energy", True),
    "power_active_total": ("power", False),
    "power_active_l1": ("power", False),
    "power_active_l2": ("power", False),
    "power_active_l3": ("power", False),
    "power_reactive_total": ("reactive_power", False),
    "power_apparent_total": ("apparent_power", False),
    "voltage_l1": ("voltage", False),
    "voltage_l2": ("voltage", False),
    "voltage_l3": ("voltage", False),
    "current_l1": ("current", False),
    "current_l2": ("current", False),
    "current_l3": ("current", False),
    "frequency": ("frequency", False),
    "power_factor": ("ratio", False),
    # heat delivered, from a heat meter (flow x temperature difference, integrated by the meter)
    "heat_energy_total": ("energy", True),
    # gas consumed, from a gas meter with volume corrector (normal m3)
    "gas_volume_total": ("gas_volume_normal", True),
    # mass of product made, from a production counter (weighbridge, belt scale)
    "output_mass_total": ("mass", True),
}

# The electricity counters; a parameter that is electricity names these (heat is "energy" too).
ELECTRICITY_COUNTERS: Final = (
    "energy_active_import_total",
    "energy_active_export_total",
    "energy_active_total",
)


class UnitError(ValueError):
    """Units that cannot be converted into each other, or an unknown unit."""


def dimension(unit: str) -> str:
    try:
        return UNITS[unit][0]
    except KeyError:
        raise UnitError(f"unknown unit {unit!r}; known: {', '.join(sorted(UNITS))}") from None


def convert(value: Decimal, from_unit: str, to_unit: str) -> Decimal:
    """Exact conversion, e.g. kWh -> MWh or MWh -> GJ; refuses to convert across dimensions.

    Exact whenever ``value`` can be written in ``to_unit`` at all (a terminating decimal);
    otherwise (1 GJ in MWh) correctly rounded to the 80 significant digits of EXACT.
    """
    if from_unit == to_unit:
        return value
    if dimension(from_unit) != dimension(to_unit):
        raise UnitError(f"cannot convert {from_unit} to {to_unit}")
    return EXACT.divide(EXACT.multiply(value, UNITS[from_unit][1]), UNITS[to_unit][1])
