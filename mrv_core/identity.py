"""Is this device the model and firmware its profile was written for? Pure.

A profile may name identification items: Modbus Read Device Identification
objects (function 43, MEI type 14: vendor name, product code, revision) or
identification registers (a model code, a firmware version, a serial number),
each with an optional expected value or list of allowed values (a profile that
covers several models that answer different codes), and the firmware range it
is valid for (``firmware``: ``*`` or version specifiers such as ``>=1.5,<3``).
The agent reads the items (I/O, agent/identification.py) and this module says
what does not match, so that a verifier or a test can run the same rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

# Objects of the basic device identification stream (Modbus Application Protocol v1.1b3, 6.21)
DEVICE_ID_OBJECTS: dict[str, int] = {"vendor_name": 0, "product_code": 1, "major_minor_revision": 2}
_VERSION = re.compile(r"\d+(?:\.\d+)*")


class FirmwareRangeError(ValueError):
    """A firmware range that is neither ``*`` nor a list of version specifiers."""


def firmware_range(text: str) -> SpecifierSet | None:
    """The specifiers of a profile's ``firmware`` (None for ``*``: any firmware)."""
    if text.strip() in ("", "*"):
        return None
    try:
        return SpecifierSet(text)
    except InvalidSpecifier as exc:
        raise FirmwareRangeError(
            f"{text!r} is not '*' or version specifiers such as '>=1.5,<3' ({exc})"
        ) from None


def firmware_version(text: str) -> Version | None:
    """The version in a device's firmware text ('V1.05', 'FW 3.2.1 build 7'): its first dotted number."""
    found = _VERSION.search(text)
    if found is None:
        return None
    try:
        return Version(found.group())
    except InvalidVersion:
        return None


def register_text(kind: str, words: Sequence[int]) -> str:
    """An identification register's text: the integer for u16/u32, ASCII for string (2 characters
    per register, high byte first; NULs and trailing spaces dropped)."""
    if kind == "string":
        data = b"".join(word.to_bytes(2, "big") for word in words)
        return data.replace(b"\x00", b"").decode("ascii", "replace").strip()
    value = 0
    for word in words:
        value = value << 16 | word
    return str(value)


@dataclass(frozen=True)
class IdentityCheck:
    """What was read (item -> text, None if the device did not give it) and what does not match."""

    texts: Mapping[str, str | None]
    problems: tuple[str, ...]

    @property
    def matches(self) -> bool:
        return not self.problems


def _wanted(want: str | tuple[str, ...]) -> str:
    """What a profile expects, for a message: 'x', or one of 'x', 'y'."""
    if isinstance(want, str):
        return repr(want)
    return "one of " + ", ".join(repr(text) for text in want)


def check_identity(
    expected: Mapping[str, str | tuple[str, ...] | None],
    firmware: str,
    firmware_item: str | None,
    texts: Mapping[str, str | None],
) -> IdentityCheck:
    """Compare what a device says with what its profile expects: each item with an expected value
    (one text, or a tuple of the texts it allows: the device's text must equal one of them), and
    the firmware (from ``firmware_item``) against the profile's range."""
    problems: list[str] = []
    for name, want in expected.items():
        got = texts.get(name)
        if want is None:
            continue  # read for the record (a serial number), not compared
        allowed = (want,) if isinstance(want, str) else want
        if got is None:
            problems.append(f"{name}: the device does not give it (the profile expects {_wanted(want)})")
        elif got not in allowed:
            problems.append(f"{name} is {got!r}, the profile expects {_wanted(want)}")
    wanted = firmware_range(firmware)
    if wanted is not None and firmware_item is not None:
        text = texts.get(firmware_item)
        version = None if text is None else firmware_version(text)
        if version is None:
            problems.append(f"firmware: {text!r} holds no version to compare with {firmware}")
        elif version not in wanted:
            problems.append(f"firmware {text} is outside the profile's range {firmware}")
    return IdentityCheck(dict(texts), tuple(problems))
