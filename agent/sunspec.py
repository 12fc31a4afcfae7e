"""SunSpec devices: finding their register map, and writing a firmware profile from it.

A SunSpec device (SunSpec Alliance, "SunSpec Information Model Specification") puts the marker
"SunS" (0x5375 0x6E53) at holding register 40000, 50000 or 0, followed by models: each starts
with its ID and its length L (the registers after those two), the last is followed by the end
marker ID 0xFFFF. Model 1 (common) names the device; models 101-103 are integer inverters
(single phase, split phase, three phase) and 201-204 meters (single phase, split phase, wye and
delta three phase), whose values come as integers with scale-factor registers (``sunssf``).

The offsets, types and scale-factor names below are those of the SunSpec models repository's
model definitions (github.com/sunspec/models, json/model_1.json, json/model_101.json ...
json/model_204.json): models 101, 102 and 103 share one layout (L = 50), models 201 to 204 share
another (L = 105, the line-to-line voltages are named PhVphAB.. in 203 and 204 and PPVphAB.. in
201 and 202, at the same offsets). Not-implemented values are SunSpec's: 0xFFFF for uint16, enum16,
uint32, bitfield32 (all ones), 0x8000 for int16 and sunssf; an acc32 of 0 is read as a real 0 (a
new meter's counter).

This module is pure apart from :func:`discover`, which reads through an :class:`Endpoint`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from agent.modbus import Endpoint, ModbusReadError
from agent.plan import MODBUS_MAX_REGISTERS, ReadPlan, ReadRequest
from mrv_core.identity import register_text
from mrv_core.registers import scale_factor_exponent

MARKER = (0x5375, 0x6E53)  # "SunS"
BASES = (40000, 50000, 0)  # where the marker may be, in the order devices are asked
END_ID = 0xFFFF  # the model ID that ends the map
HEADER = 2  # every model starts with its ID and its length L
SILENT = ("timeout", "disconnected")
GATEWAY_NOBODY = (0x0A, 0x0B)  # a TCP-to-RS-485 gateway: nobody answered behind it
MAX_MODELS = 256  # a walk that finds more is reading something else


@dataclass(frozen=True)
class Point:
    """One point of a SunSpec model: name, SunSpec type, size in registers, scale-factor point."""

    name: str
    type: str
    size: int = 1
    sf: str | None = None


def _group(names: str, kind: str, sf: str, size: int = 1) -> tuple[Point, ...]:
    """Points that share a scale factor, followed (as in every SunSpec model) by that sunssf."""
    return (*(Point(name, kind, size, sf) for name in names.split()), Point(sf, "sunssf"))


# json/model_1.json: Mn, Md, Opt, Vr, SN strings, DA, Pad (L = 66; older devices give 65, no Pad)
COMMON_POINTS = (
    Point("Mn", "string", 16),
    Point("Md", "string", 16),
    Point("Opt", "string", 8),
    Point("Vr", "string", 8),
    Point("SN", "string", 16),
    Point("DA", "uint16"),
    Point("Pad", "pad"),
)
# json/model_101.json, model_102.json, model_103.json (one layout, L = 50)
INVERTER_POINTS = (
    *_group("A AphA AphB AphC", "uint16", "A_SF"),
    *_group("PPVphAB PPVphBC PPVphCA PhVphA PhVphB PhVphC", "uint16", "V_SF"),
    *_group("W", "int16", "W_SF"),
    *_group("Hz", "uint16", "Hz_SF"),
    *_group("VA", "int16", "VA_SF"),
    *_group("VAr", "int16", "VAr_SF"),
    *_group("PF", "int16", "PF_SF"),  # in percent
    *_group("WH", "acc32", "WH_SF", 2),
    *_group("DCA", "uint16", "DCA_SF"),
    *_group("DCV", "uint16", "DCV_SF"),
    *_group("DCW", "int16", "DCW_SF"),
    *_group("TmpCab TmpSnk TmpTrns TmpOt", "int16", "Tmp_SF"),
    Point("St", "enum16"),
    Point("StVnd", "enum16"),
    *(Point(name, "bitfield32", 2) for name in ["Evt1", "Evt2", "EvtVnd1", "EvtVnd2", "EvtVnd3", "EvtVnd4"]),
)
# json/model_201.json .. model_204.json (one layout, L = 105)
METER_POINTS = (
    *_group("A AphA AphB AphC", "int16", "A_SF"),
    *_group("PhV PhVphA PhVphB PhVphC PPV PPVphAB PPVphBC PPVphCA", "int16", "V_SF"),
    *_group("Hz", "int16", "Hz_SF"),
    *_group("W WphA WphB WphC", "int16", "W_SF"),
    *_group("VA VAphA VAphB VAphC", "int16", "VA_SF"),
    *_group("VAR VARphA VARphB VARphC", "int16", "VAR_SF"),
    *_group("PF PFphA PFphB PFphC", "int16", "PF_SF"),  # in percent
    *_group(
        "TotWhExp TotWhExpPhA TotWhExpPhB TotWhExpPhC TotWhImp TotWhImpPhA TotWhImpPhB TotWhImpPhC",
        "acc32",
        "TotWh_SF",
        2,
    ),
    *_group(
        "TotVAhExp TotVAhExpPhA TotVAhExpPhB TotVAhExpPhC TotVAhImp TotVAhImpPhA TotVAhImpPhB TotVAhImpPhC",
        "acc32",
        "TotVAh_SF",
        2,
    ),
    *_group(
        " ".join(
            f"TotVArh{which}{phase}"
            for which in ("ImpQ1", "ImpQ2", "ExpQ3", "ExpQ4")
            for phase in ("", "PhA", "PhB", "PhC")
        ),
        "acc32",
        "TotVArh_SF",
        2,
    ),
    Point("Evt", "bitfield32", 2),
)


@dataclass(frozen=True)
class ModelDef:
    id: int
    label: str
    kind: str  # "common", "inverter" or "meter"
    points: tuple[Point, ...]
    phases: int = 0

    @property
    def length(self) -> int:
        """L: the registers after the ID and L registers."""
        return sum(point.size for point in self.points)

    def offsets(self) -> dict[str, int]:
        """Each point's offset from the model's ID register."""
        found: dict[str, int] = {}
        offset = HEADER
        for point in self.points:
            found[point.name] = offset
            offset += point.size
        return found

    def point(self, name: str) -> Point:
        return next(point for point in self.points if point.name == name)


MODELS: dict[int, ModelDef] = {
    1: ModelDef(1, "common", "common", COMMON_POINTS),
    101: ModelDef(101, "inverter, single phase", "inverter", INVERTER_POINTS, 1),
    102: ModelDef(102, "inverter, split phase", "inverter", INVERTER_POINTS, 2),
    103: ModelDef(103, "inverter, three phase", "inverter", INVERTER_POINTS, 3),
    201: ModelDef(201, "meter, single phase", "meter", METER_POINTS, 1),
    202: ModelDef(202, "meter, split phase", "meter", METER_POINTS, 2),
    203: ModelDef(203, "meter, three phase wye", "meter", METER_POINTS, 3),
    204: ModelDef(204, "meter, three phase delta", "meter", METER_POINTS, 3),
}
MEASUREMENT_MODELS = (101, 102, 103, 201, 202, 203, 204)
# Names of models a map may hold that this module does not read (for the scan's listing).
OTHER_MODELS = {
    111: "inverter, single phase, float",
    112: "inverter, split phase, float",
    113: "inverter, three phase, float",
    120: "nameplate",
    121: "basic settings",
    122: "measurements status",
    123: "immediate controls",
    160: "multiple MPPT",
    211: "meter, single phase, float",
    212: "meter, split phase, float",
    213: "meter, three phase wye, float",
    214: "meter, three phase delta, float",
}

# SunSpec type -> (register type, not-implemented raw integer); acc32 0 is a real 0, not "none".
REGISTER_TYPES: dict[str, tuple[str, int | None]] = {
    "uint16": ("u16", 0xFFFF),
    "int16": ("i16", 0x8000),
    "acc32": ("u32", None),
    "uint32": ("u32", 0xFFFFFFFF),
    "int32": ("i32", 0x80000000),
}
# Raw words a device serves for a point it does not implement, by SunSpec type (simulator fill).
NOT_IMPLEMENTED_WORDS: dict[str, tuple[int, ...]] = {
    "uint16": (0xFFFF,),
    "enum16": (0xFFFF,),
    "int16": (0x8000,),
    "sunssf": (0x8000,),
    "acc32": (0, 0),
    "uint32": (0xFFFF, 0xFFFF),
    "bitfield32": (0xFFFF, 0xFFFF),
    "int32": (0x8000, 0),
}


@dataclass(frozen=True)
class Wanted:
    """A quantity of the project's vocabulary (mrv_core/units.py) and the point that holds it."""

    quantity: str
    point: str
    unit: str
    scale: Decimal = Decimal(1)
    core: bool = False  # in every profile written, implemented at scan time or not


_PHASES = ("A", "B", "C")


def wanted(model: ModelDef) -> tuple[Wanted, ...]:
    """What a profile reads from a measurement model: energy totals, total power, frequency, phase
    voltages (line to neutral; not for a delta meter) and currents, power per phase (meters) and
    the power factor (SunSpec gives it in percent: scale 0.01 makes it a ratio)."""
    phases = _PHASES[: model.phases]
    energy: tuple[Wanted, ...]
    if model.kind == "inverter":
        energy = (Wanted("energy_active_export_total", "WH", "Wh", core=True),)
    else:
        energy = (
            Wanted("energy_active_export_total", "TotWhExp", "Wh", core=True),
            Wanted("energy_active_import_total", "TotWhImp", "Wh", core=True),
        )
    per_phase_power = (
        tuple(Wanted(f"power_active_l{i}", f"Wph{p}", "W") for i, p in enumerate(phases, 1))
        if model.kind == "meter"
        else ()
    )
    voltages = (
        ()
        if model.id == 204  # delta: no neutral
        else tuple(Wanted(f"voltage_l{i}", f"PhVph{p}", "V") for i, p in enumerate(phases, 1))
    )
    return (
        *energy,
        Wanted("power_active_total", "W", "W", core=True),
        *per_phase_power,
        Wanted("frequency", "Hz", "Hz", core=True),
        *voltages,
        *(Wanted(f"current_l{i}", f"Aph{p}", "A") for i, p in enumerate(phases, 1)),
        Wanted("power_factor", "PF", "1", Decimal("0.01")),
    )


@dataclass(frozen=True)
class ModelBlock:
    """A model found in a device's map: its ID, the address of its ID register, its length L."""

    id: int
    address: int
    length: int

    @property
    def definition(self) -> ModelDef | None:
        return MODELS.get(self.id)

    @property
    def label(self) -> str:
        known = self.definition
        return known.label if known is not None else OTHER_MODELS.get(self.id, "not read by this agent")

    def address_of(self, name: str) -> int | None:
        """A point's absolute address; None where the device's model is too short to hold it."""
        known = self.definition
        if known is None:
            return None
        offset = known.offsets().get(name)
        if offset is None or offset + known.point(name).size > HEADER + self.length:
            return None
        return self.address + offset


@dataclass
class SunSpecDevice:
    """What discovery found on one unit id."""

    base: int  # where the marker is
    models: list[ModelBlock] = field(default_factory=list)
    end: int | None = None  # address of the end marker; None if the map ended otherwise
    common: dict[str, str] = field(default_factory=dict)  # Mn, Md, Opt, Vr, SN
    # per measurement model (by address): the wanted points the device gave a value for
    implemented: dict[int, frozenset[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def measurement(self) -> ModelBlock | None:
        """The first inverter or meter model of the map (the one a profile is written for)."""
        return next((block for block in self.models if block.id in MEASUREMENT_MODELS), None)

    def common_address(self, name: str) -> int | None:
        block = next((block for block in self.models if block.id == 1), None)
        return None if block is None else block.address_of(name)


def _read(endpoint: Endpoint, unit_id: int, address: int, count: int) -> list[int] | None:
    """Holding registers, in requests of at most 125; None if the device refuses them (an exception
    or a short answer). Silence (or a gateway saying nobody answered) raises ModbusReadError."""
    words: list[int] = []
    for start in range(address, address + count, MODBUS_MAX_REGISTERS):
        size = min(MODBUS_MAX_REGISTERS, address + count - start)
        if start + size > 0x10000:
            return None
        plan = ReadPlan((ReadRequest("holding", start, size),), ())
        try:
            got = endpoint.read(plan, unit_id)
        except ModbusReadError as exc:
            if exc.reason in SILENT or exc.code in GATEWAY_NOBODY:
                raise
            return None
        words += [got[("holding", start + i)] for i in range(size)]
    return words


def discover(endpoint: Endpoint, unit_id: int) -> SunSpecDevice | None:
    """The SunSpec map of a unit id: the marker at 40000, 50000 or 0, the models to the end marker,
    the common model's texts and which wanted points the measurement models give. None if there
    is no marker. ModbusReadError if the device is silent at every base (some meters ignore
    addresses they do not have rather than refuse them) or falls silent while its map is read."""
    base = _marker(endpoint, unit_id)
    if base is None:
        return None
    found = SunSpecDevice(base)
    _walk(endpoint, unit_id, found)
    for block in found.models:
        if block.id == 1:
            _read_common(endpoint, unit_id, block, found)
        elif block.id in MEASUREMENT_MODELS:
            _read_implemented(endpoint, unit_id, block, found)
    return found


def _marker(endpoint: Endpoint, unit_id: int) -> int | None:
    """The first of BASES where the device has "SunS"; None if it answers without it."""
    answered = False
    silence: ModbusReadError | None = None
    for base in BASES:
        try:
            words = _read(endpoint, unit_id, base, 2)
        except ModbusReadError as exc:
            silence = exc
            continue
        answered = True  # a refusal or other words: someone is there
        if words == list(MARKER):
            return base
    if not answered and silence is not None:
        raise silence
    return None


def _walk(endpoint: Endpoint, unit_id: int, found: SunSpecDevice) -> None:
    """The models after the marker, each found from the previous one's length, to the end marker."""
    address = found.base + 2
    while len(found.models) < MAX_MODELS:
        header = _read(endpoint, unit_id, address, HEADER)
        if header is None:
            found.problems.append(f"the map ends at {address} without the end marker (0xFFFF)")
            return
        model_id, length = header
        if model_id == END_ID:
            found.end = address
            return
        found.models.append(ModelBlock(model_id, address, length))
        address += HEADER + length
        if address + HEADER > 0x10000:
            found.problems.append("the map runs past address 65535 without the end marker")
            return
    found.problems.append(f"more than {MAX_MODELS} models: not a SunSpec map")


def _read_common(endpoint: Endpoint, unit_id: int, block: ModelBlock, found: SunSpecDevice) -> None:
    words = _read(endpoint, unit_id, block.address, HEADER + block.length)
    if words is None:
        found.problems.append(f"the common model at {block.address} is not readable")
        return
    for point in COMMON_POINTS:
        where = block.address_of(point.name)
        if point.type == "string" and where is not None:
            offset = where - block.address
            found.common[point.name] = register_text("string", words[offset : offset + point.size])


def _read_implemented(endpoint: Endpoint, unit_id: int, block: ModelBlock, found: SunSpecDevice) -> None:
    """Which wanted points of a measurement model the device gives a value for now: neither the
    value nor its scale factor is "not implemented"."""
    model = MODELS[block.id]
    words = _read(endpoint, unit_id, block.address, HEADER + block.length)
    if words is None:
        found.problems.append(f"model {block.id} at {block.address} is not readable")
        return
    given: set[str] = set()
    for item in wanted(model):
        where = block.address_of(item.point)
        point = model.point(item.point)
        sf_where = block.address_of(point.sf or "")
        if where is None or sf_where is None:
            continue
        offset = where - block.address
        value = words[offset : offset + point.size]
        missing = NOT_IMPLEMENTED_WORDS[point.type] if point.type != "acc32" else None
        if tuple(value) != missing and scale_factor_exponent(words[sf_where - block.address]) is not None:
            given.add(item.point)
    found.implemented[block.address] = frozenset(given)


def _slug(*parts: str) -> str:
    text = re.sub(r"[^a-z0-9._-]+", "-", "-".join(part for part in parts if part).lower())
    return re.sub(r"^[^a-z0-9]+", "", text)[:64].rstrip("-._") or "sunspec-device"


def _printable(value: str) -> str:
    """A device's text in a YAML comment: printable ASCII only (a newline would end the comment)."""
    return re.sub(r"[^\x20-\x7e]", "?", value)


def _text(value: str) -> str:
    """A YAML scalar for a text read from a device: a JSON string (valid YAML, always a string)."""
    return json.dumps(value)


def profile_id(device: SunSpecDevice, block: ModelBlock) -> str:
    return _slug("sunspec", device.common.get("Mn", ""), device.common.get("Md", ""), f"m{block.id}")


def profile_registers(device: SunSpecDevice, block: ModelBlock) -> tuple[list[str], list[str]]:
    """The register lines of a profile for a measurement model (flow mappings, absolute addresses,
    each with its scale-factor register), and the wanted quantities left out because the device
    does not implement them (the core ones are always in)."""
    model = MODELS[block.id]
    given = device.implemented.get(block.address)
    lines: list[str] = []
    left_out: list[str] = []
    for item in wanted(model):
        point = model.point(item.point)
        where = block.address_of(point.name)
        sf_where = block.address_of(point.sf or "")
        if where is None or sf_where is None or not (item.core or given is None or point.name in given):
            left_out.append(item.quantity)
            continue
        rtype, missing = REGISTER_TYPES[point.type]
        described = (
            f"{point.name} ({point.type}) x 10^{point.sf}, model {block.id} offset {where - block.address}"
        )
        fields = [
            f"quantity: {item.quantity}",
            f"address: {where}",
            f"type: {rtype}",
            f"unit: {item.unit if item.unit.isalpha() else _text(item.unit)}",  # "1": a text, not a number
            *([f"scale: {item.scale}"] if item.scale != 1 else []),
            f"scale_factor: {{address: {sf_where}}}",
            *([f"not_implemented: 0x{missing:X}"] if missing is not None else []),
            f"description: {_text(described)}",
        ]
        lines.append("  - {" + ", ".join(fields) + "}")
    return lines, left_out


def profile_yaml(device: SunSpecDevice, block: ModelBlock) -> str:
    """A firmware profile (docs/firmware-profiles.md) for the device's measurement model ``block``:
    the registers at their absolute addresses with their scale-factor registers, and the common
    model's Mn and Md as identification items that expect what the device said, Vr as the
    firmware item, SN read."""
    model = MODELS[block.id]
    lines, _ = profile_registers(device, block)
    manufacturer = device.common.get("Mn", "") or "unknown"
    name = device.common.get("Md", "") or f"SunSpec model {block.id}"
    items = [
        f"    - {{name: sunspec_model, function: holding, address: {block.address}, type: u16, "
        f"expect: {block.id}}}"
    ]
    for item, point, compared in (
        ("manufacturer", "Mn", True),
        ("model", "Md", True),
        ("version", "Vr", False),
        ("serial", "SN", False),
    ):
        where = device.common_address(point)
        if where is None:
            continue
        text = device.common.get(point, "")
        expect = f", expect: {_text(text)}" if compared and text else ""
        size = MODELS[1].point(point).size
        items.append(
            f"    - {{name: {item}, function: holding, address: {where}, type: string, "
            f"length: {size}{expect}}}"
        )
    has_version = device.common_address("Vr") is not None
    document = f"SunSpec Information Model Reference (model {block.id}, {model.label})"
    firmware = device.common.get("Vr") or "-"
    version = f"SunSpec models json/model_{block.id}.json; map read from the device (Vr {firmware})"
    return "\n".join(
        [
            "# Written by 'mrv-agent scan --write-profile' from the SunSpec map of a "
            f"{_printable(manufacturer)} {_printable(name)}",
            f"# (marker at holding {device.base}; model {block.id}, {model.label}, at {block.address}, "
            f"L = {block.length}).",
            "# Offsets, types and scale-factor points: SunSpec models repository, json/model_1.json and",
            f"# json/model_{block.id}.json. Check the values against the device's display before use",
            "# ('mrv-agent probe'), and narrow 'firmware' to the versions you checked.",
            "schema: 1",
            f"id: {profile_id(device, block)}",
            f"manufacturer: {_text(manufacturer)}",
            f"model: {_text(name)}",
            'firmware: "*"',
            "source:",
            f"  document: {_text(document)}",
            f"  version: {_text(version)}",
            f"  url: https://github.com/sunspec/models/blob/master/json/model_{block.id}.json",
            "max_registers_per_request: 125",
            "# a SunSpec device answers every register of a model: requests may span the unused ones",
            "max_gap_registers: 124",
            "defaults: {function: holding}",
            "registers:",
            *lines,
            "identification:",
            "  items:",
            *items,
            *(["  firmware_item: version"] if has_version else []),
            "",
        ]
    )


# -- simulation: the words a SunSpec device serves (agent/simulator.py) ---------------------------


@dataclass(frozen=True)
class SimulatedMap:
    """A SunSpec map for the simulator: the device's discovery result (as a scan would find it, all
    wanted points implemented) and the words it serves besides its values: the marker, the
    models' headers, the common model, not-implemented points and the end marker."""

    device: SunSpecDevice
    block: ModelBlock
    words: dict[int, int]  # holding address -> word


def simulated_map(
    model_id: int,
    base: int = 40000,
    *,
    unit_id: int = 1,
    manufacturer: str = "MRV Simulated",
    model_name: str | None = None,
    version: str = "1.0.0",
    serial: str | None = None,
) -> SimulatedMap:
    """The map of a simulated SunSpec device: "SunS" at ``base``, model 1 (L = 66), the measurement
    model ``model_id`` and the end marker."""
    model = MODELS[model_id]
    common = MODELS[1]
    texts = {
        "Mn": manufacturer,
        "Md": model_name or f"SIM-{model.kind.upper()}-{model_id}",
        "Opt": "",
        "Vr": version,
        "SN": serial or f"SIM{unit_id:05d}",
    }
    words: dict[int, int] = {base: MARKER[0], base + 1: MARKER[1]}
    address = base + 2
    device = SunSpecDevice(base, common=texts)
    for definition in (common, model):
        block = ModelBlock(definition.id, address, definition.length)
        device.models.append(block)
        words[address], words[address + 1] = definition.id, definition.length
        for point, offset in zip(definition.points, definition.offsets().values(), strict=True):
            if point.type == "string":
                data = (
                    texts[point.name]
                    .encode("ascii", "replace")[: 2 * point.size]
                    .ljust(2 * point.size, b"\x00")
                )
                fill = tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
            elif point.name == "DA":
                fill = (unit_id,)
            else:
                fill = NOT_IMPLEMENTED_WORDS.get(point.type, (0,) * point.size)
            for i, word in enumerate(fill):
                words[address + offset + i] = word
        address += HEADER + definition.length
    words[address], words[address + 1] = END_ID, 0
    device.end = address
    measurement = device.models[1]
    device.implemented[measurement.address] = frozenset(item.point for item in wanted(model))
    return SimulatedMap(device, measurement, words)


def describe(device: SunSpecDevice) -> Iterable[str]:
    """Lines for a technician: who the device says it is, and its models."""
    said = device.common
    yield (
        f"SunSpec map at holding {device.base}: manufacturer {said.get('Mn') or '-'}, "
        f"model {said.get('Md') or '-'}, version {said.get('Vr') or '-'}, serial {said.get('SN') or '-'}"
    )
    for block in device.models:
        yield f"  model {block.id:>5} ({block.label}) at {block.address}, length {block.length}"
    if device.end is not None:
        yield f"  end marker at {device.end}"
    for problem in device.problems:
        yield f"  problem: {problem}"
