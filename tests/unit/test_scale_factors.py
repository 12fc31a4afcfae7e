"""Scale-factor registers (SunSpec sunssf) and "not implemented" values, through every layer that
decodes: the decoder, the profile (schema, canonical form, hash), the read plan, the agent's
decode_reading and the bundle verifier's value checks.

The expected values are written out by hand (raw x scale x 10^sf), not computed by the code under
test."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent.acquisition import decode_reading
from agent.plan import ReadRequest, plan_reads
from mrv_core.bundle import BundleVerifier
from mrv_core.config_errors import ConfigError, load_yaml_text
from mrv_core.exact import decimal_text
from mrv_core.profile import Profile
from mrv_core.profile_schema import load_profile, load_profile_dir, parse_profile
from mrv_core.registers import (
    DecodeError,
    encode_scaled,
    hex_decoder,
    register_confirmer,
    register_decoder,
)

ROOT = Path(__file__).parents[2]
SDM630 = ROOT / "firmware_profiles/eastron/sdm630-modbus-v2.yaml"
SDM630_SHA256 = "eacdba528acf63aafdd5ec25781710ea3ec56dc3a0c7145db5614871c966a482"
ONE = Decimal(1)

# A SunSpec-like inverter: model 103's WH (acc32) + WH_SF, W (int16) + W_SF, two phase voltages
# (uint16) sharing V_SF, PF (int16, percent) + PF_SF; at the addresses of a map at 40000.
PROFILE_YAML = """
schema: 1
id: sunspec-test-inverter
manufacturer: Test
model: Inverter
source: {document: SunSpec Information Model Reference (model 103), version: test}
defaults: {function: holding}
registers:
  - {quantity: energy_active_export_total, address: 40094, type: u32, unit: Wh, scale_factor: {address: 40096}}
  - {quantity: power_active_total, address: 40084, type: i16, unit: W, scale_factor: {address: 40085},
     not_implemented: 0x8000}
  - {quantity: voltage_l1, address: 40080, type: u16, unit: V, scale_factor: {address: 40083},
     not_implemented: 0xFFFF}
  - {quantity: voltage_l2, address: 40081, type: u16, unit: V, scale_factor: {address: 40083},
     not_implemented: 0xFFFF}
  - {quantity: power_factor, address: 40092, type: i16, scale: 0.01, unit: "1",
     scale_factor: {address: 40093}, not_implemented: -32768}
"""


def _profile(text: str = PROFILE_YAML) -> Profile:
    return parse_profile(load_yaml_text(text, "inverter.yaml"), "inverter.yaml")


@pytest.mark.parametrize(
    ("rtype", "raw", "expected"),
    [
        ("u16", "04d2" + "0002", "123400"),  # 1234 x 10^2
        ("u16", "04d2" + "fffe", "12.34"),  # 1234 x 10^-2
        ("u16", "04d2" + "0000", "1234"),  # 1234 x 10^0
        ("i16", "fb2e" + "ffff", "-123.4"),  # -1234 x 10^-1
        ("i16", "0001" + "000a", "10000000000"),  # 1 x 10^10, the largest exponent
        ("i16", "0001" + "fff6", "0.0000000001"),  # 1 x 10^-10, the smallest
        ("u32", "0001e240" + "fffd", "123.456"),  # 123456 x 10^-3
        ("u32", "ffffffff" + "0001", "42949672950"),  # acc32 at its top, x 10
        ("u32", "00000000" + "0003", "0"),  # acc32 0: a real 0
    ],
)
def test_value_and_scale_factor_words_decode_exactly(rtype: str, raw: str, expected: str) -> None:
    value = register_decoder(rtype, "ABCD", ONE, True, None)(raw)
    assert value is not None
    assert decimal_text(value) == expected
    assert value == Decimal(expected)


def test_the_scale_factor_multiplies_the_fixed_scale() -> None:
    """SunSpec's power factor is in percent: scale 0.01 with PF_SF -2 reads 9900 as 0.99."""
    decode = register_decoder("i16", "ABCD", Decimal("0.01"), True, 0x8000)
    assert decode("26ac" + "fffe") == Decimal("0.99")
    assert decode("d954" + "fffe") == Decimal("-0.99")


def test_not_implemented_scale_factors_and_values_decode_to_null() -> None:
    u16 = register_decoder("u16", "ABCD", ONE, True, 0xFFFF)
    i16 = register_decoder("i16", "ABCD", ONE, True, 0x8000)
    u32 = register_decoder("u32", "ABCD", ONE, True, 0xFFFFFFFF)
    acc32 = register_decoder("u32", "ABCD", ONE, True, None)
    assert u16("04d2" + "8000") is None  # the sunssf says "not implemented"
    assert u16("ffff" + "0000") is None  # the uint16 says it
    assert u16("fffe" + "0000") == Decimal(65534)  # one below is a value
    assert i16("8000" + "0000") is None
    assert i16("8001" + "0000") == Decimal(-32767)
    assert u32("ffffffff" + "0000") is None
    assert acc32("00000000" + "0000") == 0  # SunSpec's acc32 "not implemented" 0 is read as 0
    # A sunssf outside SunSpec's -10..10 is no exponent: garbage never becomes a huge number.
    assert u16("0001" + "000b") is None
    assert u16("0001" + "fff5") is None
    assert u16("0001" + "7fff") is None
    # Without a scale factor, the pattern alone: an i16 with not_implemented 0x8000.
    plain = register_decoder("i16", "ABCD", ONE, False, 0x8000)
    assert plain("8000") is None
    assert plain("8001") == Decimal(-32767)


def test_the_not_implemented_integer_is_read_in_the_registers_byte_order() -> None:
    """The raw integer is the value's bytes after the byte order, read unsigned: 0xFFFF0000 in CDAB
    arrives as the words 0000 ffff."""
    decode = register_decoder("u32", "CDAB", ONE, False, 0xFFFF0000)
    assert decode("0000ffff") is None
    assert decode("ffff0000") == Decimal(0x0000FFFF)


def test_the_raw_text_rule() -> None:
    """raw = the value's words as they came off the wire (4 lowercase hex digits each), then the
    scale factor's word; the scale factor is a big-endian int16 whatever the value's order."""
    decode = register_decoder("u32", "CDAB", ONE, True, None)
    assert decode("e240" + "0001" + "fffe") == Decimal("1234.56")  # words swapped: 0x0001E240 = 123456
    for wrong in ("e2400001", "e2400001fffe0000", "E2400001FFFE", "e240 0001fffe"):
        with pytest.raises(DecodeError):
            decode(wrong)
    assert encode_scaled(Decimal("1234.56"), "u32", "CDAB", ONE, -2) == [0xE240, 0x0001, 0xFFFE]


def test_registers_without_scale_factor_keep_the_existing_decoder() -> None:
    assert register_decoder("f32", "ABCD", ONE) is hex_decoder("f32", "ABCD", ONE)
    assert register_decoder("u32", "CDAB", Decimal("0.01"), False, None) is hex_decoder(
        "u32", "CDAB", Decimal("0.01")
    )


def test_decode_reading_records_the_value_and_scale_factor_words() -> None:
    profile = _profile()
    plan = plan_reads(profile.registers, 125, 20)
    words = {
        ("holding", 40094): 0x0001,  # WH = 0x0001E240 = 123456
        ("holding", 40095): 0xE240,
        ("holding", 40096): 0x0001,  # WH_SF = 1
        ("holding", 40084): 0xFB2E,  # W = -1234
        ("holding", 40085): 0x0001,  # W_SF = 1
        ("holding", 40080): 23012,  # PhVphA
        ("holding", 40081): 0xFFFF,  # PhVphB: not implemented
        ("holding", 40083): 0xFFFE,  # V_SF = -2
        ("holding", 40092): 9900,  # PF
        ("holding", 40093): 0x8000,  # PF_SF: not implemented
    }
    reading = decode_reading(plan, words)
    values = reading.values
    assert values["energy_active_export_total"].value == Decimal(1234560)
    assert values["energy_active_export_total"].raw == "0001e240" + "0001"
    assert values["power_active_total"].value == Decimal(-12340)
    assert values["power_active_total"].raw == "fb2e" + "0001"
    assert values["voltage_l1"].value == Decimal("230.12")
    assert values["voltage_l1"].raw == "59e4" + "fffe"
    assert values["voltage_l2"].value is None
    assert values["voltage_l2"].raw == "ffff" + "fffe"
    assert values["power_factor"].value is None
    assert values["power_factor"].raw == "26ac" + "8000"
    assert reading.quality == ("invalid_value:voltage_l2", "invalid_value:power_factor")
    for spec in profile.registers:  # the record alone re-decodes: raw and the profile
        assert spec.decode_hex(values[spec.quantity].raw) == values[spec.quantity].value


def test_the_read_plan_requests_the_scale_factor_registers() -> None:
    profile = _profile()
    plan = plan_reads(profile.registers, 125, 0)
    # adjacent words merge; the shared V_SF (40083) is read once; nothing is bridged (max_gap 0)
    assert plan.requests == (
        ReadRequest("holding", 40080, 2),
        ReadRequest("holding", 40083, 3),
        ReadRequest("holding", 40092, 5),
    )
    assert plan_reads(profile.registers, 125, 20).requests == (ReadRequest("holding", 40080, 17),)
    # where each raw text's words lie in the requests' bytes: (request, first byte, end byte)
    slices = {spec.quantity: where for spec, where, _, _ in plan.wire_decoding}
    assert slices["voltage_l2"] == ((0, 2, 4), (1, 0, 2))  # 40081, then V_SF 40083
    assert slices["energy_active_export_total"] == ((2, 4, 8), (2, 8, 10))  # 40094-95, then 40096


def test_profiles_without_scale_factors_keep_their_hash() -> None:
    assert load_profile(SDM630).sha256 == SDM630_SHA256
    for profile in load_profile_dir(ROOT / "firmware_profiles").values():
        text = profile.canonical_json.decode()
        assert '"scale_factor"' not in text and '"not_implemented"' not in text, profile.id
        assert Profile.from_canonical(profile.canonical_json) == profile


def test_a_scale_factor_or_not_implemented_is_part_of_the_hash() -> None:
    with_them = _profile()
    register = json.loads(with_them.canonical_json)["registers"][1]
    assert register["scale_factor"] == {"address": 40085}
    assert register["not_implemented"] == "32768"  # the raw integer, as decimal text
    assert json.loads(with_them.canonical_json)["registers"][4]["not_implemented"] == "32768"  # -32768
    without_sf = _profile(PROFILE_YAML.replace(", scale_factor: {address: 40085}", ""))
    without_ni = _profile(PROFILE_YAML.replace(",\n     not_implemented: 0x8000}", "}"))
    assert len({with_them.sha256, without_sf.sha256, without_ni.sha256}) == 3
    other_sf = _profile(PROFILE_YAML.replace("{address: 40085}", "{address: 40086}"))
    assert other_sf.sha256 != with_them.sha256
    rebuilt = Profile.from_canonical(with_them.canonical_json)
    assert rebuilt == with_them and rebuilt.sha256 == with_them.sha256
    assert rebuilt.register("power_active_total").decode_hex("fb2e0001") == Decimal(-12340)


def test_a_canonical_profile_with_a_non_canonical_scale_factor_is_refused() -> None:
    data = json.loads(_profile().canonical_json)
    data["registers"][1]["not_implemented"] = 32768  # a number, not the canonical text
    with pytest.raises(ValueError, match="canonical"):
        Profile.from_canonical(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (("{address: 40085}", "{address: 70000}"), "registers[1].scale_factor.address", "65535"),
        (("{address: 40085}", "{address: -1}"), "registers[1].scale_factor.address", "greater than"),
        (("{address: 40085}", "{register: 40085}"), "registers[1].scale_factor.register", "unknown key"),
        (("type: i16, unit: W", "type: f32, unit: W"), "registers[1].scale_factor", "integer registers"),
        (("not_implemented: 0x8000", "not_implemented: 0x18000"), "registers[1].not_implemented", "i16"),
        (("not_implemented: 0x8000", "not_implemented: -40000"), "registers[1].not_implemented", "i16"),
        (("not_implemented: 0x8000", "not_implemented: yes"), "registers[1].not_implemented", "integer"),
        (("not_implemented: 0x8000", 'not_implemented: "0x8000"'), "registers[1].not_implemented", "integer"),
        (("{address: 40085}", "{address: 40084}"), "registers[1]", "value's own registers"),
    ],
)
def test_schema_errors_name_the_key(change: tuple[str, str], key: str, reason: str) -> None:
    assert change[0] in PROFILE_YAML
    with pytest.raises(ConfigError) as error:
        _profile(PROFILE_YAML.replace(change[0], change[1], 1))
    message = str(error.value)
    assert f"inverter.yaml: {key}: " in message and reason in message, message


def test_not_implemented_is_refused_on_floats() -> None:
    text = PROFILE_YAML.replace(
        "type: i16, unit: W, scale_factor: {address: 40085},", "type: f32, unit: W,", 1
    )
    with pytest.raises(ConfigError, match=r"registers\[1\]\.not_implemented: .*NaN"):
        _profile(text)


def _verifier(profile: Profile) -> BundleVerifier:
    verifier = BundleVerifier(zf=None)  # type: ignore[arg-type]  # value checks read no member
    verifier.registers[profile.sha256] = {spec.quantity: spec for spec in profile.registers}
    return verifier


def _check(verifier: BundleVerifier, sha: str, values: dict[str, Any]) -> list[str]:
    verifier._check_values(values, sha, gateway="g", device="d", seq=1, time="t", used=None)
    return [finding.detail for finding in verifier.result.findings]


def test_the_verifier_re_decodes_values_with_their_scale_factor() -> None:
    profile = _profile()
    verifier = _verifier(profile)
    right = {
        "energy_active_export_total": {"raw": "0001e2400001", "unit": "Wh", "value": "1234560"},
        "voltage_l1": {"raw": "59e4fffe", "unit": "V", "value": "230.12"},
        "voltage_l2": {"raw": "fffffffe", "unit": "V", "value": None},
        "power_factor": {"raw": "26ac8000", "unit": "1", "value": None},
    }
    assert _check(verifier, profile.sha256, right) == []
    assert verifier.result.decoded_values == 4
    # a claim that ignores the scale factor, one that ignores "not implemented", one that drops the
    # scale factor's word from raw: each is a value mismatch
    wrong = {
        "energy_active_export_total": {"raw": "0001e2400001", "unit": "Wh", "value": "123456"},
        "voltage_l2": {"raw": "fffffffe", "unit": "V", "value": "655.35"},
        "voltage_l1": {"raw": "59e4", "unit": "V", "value": "230.12"},
    }
    found = _check(_verifier(profile), profile.sha256, wrong)
    assert len(found) == 3
    assert any("energy_active_export_total: record says 123456" in text for text in found)


def test_the_verifiers_used_value_check_decodes_scale_factors() -> None:
    """The report's values go through BundleVerifier._plan: a register with a scale factor gets a
    confirmer that decodes value and scale factor words, and no float column fast path."""
    from mrv_core.bundle import _Use

    profile = _profile()
    spec = profile.register("energy_active_export_total")
    confirm = register_confirmer(spec.type, spec.order, spec.scale, True, None)
    use = _Use(spec.quantity, confirm, None, {}, {}, [])
    raws, units = (b"0001e2400001", b"0001e2410001"), (b"Wh", b"Wh")
    checked = use.check_column(raws, units, (b"1234560", b"1234570"))
    assert checked is not None and list(checked[0]) == [Decimal(1234560), Decimal(1234570)]
    assert use.check_column(raws, units, (b"123456", b"123457")) is None  # scale factor ignored
    assert not confirm("0001e2400001", Decimal(123456))
    # a plain register of the same type, order and scale keeps its own cache (another layout)
    assert spec.layout != (spec.type, spec.order, spec.scale)
