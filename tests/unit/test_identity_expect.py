"""An identification item's ``expect``: one value, or a list of the values a profile allows.

A profile that covers several models answering different codes may list them. One value keeps
its canonical form (a string), so the hash of every profile written before lists existed stays
the same; a list is a JSON list in the profile's order. The rule (mrv_core.identity), the schema,
the compiled item and the simulator (which serves the first allowed value) all take both forms.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.clock import ScaledClock
from agent.identification import identify
from agent.meter_model import PvPlant
from agent.modbus import Endpoint
from agent.plan import ReadPlan
from agent.simulator import SimulatedMeter
from mrv_core.canonical import parse_canonical
from mrv_core.config_errors import ConfigError, load_yaml_text
from mrv_core.identity import DEVICE_ID_OBJECTS, check_identity
from mrv_core.profile import IdentItem, Profile
from mrv_core.profile_schema import load_profile, parse_profile

PROFILE_DIR = Path(__file__).parents[2] / "firmware_profiles"

# sha256 of the shipped SDM630 profile, computed with the code as it was before ``expect`` could be
# a list (meter_code expect: 112, canonical "expect":"112"). Lists must not change the canonical
# form of one value: every record names its profile's hash, so this one must never move.
SDM630_SHA256 = "eacdba528acf63aafdd5ec25781710ea3ec56dc3a0c7145db5614871c966a482"

PROFILE_YAML = """
schema: 1
id: acme-m7x
manufacturer: ACME
model: M71 / M72 / M73
source: {document: ACME M7x register map, version: "1"}
registers:
  - {quantity: energy_active_import_total, function: input, address: 0x48, type: f32, unit: kWh}
identification:
  items:
    - {name: vendor, device_id: vendor_name, expect: ACME}
    - {name: product, device_id: product_code, expect: [M71, M72, M73]}
    - {name: model_code, function: holding, address: 0x0B, type: u16, expect: CODES}
"""


def _profile(codes: str = "['71', '72', '73']") -> Profile:
    text = PROFILE_YAML.replace("CODES", codes)
    return parse_profile(load_yaml_text(text, "acme.yaml"), "acme.yaml")


def _canonical_items(profile: Profile) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = parse_canonical(profile.canonical_json)["identification"]["items"]
    return items


# --- hashes and the canonical form -----------------------------------------------------------------


def test_the_sdm630_profile_hash_is_unchanged() -> None:
    profile = load_profile(PROFILE_DIR / "eastron/sdm630-modbus-v2.yaml")
    assert profile.sha256 == SDM630_SHA256
    assert b'"expect":"112"' in profile.canonical_json  # one value is still a string


def test_one_value_stays_a_string_and_a_list_is_a_json_list_in_profile_order() -> None:
    profile = _profile("[73, '71', 72]")
    (model_code,) = [i for i in profile.identification if i.name == "model_code"]
    assert model_code.expect == ("73", "71", "72")  # texts, as given, not sorted
    canonical = {item["name"]: item["expect"] for item in _canonical_items(profile)}
    assert canonical == {"vendor": "ACME", "product": ["M71", "M72", "M73"], "model_code": ["73", "71", "72"]}
    assert Profile.from_canonical(profile.canonical_json) == profile


def test_the_order_and_the_values_are_part_of_the_hash() -> None:
    hashes = {_profile(codes).sha256 for codes in ("[71, 72, 73]", "[73, 72, 71]", "[71, 72]", "71")}
    assert len(hashes) == 4


@pytest.mark.parametrize("codes", ["[71]", "['71']", "71", "'71'"])
def test_a_one_value_list_is_that_value(codes: str) -> None:
    profile = _profile(codes)
    assert profile.sha256 == _profile("71").sha256
    assert {i.name: i.expect for i in profile.identification}["model_code"] == "71"


def test_the_compiled_item_says_what_it_allows() -> None:
    assert IdentItem("a", expect=None).allowed == ()
    assert IdentItem("a", expect="112").allowed == ("112",)
    assert IdentItem("a", expect=("71", "72")).allowed == ("71", "72")
    assert IdentItem("a", device_id=1, expect=("71", "72")).canonical() == {
        "name": "a",
        "expect": ["71", "72"],
        "device_id": 1,
    }
    item = IdentItem("a", function="input", address=11, type="u16", expect=("71", "72"))
    assert IdentItem.from_canonical(item.canonical()) == item
    assert IdentItem("a", device_id=1, expect="112").canonical()["expect"] == "112"


@pytest.mark.parametrize("bad", [[], [71], ["71", "71"], ["71", None], {"71": 1}, 71, True])
def test_from_canonical_refuses_an_expect_that_is_not_a_text_or_a_list_of_distinct_texts(bad: object) -> None:
    with pytest.raises(ValueError, match="expect"):
        IdentItem.from_canonical({"name": "a", "device_id": 1, "expect": bad})


# --- the schema ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "reason"),
    [
        ("[]", "at least one value"),
        ("[71, '71']", "appear twice: 71"),  # compared as text: the same value
        ("[71, 72, 71]", "appear twice: 71"),
        ("[71, yes]", "boolean"),
        ("yes", "boolean"),
        ("[71, null]", "model_code|expect"),
        ("[71, 1.5]", "expect"),
        ("[[71]]", "expect"),
        ("{a: 71}", "expect"),
    ],
)
def test_the_schema_refuses_a_bad_list(codes: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as caught:
        _profile(codes)
    assert "identification.items[2].expect" in str(caught.value)


# --- the rule --------------------------------------------------------------------------------------


def test_a_text_matches_if_it_is_one_of_the_allowed_values() -> None:
    expected: dict[str, str | tuple[str, ...] | None] = {"model_code": ("71", "72", "73"), "serial": None}
    assert check_identity(expected, "*", None, {"model_code": "72", "serial": "9"}).matches
    refused = check_identity(expected, "*", None, {"model_code": "74"})
    assert refused.problems == ("model_code is '74', the profile expects one of '71', '72', '73'",)
    missing = check_identity(expected, "*", None, {"model_code": None})
    assert missing.problems == (
        "model_code: the device does not give it (the profile expects one of '71', '72', '73')",
    )


def test_one_value_is_compared_and_reported_as_before() -> None:
    assert check_identity({"m": "112"}, "*", None, {"m": "112"}).matches
    assert check_identity({"m": "112"}, "*", None, {"m": "113"}).problems == (
        "m is '113', the profile expects '112'",
    )
    assert check_identity({"m": "112"}, "*", None, {"m": "1"}).problems == (
        "m is '1', the profile expects '112'",
    )


# --- the simulator and the agent's read ------------------------------------------------------------


class _MeterWire(Endpoint):
    """An endpoint that answers from a simulated meter directly (no network)."""

    def __init__(self, meter: SimulatedMeter) -> None:
        super().__init__("simulated")
        self.meter = meter

    def read_blocks(self, plan: ReadPlan, unit_id: int) -> list[bytes]:
        return plan.blocks(self.meter.registers())

    def read_device_id(self, unit_id: int) -> dict[int, str]:
        return self.meter.device_identification()


def _meter(profile: Profile) -> SimulatedMeter:
    clock = ScaledClock(start=datetime(2026, 6, 1, 10, tzinfo=UTC), anchor=time.time(), speed=1.0)
    return SimulatedMeter(3, profile, PvPlant(capacity_kw=30, seed=3), clock)


def test_the_simulator_serves_the_first_allowed_value_unless_its_identity_says_otherwise() -> None:
    meter = _meter(_profile())
    assert meter.registers()[("holding", 0x0B)] == 71
    assert meter.device_identification() == {
        DEVICE_ID_OBJECTS["vendor_name"]: "ACME",
        DEVICE_ID_OBJECTS["product_code"]: "M71",
    }
    meter.identity.update(model_code="72", product="M73")
    assert meter.registers()[("holding", 0x0B)] == 72
    assert meter.device_identification()[DEVICE_ID_OBJECTS["product_code"]] == "M73"


def test_a_device_answering_72_matches_71_72_73_and_one_answering_74_does_not() -> None:
    meter = _meter(_profile())
    wire = _MeterWire(meter)
    assert identify(wire, meter.profile, meter.unit_id).matches  # served as 71, the first value
    meter.identity["model_code"] = "72"
    check = identify(wire, meter.profile, meter.unit_id)
    assert check.matches, check.problems
    assert dict(check.texts) == {"vendor": "ACME", "product": "M71", "model_code": "72"}
    meter.identity["model_code"] = "74"
    assert identify(wire, meter.profile, meter.unit_id).problems == (
        "model_code is '74', the profile expects one of '71', '72', '73'",
    )
    meter.identity.update(model_code="73", product="M74")
    assert identify(wire, meter.profile, meter.unit_id).problems == (
        "product is 'M74', the profile expects one of 'M71', 'M72', 'M73'",
    )
