"""Firmware profiles as the evidence sees them: immutable, canonical, hashed.

A profile is written in YAML by people (see :mod:`mrv_core.profile_schema`)
and compiled into this form. Its canonical JSON bytes are hashed; every record
names the hash of the profile that decoded it, and evidence exports carry the
canonical bytes, so a verifier re-decodes raw register words with exactly the
same rules without needing a YAML parser.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mrv_core.canonical import canonical_bytes, parse_canonical
from mrv_core.exact import decimal_text
from mrv_core.hashing import sha256_hex
from mrv_core.registers import WIDTH, register_decoder

PROFILE_SCHEMA = 1


@dataclass(frozen=True)
class RegisterSpec:
    """Where one quantity lives in a meter and how to decode it."""

    quantity: str
    function: str  # "holding" (fc 3) or "input" (fc 4)
    address: int  # protocol address, 0-based
    type: str
    order: str
    scale: Decimal
    unit: str
    counter: bool
    rollover: Decimal | None = None
    # plausible range, in ``unit``: a value outside is flagged ``out_of_range:<quantity>``, never
    # dropped or changed (part of the profile's meaning and hash only when given)
    min: Decimal | None = None
    max: Decimal | None = None
    # the address of the register (same function) holding the value's decimal exponent, as SunSpec's
    # sunssf: value = raw x scale x 10^sf; its word follows the value's words in the record's raw
    # (docs/record-format.md, section 5). Part of the hash only when given.
    scale_factor: int | None = None
    # the integer the value's bytes hold (unsigned, in the register's byte order) when the device
    # has no value, as SunSpec's 0xFFFF for uint16: decoded as null, flagged invalid_value. Part of
    # the hash only when given.
    not_implemented: int | None = None

    @property
    def width(self) -> int:
        """Registers of the value itself."""
        return WIDTH[self.type]

    @property
    def word_addresses(self) -> tuple[int, ...]:
        """The addresses (of ``function``) of the words of the record's raw, in its order: the
        value's, then the scale factor's."""
        value = tuple(range(self.address, self.address + self.width))
        return value if self.scale_factor is None else (*value, self.scale_factor)

    @property
    def layout(self) -> tuple[Any, ...]:
        """What decoding depends on: (type, order, scale), with the scale factor's presence and the
        "not implemented" integer where either is given. Registers of one layout decode the same
        raw text to the same value."""
        plain = (self.type, self.order, self.scale)
        if self.scale_factor is None and self.not_implemented is None:
            return plain
        return (*plain, self.scale_factor is not None, self.not_implemented)

    def decoder(self) -> Callable[[str], Decimal | None]:
        """The decoder of this register's raw text (``registers.register_decoder``)."""
        return register_decoder(
            self.type, self.order, self.scale, self.scale_factor is not None, self.not_implemented
        )

    def decode_hex(self, raw: str) -> Decimal | None:
        return self.decoder()(raw)

    def canonical(self) -> dict[str, Any]:
        return (
            {
                "quantity": self.quantity,
                "function": self.function,
                "address": self.address,
                "type": self.type,
                "order": self.order,
                "scale": decimal_text(self.scale),
                "unit": self.unit,
                "counter": self.counter,
                "rollover": None if self.rollover is None else decimal_text(self.rollover),
            }
            | {
                name: decimal_text(limit)
                for name, limit in (("min", self.min), ("max", self.max))
                if limit is not None
            }
            | ({} if self.scale_factor is None else {"scale_factor": {"address": self.scale_factor}})
            | ({} if self.not_implemented is None else {"not_implemented": str(self.not_implemented)})
        )

    @classmethod
    def from_canonical(cls, r: Mapping[str, Any]) -> RegisterSpec:
        """One register of a profile's canonical form."""
        scale_factor = r.get("scale_factor")
        not_implemented = r.get("not_implemented")
        return cls(
            quantity=r["quantity"],
            function=r["function"],
            address=r["address"],
            type=r["type"],
            order=r["order"],
            scale=Decimal(r["scale"]),
            unit=r["unit"],
            counter=r["counter"],
            rollover=None if r["rollover"] is None else Decimal(r["rollover"]),
            min=None if r.get("min") is None else Decimal(r["min"]),
            max=None if r.get("max") is None else Decimal(r["max"]),
            scale_factor=None if scale_factor is None else int(scale_factor["address"]),
            not_implemented=None if not_implemented is None else int(not_implemented),
        )


@dataclass(frozen=True)
class IdentItem:
    """One thing a device says about itself: a Modbus device identification object (``device_id``,
    function 43/14) or identification registers. ``expect`` is the text the profile requires, or a
    tuple of the texts it allows (the models it covers answer different codes), in the profile's
    order; None when the item is read, not compared. In canonical form one text stays a string (so
    the hashes of profiles written before lists existed do not change) and a tuple is a JSON list."""

    name: str
    device_id: int | None = None
    function: str | None = None
    address: int | None = None
    type: str | None = None  # "u16", "u32" or "string"
    length: int = 1  # registers
    expect: str | tuple[str, ...] | None = None

    @property
    def allowed(self) -> tuple[str, ...]:
        """The texts the item may have: ``expect`` as a tuple (empty when it is not compared)."""
        if self.expect is None:
            return ()
        return (self.expect,) if isinstance(self.expect, str) else self.expect

    def canonical(self) -> dict[str, Any]:
        expect = list(self.expect) if isinstance(self.expect, tuple) else self.expect
        body: dict[str, Any] = {"name": self.name, "expect": expect}
        if self.device_id is not None:
            return body | {"device_id": self.device_id}
        return body | {
            "function": self.function,
            "address": self.address,
            "type": self.type,
            "length": self.length,
        }

    @classmethod
    def from_canonical(cls, obj: Mapping[str, Any]) -> IdentItem:
        return cls(
            name=obj["name"],
            device_id=obj.get("device_id"),
            function=obj.get("function"),
            address=obj.get("address"),
            type=obj.get("type"),
            length=obj.get("length", 1),
            expect=cls._canonical_expect(obj["expect"]),
        )

    @staticmethod
    def _canonical_expect(value: Any) -> str | tuple[str, ...] | None:
        """A canonical ``expect``: null, a text, or a non-empty list of distinct texts."""
        if value is None or isinstance(value, str):
            return value
        if (
            isinstance(value, list)
            and value
            and all(isinstance(text, str) for text in value)
            and len(set(value)) == len(value)
        ):
            return tuple(value)
        raise ValueError(f"identification expect {value!r}: not null, a text or a list of distinct texts")


@dataclass(frozen=True)
class Profile:
    """A meter model's register map, pinned by the hash of its canonical form."""

    id: str
    manufacturer: str
    model: str
    firmware: str
    source: Mapping[str, str]
    registers: tuple[RegisterSpec, ...]
    # How to recognise the model and its firmware (part of the hash only when given): the items a
    # device must answer as expected, and the one whose text is the firmware version.
    identification: tuple[IdentItem, ...] = ()
    firmware_item: str | None = None
    # Read-tuning hints: how to read, not what values mean; not part of the hash.
    max_registers_per_request: int = field(default=125, compare=False)
    max_gap_registers: int = field(default=0, compare=False)
    canonical_json: bytes = field(init=False, repr=False, compare=False)
    sha256: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        data = canonical_bytes(self.canonical())
        object.__setattr__(self, "canonical_json", data)
        object.__setattr__(self, "sha256", sha256_hex(data))

    def canonical(self) -> dict[str, Any]:
        return {
            "schema": PROFILE_SCHEMA,
            "id": self.id,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "firmware": self.firmware,
            "source": dict(self.source),
            "registers": [r.canonical() for r in self.registers],
        } | (
            {
                "identification": {
                    "items": [item.canonical() for item in self.identification],
                    "firmware_item": self.firmware_item,
                }
            }
            if self.identification
            else {}
        )

    def register(self, quantity: str) -> RegisterSpec:
        for spec in self.registers:
            if spec.quantity == quantity:
                return spec
        raise KeyError(f"profile {self.id} has no register for {quantity!r}")

    def select(self, quantities: Sequence[str] | None) -> tuple[RegisterSpec, ...]:
        """The registers for ``quantities`` (all of them when None), in profile order."""
        if quantities is None:
            return self.registers
        wanted = set(quantities)
        missing = wanted - {r.quantity for r in self.registers}
        if missing:
            raise KeyError(f"profile {self.id} has no register for {', '.join(sorted(missing))}")
        return tuple(r for r in self.registers if r.quantity in wanted)

    @classmethod
    def from_canonical(cls, data: bytes) -> Profile:
        """Rebuild a profile from the canonical bytes an evidence export carries."""
        obj = parse_canonical(data)
        profile = cls(
            id=obj["id"],
            manufacturer=obj["manufacturer"],
            model=obj["model"],
            firmware=obj["firmware"],
            source=dict(obj["source"]),
            registers=tuple(RegisterSpec.from_canonical(r) for r in obj["registers"]),
            identification=tuple(
                IdentItem.from_canonical(item) for item in obj.get("identification", {}).get("items", [])
            ),
            firmware_item=obj.get("identification", {}).get("firmware_item"),
        )
        if profile.canonical_json != data:
            raise ValueError(f"profile {profile.id}: bytes are not this schema's canonical form")
        return profile
