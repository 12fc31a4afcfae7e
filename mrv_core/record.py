"""Reading records and the seals that sign them (docs/record-format.md).

A *record* is one reading of one device: canonical JSON bytes, hash-linked to
the previous record of the same device by ``prev`` and numbered by a gap-free
``seq``. A *seal* is the gateway's Ed25519 signature over the RFC 6962 Merkle
root of a batch of records (any devices), itself numbered and hash-linked per
gateway. One signature thus covers many records, and every record stays
individually provable by its Merkle inclusion path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from mrv_core import FORMAT_VERSION
from mrv_core.canonical import CanonicalError, canonical_bytes, parse_canonical
from mrv_core.exact import decimal_text
from mrv_core.hashing import ZERO_HASH, merkle_root
from mrv_core.timefmt import format_time, parse_time

CLOCK_STATES: Final = ("synced", "unsynced", "unknown", "simulated")
RECORD_KINDS: Final = ("reading",)


class RecordError(ValueError):
    """Bytes that are not a well-formed record or seal of this format."""


@dataclass(frozen=True)
class Value:
    """One decoded quantity: exact decimal value (None if the meter gave none), unit, raw words."""

    value: Decimal | None
    unit: str
    raw: str


@dataclass(frozen=True)
class Record:
    """A parsed record. ``data`` are the signed bytes, kept verbatim."""

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
    if seq < 1:
        raise RecordError(f"seq starts at 1, got {seq}")
    if clock not in CLOCK_STATES:
        raise RecordError(f"clock state {clock!r} is not one of {', '.join(CLOCK_STATES)}")
    body = {
        "v": FORMAT_VERSION,
        "kind": "reading",
        "site": site,
        "gateway": gateway,
        "device": device,
        "profile": {"id": profile_id, "sha256": profile_sha256},
        "seq": seq,
        "prev": prev,
        "time": format_time(time),
        "clock": clock,
        "values": {
            name: {
                "value": None if v.value is None else decimal_text(v.value),
                "unit": v.unit,
                "raw": v.raw,
            }
            for name, v in values.items()
        },
        "quality": sorted(set(quality)),
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


def _object(data: bytes, kind: str, strict: bool) -> dict[str, Any]:
    try:
        obj = parse_canonical(data) if strict else _loads(data)
    except CanonicalError as exc:
        raise RecordError(f"{kind}: {exc}") from None
    if not isinstance(obj, dict):
        raise RecordError(f"{kind}: not a JSON object")
    if obj.get("v") != FORMAT_VERSION:
        raise RecordError(f"{kind}: format version {obj.get('v')!r} is not {FORMAT_VERSION}")
    if obj.get("kind") != kind:
        raise RecordError(f"{kind}: kind is {obj.get('kind')!r}")
    return obj


def _loads(data: bytes) -> Any:
    import json  # noqa: PLC0415 - only the non-strict path needs it

    try:
        return json.loads(data)
    except ValueError as exc:
        raise CanonicalError(f"not JSON: {exc}") from None


def parse_record(data: bytes, *, strict: bool = True) -> Record:
    """Parse and check a record's bytes. ``strict`` also refuses non-canonical bytes."""
    obj = _object(data, "reading", strict)
    what = "record"
    profile = _field(obj, "profile", dict, what)
    raw_values = _field(obj, "values", dict, what)
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
    )


def parse_seal(data: bytes, signature: bytes, *, strict: bool = True) -> Seal:
    obj = _object(data, "seal", strict)
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


GENESIS: Final = ZERO_HASH
"""``prev`` of the first record of a device chain and of a gateway's first seal."""
