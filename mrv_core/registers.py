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
import math
import re
import struct
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Final, Literal

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
    pack = _PACK_F32  # verifiers call this millions of times: no attribute lookups, no f-string parsing
    target = pack(value)
    if not (target[1] & 0x7F or target[2] or target[3]):
        # A power of two: the values that read back as it reach less far below than above it, so
        # p digits may round-trip where p + 1 do not. Try every length, shortest first.
        for digits in range(1, 10):
            text = format(value, _G[digits])
            if pack(float(text)) == target:
                return text
    # Elsewhere round-tripping is monotonic in the number of digits (if p digits do, p + 1 do: the
    # nearer decimal stays inside the symmetric interval), and 9 always do for a float32: a binary
    # search finds the fewest in about three tries instead of up to nine.
    low, high, found = 1, 9, ""
    while low < high:
        middle = (low + high) >> 1
        text = format(value, _G[middle])
        if pack(float(text)) == target:
            high, found = middle, text  # the last success is the answer when the search ends
        else:
            low = middle + 1
    return found or format(value, _G[9])


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


def _big_endian_reader(rtype: str, order: str) -> Callable[[str], bytes]:
    """A record's ``raw`` text to the value's big-endian bytes, for one register layout."""
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
    identity = perm == list(range(2 * width))
    chars = 4 * width

    def read(raw: str) -> bytes:
        if len(raw) != chars or not _HEX_WORDS.fullmatch(raw):
            raise DecodeError(f"raw register text {raw!r} is not {width} word(s) of lowercase hex")
        data = bytes.fromhex(raw)
        return data if identity else bytes([data[i] for i in perm])

    return read


@functools.lru_cache(maxsize=256)
def hex_decoder(rtype: str, order: str, scale: Decimal) -> Callable[[str], Decimal | None]:
    """A fast :func:`decode_words` of a record's ``raw`` text for one register layout.

    Verifiers decode millions of values: the byte permutation and the struct
    are worked out once per layout. Same result as ``decode_words(hex_to_words(raw), ...)``.
    """
    read = _big_endian_reader(rtype, order)
    unpack = struct.Struct(_STRUCT[rtype]).unpack
    is_float = rtype.startswith("f")
    multiply = EXACT.multiply
    unit_scale = scale.as_tuple() == Decimal(1).as_tuple()  # times 1 (exponent 0) changes nothing
    shortest = shortest_float_text

    def decode(raw: str) -> Decimal | None:
        (value,) = unpack(read(raw))
        if is_float:
            if not math.isfinite(value):
                return None
            base = Decimal(shortest(value, rtype))
        else:
            base = Decimal(value)
        return base if unit_scale else multiply(base, scale)

    return decode


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
        if Decimal(text) != claimed or pack(float(text)) != data:
            return False
        return digits == 1 or pack(float(format(value, _G[digits - 1]))) != data

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
