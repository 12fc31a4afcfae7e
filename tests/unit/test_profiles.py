from pathlib import Path

import pytest

from mrv_core.config_errors import ConfigError, load_yaml_text
from mrv_core.profile import Profile
from mrv_core.profile_schema import load_profile, load_profile_dir, parse_profile

ROOT = Path(__file__).parents[2]
PROFILES = sorted((ROOT / "firmware_profiles").rglob("*.yaml"))

GOOD = """
schema: 1
id: test-meter
manufacturer: ACME
model: M1
source: {document: ACME M1 register map, version: "2.0"}
registers:
  - {quantity: energy_active_import_total, function: input, address: 0x48, type: f32, unit: kWh}
"""


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_shipped_profile_loads_and_round_trips(path: Path) -> None:
    profile = load_profile(path)
    assert profile.source["document"]  # the manufacturer's register map is named
    again = Profile.from_canonical(profile.canonical_json)
    assert again == profile and again.sha256 == profile.sha256


def test_profile_ids_are_unique() -> None:
    assert len(load_profile_dir(ROOT / "firmware_profiles")) == len(PROFILES)


def test_sdm630_map() -> None:
    profile = load_profile(ROOT / "firmware_profiles/eastron/sdm630-modbus-v2.yaml")
    export = profile.register("energy_active_export_total")
    assert (export.function, export.address, export.type, export.order, export.unit, export.counter) == (
        "input",
        0x4A,
        "f32",
        "ABCD",
        "kWh",
        True,
    )
    assert not profile.register("voltage_l1").counter


def test_hash_ignores_descriptions_but_not_meaning() -> None:
    base = parse_profile(load_yaml_text(GOOD, "t"), "t")
    described = parse_profile(
        load_yaml_text(GOOD.replace("unit: kWh}", "unit: kWh, description: x}"), "t"), "t"
    )
    rescaled = parse_profile(load_yaml_text(GOOD.replace("unit: kWh}", "unit: kWh, scale: 0.1}"), "t"), "t")
    assert base.sha256 == described.sha256
    assert base.sha256 != rescaled.sha256


@pytest.mark.parametrize(
    "change,expected",
    [
        (("type: f32", "type: f33"), "registers[0].type: Input should be"),
        (
            ("quantity: energy_active_import_total", "quantity: energy"),
            "registers[0].quantity: Value error, unknown quantity",
        ),
        (("unit: kWh", "unit: V"), "unit V is not a unit of energy"),
        (("function: input", "function: coil"), "registers[0].function"),
        (("model: M1", "model: M1\ncolour: red"), "colour: unknown key"),
        (('source: {document: ACME M1 register map, version: "2.0"}\n', ""), "source: Field required"),
        (("address: 0x48", "address: 70000"), "registers[0].address"),
    ],
)
def test_bad_profiles_name_file_key_and_reason(change: tuple[str, str], expected: str) -> None:
    text = GOOD.replace(*change)
    with pytest.raises(ConfigError) as info:
        parse_profile(load_yaml_text(text, "acme.yaml"), "acme.yaml")
    assert str(info.value).startswith("acme.yaml: ")
    assert expected in str(info.value)


def test_yaml_syntax_error_has_line() -> None:
    with pytest.raises(ConfigError, match=r"bad.yaml: line 2 column \d+: invalid YAML"):
        load_yaml_text("a: 1\n  b: [", "bad.yaml")


def test_duplicate_quantity_rejected() -> None:
    text = (
        GOOD
        + "  - {quantity: energy_active_import_total, function: input, address: 0x50, type: f32, unit: kWh}\n"
    )
    with pytest.raises(ConfigError, match="appears twice"):
        parse_profile(load_yaml_text(text, "t"), "t")
