"""Modbus register words to exact decimal values, and back (for simulators).

We decode with :mod:`struct` in our own code: pymodbus changed its word-order
semantics between minor versions, and evidence must decode the same forever.

Byte order vocabulary (as Telegraf's): the letters name the bytes of a 32-bit
value from most to least significant, in the order they arrive on the wire.
``ABCD`` is big-endian words with big-endian bytes (Modbus default), ``CDAB``
swaps words, ``BADC`` swaps bytes inside each word, ``DCBA`` is fully
little-endian. The same rule applies to 16- and 64-bit values: the first
letter pair says whether words are most-significant first (AB.., BA..) or last
(CD.., DC..), and whether bytes inside a word are swapped (BA, DC).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from mrv_core.exact import EXACT

RegisterType = Literal["u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64"]
ByteOrder = Literal["ABCD", "CDAB", "BADC", "DCBA"]

REGISTER_TYPES: Final = ("u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64")
BYTE_ORDERS: Final = ("ABCD", "CDAB", "BADC", "DCBA")

WIDTH: Final[dict[str, int]] = {
    "u16": 1,
    "i16": 1,
    "u32": 2,
    "i32": 2,
    "u64": 4,
    "i64": 4,
    "f32": 2,
    "f64": 4,
}
_STRUCT: Final[dict[str, str]] = {
    "u16": ">H",
    "i16": ">h",
    "u32": ">I",
    "i32": ">i",
    "u64": ">Q",
    "i64": ">q",
    "f32": ">f",
    "f64": ">d",
}


class DecodeError(ValueError):
    """Register words cannot be decoded as the profile says."""


def _from_big_endian(data: bytes, order: str) -> list[int]:
    swap_bytes = order in ("BADC", "DCBA")
    words = [
        (data[i + 1] << 8 | data[i]) if swap_bytes else (data[i] << 8 | data[i + 1])
        for i in range(0, len(data), 2)
    ]
    return words if order in ("ABCD", "BADC") else list(reversed(words))


_PACK_F32 = struct.Struct(">f").pack
_G = tuple(f".{digits}g" for digits in range(10))  # format specs, made once


def shortest_float_text(value: float, rtype: str) -> str:
    """Shortest decimal text that reads back as the same f32 or f64 value."""
    if rtype == "f64":
        return repr(value)
    target = _PACK_F32(value)
    try:
        return _shortest_f32(value, target)
    except OverflowError:  # near the largest float32: some text rounds beyond it
        return _shortest_by_every_length(value, target)


def _shortest_f32(value: float, target: bytes) -> str:
    """:func:`shortest_float_text` of a float32 (``target``: its bytes); OverflowError where a text
    tried reads back beyond the largest float32."""
    pack = _PACK_F32  # verifiers call this millions of times: no attribute lookups, no f-string parsing
    if not (target[1] & 0x7F or target[2] or target[3]):
        # A power of two: the values that read back as it reach less far below than above it, so
        # p digits may round-trip where p + 1 do not. Try every length, shortest first.
        return _shortest_by_every_length(value, target)
    # Elsewhere round-tripping is monotonic in the number of digits (if p digits do, p + 1 do: the
    # nearer decimal stays inside the symmetric interval), and 9 always do for a float32. Most
    # float32 values a meter gives need 8 digits and most others 7: trying 7, then 8 or 6, settles
    # them in two tries (a binary search over 1..9 took three); shorter ones are searched.
    text = format(value, _G[7])
    if pack(float(text)) != target:
        text = format(value, _G[8])
        return text if pack(float(text)) == target else format(value, _G[9])
    found, text = text, format(value, _G[6])  # 7 digits do: do 6?
    if pack(float(text)) != target:
        return found
    low, high, found = 1, 5, text  # the fewest that do is at most 6
    while low <= high:
        middle = (low + high) >> 1
        text = format(value, _G[middle])
        if pack(float(text)) == target:
            high, found = middle - 1, text
        else:
            low = middle + 1
    return found


def _shortest_by_every_length(value: float, target: bytes) -> str:
    """The rule itself: every length, shortest first. For powers of two, and within a few float32
    steps of the largest one, where a text of some length may round beyond it (struct refuses to
    pack it): such a text does not read back."""
    for digits in range(1, 10):
        text = format(value, _G[digits])
        try:
            if _PACK_F32(float(text)) == target:
                return text
        except OverflowError:
            continue
    return format(value, _G[9])


def decode_words(words: Sequence[int], rtype: str, order: str, scale: Decimal) -> Decimal | None:
    """Exact value of ``words`` as ``rtype`` in ``order``, times ``scale``.

    Returns ``None`` for a float that is NaN or infinite (a meter's "no value").
    Floats are read as the shortest decimal that reproduces the same binary
    value, so 12345.678f decodes to 12345.678, not 12345.677734375.
    """
    width = WIDTH.get(rtype)
    if width is None:
        raise DecodeError(f"unknown register type {rtype!r}")
    if order not in BYTE_ORDERS:
        raise DecodeError(f"unknown byte order {order!r}")
    if len(words) != width:
        raise DecodeError(f"{rtype} needs {width} register(s), got {len(words)}")
    for word in words:
        if not 0 <= word <= 0xFFFF:
            raise DecodeError(f"register word {word} is outside 0..65535")
    return hex_decoder(rtype, order, scale)(words_to_hex(words))  # one decoder for agent and verifier


_HEX_WORDS = re.compile(r"(?:[0-9a-f]{4})+")


def _permutation(rtype: str, order: str) -> tuple[int, list[int] | None]:
    """(the register's width in words, the indices that put its bytes, as they arrive in
    ``order``, in big-endian order: None if they already are)."""
    width = WIDTH.get(rtype)
    if width is None:
        raise DecodeError(f"unknown register type {rtype!r}")
    if order not in BYTE_ORDERS:
        raise DecodeError(f"unknown byte order {order!r}")
    words = range(width) if order in ("ABCD", "BADC") else range(width - 1, -1, -1)
    swap = order in ("BADC", "DCBA")
    perm = [
        index for word in words for index in ((2 * word + 1, 2 * word) if swap else (2 * word, 2 * word + 1))
    ]
    return width, None if perm == list(range(2 * width)) else perm


def _big_endian_reader(rtype: str, order: str) -> Callable[[str], bytes]:
    """A record's ``raw`` text to the value's big-endian bytes, for one register layout."""
    width, perm = _permutation(rtype, order)
    chars = 4 * width

    def read(raw: str) -> bytes:
        if len(raw) != chars or not _HEX_WORDS.fullmatch(raw):
            raise DecodeError(f"raw register text {raw!r} is not {width} word(s) of lowercase hex")
        data = bytes.fromhex(raw)
        return data if perm is None else bytes([data[i] for i in perm])

    return read


def _wire_reader(rtype: str, order: str) -> Callable[[bytes], bytes]:
    """The value's bytes as they came off the wire (its words in order, 2 bytes each) to its
    big-endian bytes: what :func:`_big_endian_reader` does with their hex text."""
    width, perm = _permutation(rtype, order)
    size = 2 * width

    def read(data: bytes) -> bytes:
        if len(data) != size:
            raise DecodeError(f"{len(data)} bytes are not the {width} word(s) of a {rtype}")
        return data if perm is None else bytes([data[i] for i in perm])

    return read


def _decoder(
    rtype: str, scale: Decimal, big_endian: Callable[[Any], bytes] | None
) -> Callable[[Any], Decimal | None]:
    """A value's exact decoding from whatever ``big_endian`` turns into its big-endian bytes
    (None: it is given them, and struct checks their length)."""
    unpack = struct.Struct(_STRUCT[rtype]).unpack
    is_float = rtype.startswith("f")
    multiply = EXACT.multiply
    unit_scale = scale.as_tuple() == Decimal(1).as_tuple()  # times 1 (exponent 0) changes nothing
    shortest = shortest_float_text

    def decode(raw: Any) -> Decimal | None:
        try:
            (value,) = unpack(raw if big_endian is None else big_endian(raw))
        except struct.error:
            raise DecodeError(f"{len(raw)} bytes are not the {WIDTH[rtype]} word(s) of a {rtype}") from None
        if is_float:
            if not math.isfinite(value):
                return None
            base = Decimal(shortest(value, rtype))
        else:
            base = Decimal(value)
        return base if unit_scale else multiply(base, scale)

    return decode


@functools.lru_cache(maxsize=256)
def hex_decoder(rtype: str, order: str, scale: Decimal) -> Callable[[str], Decimal | None]:
    """A fast :func:`decode_words` of a record's ``raw`` text for one register layout.

    Verifiers decode millions of values: the byte permutation and the struct
    are worked out once per layout. Same result as ``decode_words(hex_to_words(raw), ...)``.
    """
    return _decoder(rtype, scale, _big_endian_reader(rtype, order))


@functools.lru_cache(maxsize=256)
def wire_decoder(rtype: str, order: str, scale: Decimal) -> Callable[[bytes], Decimal | None]:
    """:func:`hex_decoder` of the value's bytes as they came off the wire, for a gateway: the raw
    text it writes into the record is their hex, and parsing that text back was a third of the
    cost of decoding (``hex_decoder(...)(data.hex()) == wire_decoder(...)(data)``, tested)."""
    identity = _permutation(rtype, order)[1] is None  # big-endian words and bytes: as they came
    return _decoder(rtype, scale, None if identity else _wire_reader(rtype, order))


@functools.lru_cache(maxsize=256)
def hex_confirmer(rtype: str, order: str, scale: Decimal) -> Callable[[str, Decimal], bool]:
    """Whether a claimed value is exactly what ``raw`` decodes to: ``hex_decoder(...)(raw) == claimed``.

    For a float32 at scale 1 (most energy registers) it checks the claim
    instead of searching for the shortest text: the claim's p significant
    digits must be the nearest p-digit decimal to the float, read back as the
    same float, and p - 1 digits must not (round-tripping is monotonic in the
    digit count except at powers of two, which take the search). Two or three
    formatting steps instead of four; tested against the search.
    """
    decode = hex_decoder(rtype, order, scale)
    if not (rtype == "f32" and scale.as_tuple() == Decimal(1).as_tuple()):
        return lambda raw, claimed: decode(raw) == claimed
    read = _big_endian_reader(rtype, order)
    pack, unpack = _PACK_F32, struct.Struct(">f").unpack

    def confirm(raw: str, claimed: Decimal) -> bool:
        data = read(raw)
        exponent = (data[0] & 0x7F) << 1 | data[1] >> 7
        if exponent in (0, 0xFF) or not (data[1] & 0x7F or data[2] or data[3]):
            return decode(raw) == claimed  # zero, subnormal, infinite, NaN or a power of two
        (value,) = unpack(data)
        digits = len(claimed.normalize(EXACT).as_tuple().digits) if claimed.is_finite() else 0
        if not 1 <= digits <= 9:
            return False
        text = format(value, _G[digits])
        try:
            if Decimal(text) != claimed or pack(float(text)) != data:
                return False
            return digits == 1 or pack(float(format(value, _G[digits - 1]))) != data
        except OverflowError:  # a text beyond the largest float32: the search decides
            return decode(raw) == claimed

    return confirm


_HEX_TEXT = re.compile(rb"[0-9a-f]*")
# How a column of float32 values in each byte order becomes big-endian bytes: a permutation of the
# hex text (2 characters per byte), done for the whole column by one regular-expression substitution.
_TO_BIG_ENDIAN: Final[dict[str, tuple[re.Pattern[bytes], bytes] | None]] = {
    "ABCD": None,
    "CDAB": (re.compile(rb"(.{4})(.{4})", re.DOTALL), rb"\2\1"),
    "BADC": (re.compile(rb"(..)(..)(..)(..)", re.DOTALL), rb"\2\1\4\3"),
    "DCBA": (re.compile(rb"(..)(..)(..)(..)", re.DOTALL), rb"\4\3\2\1"),
}
_DOTS: Final = itertools.repeat(".")  # endless arguments for map()
_NOTHING: Final = itertools.repeat("")
_SIGN_AND_ZEROS: Final = itertools.repeat("-0")
_ONES: Final = itertools.repeat(1)
_23S: Final = itertools.repeat(23)
_FFS: Final = itertools.repeat(0xFF)


def _max_places(biased: int) -> int:
    """The most digits after the point (plus one) whose last digit unit 10^-f is still coarser than
    the spacing 2^(biased - 150) of float32 values with this biased exponent; 0 if none is."""
    spacing_inverse = 150 - biased  # the spacing is 2^-spacing_inverse
    if spacing_inverse <= 0:
        return 0
    places = 0
    while 10 ** (places + 1) < 2**spacing_inverse:
        places += 1
    return places + 1


_MAX_PLACES: Final = tuple(_max_places(biased) for biased in range(256))


@dataclass(frozen=True)
class _Lanes:
    """Masks to test ``count`` 32-bit lanes of one integer at once (SIMD within a register)."""

    mantissa: int  # 0x007FFFFF per lane
    exponent: int  # 0x000000FF per lane
    ones: int  # 0x00000001 per lane
    high: int  # 0x80000000 per lane

    def any_zero(self, lanes: int) -> bool:
        """Whether some lane is 0: only a zero lane's top bit is set by ``lane - 1`` and unset in
        ``lane``; a borrow into the next lane only ever starts at a zero lane."""
        return bool((lanes - self.ones) & ~lanes & self.high)


@functools.lru_cache(maxsize=64)
def _lanes(count: int) -> _Lanes:
    def repeated(lane: bytes) -> int:
        return int.from_bytes(lane * count, "big")

    return _Lanes(
        repeated(b"\x00\x7f\xff\xff"),
        repeated(b"\x00\x00\x00\xff"),
        repeated(b"\x00\x00\x00\x01"),
        repeated(b"\x80\x00\x00\x00"),
    )


@functools.lru_cache(maxsize=64)
def _too_many_places(most: int) -> re.Pattern[str]:
    """A claim (one per line) with ``most`` or more characters after its point."""
    return re.compile(r"\.[^\n]{" + str(most) + "}")


def _places_within(text: str, claims: Sequence[str], data: bytes, exponents: int, lanes: _Lanes) -> bool:
    """Whether every claim's last digit is coarser than its float's spacing (see column_confirmer):
    ``places``, the characters after the point plus one (1 for a claim without a point, whose last
    digit unit is at least 1), is at most _MAX_PLACES of the float's exponent. A counter's run
    nearly always keeps one exponent: then one search of the column's text says it."""
    low = exponents & 0xFF
    if exponents == low * lanes.ones:  # every float of the column has this biased exponent
        most = _MAX_PLACES[low]
        return most > 0 and _too_many_places(most).search(text) is None
    count = len(claims)
    biased = map(int.__and__, map(int.__rshift__, struct.unpack(f">{count}I", data), _23S), _FFS)
    points = list(map(str.find, claims, _DOTS))
    places = list(map(int.__sub__, map(len, claims), points))
    if -1 in points:
        places = [1 if point < 0 else place for point, place in zip(points, places, strict=True)]
    return all(map(int.__le__, places, map(_MAX_PLACES.__getitem__, biased)))


@functools.lru_cache(maxsize=64)
def _g_texts(count: int) -> str:
    """A %-format of ``count`` floats, each to its own number of significant digits, one per line."""
    return "\n".join(["%.*g"] * count)


def _interleave(digits: list[int], floats: Sequence[float]) -> tuple[float | int, ...]:
    pairs: list[float | int] = [0] * (2 * len(digits))
    pairs[::2], pairs[1::2] = digits, floats
    return tuple(pairs)


def _shortest_column(
    claims: Sequence[str], claimed: list[float], floats: tuple[float, ...], bits: int, lanes: _Lanes
) -> bool:
    """Whether each claim (which reads back as its float) is the nearest decimal of its length and
    none reads back with a digit fewer: hex_confirmer's rule, a few calls for the whole column."""
    count = len(claims)
    # Significant digits of each claim, never fewer than it has: the count where an honest
    # claim has one, more where it has anything else (then the comparisons below fail).
    digits = list(map(len, map(str.strip, map(str.replace, claims, _DOTS, _NOTHING), _SIGN_AND_ZEROS)))
    if min(digits) < 2 or max(digits) > 9:
        return False
    try:
        # The nearest decimal of each claim's length, and of one digit fewer, in one call each.
        nearest = (_g_texts(count) % _interleave(digits, floats)).split("\n")
        fewer = _g_texts(count) % _interleave(list(map(int.__sub__, digits, _ONES)), floats)
        fewer_data = struct.pack(f">{count}f", *map(float, fewer.split("\n")))
    except (ValueError, OverflowError, struct.error):
        return False
    # Decimals of at most 15 significant digits are equal exactly when their doubles are; none
    # reads back with a digit fewer when no 32-bit lane of the two is equal.
    return (nearest == list(claims) or list(map(float, nearest)) == claimed) and not lanes.any_zero(
        bits ^ int.from_bytes(fewer_data, "big")
    )


@functools.lru_cache(maxsize=64)
def column_confirmer(
    rtype: str, order: str, scale: Decimal
) -> Callable[[Sequence[bytes], Sequence[str]], tuple[float, ...] | None] | None:
    """For float32 at scale 1 (most energy registers), a check of a whole column of claims at once:
    the floats of the column only if every claimed text is exactly ``hex_decoder(...)(raw)`` (their
    order is the claims' order), else None; None for other layouts.

    None from a column means "not shown here", not "wrong": zero, subnormals, infinities,
    NaN, powers of two, one-digit and exponent-form claims are left to
    :func:`hex_confirmer`, value by value, which also says which one is wrong.
    The rule is hex_confirmer's (the claim is the nearest decimal of its
    length, reads back as the same float, and one digit fewer does not), done
    with a few C calls per column instead of several calls per value.
    """
    if rtype != "f32" or scale.as_tuple() != Decimal(1).as_tuple() or order not in _TO_BIG_ENDIAN:
        return None
    permute = _TO_BIG_ENDIAN[order]

    def confirm(raws: Sequence[bytes], claims: Sequence[str]) -> tuple[float, ...] | None:
        count = len(raws)
        joined = b"".join(raws)
        if (
            count != len(claims)
            or len(joined) != 8 * count
            or set(map(len, raws)) != {8}
            or not _HEX_TEXT.fullmatch(joined)
        ):
            return None
        if permute is not None:
            joined = permute[0].sub(permute[1], joined)
        data = bytes.fromhex(joined.decode("ascii"))
        lanes = _lanes(count)
        value = int.from_bytes(data, "big")  # all floats' bits in one integer, 32 per lane
        exponents = value >> 23 & lanes.exponent
        if (
            lanes.any_zero(value & lanes.mantissa)  # zero or a power of two
            or lanes.any_zero(exponents)  # zero or subnormal
            or lanes.any_zero(exponents ^ lanes.exponent)  # infinite or NaN
        ):
            return None
        floats = struct.unpack(f">{count}f", data)
        try:
            claimed = list(map(float, claims))
            read_back = struct.pack(f">{count}f", *claimed)
        except (ValueError, OverflowError, struct.error):
            return None
        if read_back != data:
            return None  # some claim does not read back as its float
        # Where each claim's last digit is coarser than its float's spacing (a counter's shortest
        # text nearly always is), reading back is proof enough: a claim c with last digit unit
        # u > ulp that reads back lies within ulp/2 of the float, so it is the nearest decimal of its
        # length (the next lies u away), and every decimal with fewer digits is a multiple of u
        # other than c, at least u - ulp/2 > ulp/2 away: none reads back. ``places`` counts the
        # digits after the point plus one; an integer claim's last digit unit is at least 1, so it
        # counts 1. (An exponent, as in 4.9e-26, moves the last digit: such claims take the full check.)
        text = "\n".join(claims)
        if "e" not in text and "E" not in text and _places_within(text, claims, data, exponents, lanes):
            return floats
        try:
            shortest = _shortest_column(claims, claimed, floats, value, lanes)
        except OverflowError:  # a text beyond the largest float32: left to hex_confirmer
            shortest = False
        return floats if shortest else None

    return confirm


def encode_value(value: float | int | Decimal, rtype: str, order: str, scale: Decimal) -> list[int]:
    """Register words a meter would serve for ``value`` (inverse of :func:`decode_words`)."""
    if rtype not in WIDTH:
        raise DecodeError(f"unknown register type {rtype!r}")
    raw = EXACT.divide(Decimal(str(value)), scale)
    try:
        if rtype.startswith("f"):
            packed = struct.pack(_STRUCT[rtype], float(raw))
        else:
            packed = struct.pack(_STRUCT[rtype], int(raw.to_integral_value()))
    except (struct.error, OverflowError) as exc:
        raise DecodeError(f"{value} does not fit in {rtype} with scale {scale}: {exc}") from exc
    return _from_big_endian(packed, order)


def words_to_hex(words: Sequence[int]) -> str:
    """Raw register words as the record carries them: 4 lowercase hex digits per word."""
    return "".join(f"{w:04x}" for w in words)


def hex_to_words(text: str) -> list[int]:
    if len(text) % 4:
        raise DecodeError(f"raw register text {text!r} is not whole 16-bit words")
    return [int(text[i : i + 4], 16) for i in range(0, len(text), 4)]


# Scale-factor registers (SunSpec ``sunssf``): a value's words are followed, in the record's ``raw``, by
# the word of the register that holds its decimal exponent. The exponent is a big-endian int16, as
# SunSpec defines it, whatever the value's byte order; 0x8000 means "not implemented", and SunSpec
# allows -10..10 (SunSpec Information Model Specification, type sunssf): any other exponent is no
# value too (garbage words must not become a number with thousands of digits).
SUNSSF_NOT_IMPLEMENTED: Final = 0x8000
SUNSSF_RANGE: Final = range(-10, 11)


def scale_factor_exponent(word: int) -> int | None:
    """The exponent a scale-factor word holds (int16), None where it gives none (0x8000, or outside
    -10..10)."""
    if word == SUNSSF_NOT_IMPLEMENTED:
        return None
    exponent = word - 0x10000 if word & 0x8000 else word
    return exponent if exponent in SUNSSF_RANGE else None


@functools.lru_cache(maxsize=256)
def register_decoder(
    rtype: str,
    order: str,
    scale: Decimal,
    scale_factor: bool = False,
    not_implemented: int | None = None,
) -> Callable[[str], Decimal | None]:
    """The decoder of a record's ``raw`` for a register that may have a scale-factor register and a
    "not implemented" pattern; :func:`hex_decoder` itself for one that has neither.

    ``raw`` is the value's words, then (``scale_factor``) the scale-factor word: 4 lowercase hex
    digits each. The value's words are decoded as :func:`hex_decoder` does, then multiplied exactly
    by 10 to the power of the exponent (``Decimal.scaleb``): value = raw x scale x 10^sf.
    ``not_implemented`` is the integer the value's bytes hold, in the register's byte order, read as
    an unsigned big-endian number (0xFFFF for a u16, 0x8000 for an i16, 0xFFFFFFFF for a u32), that
    means "no value". No value (None) when the value's bytes are that integer, or the exponent is
    not implemented or outside -10..10, or (floats) NaN or infinite.
    """
    decode = hex_decoder(rtype, order, scale)
    if not scale_factor and not_implemented is None:
        return decode
    read = _big_endian_reader(rtype, order)
    chars = 4 * WIDTH[rtype]
    total = chars + (4 if scale_factor else 0)
    scaleb = EXACT.scaleb

    def decode_scaled(raw: str) -> Decimal | None:
        if len(raw) != total or not _HEX_WORDS.fullmatch(raw):
            raise DecodeError(f"raw register text {raw!r} is not {total // 4} word(s) of lowercase hex")
        words = raw[:chars]
        if not_implemented is not None and int.from_bytes(read(words), "big") == not_implemented:
            return None
        value = decode(words)
        if not scale_factor or value is None:
            return value
        exponent = scale_factor_exponent(int(raw[chars:], 16))
        return None if exponent is None else scaleb(value, exponent)

    return decode_scaled


@functools.lru_cache(maxsize=256)
def register_confirmer(
    rtype: str,
    order: str,
    scale: Decimal,
    scale_factor: bool = False,
    not_implemented: int | None = None,
) -> Callable[[str, Decimal], bool]:
    """:func:`hex_confirmer` for any register: whether a claimed value is exactly what ``raw``
    decodes to with :func:`register_decoder` (by decoding, for registers with a scale factor or a
    "not implemented" pattern)."""
    if not scale_factor and not_implemented is None:
        return hex_confirmer(rtype, order, scale)
    decode = register_decoder(rtype, order, scale, scale_factor, not_implemented)
    return lambda raw, claimed: decode(raw) == claimed


def encode_scaled(
    value: float | int | Decimal, rtype: str, order: str, scale: Decimal, exponent: int
) -> list[int]:
    """Register words and the scale-factor word a meter would serve for ``value`` with the exponent
    ``exponent`` (inverse of :func:`register_decoder`, for simulators): the value's words, then the
    exponent as an int16 word."""
    if exponent not in SUNSSF_RANGE:
        raise DecodeError(f"scale factor {exponent} is outside -10..10")
    return [*encode_value(value, rtype, order, scale.scaleb(exponent, EXACT)), exponent & 0xFFFF]
