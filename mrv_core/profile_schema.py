"""The YAML schema of firmware profiles, validated with precise errors.

For the agent and the collector (imports pydantic and PyYAML); verifiers use
:meth:`mrv_core.profile.Profile.from_canonical` instead.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from mrv_core.config_errors import ConfigError, read_yaml_file, validate_document
from mrv_core.identity import DEVICE_ID_OBJECTS, FirmwareRangeError, firmware_range
from mrv_core.profile import IdentItem, Profile, RegisterSpec
from mrv_core.registers import WIDTH
from mrv_core.units import QUANTITIES, UNITS, dimension

SLUG = r"^[a-z0-9][a-z0-9._-]{0,63}$"
Function = Literal["holding", "input"]
RegisterTypeName = Literal["u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64"]
OrderName = Literal["ABCD", "CDAB", "BADC", "DCBA"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceDocument(_Strict):
    document: str = Field(min_length=3, description="title of the manufacturer's register map")
    version: str = Field(min_length=1)
    url: str | None = None


class RegisterDefaults(_Strict):
    function: Function | None = None
    type: RegisterTypeName | None = None
    order: OrderName | None = None


class ScaleFactorEntry(_Strict):
    """The register holding a value's decimal exponent (SunSpec ``sunssf``, an int16)."""

    address: int = Field(ge=0, le=0xFFFF, description="protocol address, same function as the value")


class RegisterEntry(_Strict):
    quantity: str
    function: Function
    address: int = Field(ge=0, le=0xFFFF)
    type: RegisterTypeName
    order: OrderName = "ABCD"
    scale: Decimal = Decimal(1)
    scale_factor: ScaleFactorEntry | None = Field(
        default=None, description="value = raw x scale x 10^(the int16 at this address)"
    )
    not_implemented: int | None = Field(
        default=None,
        strict=True,
        description="the raw integer meaning 'no value' (0xFFFF for a SunSpec uint16, 0x8000 for an int16)",
    )
    unit: str
    counter: bool | None = None
    rollover: Decimal | None = None
    min: Decimal | None = Field(default=None, description="plausible range (in unit): outside is flagged")
    max: Decimal | None = None
    description: str | None = None

    @field_validator("quantity")
    @classmethod
    def _known_quantity(cls, value: str) -> str:
        if value not in QUANTITIES:
            raise ValueError(f"unknown quantity; known: {', '.join(sorted(QUANTITIES))}")
        return value

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str) -> str:
        if value not in UNITS:
            raise ValueError(f"unknown unit; known: {', '.join(sorted(UNITS))}")
        return value

    @field_validator("scale")
    @classmethod
    def _positive_scale(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value <= 0:
            raise ValueError("scale must be a positive number")
        return value

    @field_validator("scale_factor")
    @classmethod
    def _integer_with_scale_factor(
        cls, value: ScaleFactorEntry | None, info: ValidationInfo
    ) -> ScaleFactorEntry | None:
        rtype = info.data.get("type")
        if value is not None and isinstance(rtype, str) and rtype.startswith("f"):
            raise ValueError(
                f"a scale factor is for integer registers (SunSpec pairs sunssf with integer points); "
                f"a {rtype} carries its own exponent"
            )
        return value

    @field_validator("not_implemented")
    @classmethod
    def _raw_integer(cls, value: int | None, info: ValidationInfo) -> int | None:
        """The raw integer of the value's bytes, unsigned; a negative one of a signed type (-32768
        for an i16) is taken as its two's complement (0x8000)."""
        rtype = info.data.get("type")
        if value is None or not isinstance(rtype, str):
            return value
        if rtype.startswith("f"):
            raise ValueError(f"not_implemented is for integer registers: a {rtype} says 'no value' with NaN")
        bits = 16 * WIDTH[rtype]
        if rtype.startswith("i") and -(1 << (bits - 1)) <= value < 0:
            value += 1 << bits
        if not 0 <= value < 1 << bits:
            raise ValueError(f"{value} is not a raw {rtype} ({bits} bits)")
        return value

    @model_validator(mode="after")
    def _unit_fits_quantity(self) -> RegisterEntry:
        wanted = QUANTITIES[self.quantity][0]
        if dimension(self.unit) != wanted:
            raise ValueError(f"unit {self.unit} is not a unit of {wanted} (quantity {self.quantity})")
        if self.address + WIDTH[self.type] > 0x10000:
            raise ValueError("register runs past address 65535")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.scale_factor is not None and self.address <= self.scale_factor.address < (
            self.address + WIDTH[self.type]
        ):
            raise ValueError(
                f"scale_factor.address {self.scale_factor.address} is one of the value's own registers"
            )
        return self

    def compile(self) -> RegisterSpec:
        return RegisterSpec(
            quantity=self.quantity,
            function=self.function,
            address=self.address,
            type=self.type,
            order=self.order,
            scale=self.scale,
            unit=self.unit,
            counter=QUANTITIES[self.quantity][1] if self.counter is None else self.counter,
            rollover=self.rollover,
            min=self.min,
            max=self.max,
            scale_factor=None if self.scale_factor is None else self.scale_factor.address,
            not_implemented=self.not_implemented,
        )


class IdentEntry(_Strict):
    """An identification item: ``device_id`` (an object of Modbus function 43/14: vendor_name,
    product_code, major_minor_revision) or identification registers."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    device_id: Literal["vendor_name", "product_code", "major_minor_revision"] | None = None
    function: Function | None = None
    address: int | None = Field(default=None, ge=0, le=0xFFFF)
    type: Literal["u16", "u32", "string"] | None = None
    length: int | None = Field(default=None, ge=1, le=64, description="registers, for type string")
    expect: str | int | list[str | int] | None = Field(
        default=None,
        description="the text (or number) the device must give, or a list of those it may give",
    )

    @field_validator("expect", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        # YAML reads yes/no/true/false as booleans, which would otherwise pass as the numbers 1/0
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, bool):
                raise ValueError(  # noqa: TRY004 - pydantic reports a ValueError, not a TypeError
                    f"{text!r} is a boolean, not a text or number: quote it"
                )
        return value

    @field_validator("expect")
    @classmethod
    def _allowed_values(cls, value: str | int | list[str | int] | None) -> str | int | list[str | int] | None:
        if isinstance(value, list):
            if not value:
                raise ValueError("a list of allowed values needs at least one value")
            texts = [str(text) for text in value]
            repeated = sorted({text for text in texts if texts.count(text) > 1})
            if repeated:
                raise ValueError(f"allowed values appear twice: {', '.join(repeated)}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> IdentEntry:
        registers = (self.function, self.address, self.type)
        if self.device_id is not None:
            if any(v is not None for v in (*registers, self.length)):
                raise ValueError("give device_id, or function/address/type: not both")
        elif None in registers:
            raise ValueError("give device_id, or function, address and type of the register(s)")
        elif self.type == "string" and self.length is None:
            raise ValueError("a string needs its length in registers")
        elif self.type != "string" and self.length is not None:
            raise ValueError("length is for type string (u16 is 1 register, u32 is 2)")
        return self

    def compile(self) -> IdentItem:
        width = {"u16": 1, "u32": 2}.get(self.type or "", self.length or 1)
        return IdentItem(
            name=self.name,
            device_id=None if self.device_id is None else DEVICE_ID_OBJECTS[self.device_id],
            function=self.function,
            address=self.address,
            type=self.type,
            length=width,
            expect=self._compiled_expect(),
        )

    def _compiled_expect(self) -> str | tuple[str, ...] | None:
        """One value as its text (the canonical form profiles have always had), a list as a tuple
        of texts in the profile's order; a one-value list is that value."""
        if self.expect is None:
            return None
        if not isinstance(self.expect, list):
            return str(self.expect)
        texts = tuple(str(text) for text in self.expect)
        return texts[0] if len(texts) == 1 else texts


class Identification(_Strict):
    items: list[IdentEntry] = Field(min_length=1)
    firmware_item: str | None = Field(default=None, description="the item whose text is the firmware version")

    @model_validator(mode="after")
    def _known_firmware_item(self) -> Identification:
        names = [item.name for item in self.items]
        if len(set(names)) != len(names):
            raise ValueError("item names must be unique")
        if self.firmware_item is not None and self.firmware_item not in names:
            raise ValueError(
                f"firmware_item {self.firmware_item!r} is not one of the items ({', '.join(names)})"
            )
        return self


class ProfileDocument(_Strict):
    schema_version: Literal[1] = Field(alias="schema")
    id: str = Field(pattern=SLUG)
    manufacturer: str
    model: str
    firmware: str = Field(default="*", description="firmware range this map is valid for")
    source: SourceDocument
    max_registers_per_request: int = Field(default=125, ge=1, le=125)
    max_gap_registers: int = Field(
        default=0,
        ge=0,
        le=124,
        description="unused registers a merged request may span (only where the meter answers them)",
    )
    defaults: RegisterDefaults = RegisterDefaults()
    registers: list[RegisterEntry] = Field(min_length=1)
    identification: Identification | None = None

    @field_validator("firmware")
    @classmethod
    def _firmware_range(cls, value: str) -> str:
        try:
            firmware_range(value)
        except FirmwareRangeError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        defaults = data.get("defaults") or {}
        registers = data.get("registers")
        if isinstance(defaults, dict) and isinstance(registers, list):
            filled = [
                {**{k: v for k, v in defaults.items() if v is not None}, **r} if isinstance(r, dict) else r
                for r in registers
            ]
            data = {**data, "registers": filled}
        return data

    @model_validator(mode="after")
    def _unique_quantities(self) -> ProfileDocument:
        seen: set[str] = set()
        for entry in self.registers:
            if entry.quantity in seen:
                raise ValueError(f"quantity {entry.quantity} appears twice")
            seen.add(entry.quantity)
        return self

    def compile(self) -> Profile:
        return Profile(
            id=self.id,
            manufacturer=self.manufacturer,
            model=self.model,
            firmware=self.firmware,
            source={k: v for k, v in self.source.model_dump().items() if v is not None},
            registers=tuple(r.compile() for r in self.registers),
            identification=()
            if self.identification is None
            else tuple(i.compile() for i in self.identification.items),
            firmware_item=None if self.identification is None else self.identification.firmware_item,
            max_registers_per_request=self.max_registers_per_request,
            max_gap_registers=self.max_gap_registers,
        )


def parse_profile(data: Any, source: str) -> Profile:
    """Validate a parsed YAML document as a profile; errors name ``source`` and the key."""
    return validate_document(data, ProfileDocument, source, "a profile").compile()


def load_profile(path: Path) -> Profile:
    return parse_profile(read_yaml_file(path), str(path))


def load_profile_dir(directory: Path) -> dict[str, Profile]:
    """Every profile below ``directory`` by id; duplicate ids are an error."""
    profiles: dict[str, Profile] = {}
    origin: dict[str, Path] = {}
    for path in sorted(directory.rglob("*.yaml")):
        profile = load_profile(path)
        if profile.id in profiles:
            raise ConfigError(f"{path}: id: {profile.id!r} is already defined in {origin[profile.id]}")
        profiles[profile.id] = profile
        origin[profile.id] = path
    return profiles
