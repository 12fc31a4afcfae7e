"""Simulated meters: a pymodbus TCP server serving PV plants through a firmware profile.

Each request recomputes the requested registers from :mod:`agent.meter_model`
at the (possibly accelerated) clock, so values move like a real plant's.
``served`` (optional) sees every response, which lets tests compare what the
agent recorded with what the meter said.

A register with a scale-factor register (SunSpec ``sunssf``) is served with the
smallest exponent in -2..3 that makes every value sharing that scale factor fit
its type (and not be its "not implemented" pattern), worked out at each request
as a device would; a SunSpec device (:func:`sunspec_meters`) also serves its map:
the "SunS" marker, the common model, not-implemented points and the end marker.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.pdu.device import ModbusDeviceIdentification
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from agent.clock import Clock
from agent.config import RtuTransport
from agent.meter_model import MODEL_UNITS, PvPlant, state
from agent.sunspec import profile_yaml, simulated_map
from mrv_core.config_errors import load_yaml_text
from mrv_core.profile import IdentItem, Profile, RegisterSpec
from mrv_core.profile_schema import parse_profile
from mrv_core.registers import SUNSSF_NOT_IMPLEMENTED, DecodeError, encode_scaled, encode_value, words_to_hex
from mrv_core.units import QUANTITIES, convert

log = logging.getLogger(__name__)

FUNCTION_CODES = {3: "holding", 4: "input"}
# (unit id, function, address, words)
Served = Callable[[int, str, int, list[int]], None]


# Faults a simulated meter can show, on demand (tests set ``meter.fault``; ``mrv-agent simulate
# --fault UNIT:KIND``): what real meters and buses do to a gateway.
FAULTS = ("silent", "slow", "exception", "counter_reset", "frozen", "garbage")
SLOW_S = 1.5  # a slow answer: late, but within the agent's default timeout (3 s)
SILENT_S = 3600.0  # no answer: the request waits here until the server stops
# The exponents a simulated scale-factor register takes, most precise first.
SIMULATED_EXPONENTS = range(-2, 4)


@dataclass
class SimulatedMeter:
    unit_id: int
    profile: Profile
    plant: PvPlant
    clock: Clock
    fault: str | None = None  # one of FAULTS
    # What the meter says about itself, item name -> text: the profile's expected values (the first
    # allowed one where an item allows several) unless changed here (a test's meter of another
    # model or firmware).
    identity: dict[str, str] = field(default_factory=dict)
    # Words served as they are, under the values and identification (a SunSpec device's map).
    static: dict[tuple[str, int], int] = field(default_factory=dict)
    _counters: dict[str, Decimal] = field(default_factory=dict)
    _reset_at: dict[str, Decimal] = field(default_factory=dict)  # counter_reset: the value it started from
    _frozen: dict[tuple[str, int], int] | None = None
    _random: random.Random = field(default_factory=lambda: random.Random(7))  # noqa: S311 - garbage, not secrets

    def registers(self) -> dict[tuple[str, int], int]:
        """Every register word of the profile at this instant (as the fault, if any, has it)."""
        if self.fault == "frozen":
            if self._frozen is None:
                self._frozen = self._words()
            return dict(self._frozen)
        self._frozen = None
        words = self._words()
        if self.fault == "garbage":
            return {key: self._random.randrange(0x10000) for key in words}
        return words

    def _words(self) -> dict[tuple[str, int], int]:
        values = state(self.plant, self.clock.now())
        words: dict[tuple[str, int], int] = dict(self.static)
        scaled: list[tuple[RegisterSpec, Decimal]] = []
        for spec in self.profile.registers:
            value = _in_profile_unit(spec, values)
            if value is None:
                continue
            if spec.counter:  # a meter's counter never steps back, whatever float rounding does
                value = max(value, self._counters.get(spec.quantity, value))
                self._counters[spec.quantity] = value
                if self.fault == "counter_reset":  # counts again from zero (a reset, or a new meter)
                    value -= self._reset_at.setdefault(spec.quantity, value)
                else:
                    self._reset_at.pop(spec.quantity, None)
            if spec.scale_factor is not None:
                scaled.append((spec, value))
                continue
            for offset, word in enumerate(encode_value(value, spec.type, spec.order, spec.scale)):
                words[(spec.function, spec.address + offset)] = word
        words.update(_scaled_words(scaled))
        for item in self.profile.identification:
            text = self.identity.get(item.name, _served(item))
            if item.device_id is not None or item.function is None or item.address is None or text is None:
                continue
            for offset, word in enumerate(_identity_words(item.type or "string", item.length, text)):
                words[(item.function, item.address + offset)] = word
        return words

    def device_identification(self) -> dict[int, str]:
        """Its answers to Modbus device identification (43/14), by object id."""
        return {
            item.device_id: self.identity.get(item.name, _served(item)) or ""
            for item in self.profile.identification
            if item.device_id is not None
        }


def _fits(spec: RegisterSpec, value: Decimal, exponent: int) -> bool:
    """Whether ``value`` is served by the register with that exponent: it fits the type and is not
    the register's "not implemented" pattern."""
    try:
        words = encode_scaled(value, spec.type, spec.order, spec.scale, exponent)
    except DecodeError:
        return False
    return spec.decode_hex(words_to_hex(words)) is not None


def _scale_factor_key(spec: RegisterSpec) -> tuple[str, int]:
    assert spec.scale_factor is not None
    return (spec.function, spec.scale_factor)


def _exponents(scaled: list[tuple[RegisterSpec, Decimal]]) -> dict[tuple[str, int], int | None]:
    """Per scale-factor register, the smallest exponent of SIMULATED_EXPONENTS that serves every value
    sharing it (None if none does)."""
    groups: dict[tuple[str, int], list[tuple[RegisterSpec, Decimal]]] = {}
    for spec, value in scaled:
        groups.setdefault(_scale_factor_key(spec), []).append((spec, value))
    return {
        key: next(
            (e for e in SIMULATED_EXPONENTS if all(_fits(spec, value, e) for spec, value in members)), None
        )
        for key, members in groups.items()
    }


def _scaled_words(scaled: list[tuple[RegisterSpec, Decimal]]) -> dict[tuple[str, int], int]:
    """The words of values with a scale-factor register, and of the scale factors they share."""
    words: dict[tuple[str, int], int] = {}
    exponents = _exponents(scaled)
    for (function, address), exponent in exponents.items():
        # no exponent serves every value sharing it: the scale factor says "not implemented"
        words[(function, address)] = SUNSSF_NOT_IMPLEMENTED if exponent is None else exponent & 0xFFFF
    for spec, value in scaled:
        exponent = exponents[_scale_factor_key(spec)]
        if exponent is not None:
            served = encode_scaled(value, spec.type, spec.order, spec.scale, exponent)[:-1]
            for offset, word in enumerate(served):
                words[(spec.function, spec.address + offset)] = word
    return words


def _served(item: IdentItem) -> str | None:
    """The text a simulated meter gives for an item: its expected value, the first of several."""
    return item.allowed[0] if item.allowed else None


def _identity_words(kind: str, length: int, text: str) -> list[int]:
    if kind == "string":
        data = text.encode("ascii")[: 2 * length].ljust(2 * length, b"\x00")
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, 2 * length, 2)]
    value = int(text)
    return [(value >> (16 * (length - 1 - i))) & 0xFFFF for i in range(length)]


def _in_profile_unit(spec: RegisterSpec, values: dict[str, float]) -> Decimal | None:
    value = values.get(spec.quantity)
    if value is None:
        return None
    model_unit = MODEL_UNITS[QUANTITIES[spec.quantity][0]]
    return convert(Decimal(repr(value)), model_unit, spec.unit)


@dataclass
class Simulator:
    """A Modbus server with one simulated meter per unit id: TCP on 127.0.0.1:``port``, or Modbus RTU
    on a serial line when ``serial`` is given (a pseudo-terminal in tests, a real RS-485 port for a
    bench rig)."""

    meters: list[SimulatedMeter]
    port: int = 0
    host: str = "127.0.0.1"
    served: Served | None = None
    serial: RtuTransport | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _server: ModbusTcpServer | ModbusSerialServer | None = None
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _error: Exception | None = None

    def _device(self, meter: SimulatedMeter) -> SimDevice:
        blocks: dict[str, list[SimData]] = {}
        for function in ("holding", "input"):
            addresses = (
                [
                    address
                    for spec in meter.profile.registers
                    if spec.function == function
                    for address in spec.word_addresses
                ]
                + [
                    item.address + i
                    for item in meter.profile.identification
                    if item.function == function and item.address is not None
                    for i in range(item.length)
                ]
                + [address for kind, address in meter.static if kind == function]
            )
            low, high = (min(addresses), max(addresses)) if addresses else (0, 0)
            blocks[function] = [SimData(low, count=high - low + 1, values=0, datatype=DataType.REGISTERS)]
        # pymodbus wants a block for every table; meters here have no coils or inputs.
        no_bits = [SimData(0, count=1, values=False, datatype=DataType.BITS)]

        async def action(
            function_code: int,
            start: int,
            address: int,
            count: int,
            current: list[int],
            _set: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            function = FUNCTION_CODES.get(function_code)
            if function is None:
                return ExcCodes.ILLEGAL_FUNCTION
            if meter.fault == "exception":
                return ExcCodes.DEVICE_FAILURE
            if meter.fault in ("slow", "silent"):
                await asyncio.sleep(SLOW_S if meter.fault == "slow" else SILENT_S)
            words = meter.registers()
            response = []
            for a in range(address, address + count):
                current[a - start] = words.get((function, a), 0)
                response.append(current[a - start])
            if self.served is not None:
                self.served(meter.unit_id, function, address, response)
            return None

        return SimDevice(
            id=meter.unit_id,
            simdata=(no_bits, list(no_bits), blocks["holding"], blocks["input"]),
            action=action,
        )

    @staticmethod
    def _nobody() -> SimDevice:
        """pymodbus's simulator hands requests for an unknown unit id to device 0 (else it answers
        exception 4): device 0 here says there is no such id, and the server stays silent, as an
        RS-485 bus is when nobody has the address."""

        async def action(*_args: object) -> ExcCodes | None:
            raise NoSuchIdException("no simulated meter has this unit id")

        no_bits = [SimData(0, count=1, values=False, datatype=DataType.BITS)]
        registers = [SimData(0, count=0x10000, values=0, datatype=DataType.REGISTERS)]  # any address
        return SimDevice(id=0, simdata=(no_bits, list(no_bits), registers, list(registers)), action=action)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"simulator-{self.where}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"simulator on {self.where} did not start")
        if self._error is not None:
            raise RuntimeError(f"simulator on {self.where} failed: {self._error}")

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        except Exception as exc:  # noqa: BLE001 - reported to start(); the thread ends
            self._error = exc
            self._ready.set()
        finally:
            pending = asyncio.all_tasks(self._loop)  # e.g. a 'silent' meter still not answering
            for task in pending:
                task.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    @property
    def where(self) -> str:
        line = self.serial
        if line is None:
            return f"tcp://{self.host}:{self.port}"
        return f"rtu://{line.serial}@{line.baudrate}{line.parity}{line.bytesize}{line.stopbits}"

    async def _serve(self) -> None:
        devices = [self._device(m) for m in self.meters]
        if all(m.unit_id != 0 for m in self.meters):
            devices.append(self._nobody())
        line = self.serial
        # pymodbus answers 43/14 from one process-wide identity, not per unit id: the first meter's
        identity = _device_identity(self.meters[0]) if self.meters else None
        if line is None:
            # a unit id nobody has gets no answer, as on an RS-485 bus
            self._server = ModbusTcpServer(
                devices, address=(self.host, self.port), ignore_missing_devices=True, identity=identity
            )
        else:
            self._server = ModbusSerialServer(
                devices,
                framer=FramerType.RTU,
                port=line.serial,
                ignore_missing_devices=True,
                identity=identity,
                **line.line_settings(),
            )
        await self._server.serve_forever(background=True)
        self._ready.set()
        await self._server.serving

    def stop(self) -> None:
        if self._loop is not None and self._server is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(5)
        if self._thread is not None:
            self._thread.join(5)


def _device_identity(meter: SimulatedMeter) -> ModbusDeviceIdentification | None:
    objects = meter.device_identification()
    if not objects:
        return None
    names = {0: "VendorName", 1: "ProductCode", 2: "MajorMinorRevision"}
    return ModbusDeviceIdentification(info_name={names[k]: v for k, v in objects.items() if k in names})


def default_meters(profile: Profile, clock: Clock, capacities: dict[int, float]) -> list[SimulatedMeter]:
    return [
        SimulatedMeter(unit, profile, PvPlant(capacity_kw=kw, seed=unit), clock)
        for unit, kw in sorted(capacities.items())
    ]


def sunspec_profile(model_id: int, base: int = 40000) -> Profile:
    """The profile a simulated SunSpec device is served with: the one 'mrv-agent scan --write-profile'
    writes for it (every wanted point implemented)."""
    layout = simulated_map(model_id, base)
    source = f"simulated SunSpec model {model_id}"
    return parse_profile(load_yaml_text(profile_yaml(layout.device, layout.block), source), source)


def sunspec_meters(
    model_id: int, clock: Clock, capacities: dict[int, float], base: int = 40000
) -> list[SimulatedMeter]:
    """Simulated SunSpec devices (agent/sunspec.py): the marker at holding ``base``, model 1 and the
    inverter (101-103) or meter (201-204) model ``model_id``, serving PV plants; each unit has its
    own serial number (SIM00001 for unit 1)."""
    profile = sunspec_profile(model_id, base)
    meters = []
    for unit, kw in sorted(capacities.items()):
        layout = simulated_map(model_id, base, unit_id=unit)
        static = {("holding", address): word for address, word in layout.words.items()}
        meters.append(SimulatedMeter(unit, profile, PvPlant(capacity_kw=kw, seed=unit), clock, static=static))
    return meters
