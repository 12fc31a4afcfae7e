"""The shipped firmware-profile catalog, checked against facts read by hand from each register map.

Every shipped profile must appear in FACTS: the energy import counter and a few other registers,
with the function, protocol address (0-based), type, word order, scale and unit the manufacturer's
register map gives. A profile whose address, type, order or scale drifts from the map fails here;
the Modbus round trip in tests/integration/test_profile_catalog_modbus.py cannot see such an error
(the simulator encodes with the same profile the agent decodes with).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from mrv_core.config_errors import load_yaml_text
from mrv_core.profile import Profile
from mrv_core.profile_schema import load_profile, load_profile_dir, parse_profile

ROOT = Path(__file__).parents[2]
PROFILE_DIR = ROOT / "firmware_profiles"
SHIPPED = sorted(PROFILE_DIR.rglob("*.yaml"))


@dataclass(frozen=True)
class Fact:
    """One register as the manufacturer's map states it."""

    quantity: str
    function: str
    address: int
    type: str
    order: str
    scale: str
    unit: str


# file (relative to firmware_profiles/) -> (profile id, facts from the register map)
FACTS: dict[str, tuple[str, tuple[Fact, ...]]] = {
    "eastron/sdm630-modbus-v2.yaml": (
        "eastron-sdm630-v2",
        (
            # SDM630 Modbus protocol: 30073 Total import kWh = 0x0048, float, input register
            Fact("energy_active_import_total", "input", 0x0048, "f32", "ABCD", "1", "kWh"),
            Fact("energy_active_export_total", "input", 0x004A, "f32", "ABCD", "1", "kWh"),
            Fact("power_active_total", "input", 0x0034, "f32", "ABCD", "1", "W"),
        ),
    ),
    "eastron/sdm120-modbus.yaml": (
        "eastron-sdm120-modbus",
        (
            # 30073 Import active energy = 0x0048; 30001 Voltage = 0x0000; 30071 Frequency = 0x0046
            Fact("energy_active_import_total", "input", 0x0048, "f32", "ABCD", "1", "kWh"),
            Fact("voltage_l1", "input", 0x0000, "f32", "ABCD", "1", "V"),
            Fact("frequency", "input", 0x0046, "f32", "ABCD", "1", "Hz"),
        ),
    ),
    "eastron/sdm72d-m-v2.yaml": (
        "eastron-sdm72d-m-v2",
        (
            # 30073 Total import kWh = 0x0048; 30053 Total system power = 0x0034
            Fact("energy_active_import_total", "input", 0x0048, "f32", "ABCD", "1", "kWh"),
            Fact("power_active_total", "input", 0x0034, "f32", "ABCD", "1", "W"),
            Fact("current_l3", "input", 0x000A, "f32", "ABCD", "1", "A"),
        ),
    ),
    "abb/b23-b24.yaml": (
        "abb-b23-b24",
        (
            # Active import kWh: start reg 5000 hex, 4 registers, unsigned, resolution 0,01 kWh
            Fact("energy_active_import_total", "holding", 0x5000, "u64", "ABCD", "0.01", "kWh"),
            Fact("energy_active_export_total", "holding", 0x5004, "u64", "ABCD", "0.01", "kWh"),
            # Active power total: 5B14 hex, 2 registers, signed, 0,01 W
            Fact("power_active_total", "holding", 0x5B14, "i32", "ABCD", "0.01", "W"),
            # Voltage L1-N: 5B00 hex, 2 registers, unsigned, 0,1 V
            Fact("voltage_l1", "holding", 0x5B00, "u32", "ABCD", "0.1", "V"),
            # Frequency: 5B2C hex, 1 register, unsigned, 0,01 Hz
            Fact("frequency", "holding", 0x5B2C, "u16", "ABCD", "0.01", "Hz"),
        ),
    ),
    "carlo-gavazzi/em24-din.yaml": (
        "carlo-gavazzi-em24-din",
        (
            # kWh(+) TOT: 300063 = 003Eh, INT32 LSW first, kWh*10 (not kWh(+) PAR at 0042h)
            Fact("energy_active_import_total", "input", 0x003E, "i32", "CDAB", "0.1", "kWh"),
            Fact("energy_active_export_total", "input", 0x005C, "i32", "CDAB", "0.1", "kWh"),
            # A L1: 000Ch, INT32, Ampere*1000
            Fact("current_l1", "input", 0x000C, "i32", "CDAB", "0.001", "A"),
            # Hz: 0037h, INT16, Hz*10
            Fact("frequency", "input", 0x0037, "i16", "ABCD", "0.1", "Hz"),
        ),
    ),
    "carlo-gavazzi/em340.yaml": (
        "carlo-gavazzi-em340",
        (
            # kWh(+) TOT: 0034h, INT32 LSW first, kWh*10
            Fact("energy_active_import_total", "input", 0x0034, "i32", "CDAB", "0.1", "kWh"),
            Fact("energy_active_export_total", "input", 0x004E, "i32", "CDAB", "0.1", "kWh"),
            # W sys: 0028h, INT32, Watt*10; PF sys: 0031h, INT16, PF*1000
            Fact("power_active_total", "input", 0x0028, "i32", "CDAB", "0.1", "W"),
            Fact("power_factor", "input", 0x0031, "i16", "ABCD", "0.001", "1"),
        ),
    ),
    "schneider-electric/iem3x55.yaml": (
        "schneider-iem3x55",
        (
            # register 3204 Total Active Energy Import, Int64, Wh -> protocol address 3203
            Fact("energy_active_import_total", "holding", 3203, "i64", "ABCD", "1", "Wh"),
            Fact("energy_active_export_total", "holding", 3207, "i64", "ABCD", "1", "Wh"),
            # register 3060 Total Active Power, Float32, kW -> 3059
            Fact("power_active_total", "holding", 3059, "f32", "ABCD", "1", "kW"),
            # register 3110 Frequency, Float32, Hz -> 3109
            Fact("frequency", "holding", 3109, "f32", "ABCD", "1", "Hz"),
        ),
    ),
    "schneider-electric/pm5100-pm5300.yaml": (
        "schneider-pm5100-pm5300",
        (
            # register 3204 Active Energy Delivered (Into Load), INT64, Wh -> 3203
            Fact("energy_active_import_total", "holding", 3203, "i64", "ABCD", "1", "Wh"),
            Fact("energy_active_export_total", "holding", 3207, "i64", "ABCD", "1", "Wh"),
            # register 3028 Voltage A-N, Float32, V -> 3027
            Fact("voltage_l1", "holding", 3027, "f32", "ABCD", "1", "V"),
            # register 3000 Current A, Float32, A -> 2999
            Fact("current_l1", "holding", 2999, "f32", "ABCD", "1", "A"),
        ),
    ),
    "janitza/umg-96-rm.yaml": (
        "janitza-umg96rm",
        (
            # 19068 Real energy L1..L3 consumed, float, Wh (address sent as is: 19000 = 4A38 hex)
            Fact("energy_active_import_total", "holding", 19068, "f32", "ABCD", "1", "Wh"),
            Fact("energy_active_export_total", "holding", 19076, "f32", "ABCD", "1", "Wh"),
            Fact("power_active_total", "holding", 19026, "f32", "ABCD", "1", "W"),
            Fact("frequency", "holding", 19050, "f32", "ABCD", "1", "Hz"),
        ),
    ),
    "socomec/countis-e23-e24.yaml": (
        "socomec-countis-e23-e24",
        (
            # 50770 (C652 hex) Ea+ total, not resettable, U32, kWh
            Fact("energy_active_import_total", "holding", 0xC652, "u32", "ABCD", "1", "kWh"),
            Fact("energy_active_export_total", "holding", 0xC658, "u32", "ABCD", "1", "kWh"),
            # 50536 (C568 hex) sum of active power +/-, S32, kW/100
            Fact("power_active_total", "holding", 0xC568, "i32", "ABCD", "0.01", "kW"),
            # 50520 (C558 hex) V1, U32, V/100
            Fact("voltage_l1", "holding", 0xC558, "u32", "ABCD", "0.01", "V"),
        ),
    ),
}


def _relative(path: Path) -> str:
    return path.relative_to(PROFILE_DIR).as_posix()


def test_at_least_ten_profiles_ship_with_distinct_ids_and_named_sources() -> None:
    profiles = load_profile_dir(PROFILE_DIR)  # raises on a duplicate id
    assert len(SHIPPED) >= 10
    assert len(profiles) == len(SHIPPED), "every file is a profile with its own id"
    for profile in profiles.values():
        assert profile.source.get("document", "").strip(), f"{profile.id}: names no source document"
        assert profile.source.get("version", "").strip(), f"{profile.id}: names no document version"
        assert profile.manufacturer.strip() and profile.model.strip()


def test_every_shipped_profile_has_hand_checked_facts() -> None:
    assert sorted(_relative(p) for p in SHIPPED) == sorted(FACTS), (
        "a new profile needs facts from its register map in FACTS"
    )


def _profile(relative: str) -> Profile:
    return load_profile(PROFILE_DIR / relative)


def _mismatches(profile: Profile, facts: tuple[Fact, ...]) -> list[str]:
    found = []
    for fact in facts:
        spec = profile.register(fact.quantity)
        seen = (spec.function, spec.address, spec.type, spec.order, spec.scale, spec.unit)
        want = (fact.function, fact.address, fact.type, fact.order, Decimal(fact.scale), fact.unit)
        if seen != want:
            found.append(f"{profile.id} {fact.quantity}: profile says {seen}, register map says {want}")
    return found


@pytest.mark.parametrize("relative", sorted(FACTS))
def test_profile_matches_its_register_map(relative: str) -> None:
    profile_id, facts = FACTS[relative]
    profile = _profile(relative)
    assert profile.id == profile_id
    assert any(f.quantity == "energy_active_import_total" for f in facts), "the import counter is checked"
    assert len(facts) >= 2, "the import counter and at least one other quantity"
    assert _mismatches(profile, facts) == []


@pytest.mark.parametrize("relative", sorted(FACTS))
def test_energy_counters_are_counters_and_instantaneous_values_are_not(relative: str) -> None:
    profile = _profile(relative)
    for spec in profile.registers:
        assert spec.counter == spec.quantity.startswith("energy_"), f"{profile.id} {spec.quantity}"


@pytest.mark.parametrize("relative", sorted(FACTS))
def test_registers_do_not_overlap(relative: str) -> None:
    """Two quantities sharing a register word would each decode the other's value."""
    profile = _profile(relative)
    taken: dict[tuple[str, int], str] = {}
    for spec in profile.registers:
        for offset in range(spec.width):
            key = (spec.function, spec.address + offset)
            assert key not in taken, f"{profile.id}: {spec.quantity} overlaps {taken[key]} at {key}"
            taken[key] = spec.quantity


@pytest.mark.parametrize(
    "change",
    [
        ("address: 0x5000", "address: 0x5001"),  # off by one register
        ("address: 0x5000, type: u64, scale: 0.01", "address: 0x5000, type: u64, scale: 0.1"),
        ("address: 0x5000, type: u64", "address: 0x5000, type: i64"),
    ],
)
def test_a_wrong_address_type_or_scale_is_caught(change: tuple[str, str]) -> None:
    """The fact check fails for a profile whose import counter drifts from the register map."""
    relative = "abb/b23-b24.yaml"
    text = (PROFILE_DIR / relative).read_text(encoding="utf-8")
    assert change[0] in text
    wrong = parse_profile(load_yaml_text(text.replace(change[0], change[1], 1), relative), relative)
    _, facts = FACTS[relative]
    assert _mismatches(wrong, facts), f"{change} went unnoticed"
