"""Canonical JSON: the exact bytes that are hashed and signed.

Rules (also in docs/record-format.md):
- UTF-8 JSON with every non-ASCII character escaped as ``\\uXXXX`` (so the
  bytes are ASCII), no insignificant whitespace, object keys sorted by code
  point, no duplicate keys;
- values are objects, arrays, strings, integers in [-(2**53-1), 2**53-1],
  ``true``, ``false`` and ``null``. Floats are not allowed: quantities travel as
  decimal strings, so no implementation has to agree on float formatting.

Verifiers never re-encode: they hash the bytes they received. The encoder is
for producers, and :func:`is_canonical` lets a consumer refuse ambiguous input
(duplicate keys, whitespace, floats) at the door.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalError(ValueError):
    """The value cannot be put in canonical form."""


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalError(f"{path}: integer {value} is outside +/-(2**53-1)")
        return
    if isinstance(value, float):
        raise CanonicalError(f"{path}: floats are not allowed; use a decimal string")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError(f"{path}: object key {key!r} is not a string")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, Sequence):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise CanonicalError(f"{path}: {type(value).__name__} is not a JSON value")


def _fits(value: Any) -> bool:
    """Whether :func:`_check` would pass ``value``, without naming where it fails: a gateway encodes
    every reading, and building the path of every item cost half of encoding one (it is built
    only for a value that does not fit)."""
    kind = type(value)
    if kind is dict:
        return all(type(key) is str and (type(item) is str or _fits(item)) for key, item in value.items())
    if kind is list or kind is tuple:
        return all(type(item) is str or _fits(item) for item in value)
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    return kind is str or kind is bool or value is None or _passes(value)


def _passes(value: Any) -> bool:
    """Any other type: the general rules."""
    try:
        _check(value, "$")
    except CanonicalError:
        return False
    return True


def canonical_bytes(value: Any) -> bytes:
    """Encode ``value`` in canonical form; raise :class:`CanonicalError` if it cannot be."""
    if not _fits(value):
        _check(value, "$")  # says where
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CanonicalError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_floats(text: str) -> Any:
    raise CanonicalError(f"float {text} is not allowed")


def _safe_int(text: str) -> int:
    value = int(text)
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise CanonicalError(f"integer {text} is outside +/-(2**53-1)")
    return value


def _no_constants(text: str) -> Any:
    raise CanonicalError(f"{text} is not JSON")


def parse_canonical(data: bytes) -> Any:
    """Parse bytes that must already be canonical; raise :class:`CanonicalError` otherwise."""
    try:
        value = json.loads(
            data.decode("ascii"),
            object_pairs_hook=_no_duplicates,
            parse_float=_no_floats,
            parse_int=_safe_int,
            parse_constant=_no_constants,
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CanonicalError(f"not canonical JSON: {exc}") from exc
    # The hooks refused floats, NaN, duplicate keys and unsafe integers already, so the
    # value is re-encoded directly (without canonical_bytes' type walk) to compare.
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    if encoded.encode("ascii") != data:
        raise CanonicalError("not in canonical form (key order, whitespace or escaping differs)")
    return value


def is_canonical(data: bytes) -> bool:
    try:
        parse_canonical(data)
    except CanonicalError:
        return False
    return True
