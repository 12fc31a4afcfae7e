"""The shipped firmware-profile catalog, checked against facts read by hand from each register map.

Every shipped profile must appear in FACTS: the energy import counter and a few other registers,
with the function, protocol address (0-based), type, word order, scale and unit the manufacturer's
register map gives. A profile whose address, type, order or scale drifts from the map fails here;
the Modbus round trip in tests/integration/test_profile_catalog_modbus.py cannot see such an error
(the simulator encodes with the same profile the agent decodes with).

Every shipped profile must also appear in IDENT_FACTS: its identification items (Modbus device
identification objects or identification registers) as the sources named in the profile give
them, with the expected values that were verified (none where a value could not be). An item
whose models answer different codes may expect a list of them, but only where the whole list is
verified (the manufacturer's document, or two independent sources that agree). Profiles that
share a register layout must differ in an expected value where model codes were found, so that
`mrv-agent scan` can tell them apart; where none were found the pair is listed as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import combinations, product
from pathlib import Path

import pytest

from agent.plan import plan_reads
from mrv_core.config_errors import load_yaml_text
from mrv_core.identity import DEVICE_ID_OBJECTS, check_identity, register_text
from mrv_core.profile import IdentItem, Profile
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


# --- Identification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentFact:
    """One identification item as its sources give it: ``source`` is ``43/14`` (then ``at`` is the
    basic object name) or the register function (then ``at`` is the protocol address)."""

    name: str
    source: str
    at: str | int
    type: str | None = None
    length: int = 1
    expect: str | tuple[str, ...] | None = None  # one text, or the texts it may be (profile order)


def _obj(name: str, obj: str, expect: str | tuple[str, ...] | None = None) -> IdentFact:
    return IdentFact(name, "43/14", obj, expect=expect)


# file (relative to firmware_profiles/) -> (firmware_item, identification items), hand-checked
IDENT_FACTS: dict[str, tuple[str | None, tuple[IdentFact, ...]]] = {
    "eastron/sdm630-modbus-v2.yaml": (
        None,
        (
            # 464515 Meter code = 0xFC02, u16: 0x0070 = SDM630 (Tinkerforge; Weichenberger: 112)
            IdentFact("meter_code", "holding", 0xFC02, "u16", expect="112"),
            # 464513 Serial number = 0xFC00, unsigned int32 (SDM630 V2 manual; nmakel/sdm_modbus)
            IdentFact("serial", "holding", 0xFC00, "u32", 2),
        ),
    ),
    "eastron/sdm120-modbus.yaml": (
        None,
        (
            # 0xFC02 Meter code: no value verified for the SDM120, read only
            IdentFact("meter_code", "holding", 0xFC02, "u16"),
            IdentFact("serial", "holding", 0xFC00, "u32", 2),
        ),
    ),
    "eastron/sdm72d-m-v2.yaml": (
        None,
        (
            # "meter code 0089" (SDM72D-M-v2 protocol; sdm72 crate; Tinkerforge; Weichenberger: 137)
            IdentFact("meter_code", "holding", 0xFC02, "u16", expect="137"),
            IdentFact("serial", "holding", 0xFC00, "u32", 2),
        ),
    ),
    "abb/b23-b24.yaml": (
        "firmware",
        (
            # Type designation 8960 hex, ASCII: "B23 ..." / "B24 ..." (Victron abb.py 0x42323320/0x42323420)
            IdentFact("type_family", "holding", 0x8960, "string", 1, expect="B2"),
            IdentFact("type_designation", "holding", 0x8960, "string", 6),
            # Serial number 8900 hex, 2 registers, unsigned
            IdentFact("serial", "holding", 0x8900, "u32", 2),
            # Meter firmware version 8908 hex, 8 registers, ASCII (e.g. 1.0.0)
            IdentFact("firmware", "holding", 0x8908, "string", 8),
        ),
    ),
    "carlo-gavazzi/em24-din.yaml": (
        None,
        (
            # 000Bh Carlo Gavazzi Controls identification code, read only: sources disagree on the
            # AV9 (Weichenberger 70 AV9/71 AV2/72 AV5/73 AV6; enman 71..73, no 70; Victron
            # dbus-cgwacs 71..73 only, AV9 among them; IW SCADA 45..48, 94): no verified list
            IdentFact("model_code", "input", 0x000B, "u16"),
            # serial 1300h, 7 words (enman, Weichenberger)
            IdentFact("serial", "input", 0x1300, "string", 7),
        ),
    ),
    "carlo-gavazzi/em340.yaml": (
        None,
        (
            # 000Bh identification code, read only: 341 EM340 and 346 EM341 agree, but enman also
            # gives 340 to an EM340 and an earlier Victron dbus-cgwacs names 345 an EM340 (enman
            # and later dbus-cgwacs: ET340): no verified list
            IdentFact("model_code", "input", 0x000B, "u16"),
            # serial 5000h, 7 words, one character per word (table 2.9-9; enman)
            IdentFact("serial", "input", 0x5000, "string", 7),
        ),
    ),
    "schneider-electric/iem3x55.yaml": (
        "firmware",
        (
            _obj("vendor", "vendor_name", "Schneider Electric"),
            # A9MEM3155 / A9MEM3255 / A9MEM3355 only by analogy with other Schneider manuals
            # ("identical to the catalog number"); DOCA0005EN-04 gives no value: not verified
            _obj("product", "product_code"),
            _obj("firmware", "major_minor_revision"),
            # register 130 Serial number, UInt32 -> 129; register 50 Meter model, 20 x UTF8 -> 49
            IdentFact("serial", "holding", 129, "u32", 2),
            IdentFact("meter_model", "holding", 49, "string", 20),
        ),
    ),
    "schneider-electric/pm5100-pm5300.yaml": (
        None,
        (
            # register 90 Product ID -> 89: 15270..15277 by model in SolarNetwork only (one source),
            # not verified; register 130 Serial number -> 129
            IdentFact("product_id", "holding", 89, "u16"),
            IdentFact("serial", "holding", 129, "u32", 2),
        ),
    ),
    "janitza/umg-96-rm.yaml": (None, ()),  # nothing verified for the UMG 96-RM
    "socomec/countis-e23-e24.yaml": (
        None,
        (
            # 50000 (C350 hex), 4 words, "SOCO" (Socomec common JBUS table; OpenEMS 0x0053004F0043004F)
            IdentFact("socomec", "holding", 0xC350, "string", 4, expect="SOCO"),
        ),
    ),
}

# Profiles whose register maps overlap: a device of one reads plausibly as the other.
SHARED_LAYOUTS: tuple[tuple[str, ...], ...] = (
    ("eastron/sdm630-modbus-v2.yaml", "eastron/sdm120-modbus.yaml", "eastron/sdm72d-m-v2.yaml"),
    ("schneider-electric/iem3x55.yaml", "schneider-electric/pm5100-pm5300.yaml"),
)
# Pairs no verified model code tells apart yet (see the profiles' identification comments).
NOT_TOLD_APART: frozenset[frozenset[str]] = frozenset(
    {
        frozenset({"eastron/sdm630-modbus-v2.yaml", "eastron/sdm120-modbus.yaml"}),
        frozenset({"eastron/sdm72d-m-v2.yaml", "eastron/sdm120-modbus.yaml"}),
        frozenset({"schneider-electric/iem3x55.yaml", "schneider-electric/pm5100-pm5300.yaml"}),
    }
)


def _ident_seen(item: IdentItem) -> IdentFact:
    if item.device_id is not None:
        objects = {number: name for name, number in DEVICE_ID_OBJECTS.items()}
        return IdentFact(item.name, "43/14", objects[item.device_id], expect=item.expect)
    assert item.function is not None and item.address is not None
    return IdentFact(item.name, item.function, item.address, item.type, item.length, item.expect)


def _ident_mismatches(profile: Profile, firmware_item: str | None, facts: tuple[IdentFact, ...]) -> list[str]:
    found = []
    seen = {item.name: _ident_seen(item) for item in profile.identification}
    want = {fact.name: fact for fact in facts}
    for name in sorted(set(seen) | set(want)):
        if seen.get(name) != want.get(name):
            found.append(f"{profile.id} {name}: profile says {seen.get(name)}, sources say {want.get(name)}")
    if profile.firmware_item != firmware_item:
        found.append(f"{profile.id}: firmware_item {profile.firmware_item!r}, expected {firmware_item!r}")
    return found


def test_every_shipped_profile_has_hand_checked_identification_facts() -> None:
    assert sorted(_relative(p) for p in SHIPPED) == sorted(IDENT_FACTS), (
        "a new profile needs its identification items (or an empty tuple) in IDENT_FACTS"
    )


@pytest.mark.parametrize("relative", sorted(IDENT_FACTS))
def test_identification_matches_its_sources(relative: str) -> None:
    firmware_item, facts = IDENT_FACTS[relative]
    assert _ident_mismatches(_profile(relative), firmware_item, facts) == []


@pytest.mark.parametrize("relative", sorted(IDENT_FACTS))
def test_identification_registers_stay_out_of_the_measurement_reads(relative: str) -> None:
    """An identification register inside a measurement register, or inside a request the read plan
    merges, would be served (and read) as two different things."""
    profile = _profile(relative)
    plan = plan_reads(profile.registers, profile.max_registers_per_request, profile.max_gap_registers)
    spans = [(r.function, r.address, r.address + r.count) for r in plan.requests]
    for item in profile.identification:
        if item.device_id is not None:
            continue
        for offset in range(item.length):
            address = item.address + offset if item.address is not None else -1
            inside = [s for s in spans if s[0] == item.function and s[1] <= address < s[2]]
            assert not inside, f"{profile.id} {item.name}: {item.function} {address} is read by {inside}"


def _fits(item: IdentItem, text: str) -> bool:
    """An expected text is something the item's registers can hold and give back unchanged."""
    if item.device_id is not None:
        return bool(text.strip())
    if item.type in ("u16", "u32"):
        value = int(text)
        bits = 16 * item.length
        words = [(value >> (16 * (item.length - 1 - i))) & 0xFFFF for i in range(item.length)]
        return 0 <= value < 2**bits and register_text(item.type, words) == text
    data = text.encode("ascii").ljust(2 * item.length, b"\x00")
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return len(data) == 2 * item.length and register_text("string", words) == text


@pytest.mark.parametrize("relative", sorted(IDENT_FACTS))
def test_expected_values_fit_their_registers(relative: str) -> None:
    profile = _profile(relative)
    for item in profile.identification:
        for text in item.allowed:  # each allowed value, where an item allows several
            assert _fits(item, text), f"{profile.id} {item.name}: {text!r} does not fit {item.type}"


@pytest.mark.parametrize(
    ("words", "kind", "text"),
    [
        ([0x0070], "u16", "112"),  # Eastron meter code of the SDM630
        ([0x0089], "u16", "137"),  # Eastron meter code 0089 of the SDM72D-M-2
        ([0x4232], "string", "B2"),  # first word of ABB "B23 " (u32 0x42323320 in Victron's abb.py)
        ([0x4232, 0x3320], "string", "B23"),  # the second word shows the model (not compared)
        ([0x0053, 0x004F, 0x0043, 0x004F], "string", "SOCO"),  # Socomec, one character per word
        ([0x0053, 0x004E, 0x0030, 0x0031], "string", "SN01"),  # Carlo Gavazzi serial, a character per word
    ],
)
def test_the_words_a_device_sends_read_as_the_expected_text(words: list[int], kind: str, text: str) -> None:
    assert register_text(kind, words) == text


def _key(item: IdentItem) -> tuple[object, ...]:
    return (
        ("43/14", item.device_id) if item.device_id is not None else (item.function, item.address, item.type)
    )


def _told_apart(device_of: Profile, profile: Profile) -> bool:
    """Would every device that answers as ``device_of`` allows fail ``profile``'s identity check?
    Only items both profiles expect a value for count (what a device answers elsewhere is unknown);
    where an item allows several values, every combination of them is tried."""
    answers = {_key(item): item.allowed for item in device_of.identification if item.allowed}
    shared = [i for i in profile.identification if i.allowed and _key(i) in answers]
    expected = {i.name: i.expect for i in shared}
    return all(
        not check_identity(expected, "*", None, dict(zip(expected, texts, strict=True))).matches
        for texts in product(*(answers[_key(i)] for i in shared))
    )


@pytest.mark.parametrize("group", SHARED_LAYOUTS, ids=lambda g: g[0].split("/")[0])
def test_profiles_sharing_a_layout_are_told_apart_where_model_codes_were_found(
    group: tuple[str, ...],
) -> None:
    for a, b in combinations(group, 2):
        pa, pb = _profile(a), _profile(b)
        apart = _told_apart(pa, pb) and _told_apart(pb, pa)
        if frozenset({a, b}) in NOT_TOLD_APART:
            assert not apart, f"{a} and {b} are now told apart: remove them from NOT_TOLD_APART"
        else:
            assert apart, f"{pa.id} and {pb.id} expect no differing value: scan cannot tell them apart"


def test_a_told_apart_pair_exists_in_every_group_with_model_codes() -> None:
    """The Eastron SDM630 and SDM72D-M V2 expect their own meter codes (112, 137)."""
    sdm630, sdm72 = _profile("eastron/sdm630-modbus-v2.yaml"), _profile("eastron/sdm72d-m-v2.yaml")
    assert _told_apart(sdm630, sdm72) and _told_apart(sdm72, sdm630)
    assert not _told_apart(sdm630, sdm630)
    relative = "eastron/sdm72d-m-v2.yaml"
    text = (PROFILE_DIR / relative).read_text(encoding="utf-8").replace("expect: 137", "expect: 112", 1)
    same_code = parse_profile(load_yaml_text(text, relative), relative)
    assert not _told_apart(sdm630, same_code), "a copied meter code would make the two indistinguishable"


@pytest.mark.parametrize(
    ("codes", "apart"),
    [
        ("[137, 138]", True),  # neither is the SDM630's 112
        ("[137, 112]", False),  # a device answering 112 passes both profiles
        ("[112]", False),  # a one-value list is that value
    ],
)
def test_a_list_of_codes_tells_apart_only_if_none_is_shared(codes: str, apart: bool) -> None:
    sdm630 = _profile("eastron/sdm630-modbus-v2.yaml")
    relative = "eastron/sdm72d-m-v2.yaml"
    text = (PROFILE_DIR / relative).read_text(encoding="utf-8").replace("expect: 137", f"expect: {codes}", 1)
    listed = parse_profile(load_yaml_text(text, relative), relative)
    assert (_told_apart(sdm630, listed) and _told_apart(listed, sdm630)) is apart


@pytest.mark.parametrize(
    ("relative", "change"),
    [
        ("eastron/sdm72d-m-v2.yaml", ("expect: 137", "expect: 112")),  # the SDM630's code
        ("eastron/sdm72d-m-v2.yaml", ("expect: 137", "expect: [137, 112]")),  # a list with another's
        ("eastron/sdm72d-m-v2.yaml", ("address: 0xFC02, type: u16", "address: 0xFC03, type: u16")),
        ("socomec/countis-e23-e24.yaml", ("length: 4, expect: SOCO", "length: 2, expect: SOCO")),
        ("abb/b23-b24.yaml", ("length: 1, expect: B2", "length: 1, expect: B23")),
    ],
)
def test_a_wrong_identification_item_is_caught(relative: str, change: tuple[str, str]) -> None:
    text = (PROFILE_DIR / relative).read_text(encoding="utf-8")
    assert change[0] in text
    wrong = parse_profile(load_yaml_text(text.replace(change[0], change[1], 1), relative), relative)
    firmware_item, facts = IDENT_FACTS[relative]
    assert _ident_mismatches(wrong, firmware_item, facts), f"{change} went unnoticed"
