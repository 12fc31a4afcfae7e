"""Reading records and the seals that sign them (docs/record-format.md).

A *record* is one reading of one device: canonical JSON bytes, hash-linked to
the previous record of the same device by ``prev`` and numbered by a gap-free
``seq``. A *seal* is the gateway's Ed25519 signature over the RFC 6962 Merkle
root of a batch of records (any devices), itself numbered and hash-linked per
gateway. One signature thus covers many records, and every record stays
individually provable by its Merkle inclusion path.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from mrv_core import FORMAT_VERSION
from mrv_core.canonical import MAX_SAFE_INTEGER, CanonicalError, canonical_bytes, parse_canonical
from mrv_core.exact import decimal_text
from mrv_core.hashing import ZERO_HASH, merkle_root
from mrv_core.timefmt import format_time, parse_time

CLOCK_STATES: Final = ("synced", "unsynced", "unknown", "simulated")
RECORD_KINDS: Final = ("reading", "gap")
# Why a device was not read (a gap record's ``reason``): the agent's read failures, an exception
# carrying the Modbus exception code (``exception:2``).
GAP_REASON = re.compile(r"(timeout|disconnected|short_response|identity_mismatch|exception(:[0-9]{1,3})?)")
GAP_REASONS: Final = "timeout, disconnected, short_response, identity_mismatch, exception:N"


class RecordError(ValueError):
    """Bytes that are not a well-formed record or seal of this format."""


@dataclass(frozen=True)
class Value:
    """One decoded quantity: exact decimal value (None if the meter gave none), unit, raw words."""

    value: Decimal | None
    unit: str
    raw: str


@dataclass(frozen=True)
class Gap:
    """What a gap record attests: the device was not read at ``polls`` scheduled polls from ``start``
    to ``end`` (times of the first and last of them), the last time for ``reason``."""

    start: str
    end: str
    polls: int
    reason: str


@dataclass(frozen=True)
class Record:
    """A parsed record. ``data`` are the signed bytes, kept verbatim. ``kind`` "gap": no values, and
    ``gap`` says which polls did not read the device and why (absence, signed like a reading)."""

    data: bytes
    hash: str
    site: str
    gateway: str
    device: str
    profile_id: str
    profile_sha256: str
    seq: int
    prev: str
    time: str
    clock: str
    values: Mapping[str, Value]
    quality: tuple[str, ...]
    kind: str = "reading"
    gap: Gap | None = None

    @property
    def hash_bytes(self) -> bytes:
        return bytes.fromhex(self.hash)


@dataclass(frozen=True)
class Seal:
    """A parsed seal; ``data`` are the signed bytes and ``signature`` the Ed25519 signature."""

    data: bytes
    hash: str
    signature: bytes
    site: str
    gateway: str
    key: str
    seq: int
    prev: str
    created: str
    count: int
    root: str
    first_time: str
    last_time: str


def build_record(
    *,
    site: str,
    gateway: str,
    device: str,
    profile_id: str,
    profile_sha256: str,
    seq: int,
    prev: str,
    time: datetime,
    clock: str,
    values: Mapping[str, Value],
    quality: Sequence[str] = (),
) -> tuple[bytes, str]:
    """Canonical bytes and SHA-256 (hex) of a reading record. Pure: time is passed in."""
    return _encoded(
        "reading",
        (site, gateway, device, profile_id, profile_sha256, seq, prev, time, clock),
        values={
            name: {
                "value": None if v.value is None else decimal_text(v.value),
                "unit": v.unit,
                "raw": v.raw,
            }
            for name, v in values.items()
        },
        quality=sorted(set(quality)),
    )


_STRING = json.encoder.encode_basestring_ascii  # how json.dumps(ensure_ascii=True) writes a string
_HEAD_SLOTS = ("clock", "prev", "quality", "seq", "time")  # in canonical (sorted) key order
_SLOT = re.compile(r'"\\u0000([a-z]+)([0-9]*)\\u0000"')  # a template's slot, as canonical JSON writes it


class ReadingEncoder:
    """:func:`build_record` for one device and one list of (quantity, unit), from pieces encoded
    once: a gateway encodes every reading, and walking, sorting and escaping the same head and
    names each time was most of the cost (about 19 -> 5 us for 8 values). The pieces are cut from
    :func:`canonical_bytes` of a record whose variable fields are markers, so key order and
    escaping are canonical JSON's own; anything else (other quantities or units, a seq or clock
    the record refuses) goes to :func:`build_record`. Same bytes: tests/unit/test_record_encoder.py."""

    def __init__(
        self,
        *,
        site: str,
        gateway: str,
        device: str,
        profile_id: str,
        profile_sha256: str,
        quantities: Sequence[tuple[str, str]],
    ) -> None:
        self._head = {
            "site": site,
            "gateway": gateway,
            "device": device,
            "profile_id": profile_id,
            "profile_sha256": profile_sha256,
        }
        self._units = dict(quantities)
        names = list(self._units)
        marked = {
            "v": FORMAT_VERSION,
            "kind": "reading",
            "site": site,
            "gateway": gateway,
            "device": device,
            "profile": {"id": profile_id, "sha256": profile_sha256},
            "seq": "\0seq\0",
            "prev": "\0prev\0",
            "time": "\0time\0",
            "clock": "\0clock\0",
            "values": {
                name: {"value": f"\0value{index}\0", "unit": unit, "raw": f"\0raw{index}\0"}
                for index, (name, unit) in enumerate(self._units.items())
            },
            "quality": "\0quality\0",
        }
        parts = _SLOT.split(canonical_bytes(marked).decode("ascii"))  # text, (slot, index, text)*
        slots = [
            (name, int(index) if index else -1) for name, index in zip(parts[1::3], parts[2::3], strict=True)
        ]
        # Canonical JSON sorts keys: the head's slots come first (clock, prev, quality, seq, time),
        # then each value's raw and value, by quantity name. Names that hold a marker themselves
        # (NUL characters) break that order: then every record is built the long way.
        order = [index for _, index in slots[5::2]]
        expected = [(kind, -1) for kind in _HEAD_SLOTS] + [
            (kind, i) for i in order for kind in ("raw", "value")
        ]
        self._format = "%s".join(part.replace("%", "%%") for part in parts[::3])
        self._names = (
            [names[i] for i in order]
            if slots == expected and sorted(order) == list(range(len(names)))
            else None
        )
        self._unit_list = [self._units[name] for name in self._names or ()]

    def encode(
        self,
        seq: int,
        prev: str,
        time: datetime,
        clock: str,
        *,
        values: Mapping[str, Value],
        quality: Sequence[str] = (),
    ) -> tuple[bytes, str]:
        """Canonical bytes and SHA-256 (hex) of the reading: exactly :func:`build_record`'s."""
        names = self._names
        if names is not None and len(values) == len(names) and 1 <= seq <= MAX_SAFE_INTEGER:
            ordered = [values[name] for name in names if name in values]
            if (
                len(ordered) == len(names)
                and [v.unit for v in ordered] == self._unit_list
                and clock in CLOCK_STATES
            ):
                fill = [
                    _STRING(clock),
                    _STRING(prev),
                    "[" + ",".join(map(_STRING, sorted(set(quality)))) + "]" if quality else "[]",
                    str(seq),
                    _STRING(format_time(time)),
                ]
                for item in ordered:
                    number = item.value
                    fill.append(_STRING(item.raw))
                    fill.append("null" if number is None else _STRING(decimal_text(number)))
                data = (self._format % tuple(fill)).encode("ascii")
                return data, hashlib.sha256(data).hexdigest()
        return build_record(
            **self._head, seq=seq, prev=prev, time=time, clock=clock, values=values, quality=quality
        )


def build_gap_record(
    *,
    site: str,
    gateway: str,
    device: str,
    profile_id: str,
    profile_sha256: str,
    seq: int,
    prev: str,
    time: datetime,
    clock: str,
    start: datetime,
    end: datetime,
    polls: int,
    reason: str,
) -> tuple[bytes, str]:
    """Canonical bytes and SHA-256 (hex) of a gap record: the device's chain says that ``polls``
    scheduled polls from ``start`` to ``end`` read nothing, and why. Pure: times are passed in."""
    if polls < 1 or not start <= end <= time:
        raise RecordError(f"a gap covers at least one poll, from {start} to {end}, before {time}")
    if not GAP_REASON.fullmatch(reason):
        raise RecordError(f"gap reason {reason!r} is not one of {GAP_REASONS}")
    return _encoded(
        "gap",
        (site, gateway, device, profile_id, profile_sha256, seq, prev, time, clock),
        gap={"from": format_time(start), "to": format_time(end), "polls": polls, "reason": reason},
        values={},
        quality=[],
    )


def _encoded(
    kind: str, head: tuple[str, str, str, str, str, int, str, datetime, str], **fields: object
) -> tuple[bytes, str]:
    """Canonical bytes and SHA-256 (hex) of a record of ``kind``: the fields every record has
    (site, gateway, device, profile id and hash, seq, prev, time, clock), and its own."""
    site, gateway, device, profile_id, profile_sha256, seq, prev, time, clock = head
    if seq < 1:
        raise RecordError(f"seq starts at 1, got {seq}")
    if clock not in CLOCK_STATES:
        raise RecordError(f"clock state {clock!r} is not one of {', '.join(CLOCK_STATES)}")
    body = {
        "v": FORMAT_VERSION,
        "kind": kind,
        "site": site,
        "gateway": gateway,
        "device": device,
        "profile": {"id": profile_id, "sha256": profile_sha256},
        "seq": seq,
        "prev": prev,
        "time": format_time(time),
        "clock": clock,
        **fields,
    }
    data = canonical_bytes(body)
    return data, hashlib.sha256(data).hexdigest()


def build_seal(
    *,
    site: str,
    gateway: str,
    key_id: str,
    seq: int,
    prev: str,
    created: datetime,
    record_hashes: Sequence[str],
    first_time: str,
    last_time: str,
) -> tuple[bytes, str]:
    """Canonical bytes and SHA-256 (hex) of a seal over ``record_hashes`` in this order."""
    if not record_hashes:
        raise RecordError("a seal covers at least one record")
    root = merkle_root([bytes.fromhex(h) for h in record_hashes]).hex()
    body = {
        "v": FORMAT_VERSION,
        "kind": "seal",
        "site": site,
        "gateway": gateway,
        "key": key_id,
        "seq": seq,
        "prev": prev,
        "created": format_time(created),
        "count": len(record_hashes),
        "root": root,
        "first_time": first_time,
        "last_time": last_time,
    }
    data = canonical_bytes(body)
    return data, hashlib.sha256(data).hexdigest()


def _field(obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    if name not in obj:
        raise RecordError(f"{what}: field {name!r} is missing")
    value = obj[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RecordError(f"{what}: field {name!r} has the wrong type")
    return value


def _hex64(value: str, what: str, name: str) -> str:
    if len(value) != 64 or value.strip("0123456789abcdef"):
        raise RecordError(f"{what}: field {name!r} is not 64 lowercase hex digits")
    return value


def _object(data: bytes, kinds: tuple[str, ...], strict: bool) -> dict[str, Any]:
    what = "record" if kinds == RECORD_KINDS else kinds[0]
    try:
        obj = parse_canonical(data) if strict else _loads(data)
    except CanonicalError as exc:
        raise RecordError(f"{what}: {exc}") from None
    if not isinstance(obj, dict):
        raise RecordError(f"{what}: not a JSON object")
    if obj.get("v") != FORMAT_VERSION:
        raise RecordError(f"{what}: format version {obj.get('v')!r} is not {FORMAT_VERSION}")
    if obj.get("kind") not in kinds:
        raise RecordError(f"{what}: kind is {obj.get('kind')!r}")
    return obj


def _loads(data: bytes) -> Any:
    import json  # noqa: PLC0415 - only the non-strict path needs it

    try:
        return json.loads(data)
    except ValueError as exc:
        raise CanonicalError(f"not JSON: {exc}") from None


def _values(raw_values: Mapping[str, Any]) -> dict[str, Value]:
    what = "record"
    values: dict[str, Value] = {}
    for name, item in raw_values.items():
        if not isinstance(item, dict):
            raise RecordError(f"record: values.{name} is not an object")
        text = item.get("value")
        try:
            value = None if text is None else Decimal(text)
        except (ArithmeticError, TypeError):
            raise RecordError(f"record: values.{name}.value {text!r} is not a decimal") from None
        values[name] = Value(value, _field(item, "unit", str, what), _field(item, "raw", str, what))
    return values


def parse_record(data: bytes, *, strict: bool = True, digest: bytes | None = None) -> Record:
    """Parse and check a record's bytes. ``strict`` also refuses non-canonical bytes.

    Records in the common layout (see :func:`_common_record`) are read without a JSON parse;
    any other bytes take the full parse, which says exactly what is wrong. ``digest``: the bytes'
    SHA-256 when the caller has it already (Merkle checks hash every record)."""
    common = _common_record(data, digest)  # a subset of canonical bytes: fine for either mode
    if common is not None:
        return common
    return _parse_full(data, strict)


def _parse_full(data: bytes, strict: bool) -> Record:
    obj = _object(data, RECORD_KINDS, strict)
    what = "record"
    profile = _field(obj, "profile", dict, what)
    values = _values(_field(obj, "values", dict, what))
    gap = gap_of(obj) if obj["kind"] == "gap" else None
    time_text = _field(obj, "time", str, what)
    try:
        parse_time(time_text)
    except ValueError as exc:
        raise RecordError(f"record: {exc}") from None
    clock = _field(obj, "clock", str, what)
    if clock not in CLOCK_STATES:
        raise RecordError(f"record: clock state {clock!r} is unknown")
    seq = _field(obj, "seq", int, what)
    if seq < 1:
        raise RecordError(f"record: seq {seq} is below 1")
    return Record(
        data=data,
        hash=hashlib.sha256(data).hexdigest(),
        site=_field(obj, "site", str, what),
        gateway=_field(obj, "gateway", str, what),
        device=_field(obj, "device", str, what),
        profile_id=_field(profile, "id", str, what),
        profile_sha256=_hex64(_field(profile, "sha256", str, what), what, "profile.sha256"),
        seq=seq,
        prev=_hex64(_field(obj, "prev", str, what), what, "prev"),
        time=time_text,
        clock=clock,
        values=values,
        quality=tuple(_field(obj, "quality", list, what)),
        kind=obj["kind"],
        gap=gap,
    )


def gap_of(obj: Mapping[str, Any]) -> Gap:
    """The ``gap`` of a parsed gap record, checked (and that it has no values); RecordError if it is
    not well formed."""
    what = "gap record"
    body = _field(obj, "gap", dict, what)
    start, end = _field(body, "from", str, what), _field(body, "to", str, what)
    polls, reason = _field(body, "polls", int, what), _field(body, "reason", str, what)
    try:
        ordered = parse_time(start) <= parse_time(end) <= parse_time(_field(obj, "time", str, what))
    except ValueError as exc:
        raise RecordError(f"{what}: {exc}") from None
    if not ordered or polls < 1 or not GAP_REASON.fullmatch(reason):
        raise RecordError(f"{what}: gap {body} is not from <= to <= time, polls >= 1, one of {GAP_REASONS}")
    if obj.get("values") != {}:
        raise RecordError(f"{what}: it has values")
    return Gap(start, end, polls, reason)


def parse_seal(data: bytes, signature: bytes, *, strict: bool = True) -> Seal:
    obj = _object(data, ("seal",), strict)
    what = "seal"
    seq = _field(obj, "seq", int, what)
    count = _field(obj, "count", int, what)
    if seq < 1 or count < 1:
        raise RecordError("seal: seq and count start at 1")
    for name in ("created", "first_time", "last_time"):
        try:
            parse_time(_field(obj, name, str, what))
        except ValueError as exc:
            raise RecordError(f"seal: {name}: {exc}") from None
    return Seal(
        data=data,
        hash=hashlib.sha256(data).hexdigest(),
        signature=signature,
        site=_field(obj, "site", str, what),
        gateway=_field(obj, "gateway", str, what),
        key=_field(obj, "key", str, what),
        seq=seq,
        prev=_hex64(_field(obj, "prev", str, what), what, "prev"),
        created=obj["created"],
        count=count,
        root=_hex64(_field(obj, "root", str, what), what, "root"),
        first_time=obj["first_time"],
        last_time=obj["last_time"],
    )


# The common layout. Nearly every record the agent writes is canonical JSON of one shape: plain
# ASCII strings (nothing to escape), no quality flag, values of lowercase names with decimal text or
# null. One regex reads and checks such bytes at a fraction of a canonical JSON parse (which parses,
# re-encodes and compares); the collector's ingest rate rests on it. Whatever does not match takes the
# full parse, so this path only ever accepts a subset of what the full one accepts, with the same
# Record (tests/unit/test_record_layout.py holds the two to that).
_TEXT = rb"[\x20\x21\x23-\x5b\x5d-\x7e]*"  # printable ASCII but '"' and '\\': canonical as it stands
_COMMON = re.compile(
    rb'\{"clock":"('
    + b"|".join(state.encode() for state in CLOCK_STATES)
    + rb')","device":"('
    + _TEXT
    + rb')","gateway":"('
    + _TEXT
    + rb')","kind":"reading","prev":"([0-9a-f]{64})","profile":\{"id":"('
    + _TEXT
    + rb')","sha256":"([0-9a-f]{64})"\},"quality":\[\],"seq":([1-9][0-9]{0,15}),"site":"('
    + _TEXT
    + rb')","time":"(\d{4}-\d\d-\d\dT(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z)","v":'
    + str(FORMAT_VERSION).encode()
    + rb',"values":(\{.*\})\}'
)
_VALUE_BODY = (
    rb':\{"raw":"' + _TEXT + rb'","unit":"' + _TEXT + rb'","value":'
    rb'(?:null|"-?(?:0|[1-9][0-9]*)(?:\.[0-9]*[1-9])?")\}'
)
_VALUE = rb'"[a-z0-9_]+"' + _VALUE_BODY
_COMMON_VALUES = re.compile(rb"\{(?:" + _VALUE + rb"(?:," + _VALUE + rb")*)?\}")
_VALUE_NAME = re.compile(rb'"([a-z0-9_]+)":\{"raw"')  # only keys: no string here holds a quote
# Per profile, the value lists its records carry (all quantities; fewer after a partial read), each
# with its names spelt out once they were seen in canonical order: one fullmatch then checks a
# record's values, names and order together.
_SHAPES: dict[bytes, list[re.Pattern[bytes]]] = {}
MAX_SHAPES = 256  # profiles
SHAPES_PER_PROFILE = 4


def _canonical_values(values: bytes, profile_sha: bytes) -> bool:
    """Whether a common-layout record's values text is canonical (names in order, decimal text)."""
    shapes = _SHAPES.get(profile_sha, [])
    if any(shape.fullmatch(values) for shape in shapes):
        return True
    if _COMMON_VALUES.fullmatch(values) is None:
        return False
    names = _VALUE_NAME.findall(values)
    if any(a >= b for a, b in itertools.pairwise(names)):
        return False  # keys out of order or repeated: not canonical
    if len(_SHAPES) >= MAX_SHAPES:
        _SHAPES.clear()
    shape = re.compile(rb"\{" + b",".join(b'"' + name + b'"' + _VALUE_BODY for name in names) + rb"\}")
    _SHAPES[profile_sha] = [shape, *shapes[: SHAPES_PER_PROFILE - 1]]
    return True


def _common_record(data: bytes, digest: bytes | None = None) -> Record | None:
    """The record of ``data`` if its bytes are in the common layout, else None."""
    match = _COMMON.fullmatch(data)
    if match is None:
        return None
    clock, device, gateway, prev, profile_id, profile_sha, seq, site, time, values = match.groups()
    if int(seq) > MAX_SAFE_INTEGER or not _canonical_values(values, profile_sha):
        return None
    try:
        date.fromisoformat(time[:10].decode("ascii"))  # the regex checked the rest of the timestamp
    except ValueError:
        return None
    return Record(
        data=data,
        hash=(hashlib.sha256(data).digest() if digest is None else digest).hex(),
        site=site.decode("ascii"),
        gateway=gateway.decode("ascii"),
        device=device.decode("ascii"),
        profile_id=profile_id.decode("ascii"),
        profile_sha256=profile_sha.decode("ascii"),
        seq=int(seq),
        prev=prev.decode("ascii"),
        time=time.decode("ascii"),
        clock=clock.decode("ascii"),
        values=_LazyValues(values),
        quality=(),
    )


class _LazyValues(Mapping[str, Value]):
    """A common-layout record's values, checked by regex and decoded to Decimals only when read
    (ingest stores the bytes; only some consumers read the values)."""

    __slots__ = ("_parsed", "_text")

    def __init__(self, text: bytes) -> None:
        self._text = text
        self._parsed: dict[str, Value] | None = None

    def _items(self) -> dict[str, Value]:
        if self._parsed is None:
            self._parsed = _values(json.loads(self._text))
        return self._parsed

    def __getitem__(self, name: str) -> Value:
        return self._items()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __repr__(self) -> str:
        return repr(self._items())

    @property
    def text(self) -> bytes:
        return self._text

    def texts(self) -> list[tuple[bytes, bytes]]:
        found: list[tuple[bytes, bytes]] = _VALUE_TEXT.findall(self._text)
        return found


_VALUE_TEXT = re.compile(rb'"([a-z0-9_]+)":\{"raw":"[^"]*","unit":"[^"]*","value":"([^"]*)"\}')


@functools.lru_cache(maxsize=8)
def _named_entries(names: frozenset[str]) -> re.Pattern[str]:
    """The entries of a values text whose names are among ``names``: (name, unit, decimal text)."""
    alternatives = "|".join(re.escape(name) for name in sorted(names))
    return re.compile(r'"(' + alternatives + r')":\{"raw":"[^"]*","unit":"([^"]*)","value":"([^"]*)"\}')


Entry = tuple[str, str, str]  # (name, unit, decimal text)


def value_columns(
    values: Sequence[Mapping[str, Value]], names: frozenset[str]
) -> dict[str, Sequence[Entry | None]]:
    """Per name among ``names`` that some of these records' values hold with a number: the
    (name, unit, decimal text) of each record in order, None where that record has none.

    Ingest summarises every record's counters: records of the common layout are scanned together
    by one regex over their joined values texts (a match cannot run from one text into the next:
    every quote in a checked text closes within it). When each record holds each name found, the
    matches fall in a fixed order (a record's names are unique and in order) and the columns are
    slices; otherwise, record by record."""
    texts = [v.text for v in values if isinstance(v, _LazyValues)]
    pattern = _named_entries(names)
    if len(texts) == len(values):
        found: list[Entry] = pattern.findall(b"\n".join(texts).decode("ascii"))
        present = sorted({entry[0] for entry in found})
        if len(found) == len(values) * len(present):
            return {name: found[i :: len(present)] for i, name in enumerate(present)}
    entries = [_entries(v, pattern, names) for v in values]
    columns: dict[str, list[Entry | None]] = {}
    for index, record_entries in enumerate(entries):
        for entry in record_entries:
            columns.setdefault(entry[0], [None] * len(values))[index] = entry
    ordered: dict[str, Sequence[Entry | None]] = dict(sorted(columns.items()))
    return ordered


def _entries(values: Mapping[str, Value], pattern: re.Pattern[str], names: frozenset[str]) -> list[Entry]:
    if isinstance(values, _LazyValues):
        found: list[Entry] = pattern.findall(values.text.decode("ascii"))
        return found
    return [
        (name, value.unit, str(value.value))
        for name, value in sorted(values.items())
        if name in names and value.value is not None
    ]


@functools.lru_cache(maxsize=256)
def _one_value(name: str) -> re.Pattern[bytes]:
    return re.compile(
        rb'"'
        + re.escape(name.encode())
        + rb'":\{"raw":"([^"]*)","unit":"([^"]*)","value":(?:null|"([^"]*)")\}'
    )


def value_of(values: Mapping[str, Value], name: str) -> Value | None:
    """One quantity of a record's values. For a common-layout record (whose values text was checked
    canonical when it was read: no escapes, names in order) one regex reads just that quantity
    instead of decoding them all; the same Value either way (tests/unit/test_record_layout.py)."""
    if not isinstance(values, _LazyValues) or values._parsed is not None:
        return values.get(name)
    found = _one_value(name).search(values.text)
    if found is None:
        return None
    raw, unit, text = found.groups()
    return Value(
        None if text is None else Decimal(text.decode("ascii")), unit.decode("ascii"), raw.decode("ascii")
    )


def values_text(values: Mapping[str, Value]) -> bytes | None:
    """The canonical JSON text of a common-layout record's values (checked when the record was
    read), to be scanned without decoding; None for other records."""
    return values.text if isinstance(values, _LazyValues) else None


def value_texts(values: Mapping[str, Value]) -> list[tuple[bytes, bytes]]:
    """(name, decimal text) of the values that have one, as UTF-8, in name order; cheap for
    common-layout records, whose values are not decoded for this (ingest's dashboard numbers)."""
    if isinstance(values, _LazyValues):
        return values.texts()
    return [
        (name.encode(), str(v.value).encode()) for name, v in sorted(values.items()) if v.value is not None
    ]


GENESIS: Final = ZERO_HASH
"""``prev`` of the first record of a device chain and of a gateway's first seal."""
