"""Units and the shared quantity vocabulary.

A quantity name means the same thing in every profile, record and project;
units are converted by exact decimal factors, never assumed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from mrv_core.exact import EXACT

# unit -> (dimension, factor to the dimension's base unit)
UNITS: Final[dict[str, tuple[str, Decimal]]] = {
    "Wh": ("energy", Decimal(1)),
    "kWh": ("energy", Decimal(1000)),
    "MWh": ("energy", Decimal(1_000_000)),
    "GWh": ("energy", Decimal(1_000_000_000)),
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
    "tCO2/MWh": ("emission_factor_electricity", Decimal(1)),
    "tCO2/kWh": ("emission_factor_electricity", Decimal(1000)),
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
}


class UnitError(ValueError):
    """Units that cannot be converted into each other, or an unknown unit."""


def dimension(unit: str) -> str:
    try:
        return UNITS[unit][0]
    except KeyError:
        raise UnitError(f"unknown unit {unit!r}; known: {', '.join(sorted(UNITS))}") from None


def convert(value: Decimal, from_unit: str, to_unit: str) -> Decimal:
    """Exact conversion, e.g. kWh -> MWh; refuses to convert across dimensions."""
    if from_unit == to_unit:
        return value
    if dimension(from_unit) != dimension(to_unit):
        raise UnitError(f"cannot convert {from_unit} to {to_unit}")
    return EXACT.divide(EXACT.multiply(value, UNITS[from_unit][1]), UNITS[to_unit][1])
