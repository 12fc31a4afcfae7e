import math
import random
import struct
from decimal import Decimal

import pytest

from mrv_core.exact import decimal_text
from mrv_core.registers import (
    BYTE_ORDERS,
    WIDTH,
    DecodeError,
    _big_endian_reader,
    column_confirmer,
    decode_words,
    encode_value,
    hex_confirmer,
    hex_decoder,
    hex_to_words,
    shortest_float_text,
    wire_decoder,
    words_to_hex,
)

ONE = Decimal(1)


def test_orders_on_a_known_float() -> None:
    # 12345.678 as IEEE float32 is 0x4640E6B6: bytes A=46 B=40 C=E6 D=B6.
    cases = {
        "ABCD": [0x4640, 0xE6B6],
        "CDAB": [0xE6B6, 0x4640],
        "BADC": [0x4046, 0xB6E6],
        "DCBA": [0xB6E6, 0x4046],
    }
    for order, words in cases.items():
        assert decode_words(words, "f32", order, ONE) == Decimal("12345.678")
        assert encode_value(Decimal("12345.678"), "f32", order, ONE) == words


@pytest.mark.parametrize(
    "rtype,fmt", [("u16", ">H"), ("i16", ">h"), ("u32", ">I"), ("i32", ">i"), ("u64", ">Q"), ("i64", ">q")]
)
def test_integers_against_struct(rtype: str, fmt: str) -> None:
    size = struct.calcsize(fmt)
    for value in (0, 1, 2 ** (8 * size - 2) + 12345, -7 if fmt[1].islower() else 7):
        packed = struct.pack(fmt, value)
        words = [packed[i] << 8 | packed[i + 1] for i in range(0, size, 2)]
        assert decode_words(words, rtype, "ABCD", ONE) == value
        assert decode_words(list(reversed(words)), rtype, "CDAB", ONE) == value


def test_scale_is_exact() -> None:
    assert decode_words([0x0001, 0xE240], "u32", "ABCD", Decimal("0.01")) == Decimal("1234.56")
    assert decode_words([0xFFFF], "i16", "ABCD", Decimal("0.1")) == Decimal("-0.1")


def test_float32_resolution_is_kept_not_invented() -> None:
    # At 10 million kWh a float32 step is 1 kWh: the decoded text must show the
    # stored value, not a decimal the meter never held.
    words = encode_value(Decimal("10000000.4"), "f32", "ABCD", ONE)
    assert decode_words(words, "f32", "ABCD", ONE) == Decimal("10000000")
    assert shortest_float_text(0.1, "f64") == "0.1"
    assert shortest_float_text(struct.unpack(">f", struct.pack(">f", 0.1))[0], "f32") == "0.1"


def test_nan_and_infinity_are_no_value() -> None:
    assert decode_words([0x7FC0, 0x0000], "f32", "ABCD", ONE) is None
    assert decode_words([0x7F80, 0x0000], "f32", "ABCD", ONE) is None


@pytest.mark.parametrize("order", BYTE_ORDERS)
@pytest.mark.parametrize("rtype", ["u16", "i32", "u64", "f32", "f64"])
def test_round_trip(order: str, rtype: str) -> None:
    value = {"f": Decimal("-321.5"), "i": Decimal("-321"), "u": Decimal("321")}[rtype[0]]
    assert decode_words(encode_value(value, rtype, order, ONE), rtype, order, ONE) == value


def test_errors() -> None:
    with pytest.raises(DecodeError, match="needs 2"):
        decode_words([1], "f32", "ABCD", ONE)
    with pytest.raises(DecodeError, match="byte order"):
        decode_words([1, 2], "f32", "ABDC", ONE)
    with pytest.raises(DecodeError, match="outside"):
        decode_words([70000], "u16", "ABCD", ONE)
    with pytest.raises(DecodeError, match="does not fit"):
        encode_value(70000, "u16", "ABCD", ONE)
    assert hex_to_words(words_to_hex([1, 0xABCD])) == [1, 0xABCD]
    with pytest.raises(DecodeError):
        hex_to_words("abc")


def _shortest_by_trying_every_length(value: float) -> str:
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        try:
            if struct.pack(">f", float(text)) == struct.pack(">f", value):
                return text
        except OverflowError:  # beyond the largest float32: does not read back
            continue
    raise AssertionError("9 digits always round-trip a float32")


def test_shortest_float_text_matches_trying_every_length() -> None:
    """The search (7 digits first, then 8 or fewer) finds what trying 1, 2, ... 9 digits finds, for
    any float32 (most need 8 or 9 digits), for short decimals read as float32 (1 to 7 digits), and
    for powers of two."""
    rnd = random.Random(20261129)
    floats = [struct.unpack(">f", struct.pack(">I", rnd.randrange(0x7F800000)))[0] for _ in range(20000)]
    floats += [
        struct.unpack(">f", struct.pack(">f", rnd.randrange(10**digits) * 10.0 ** rnd.randrange(-9, 9)))[0]
        for digits in range(1, 8)
        for _ in range(3000)
    ]
    floats += [2.0**e for e in range(-126, 128)] + [-(2.0**e) for e in range(-20, 20)]
    for value in floats:
        assert shortest_float_text(value, "f32") == _shortest_by_trying_every_length(value), value


def _reference_decode(words: list[int], rtype: str, order: str, scale: Decimal) -> Decimal | None:
    """The decoding rule written out plainly, word by word and byte by byte, to check the fast one."""
    ordered = words if order in ("ABCD", "BADC") else list(reversed(words))
    swap = order in ("BADC", "DCBA")
    data = b"".join(bytes((w & 0xFF, w >> 8)) if swap else bytes((w >> 8, w & 0xFF)) for w in ordered)
    fmt = {
        "u16": ">H",
        "i16": ">h",
        "u32": ">I",
        "i32": ">i",
        "u64": ">Q",
        "i64": ">q",
        "f32": ">f",
        "f64": ">d",
    }
    (raw,) = struct.unpack(fmt[rtype], data)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return None
        return Decimal(_shortest_by_trying_every_length(raw) if rtype == "f32" else repr(raw)) * scale
    return Decimal(raw) * scale


@pytest.mark.parametrize("rtype", ["u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64"])
def test_decoders_follow_the_plain_rule(rtype: str) -> None:
    """decode_words (the agent's) and hex_decoder (the verifier's, which it calls) agree with the plain
    rule on every order, scale and word."""
    rnd = random.Random(rtype)
    for order in BYTE_ORDERS:
        for scale in (ONE, Decimal("0.01"), Decimal(10)):
            decode = hex_decoder(rtype, order, scale)
            for _ in range(500):
                words = [rnd.randrange(0x10000) for _ in range(WIDTH[rtype])]
                expected = _reference_decode(words, rtype, order, scale)
                got = decode(words_to_hex(words))
                assert got == expected and str(got) == str(expected), (order, scale, words)
                assert decode_words(words, rtype, order, scale) == got, (order, scale, words)


def test_hex_decoder_refuses_text_that_is_not_lowercase_words() -> None:
    decode = hex_decoder("u32", "ABCD", ONE)
    for bad in ("0001", "0000000g", "0000 001", "0000001A", "000000010000"):
        with pytest.raises(DecodeError):
            decode(bad)


def test_hex_confirmer_agrees_with_decoding() -> None:
    """confirm(raw, claim) is decode(raw) == claim, for the right claim and for near misses."""
    rnd = random.Random(7)
    for order in BYTE_ORDERS:
        big_endian = _big_endian_reader("f32", order)
        for scale in (ONE, Decimal("0.1")):
            decode, confirm = hex_decoder("f32", order, scale), hex_confirmer("f32", order, scale)
            words_list = [[rnd.randrange(0x10000) for _ in range(2)] for _ in range(3000)]
            special = [Decimal(2) ** e for e in range(-20, 20)] + [
                Decimal(v) for v in ("0", "1e4", "505.76", "-3e3")
            ]
            words_list += [encode_value(v, "f32", order, ONE) for v in special]
            for words in words_list:
                raw = words_to_hex(words)
                right = decode(raw)
                (value,) = struct.unpack(">f", big_endian(raw))
                claims = (
                    [Decimal(format(value, f".{p}g")) for p in range(1, 10)] if math.isfinite(value) else []
                )
                if right is not None:
                    claims += [right, right + Decimal("1e-9"), -right, Decimal(repr(value))]
                for claim in claims:
                    assert confirm(raw, claim) == (right == claim), (order, scale, raw, claim, right)


def test_column_confirmer_never_confirms_a_wrong_claim() -> None:
    """A column is confirmed only if every claim is decode(raw); on the claims a meter's counter
    produces it confirms the column (otherwise the fast path would be useless)."""
    rnd = random.Random(11)
    assert column_confirmer("f32", "ABCD", Decimal("0.1")) is None
    assert column_confirmer("u32", "ABCD", ONE) is None
    for order in BYTE_ORDERS:
        decode, column = hex_decoder("f32", order, ONE), column_confirmer("f32", order, ONE)
        assert column is not None
        big_endian = _big_endian_reader("f32", order)
        words_list = [[rnd.randrange(0x10000) for _ in range(2)] for _ in range(2000)]
        words_list += [
            encode_value(Decimal(v), "f32", order, ONE) for v in ("0", "1", "0.5", "1e4", "-3e3", "505.76")
        ]
        for words in words_list:
            raw = words_to_hex(words)
            right = decode(raw)
            (value,) = struct.unpack(">f", big_endian(raw))
            texts = [format(value, f".{p}g") for p in range(1, 10)] if math.isfinite(value) else ["nan"]
            if right is not None:
                texts += [decimal_text(right), decimal_text(right + Decimal("1e-9")), repr(value)]
                # Neighbours in the last digit: where decimals of that length are closer together
                # than floats, they read back as the same float but are not the nearest.
                exponent = right.normalize().as_tuple().exponent
                assert isinstance(exponent, int)
                step = Decimal(1).scaleb(exponent)
                texts += [decimal_text(right + step), decimal_text(right - step)]
            for text in texts:
                if column([raw.encode()], [text]) is not None:
                    assert right is not None and Decimal(text) == right, (order, raw, text, right)
        # A counter's readings: every claim right, so the column is confirmed; one wrong claim fails it.
        # (10000 itself, a one-digit claim, is left to hex_confirmer.)
        counter = [
            encode_value(Decimal(10_000) + Decimal("0.05") * k, "f32", order, ONE) for k in range(1, 500)
        ]
        raws = [words_to_hex(words).encode() for words in counter]
        claims = [decimal_text(decode(raw.decode()) or Decimal(0)) for raw in raws]
        assert column(raws, claims) is not None
        for index in (0, 17, 498):
            wrong = list(claims)
            wrong[index] = decimal_text(Decimal(claims[index]) + Decimal("0.001"))
            assert column(raws, wrong) is None
        assert column(raws[:-1], claims) is None
        assert column([raws[0].upper()], claims[:1]) is None


def test_column_confirmer_on_mixed_columns() -> None:
    """A column holds exactly when each of its values holds alone, whatever their lengths and signs."""
    rnd = random.Random(5)
    column, decode = column_confirmer("f32", "CDAB", ONE), hex_decoder("f32", "CDAB", ONE)
    assert column is not None
    confirmed = 0
    for _ in range(300):
        raws = [words_to_hex([rnd.randrange(0x10000) for _ in range(2)]).encode() for _ in range(20)]
        claims = [decimal_text(decode(raw.decode()) or Decimal(0)) for raw in raws]
        if rnd.random() < 0.3:
            index = rnd.randrange(20)
            claims[index] = decimal_text(Decimal(claims[index]) * Decimal("1.0000001"))
        alone = all(column([raw], [claim]) is not None for raw, claim in zip(raws, claims, strict=True))
        assert (column(raws, claims) is not None) == alone
        confirmed += alone
    assert confirmed > 100  # honest columns of random floats are confirmed here, not left to the slow path


def test_column_confirmer_proves_whole_number_claims_by_reading_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A counter at a whole number (10005 between 10004.95 and 10005.05) has a last digit unit of 1,
    coarser than the float's spacing: reading back proves it, as it does the others, and a wrong
    whole number still fails. Above 2^24, where floats are further apart than 1, it does not."""
    import mrv_core.registers as registers_module

    calls: list[int] = []
    original = registers_module._shortest_column

    def counting(*args: object) -> bool:
        calls.append(1)
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(registers_module, "_shortest_column", counting)
    column, decode = column_confirmer("f32", "ABCD", ONE), hex_decoder("f32", "ABCD", ONE)
    assert column is not None
    values = [Decimal(10_000) + Decimal("0.05") * k for k in range(80, 121)]  # 10004 .. 10006
    raws = [words_to_hex(encode_value(v, "f32", "ABCD", ONE)).encode() for v in values]
    claims = [decimal_text(decode(raw.decode()) or Decimal(0)) for raw in raws]
    assert {"10004", "10005", "10006"} <= set(claims)
    assert column(raws, claims) is not None
    assert calls == []
    for index in (claims.index("10005"), 3):
        wrong = list(claims)
        wrong[index] = str(int(Decimal(claims[index])) + 1)
        assert column(raws, wrong) is None
    big = [
        words_to_hex(encode_value(Decimal(2**24 + 2 * k), "f32", "ABCD", ONE)).encode() for k in range(1, 4)
    ]
    big_claims = [decimal_text(decode(raw.decode()) or Decimal(0)) for raw in big]
    assert column(big, big_claims) is not None
    assert calls  # whole numbers beyond 2^24 take the full rule


def test_column_confirmer_counts_every_character_after_the_point() -> None:
    """float() reads '10000.0_0_0_0_5' as 10000.00005, which rounds to the float 10000 (1e4 is
    10000's shortest text): a claim that reads back but hides digits behind underscores must not
    pass for its raw words, in a column of one exponent or across two."""
    column, decode = column_confirmer("f32", "ABCD", ONE), hex_decoder("f32", "ABCD", ONE)
    assert column is not None
    for values in (["10000.05", "10000.1", "10000"], ["16383.95", "16384.05", "10000"]):
        raws = [words_to_hex(encode_value(Decimal(v), "f32", "ABCD", ONE)).encode() for v in values]
        claims = [decimal_text(decode(raw.decode()) or Decimal(0)) for raw in raws]
        assert column(raws, claims) is not None  # honest, across a power of two or not
        for sly in ("10000.0_0_0_0_5", "10000.00005", "10000.0 "):
            assert float(sly) != 10000.0 or sly.endswith(" ")
            wrong = [*claims[:-1], sly]
            confirmed = column(raws, wrong)
            assert confirmed is None or Decimal(sly.replace("_", "")) == Decimal(10000), (values, sly)


def test_the_wire_decoder_is_the_hex_decoder_of_the_same_bytes() -> None:
    """A gateway decodes the words' bytes as they came and writes their hex as the record's raw
    text; a verifier decodes that text: both must give the same value, for every type, order
    and scale, NaN and infinities included; bytes of the wrong length are refused."""
    rnd = random.Random(17)
    for rtype in WIDTH:
        for order in BYTE_ORDERS:
            for scale in (Decimal(1), Decimal("0.01"), Decimal(1000)):
                wire, text = wire_decoder(rtype, order, scale), hex_decoder(rtype, order, scale)
                size = 2 * WIDTH[rtype]
                samples = [rnd.randbytes(size) for _ in range(300)] + [
                    b"\x7f\xc0" + bytes(size - 2),
                    bytes(size),
                ]
                for data in samples:
                    assert wire(data) == text(data.hex()), (rtype, order, scale, data.hex())
                for wrong in (bytes(size - 1), bytes(size + 2)):
                    with pytest.raises(DecodeError):
                        wire(wrong)


def test_values_next_to_the_largest_float32_decode_and_confirm() -> None:
    """Next to +-3.4028235e38 some shorter texts round beyond the largest float32 (struct refuses
    to pack them): they do not read back, and neither the search, nor the confirmers, nor the
    column check may raise for it (a verifier must re-check whatever a meter sent)."""
    top = [struct.unpack(">f", struct.pack(">I", bits))[0] for bits in range(0x7F7F0000, 0x7F800000)]
    floats = top + [-value for value in top[::7]]
    for value in floats:
        assert shortest_float_text(value, "f32") == _shortest_by_trying_every_length(value), value
    confirm, decode = hex_confirmer("f32", "ABCD", ONE), hex_decoder("f32", "ABCD", ONE)
    tenth = hex_confirmer("f32", "ABCD", Decimal("0.1"))
    column = column_confirmer("f32", "ABCD", ONE)
    assert column is not None
    raws = [struct.pack(">f", value).hex() for value in floats[::97]]
    claims = [decimal_text(decode(raw) or Decimal(0)) for raw in raws]
    for raw, claim in zip(raws, claims, strict=True):
        assert confirm(raw, Decimal(claim)) and not confirm(raw, Decimal(claim) * 2)
        assert tenth(raw, Decimal(claim) / 10)
    assert column([raw.encode() for raw in raws], claims) is not None
