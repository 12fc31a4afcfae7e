"""Methodologies of the five JCM families: hand-worked numbers, properties, reports, project configs.

Hand-worked examples follow the structure of the domain notes (DOMAIN.md) with published-style
numbers (grid factors of JCM documents, IPCC default fuel factors); every intermediate
product is worked out in the comments, so a reader can redo them on paper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.projects import load_project
from mrv_core.config_errors import ConfigError, load_yaml_text
from mrv_core.exact import EXACT, decimal_text
from mrv_core.methodologies import Emissions, Methodology, energy_management, high_efficiency, registry
from mrv_core.profile_schema import parse_profile
from mrv_core.record import Value
from mrv_core.report import FixedSpec, MemoryRecordSource, Period, PointSpec, ProjectSpec, compute_report
from mrv_core.units import QUANTITIES, UNITS, UnitError, convert, dimension
from tests.factory import Gateway

ROOT = Path(__file__).parents[2]
D = Decimal


def _calc(methodology_id: str, values: Mapping[str, str | Decimal]) -> Emissions:
    return registry()[methodology_id].calculate({k: D(v) for k, v in values.items()})


def _close(actual: Decimal | str, expected: Fraction, digits: int = 70) -> bool:
    """Equal to the exact rational ``expected`` up to 10^-digits (a non-terminating quotient is
    correctly rounded to 80 significant digits; every terminating one is exact)."""
    return abs(Fraction(D(actual)) - expected) < Fraction(1, 10**digits)


# --------------------------------------------------------------------------- registry


def test_registry_holds_the_five_families() -> None:
    methodologies = registry()
    assert {m.family for m in methodologies.values()} == {
        "Solar PV",
        "High-efficiency equipment",
        "Boiler replacement / heat supply",
        "Cogeneration / waste-heat recovery",
        "Energy management / process control",
    }
    assert {
        "pv-grid",
        "high-efficiency-equipment",
        "high-efficiency-equipment-2-groups",
        "high-efficiency-equipment-4-groups",
        "boiler-heat",
        "cogeneration",
        "energy-management",
        "energy-management-3-carriers",
    } <= set(methodologies)


@pytest.mark.parametrize("methodology", registry().values(), ids=lambda m: m.id)
def test_parameters_are_well_formed(methodology: Methodology) -> None:
    names = [p.name for p in methodology.parameters]
    assert len(names) == len(set(names)), "parameter names are config keys: unique"
    assert methodology.equations and methodology.title and methodology.family
    for parameter in methodology.parameters:
        unit_dimension = dimension(parameter.unit)  # a known unit
        assert parameter.symbol and parameter.description
        if parameter.kind == "fixed":
            assert parameter.required and not parameter.quantities
            continue
        # every monitored parameter of a methodology is a counter some quantity can feed
        feeding = parameter.quantities or tuple(q for q, (d, _) in QUANTITIES.items() if d == unit_dimension)
        assert feeding
        for quantity in feeding:
            assert QUANTITIES[quantity] == (unit_dimension, True), (parameter.name, quantity)


def test_variants_are_bounded() -> None:
    with pytest.raises(ValueError, match="1 to 4 equipment groups"):
        high_efficiency.build(5)
    with pytest.raises(ValueError, match="1 to 3 energy carriers"):
        energy_management.build(0)


# --------------------------------------------------------------------------- hand-worked examples


def test_chiller_by_hand_and_rounding_down_differs_from_nearest() -> None:
    # A centrifugal chiller: COP_PJ 6.2 (catalogue), COP_RE 4.5 (reference default),
    # EC_PJ 1,234.567 MWh in the period, EF_elec 0.533 tCO2/MWh (Indonesia, Jamali, case 2).
    #   PE = 1,234.567 × 0.533                      = 658.024211
    #   RE = 658.024211 × 6.2 / 4.5 = 4,079.7501082 / 4.5 = 906.611135155555...
    #   ER = 906.611135155555... − 658.024211       = 248.586924155555...
    # Rounded down: 248 tCO2. Rounded to nearest it would be 249.
    e = _calc(
        "high-efficiency-equipment",
        {"EC_PJ_1": "1234.567", "COP_PJ_1": "6.2", "COP_RE_1": "4.5", "EF_elec": "0.533"},
    )
    assert e.project_tco2 == D("658.024211")
    assert _close(e.reference_tco2, Fraction("4079.7501082") / Fraction("4.5"))
    assert decimal_text(e.reference_tco2).startswith("906.6111351555555555")
    assert _close(
        e.reductions_unrounded_tco2, Fraction("4079.7501082") / Fraction("4.5") - Fraction("658.024211")
    )
    assert e.reductions_tco2 == 248
    assert int(e.reductions_unrounded_tco2.quantize(D(1), rounding=ROUND_HALF_EVEN)) == 249


def test_chillers_in_two_groups_by_hand() -> None:
    # Group 1 as above; group 2: a screw chiller, COP_PJ 5.8, COP_RE 5.0, EC_PJ 456.789 MWh.
    #   group 2: PE = 456.789 × 0.533 = 243.468537; RE = 243.468537 × 5.8 / 5 = 282.42350292
    #   RE = 906.611135155555... + 282.42350292 = 1,189.034638075555...
    #   PE = 658.024211 + 243.468537            =   901.492748
    #   ER = 287.541890075555...  -> 287
    e = _calc(
        "high-efficiency-equipment-2-groups",
        {
            "EC_PJ_1": "1234.567",
            "COP_PJ_1": "6.2",
            "COP_RE_1": "4.5",
            "EC_PJ_2": "456.789",
            "COP_PJ_2": "5.8",
            "COP_RE_2": "5.0",
            "EF_elec": "0.533",
        },
    )
    assert e.project_tco2 == D("901.492748")
    assert _close(e.reference_tco2, Fraction("4079.7501082") / Fraction("4.5") + Fraction("282.42350292"))
    assert decimal_text(e.reductions_unrounded_tco2).startswith("287.54189007555555")
    assert e.reductions_tco2 == 287


def test_boiler_by_hand() -> None:
    # A once-through boiler: Q 12,345.6 GJ of heat, η_RE 0.89 (reference default), η_PJ 0.98,
    # natural gas EF_fuel 0.0561 tCO2/GJ (IPCC default 56,100 kg/TJ); auxiliaries 45.678 MWh
    # at EF_grid 0.533 tCO2/MWh.
    #   Q × EF_fuel  = 12,345.6 × 0.0561 = 692.58816 tCO2 of fuel CO2 per unit efficiency
    #   RE = 692.58816 / 0.89            = 778.188943820224719...
    #   PE = 692.58816 / 0.98            = 706.722612244897959...
    #      + 45.678 × 0.533              =  24.346374
    #                                    = 731.068986244897959...
    #   ER = 47.119957575326759...  -> 47
    # The same from DOMAIN.md's form: (1/0.89 − 1/0.98) × 692.58816 − 24.346374.
    e = _calc(
        "boiler-heat",
        {
            "Q": "12345.6",
            "eta_RE": "0.89",
            "eta_PJ": "0.98",
            "EF_fuel": "0.0561",
            "EC_AUX": "45.678",
            "EF_grid": "0.533",
        },
    )
    assert _close(e.reference_tco2, Fraction("692.58816") / Fraction("0.89"))
    assert _close(e.project_tco2, Fraction("692.58816") / Fraction("0.98") + Fraction("24.346374"))
    domain_form = (1 / Fraction("0.89") - 1 / Fraction("0.98")) * Fraction("12345.6") * Fraction(
        "0.0561"
    ) - Fraction("24.346374")
    assert _close(e.reductions_unrounded_tco2, domain_form)
    assert decimal_text(e.reductions_unrounded_tco2).startswith("47.1199575753267")
    assert e.reductions_tco2 == 47
    # Without an auxiliary meter (optional) PE is the boiler's fuel alone.
    no_aux = _calc(
        "boiler-heat",
        {"Q": "12345.6", "eta_RE": "0.89", "eta_PJ": "0.98", "EF_fuel": "0.0561", "EF_grid": "0.533"},
    )
    assert no_aux.reductions_tco2 == 71  # 71.466331575326759...


def test_cogeneration_by_hand() -> None:
    # A gas engine CGS: EL 3,456.789 MWh at EF_elec 0.619 (Indonesia, Jamali, case 1); heat
    # Q 12,345.6 GJ replacing an oil boiler of η 0.9 with EF_fuel,RE 0.0741 tCO2/GJ (gas/diesel
    # oil, IPCC default); gas 812,345 Nm3 at NCV 0.0389 GJ/Nm3 and EF_gas 0.0561 tCO2/GJ.
    #   EL × EF_elec       = 3,456.789 × 0.619          = 2,139.752391
    #   Q / η × EF_fuel,RE = 12,345.6 × 0.0741 / 0.9    = 914.80896 / 0.9 = 1,016.4544
    #   RE                                              = 3,156.206791
    #   PE = 812,345 × 0.0389 = 31,600.2205 GJ × 0.0561 = 1,772.77237005
    #   ER                                              = 1,383.43442095  -> 1,383
    e = _calc(
        "cogeneration",
        {
            "EL_CGS": "3456.789",
            "EF_elec": "0.619",
            "Q_CGS": "12345.6",
            "eta_RE_boiler": "0.9",
            "EF_fuel_RE": "0.0741",
            "FC_CGS": "812345",
            "NCV_gas": "0.0389",
            "EF_gas": "0.0561",
        },
    )
    assert (e.reference_tco2, e.project_tco2) == (D("3156.206791"), D("1772.77237005"))
    assert e.reductions_unrounded_tco2 == D("1383.43442095")
    assert e.reductions_tco2 == 1383


def test_energy_management_by_hand() -> None:
    # A grinding line: 45,678.9 t of product, SEC_ref 0.1234 MWh/t (historical), EF 0.797 tCO2/MWh
    # (Mongolian grid); the line used 4,987.654 MWh of grid electricity.
    #   RE = 0.1234 × 45,678.9 = 5,636.77626 MWh × 0.797 = 4,492.51067922
    #   PE = 4,987.654 × 0.797                           = 3,975.160238
    #   ER                                               =   517.35044122  -> 517
    e = _calc(
        "energy-management",
        {"OUTPUT": "45678.9", "SEC_ref": "0.1234", "EF_RE": "0.797", "E_1": "4987.654", "EF_1": "0.797"},
    )
    assert (e.reference_tco2, e.project_tco2) == (D("4492.51067922"), D("3975.160238"))
    assert e.reductions_tco2 == 517
    # Two carriers: grid (0.619) and a captive diesel generator (0.533), the reference at 0.619.
    #   RE = 5,636.77626 × 0.619 = 3,489.16450494
    #   PE = 4,000.123 × 0.619 + 987.654 × 0.533 = 2,476.076137 + 526.419582 = 3,002.495719
    #   ER = 486.66878594  -> 486
    e2 = _calc(
        "energy-management-2-carriers",
        {
            "OUTPUT": "45678.9",
            "SEC_ref": "0.1234",
            "EF_RE": "0.619",
            "E_1": "4000.123",
            "EF_1": "0.619",
            "E_2": "987.654",
            "EF_2": "0.533",
        },
    )
    assert (e2.reference_tco2, e2.project_tco2, e2.reductions_tco2) == (
        D("3489.16450494"),
        D("3002.495719"),
        486,
    )


def test_negative_er_is_rounded_down_too() -> None:
    # Rounding down is towards minus infinity: an ER of −0.25 is −1, never 0 (nothing is claimed).
    e = _calc(
        "energy-management", {"OUTPUT": "1", "SEC_ref": "1", "EF_RE": "0.5", "E_1": "1", "EF_1": "0.75"}
    )
    assert e.reductions_unrounded_tco2 == D("-0.25") and e.reductions_tco2 == -1


# --------------------------------------------------------------------------- units


# The factors before the joule base (Wh = 1): every old conversion must give the same digits.
OLD_UNITS = {
    "Wh": ("energy", D(1)),
    "kWh": ("energy", D(1000)),
    "MWh": ("energy", D(1_000_000)),
    "GWh": ("energy", D(1_000_000_000)),
    "varh": ("reactive_energy", D(1)),
    "kvarh": ("reactive_energy", D(1000)),
    "W": ("power", D(1)),
    "kW": ("power", D(1000)),
    "MW": ("power", D(1_000_000)),
    "var": ("reactive_power", D(1)),
    "kvar": ("reactive_power", D(1000)),
    "VA": ("apparent_power", D(1)),
    "kVA": ("apparent_power", D(1000)),
    "V": ("voltage", D(1)),
    "kV": ("voltage", D(1000)),
    "A": ("current", D(1)),
    "Hz": ("frequency", D(1)),
    "1": ("ratio", D(1)),
    "tCO2": ("mass_co2", D(1)),
    "tCO2/MWh": ("emission_factor_electricity", D(1)),
    "tCO2/kWh": ("emission_factor_electricity", D(1000)),
}
OLD_PAIRS = [(a, b) for a in OLD_UNITS for b in OLD_UNITS if OLD_UNITS[a][0] == OLD_UNITS[b][0]]


def _old_convert(value: Decimal, a: str, b: str) -> Decimal:
    if a == b:
        return value
    return EXACT.divide(EXACT.multiply(value, OLD_UNITS[a][1]), OLD_UNITS[b][1])


def test_old_units_keep_their_dimension() -> None:
    for unit, (old_dimension, _) in OLD_UNITS.items():
        assert dimension(unit) == old_dimension


@settings(max_examples=400)
@given(
    pair=st.sampled_from(OLD_PAIRS),
    value=st.decimals(min_value=-(10**12), max_value=10**12, places=6, allow_nan=False, allow_infinity=False),
)
def test_old_conversions_give_the_same_digits(pair: tuple[str, str], value: Decimal) -> None:
    a, b = pair
    new, old = convert(value, a, b), _old_convert(value, a, b)
    assert new == old and str(new) == str(old)  # same number, same exponent: same text everywhere


def test_energy_conversions_by_example() -> None:
    assert str(convert(D("1234.5"), "kWh", "MWh")) == "1.2345"
    assert str(convert(D("1.2345"), "MWh", "kWh")) == "1234.5000"  # as before: 1.2345 × 1000
    assert convert(D(1), "MWh", "GJ") == D("3.6")
    assert convert(D("3.6"), "GJ", "MWh") == 1
    assert convert(D(1), "GJ", "MJ") == 1000
    assert convert(D("0.0036"), "GJ", "kWh") == 1
    assert convert(D(1), "kWh", "J") == 3_600_000
    assert convert(D(1), "tCO2/GJ", "tCO2/MWh") == D("3.6")
    assert convert(D(56100), "kgCO2/TJ", "tCO2/GJ") == D("0.0561")
    assert convert(D("38.9"), "MJ/Nm3", "GJ/Nm3") == D("0.0389")
    assert convert(D("123.4"), "kWh/t", "MWh/t") == D("0.1234")
    assert convert(D("2.5"), "t", "kg") == 2500
    # 1 GJ is 277.77... kWh in any base: correctly rounded to 80 significant digits, and back within that
    assert _close(convert(D(1), "GJ", "kWh"), Fraction(2500, 9), digits=75)


def test_every_factor_is_an_exact_positive_decimal() -> None:
    for unit, (_, factor) in UNITS.items():
        assert factor.is_finite() and factor > 0, unit
        assert Fraction(factor) == Fraction(str(factor)), unit


# Every unit by its definition in SI units (J, kg, t CO2, m3 ...), written out independently of
# mrv_core.units: the table's factors must agree with these ratios exactly.
_E = {
    "J": 1,
    "kJ": 10**3,
    "MJ": 10**6,
    "GJ": 10**9,
    "TJ": 10**12,
    "Wh": 3600,
    "kWh": 3_600_000,
    "MWh": 3_600_000_000,
}
DEFINITIONS: dict[str, Fraction] = {
    **{unit: Fraction(value) for unit, value in _E.items()},
    "GWh": Fraction(3_600_000_000_000),
    "varh": Fraction(1),
    "kvarh": Fraction(1000),
    "W": Fraction(1),
    "kW": Fraction(1000),
    "MW": Fraction(10**6),
    "var": Fraction(1),
    "kvar": Fraction(1000),
    "VA": Fraction(1),
    "kVA": Fraction(1000),
    "V": Fraction(1),
    "kV": Fraction(1000),
    "A": Fraction(1),
    "Hz": Fraction(1),
    "1": Fraction(1),
    "tCO2": Fraction(1),
    "tCO2/MWh": Fraction(1, _E["MWh"]),
    "tCO2/kWh": Fraction(1, _E["kWh"]),
    "kgCO2/kWh": Fraction(1, 1000 * _E["kWh"]),
    "tCO2/GJ": Fraction(1, _E["GJ"]),
    "tCO2/MJ": Fraction(1, _E["MJ"]),
    "tCO2/TJ": Fraction(1, _E["TJ"]),
    "kgCO2/GJ": Fraction(1, 1000 * _E["GJ"]),
    "kgCO2/TJ": Fraction(1, 1000 * _E["TJ"]),
    "Nm3": Fraction(1),
    "m3": Fraction(1),
    "GJ/Nm3": Fraction(_E["GJ"]),
    "MJ/Nm3": Fraction(_E["MJ"]),
    "kWh/Nm3": Fraction(_E["kWh"]),
    "kg": Fraction(1),
    "t": Fraction(1000),
    "MWh/t": Fraction(_E["MWh"], 1000),
    "kWh/t": Fraction(_E["kWh"], 1000),
    "kWh/kg": Fraction(_E["kWh"]),
    "GJ/t": Fraction(_E["GJ"], 1000),
    "MJ/t": Fraction(_E["MJ"], 1000),
    "MJ/kg": Fraction(_E["MJ"]),
}


def test_every_factor_matches_its_definition() -> None:
    assert set(DEFINITIONS) == set(UNITS)
    for a, (dimension_a, factor_a) in UNITS.items():
        for b, (dimension_b, factor_b) in UNITS.items():
            if dimension_a == dimension_b:
                assert Fraction(factor_a) / Fraction(factor_b) == DEFINITIONS[a] / DEFINITIONS[b], (a, b)
                assert _close(convert(D(1), a, b), DEFINITIONS[a] / DEFINITIONS[b], digits=60), (a, b)


def test_unnormalised_m3_is_not_nm3() -> None:
    with pytest.raises(UnitError, match="cannot convert m3 to Nm3"):
        convert(D(1), "m3", "Nm3")
    with pytest.raises(UnitError, match="cannot convert t to tCO2"):
        convert(D(1), "t", "tCO2")  # product mass is not CO2 mass


def test_new_counter_quantities() -> None:
    assert QUANTITIES["heat_energy_total"] == ("energy", True)
    assert QUANTITIES["gas_volume_total"] == ("gas_volume_normal", True)
    assert QUANTITIES["output_mass_total"] == ("mass", True)


PROFILE = """
schema: 1
id: test-heat-gas-output
manufacturer: Test
model: Heat, gas and output counters
source: {document: test register map, version: "1"}
registers:
  - {quantity: heat_energy_total, function: input, address: 0, type: u32, scale: 0.001, unit: GJ}
  - {quantity: gas_volume_total, function: input, address: 2, type: u32, scale: 0.01, unit: Nm3}
  - {quantity: output_mass_total, function: input, address: 4, type: u32, scale: 0.01, unit: t}
"""


def test_profiles_can_declare_the_new_quantities() -> None:
    profile = parse_profile(load_yaml_text(PROFILE, "p"), "p")
    assert {r.quantity for r in profile.registers} == {
        "heat_energy_total",
        "gas_volume_total",
        "output_mass_total",
    }
    assert all(r.counter for r in profile.registers)
    with pytest.raises(ConfigError, match="unit m3 is not a unit of gas_volume_normal"):
        parse_profile(load_yaml_text(PROFILE.replace("unit: Nm3", "unit: m3"), "p"), "p")
    heat_in_mwh = parse_profile(
        load_yaml_text(PROFILE.replace("scale: 0.001, unit: GJ", "scale: 0.001, unit: MWh"), "p"), "p"
    )
    assert heat_in_mwh.registers[0].unit == "MWh"


# --------------------------------------------------------------------------- properties


def _dec(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=D(low), max_value=D(high), places=places, allow_nan=False, allow_infinity=False
    )


MONITORED = _dec("0.001", "1000000", 3)
EF = _dec("0.0001", "2", 4)


@st.composite
def _valid_values(draw: st.DrawFn, methodology: Methodology) -> dict[str, Decimal]:
    """Values in the parameters' own units that meet the methodology's conditions, all above 0."""
    values: dict[str, Decimal] = {}
    for p in methodology.parameters:
        if p.kind == "monitored":
            values[p.name] = draw(MONITORED)
        elif p.name.startswith("COP_RE"):
            values[p.name] = draw(_dec("1", "8", 2))
        elif p.name.startswith("eta_RE"):
            values[p.name] = draw(_dec("0.5", "0.95", 3))
        elif p.unit == "1":
            continue  # COP_PJ / eta_PJ: above their reference, below
        elif p.unit == "GJ/Nm3":
            values[p.name] = draw(_dec("0.02", "0.05", 4))
        elif p.unit == "MWh/t":
            values[p.name] = draw(_dec("0.001", "10", 4))
        else:
            values[p.name] = draw(EF)
    for p in methodology.parameters:
        if p.kind == "fixed" and p.unit == "1" and p.name not in values:
            reference = values[p.name.replace("_PJ", "_RE")]
            values[p.name] = reference + draw(_dec("0.001", "3", 3))
    if methodology.id == "pv-grid":
        # EF_grid raises ER as declared for a plant that exports more than it imports
        values["EG"] += values["EG_AUX"]
    assert methodology.conditions(values, frozenset(values)) == []
    return values


PROPERTY_IDS = [
    "pv-grid",
    "high-efficiency-equipment",
    "high-efficiency-equipment-3-groups",
    "boiler-heat",
    "cogeneration",
    "energy-management",
    "energy-management-2-carriers",
]
NO_DIVISION = {"pv-grid", "energy-management", "energy-management-2-carriers"}


def _upper_bound(methodology: Methodology, name: str, values: Mapping[str, Decimal]) -> Decimal | None:
    """A reference efficiency must stay below the project's: the condition that fixes the directions."""
    if name.startswith(("COP_RE", "eta_RE")) and methodology.id != "cogeneration":
        return values[name.replace("_RE", "_PJ")]
    return None


@pytest.mark.parametrize("methodology_id", PROPERTY_IDS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_er_is_monotone_in_the_declared_direction(methodology_id: str, data: st.DataObject) -> None:
    methodology = registry()[methodology_id]
    values = data.draw(_valid_values(methodology))
    before = methodology.calculate(values).reductions_unrounded_tco2
    for parameter in methodology.parameters:
        value = values[parameter.name]
        upper = _upper_bound(methodology, parameter.name, values)
        raised = (value + upper) / 2 if upper is not None else value + data.draw(_dec("0.001", "100", 3))
        changed = {**values, parameter.name: raised}
        assert methodology.conditions(changed, frozenset(changed)) == []
        after = methodology.calculate(changed).reductions_unrounded_tco2
        if parameter.raises == "RE":
            assert after > before, (parameter.name, value, raised)
        else:
            assert after < before, (parameter.name, value, raised)


@pytest.mark.parametrize("methodology_id", PROPERTY_IDS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_two_adjacent_periods_sum_to_the_whole(methodology_id: str, data: st.DataObject) -> None:
    methodology = registry()[methodology_id]
    whole = data.draw(_valid_values(methodology))
    first, second = dict(whole), dict(whole)
    for parameter in methodology.parameters:
        if parameter.kind == "monitored":
            share = data.draw(_dec("0", "1", 3))
            first[parameter.name] = whole[parameter.name] * share  # exact: 6 decimal places
            second[parameter.name] = whole[parameter.name] - first[parameter.name]
    a, b, w = (methodology.calculate(v) for v in (first, second, whole))
    sums = (
        EXACT.add(a.reference_tco2, b.reference_tco2),
        EXACT.add(a.project_tco2, b.project_tco2),
        EXACT.add(a.reductions_unrounded_tco2, b.reductions_unrounded_tco2),
    )
    wholes = (w.reference_tco2, w.project_tco2, w.reductions_unrounded_tco2)
    if methodology_id in NO_DIVISION:
        assert sums == wholes  # products and sums only: exact
    else:
        # one division per term: each correctly rounded at the 80th significant digit
        # of RE and PE (ER is their difference: its error is theirs, however small ER is)
        scale = max(abs(w.reference_tco2), abs(w.project_tco2), D(1))
        for total, expected in zip(sums, wholes, strict=True):
            assert abs(total - expected) <= scale * D("1e-76")
    # rounded down each, the two periods never claim more than the whole, and at most 1 t less each
    assert w.reductions_tco2 - 2 <= a.reductions_tco2 + b.reductions_tco2 <= w.reductions_tco2


# For each dimension a unit from which every unit of the dimension is an exact (terminating) conversion.
ANCHOR = {
    "energy": "MWh",
    "emission_factor_electricity": "tCO2/GJ",
    "calorific_value_gas": "kWh/Nm3",
    "specific_energy": "MWh/t",
    "mass": "t",
    "gas_volume_normal": "Nm3",
    "ratio": "1",
}


@pytest.mark.parametrize("methodology_id", PROPERTY_IDS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_another_unit_of_the_same_dimension_changes_nothing(methodology_id: str, data: st.DataObject) -> None:
    methodology = registry()[methodology_id]
    drawn = data.draw(_valid_values(methodology))
    # the physical value, written in the anchor unit (kept to 6 places so that it is a terminating
    # decimal in every unit of its dimension), then in the parameter's unit
    anchored: dict[str, Decimal] = {}
    values: dict[str, Decimal] = {}
    for p in methodology.parameters:
        anchor = ANCHOR[dimension(p.unit)]
        anchored[p.name] = convert(drawn[p.name], p.unit, anchor).quantize(D("0.000001"))
        values[p.name] = convert(anchored[p.name], anchor, p.unit)
    expected = methodology.calculate(values)
    for p in methodology.parameters:
        anchor = ANCHOR[dimension(p.unit)]
        for unit in (u for u, (d, _) in UNITS.items() if d == dimension(p.unit)):
            written = convert(anchored[p.name], anchor, unit)
            assert convert(written, unit, anchor) == anchored[p.name]  # the value itself is exact
            back = convert(written, unit, p.unit)  # what the report does with a fixed value
            assert back == values[p.name], (p.name, unit)
            got = methodology.calculate({**values, p.name: back})
            assert decimal_text(got.reductions_unrounded_tco2) == decimal_text(
                expected.reductions_unrounded_tco2
            )
            assert (got.reference_tco2, got.project_tco2) == (expected.reference_tco2, expected.project_tco2)


# --------------------------------------------------------------------------- reports end to end

UTC_DAY = Period(date(2026, 1, 2), date(2026, 1, 2), "UTC")


def _counter(
    gw: Gateway, device: str, quantity: str, unit: str, per_hour: str, *, skip: frozenset[int] = frozenset()
) -> list[bytes]:
    """Hourly readings of one counter, 2026-01-01 20:00 to 2026-01-03 04:00 UTC, rising ``per_hour``.
    For the period 2026-01-02 (UTC) a parameter raising RE counts 00:00 .. 23:00 (23 hours), one
    raising PE 2026-01-01 23:00 .. 2026-01-03 00:00 (25 hours)."""
    records = []
    for hour in range(20, 24 + 24 + 5):
        value = D(5000) + hour * D(per_hour)
        data = gw.record(device, hour * 60, 0, values={quantity: Value(value, unit, "00000000")})
        if hour not in skip:
            records.append(data)
    return records


def _spec(
    methodology_id: str, points: list[tuple[str, str, str]], fixed: dict[str, tuple[str, str]]
) -> ProjectSpec:
    return ProjectSpec(
        "P",
        "p",
        "UTC",
        methodology_id,
        "1",
        "ref",
        tuple(
            PointSpec(i, parameter, "gw-test", device, quantity)
            for i, (parameter, device, quantity) in enumerate(points, 1)
        ),
        {name: FixedSpec(D(value), unit, "doc") for name, (value, unit) in fixed.items()},
    )


CHILLERS = _spec(
    "high-efficiency-equipment-2-groups",
    [
        ("EC_PJ_1", "chiller-1", "energy_active_import_total"),
        ("EC_PJ_1", "chiller-2", "energy_active_import_total"),
        ("EC_PJ_2", "chiller-3", "energy_active_import_total"),
    ],
    {
        "COP_PJ_1": ("6.2", "1"),
        "COP_RE_1": ("4.5", "1"),
        "COP_PJ_2": ("5.8", "1"),
        "COP_RE_2": ("5.0", "1"),
        "EF_elec": ("0.000533", "tCO2/kWh"),
    },
)


def _chiller_records(skip: frozenset[int] = frozenset()) -> list[bytes]:
    gw = Gateway()
    return (
        _counter(gw, "chiller-1", "energy_active_import_total", "kWh", "400", skip=skip)
        + _counter(gw, "chiller-2", "energy_active_import_total", "kWh", "600")
        + _counter(gw, "chiller-3", "energy_active_import_total", "kWh", "300")
    )


def test_chiller_report_end_to_end() -> None:
    report = compute_report(CHILLERS, UTC_DAY, MemoryRecordSource(_chiller_records()))
    # EC_PJ_1 = 23 h × (400 + 600) kWh = 23 MWh; EC_PJ_2 = 23 h × 300 kWh = 6.9 MWh (inside readings: RE)
    assert report["monitored"]["EC_PJ_1"]["value"] == "23"
    assert [p["value"] for p in report["monitored"]["EC_PJ_1"]["points"]] == ["9.2", "13.8"]
    assert report["monitored"]["EC_PJ_2"]["value"] == "6.9"
    assert report["monitored"]["EC_PJ_1"]["raises"] == "RE"
    assert report["fixed"]["EF_elec"]["value"] == "0.533"  # given in tCO2/kWh, converted exactly
    # RE = 23 × 0.533 × 6.2 / 4.5 + 6.9 × 0.533 × 5.8 / 5 = 76.0058 / 4.5 + 4.266132 = 21.156309777...
    # PE = (23 + 6.9) × 0.533 = 15.9367;  ER = 5.219609777...  -> 5
    assert _close(
        report["reference_emissions_tco2"], Fraction("76.0058") / Fraction("4.5") + Fraction("4.266132")
    )
    assert report["project_emissions_tco2"] == "15.9367"
    assert report["emission_reductions_unrounded_tco2"].startswith("5.2196097777")
    assert report["emission_reductions_tco2"] == 5
    assert report["findings"] == []


def test_chiller_gap_lowers_er() -> None:
    # 06:00 and 07:00 of chiller 1 missing: its rise from 05:00 to 08:00 (3 × 0.4 MWh) counts as zero,
    # which lowers RE and PE alike, and ER by 1.2 × 0.533 × (6.2/4.5 − 1) = 0.241626666...
    whole = compute_report(CHILLERS, UTC_DAY, MemoryRecordSource(_chiller_records()))
    gapped = compute_report(CHILLERS, UTC_DAY, MemoryRecordSource(_chiller_records(frozenset({30, 31}))))
    point = gapped["monitored"]["EC_PJ_1"]["points"][0]
    assert [(g["rule"], g["effect"], g["unit"]) for g in point["gaps"]] == [("gap_excluded", "-1.2", "MWh")]
    assert gapped["monitored"]["EC_PJ_1"]["value"] == "21.8"
    lost = Fraction(D(whole["emission_reductions_unrounded_tco2"])) - Fraction(
        D(gapped["emission_reductions_unrounded_tco2"])
    )
    assert abs(
        lost - Fraction("1.2") * Fraction("0.533") * (Fraction("6.2") / Fraction("4.5") - 1)
    ) < Fraction(1, 10**70)
    assert gapped["emission_reductions_tco2"] == 4 < whole["emission_reductions_tco2"]
    assert gapped["completeness"]["missing_records"] == 2


COGENERATION_FIXED = {
    "EF_elec": ("0.619", "tCO2/MWh"),
    "eta_RE_boiler": ("0.9", "1"),
    "EF_fuel_RE": ("0.0741", "tCO2/GJ"),
    "NCV_gas": ("38.9", "MJ/Nm3"),
    "EF_gas": ("56100", "kgCO2/TJ"),
}
COGENERATION = _spec(
    "cogeneration",
    [
        ("EL_CGS", "cgs-meter", "energy_active_export_total"),
        ("Q_CGS", "heat-meter", "heat_energy_total"),
        ("FC_CGS", "gas-meter", "gas_volume_total"),
    ],
    COGENERATION_FIXED,
)


def _cogeneration_records(
    heat: tuple[str, str] = ("MWh", "2.5"),
    heat_skip: frozenset[int] = frozenset(),
    gas_skip: frozenset[int] = frozenset(),
) -> list[bytes]:
    gw = Gateway()
    return (
        _counter(gw, "cgs-meter", "energy_active_export_total", "kWh", "1000")
        + _counter(gw, "heat-meter", "heat_energy_total", heat[0], heat[1], skip=heat_skip)
        + _counter(gw, "gas-meter", "gas_volume_total", "Nm3", "250", skip=gas_skip)
    )


def test_cogeneration_report_end_to_end() -> None:
    report = compute_report(COGENERATION, UTC_DAY, MemoryRecordSource(_cogeneration_records()))
    # EL = 23 h × 1 MWh = 23 MWh; Q = 23 h × 2.5 MWh = 57.5 MWh = 207 GJ (the heat meter counts MWh);
    # FC = 25 h × 250 Nm3 = 6,250 Nm3 (a PE parameter: the readings cover the period)
    assert [report["monitored"][p]["value"] for p in ("EL_CGS", "Q_CGS", "FC_CGS")] == ["23", "207", "6250"]
    assert [report["monitored"][p]["unit"] for p in ("EL_CGS", "Q_CGS", "FC_CGS")] == ["MWh", "GJ", "Nm3"]
    assert report["fixed"]["NCV_gas"]["value"] == "0.0389" and report["fixed"]["EF_gas"]["value"] == "0.0561"
    # RE = 23 × 0.619 + 207 × 0.0741 / 0.9 = 14.237 + 17.043 = 31.28
    # PE = 6,250 × 0.0389 × 0.0561 = 243.125 GJ × 0.0561 = 13.6393125;  ER = 17.6406875  -> 17
    assert report["reference_emissions_tco2"] == "31.28"
    assert report["project_emissions_tco2"] == "13.6393125"
    assert report["emission_reductions_unrounded_tco2"] == "17.6406875"
    assert report["emission_reductions_tco2"] == 17
    # The same heat counted in GJ (9 GJ an hour) gives the same report numbers, exactly.
    in_gj = compute_report(COGENERATION, UTC_DAY, MemoryRecordSource(_cogeneration_records(heat=("GJ", "9"))))
    assert in_gj["monitored"]["Q_CGS"]["value"] == "207"
    assert in_gj["emission_reductions_unrounded_tco2"] == "17.6406875"


def test_cogeneration_gaps_are_conservative() -> None:
    # A gap in the heat meter (raises RE) lowers ER: 3 h × 2.5 MWh = 27 GJ left out,
    # RE = 14.237 + 180 × 0.0741 / 0.9 = 29.057, ER = 15.4176875 -> 15.
    heat_gap = compute_report(
        COGENERATION, UTC_DAY, MemoryRecordSource(_cogeneration_records(heat_skip=frozenset({30, 31})))
    )
    assert heat_gap["monitored"]["Q_CGS"]["points"][0]["gaps"][0]["rule"] == "gap_excluded"
    assert heat_gap["monitored"]["Q_CGS"]["value"] == "180"
    assert heat_gap["emission_reductions_unrounded_tco2"] == "15.4176875"
    assert heat_gap["emission_reductions_tco2"] == 15
    # A gap in the gas meter (raises PE) keeps the counter's rise: ER does not grow.
    gas_gap = compute_report(
        COGENERATION, UTC_DAY, MemoryRecordSource(_cogeneration_records(gas_skip=frozenset({30, 31})))
    )
    assert gas_gap["monitored"]["FC_CGS"]["points"][0]["gaps"][0]["rule"] == "gap_included"
    assert gas_gap["monitored"]["FC_CGS"]["value"] == "6250"
    assert gas_gap["emission_reductions_unrounded_tco2"] == "17.6406875"


def test_boiler_and_energy_management_reports_end_to_end() -> None:
    gw = Gateway()
    boiler = _spec(
        "boiler-heat",
        [("Q", "heat-meter", "heat_energy_total"), ("EC_AUX", "aux", "energy_active_import_total")],
        {
            "eta_RE": ("0.89", "1"),
            "eta_PJ": ("0.98", "1"),
            "EF_fuel": ("0.0561", "tCO2/GJ"),
            "EF_grid": ("0.533", "tCO2/MWh"),
        },
    )
    records = _counter(gw, "heat-meter", "heat_energy_total", "GJ", "10") + _counter(
        gw, "aux", "energy_active_import_total", "kWh", "20"
    )
    report = compute_report(boiler, UTC_DAY, MemoryRecordSource(records))
    # Q = 230 GJ (23 h), EC_aux = 0.5 MWh (25 h); Q × EF = 12.903
    # RE = 12.903 / 0.89 = 14.4977528...; PE = 12.903 / 0.98 + 0.5 × 0.533 = 13.1663265... + 0.2665
    assert (report["monitored"]["Q"]["value"], report["monitored"]["EC_AUX"]["value"]) == ("230", "0.5")
    expected = (
        Fraction("12.903") / Fraction("0.89") - Fraction("12.903") / Fraction("0.98") - Fraction("0.2665")
    )
    assert _close(report["emission_reductions_unrounded_tco2"], expected)  # 1.06492623...
    assert report["emission_reductions_tco2"] == 1

    gw = Gateway()
    factory = _spec(
        "energy-management-2-carriers",
        [
            ("OUTPUT", "scale", "output_mass_total"),
            ("E_1", "grid", "energy_active_import_total"),
            ("E_2", "genset", "energy_active_export_total"),
        ],
        {
            "SEC_ref": ("123.4", "kWh/t"),
            "EF_RE": ("0.533", "tCO2/MWh"),
            "EF_1": ("0.797", "tCO2/MWh"),
            "EF_2": ("0.533", "tCO2/MWh"),
        },
    )
    records = (
        _counter(gw, "scale", "output_mass_total", "t", "20")
        + _counter(gw, "grid", "energy_active_import_total", "kWh", "1000")
        + _counter(gw, "genset", "energy_active_export_total", "kWh", "200")
    )
    report = compute_report(factory, UTC_DAY, MemoryRecordSource(records))
    # Output = 460 t (23 h); E_1 = 25 MWh, E_2 = 5 MWh (25 h)
    # RE = 0.1234 × 460 × 0.533 = 30.255212; PE = 25 × 0.797 + 5 × 0.533 = 22.59; ER = 7.665212 -> 7
    assert [report["monitored"][p]["value"] for p in ("OUTPUT", "E_1", "E_2")] == ["460", "25", "5"]
    assert (report["reference_emissions_tco2"], report["project_emissions_tco2"]) == ("30.255212", "22.59")
    assert report["emission_reductions_tco2"] == 7


# --------------------------------------------------------------------------- project configs

EXAMPLES = sorted((ROOT / "config/projects").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_project_validates(path: Path) -> None:
    project = load_project(path)
    spec = project.to_spec()
    assert spec.methodology_id in registry()


def test_every_family_has_an_example_project() -> None:
    methodologies = registry()
    families = {methodologies[load_project(path).methodology.id].family for path in EXAMPLES}
    assert families == {m.family for m in methodologies.values()}


def _example(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "config/projects" / name).read_text())
    assert isinstance(data, dict)
    return data


def _point(of: str, /, **change: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        for point in data["monitoring_points"]:
            if point["parameter"] == of:
                point.update(change)

    return edit


def _fixed(name: str, **change: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["fixed"][name].update(change)

    return edit


def _without_fixed(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        del data["fixed"][name]

    return edit


def _without_points(*parameters: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["monitoring_points"] = [p for p in data["monitoring_points"] if p["parameter"] not in parameters]

    return edit


def _methodology(methodology_id: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["methodology"]["id"] = methodology_id

    return edit


def _extra_fixed(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["fixed"][name] = {"value": "1", "unit": "1", "source": "doc"}

    return edit


CGS = "example-cogeneration.yaml"
CHILLER = "example-chiller.yaml"
BOILER = "example-boiler.yaml"
EMS = "example-energy-management.yaml"
PV = "demo-pv.yaml"


@pytest.mark.parametrize(
    "example,edit,expected",
    [
        (
            CGS,
            _methodology("cogen"),
            "methodology.id: unknown methodology 'cogen'; known: pv-grid, high-efficiency-equipment",
        ),
        (CGS, _without_fixed("NCV_gas"), "fixed: fixed parameter NCV_gas (NCV_gas) is missing"),
        (
            CGS,
            _point("FC_CGS", quantity="energy_active_import_total"),
            "monitoring_points[2].quantity: monitoring point 3: energy_active_import_total cannot measure FC_CGS (in Nm3)",
        ),
        (
            CGS,
            _point("EL_CGS", quantity="heat_energy_total"),
            "monitoring_points[0].quantity: monitoring point 1: heat_energy_total cannot measure EL_CGS: EL_CGS,p is measured by energy_active_import_total, energy_active_export_total, energy_active_total",
        ),
        (
            CGS,
            _point("Q_CGS", quantity="energy_active_total"),
            "monitoring_points[1].quantity: monitoring point 2: energy_active_total cannot measure Q_CGS: Q_CGS,p is measured by heat_energy_total",
        ),
        (
            CGS,
            _point("Q_CGS", quantity="gas_volume_total"),
            "monitoring_points[1].quantity: monitoring point 2: gas_volume_total cannot measure Q_CGS (in GJ)",
        ),
        (
            CGS,
            _point("FC_CGS", quantity="no_such_quantity"),
            "monitoring_points[2].quantity: Value error, unknown quantity",
        ),
        (CGS, _fixed("NCV_gas", unit="GJ"), "fixed.NCV_gas.unit: GJ is not convertible to GJ/Nm3"),
        (CGS, _fixed("NCV_gas", unit="MJ/m3"), "fixed.NCV_gas.unit: unknown unit 'MJ/m3'"),
        (CGS, _fixed("EF_gas", unit="tCO2/MWh", value="0.20196"), None),  # convertible: accepted
        (CGS, _fixed("NCV_gas", unit="GJ/Nm3", value="0.0389"), None),
        (CGS, _fixed("NCV_gas", value="-38.9"), "fixed.NCV_gas.value: must be a finite number, 0 or more"),
        (CGS, _fixed("eta_RE_boiler", value="0"), "fixed.eta_RE_boiler: must be above 0 (got 0)"),
        (
            CGS,
            _without_points("EL_CGS", "Q_CGS"),
            "monitoring_points: neither EL_CGS (electricity) nor Q_CGS (heat) has a monitoring point",
        ),
        (CGS, _without_points("EL_CGS"), None),  # heat recovery only
        (
            CGS,
            _without_points("FC_CGS"),
            "monitoring_points: monitored parameter FC_CGS (FC_CGS,p) has no monitoring point",
        ),
        (CGS, _extra_fixed("COP_PJ_1"), "fixed.COP_PJ_1: cogeneration has no parameter 'COP_PJ_1'"),
        (
            CGS,
            _point("EL_CGS", parameter="NCV_gas"),
            "monitoring_points[0].parameter: monitoring point 1: NCV_gas is fixed ex ante, not monitored",
        ),
        (
            CHILLER,
            _fixed("COP_PJ_2", value="4.9"),
            "fixed.COP_PJ_2: 4.9 must exceed COP_RE_2 (5): the methodology is for equipment more efficient",
        ),
        (CHILLER, _fixed("COP_PJ_1", value="4.5"), "fixed.COP_PJ_1: 4.5 must exceed COP_RE_1 (4.5)"),
        (CHILLER, _fixed("COP_RE_1", value="0"), "fixed.COP_RE_1: must be above 0 (got 0)"),
        (CHILLER, _without_fixed("COP_RE_2"), "fixed: fixed parameter COP_RE_2 (COP_RE,2) is missing"),
        (CHILLER, _fixed("COP_PJ_1", unit="kWh"), "fixed.COP_PJ_1.unit: kWh is not convertible to 1"),
        (
            CHILLER,
            _point("EC_PJ_2", parameter="EC_PJ_3"),
            "monitoring_points[2].parameter: monitoring point 3: high-efficiency-equipment-2-groups has no parameter 'EC_PJ_3'",
        ),
        (
            CHILLER,
            _without_points("EC_PJ_2"),
            "monitoring_points: monitored parameter EC_PJ_2 (EC_PJ,2,p) has no monitoring point",
        ),
        (
            CHILLER,
            _point("EC_PJ_1", quantity="power_active_total"),
            "monitoring_points[0].quantity: monitoring point 1: power_active_total cannot measure EC_PJ_1 (in MWh)",
        ),
        (CHILLER, _fixed("EF_elec", unit="kgCO2/kWh"), None),
        (BOILER, _fixed("eta_PJ", value="0.85"), "fixed.eta_PJ: 0.85 must exceed eta_RE (0.89)"),
        (
            BOILER,
            _point("Q", quantity="energy_active_export_total"),
            "monitoring_points[0].quantity: monitoring point 1: energy_active_export_total cannot measure Q: Q_p is measured by heat_energy_total",
        ),
        (BOILER, _without_points("EC_AUX"), None),  # auxiliary electricity is optional
        (BOILER, _fixed("EF_fuel", unit="tCO2/Nm3"), "fixed.EF_fuel.unit: unknown unit 'tCO2/Nm3'"),
        (
            EMS,
            _point("OUTPUT", quantity="energy_active_total"),
            "monitoring_points[0].quantity: monitoring point 1: energy_active_total cannot measure OUTPUT (in t)",
        ),
        (EMS, _point("E_2", quantity="heat_energy_total"), None),  # purchased heat is a carrier too
        (EMS, _fixed("SEC_ref", unit="kWh"), "fixed.SEC_ref.unit: kWh is not convertible to MWh/t"),
        (EMS, _fixed("SEC_ref", unit="GJ/t", value="0.44424"), None),
        (EMS, _fixed("SEC_ref", value="NaN"), "fixed.SEC_ref.value: Input should be a finite number"),
        (
            EMS,
            _methodology("energy-management"),
            "monitoring_points[2].parameter: monitoring point 3: energy-management has no parameter 'E_2'",
        ),
        (
            PV,
            _point("EG", quantity="heat_energy_total"),
            "monitoring_points[0].quantity: monitoring point 1: heat_energy_total cannot measure EG: EG_i,p is measured by",
        ),
    ],
)
def test_project_errors(
    tmp_path: Path, example: str, edit: Callable[[dict[str, Any]], None], expected: str | None
) -> None:
    data = _example(example)
    edit(data)
    path = tmp_path / example
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    if expected is None:
        load_project(path)
        return
    with pytest.raises(ConfigError) as info:
        load_project(path)
    # file, key, reason: one line, no dump of the document
    assert str(info.value).startswith(f"{path}: {expected}")
    assert "\n" not in str(info.value) and "(got {" not in str(info.value)


def test_every_condition_is_reported_with_its_key(tmp_path: Path) -> None:
    data = _example(CHILLER)
    _fixed("COP_PJ_1", value="4")(data)
    _fixed("COP_PJ_2", value="5")(data)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(ConfigError) as info:
        load_project(path)
    lines = str(info.value).splitlines()
    assert [line.split(": ")[:3] for line in lines] == [
        [str(path), "fixed.COP_PJ_1", "4 must exceed COP_RE_1 (4.5)"],
        [str(path), "fixed.COP_PJ_2", "5 must exceed COP_RE_2 (5)"],
    ]


def test_a_quantity_that_is_no_counter_cannot_feed_a_parameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No such quantity is shipped yet (every energy quantity is a counter): a heat power reading in
    # the energy dimension by mistake must still be refused.
    monkeypatch.setitem(QUANTITIES, "heat_instant", ("energy", False))
    data = _example(BOILER)
    _point("Q", quantity="heat_instant")(data)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(ConfigError, match="heat_instant cannot measure Q: it is not a cumulative counter"):
        load_project(path)


def test_example_cogeneration_report_through_the_config() -> None:
    """The example file's spec runs through the report: fixed values in MJ/Nm3 and kgCO2/TJ convert."""
    spec = load_project(ROOT / "config/projects" / CGS).to_spec()
    gw = Gateway(gateway="gw-example-cgs")
    records = (
        _counter(gw, "cgs-meter", "energy_active_export_total", "kWh", "1000")
        + _counter(gw, "heat-meter-1", "heat_energy_total", "GJ", "9")
        + _counter(gw, "gas-meter-1", "gas_volume_total", "Nm3", "250")
    )
    report = compute_report(
        ProjectSpec(spec.id, spec.name, "UTC", spec.methodology_id, "1", "r", spec.points, spec.fixed),
        UTC_DAY,
        MemoryRecordSource(records),
    )
    assert report["fixed"]["EF_gas"]["value"] == "0.0561"
    assert report["emission_reductions_unrounded_tco2"] == "17.6406875"
