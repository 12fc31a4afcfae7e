"""The only module that talks to pymodbus: execute a read plan against a meter.

One connection per bus, shared by every unit id on it and used by one request
at a time: a TCP endpoint (an RS-485 gateway behind it is one bus) or a serial
line in Modbus RTU. Buses are read in parallel (one poller thread each).
"""

from __future__ import annotations

import functools
import logging
import struct
import threading
from collections.abc import Callable
from typing import Any

from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse

from agent.config import RtuTransport, TcpTransport
from agent.plan import ReadPlan

Client = ModbusTcpClient | ModbusSerialClient

log = logging.getLogger(__name__)


class ModbusReadError(RuntimeError):
    """A read failed; ``reason`` is one of timeout, exception, disconnected, short_response."""

    def __init__(self, reason: str, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.code = code  # the Modbus exception code, for reason "exception"


class _Words(ModbusPDU):
    """A read-registers response decoded as pymodbus does, by one struct call instead of one per
    register (pymodbus 3.16: ~28 us for the 76 words of an SDM630 reading); and described briefly,
    since pymodbus formats every response it decodes for a debug log even when nothing logs it.
    Registered with each client through pymodbus's own ``register`` for custom responses
    (tests/unit/test_modbus_words.py holds it to pymodbus's decoding)."""

    def decode(self, data: bytes) -> None:
        byte_count = int(data[0])
        if byte_count >= len(data):
            raise ModbusIOException(
                f"byte_count {byte_count} > length of packet {len(data)}", function_code=self.function_code
            )
        words = byte_count // 2
        self.raw = data[1 : 1 + 2 * words]  # the words' bytes as they came: a gateway decodes these
        self.registers = list(struct.unpack(f">{words}H", self.raw))

    def __str__(self) -> str:
        return (
            f"{type(self).__name__}(dev_id={self.dev_id}, transaction_id={self.transaction_id}, "
            f"{len(self.registers)} registers)"
        )


class HoldingWords(_Words, ReadHoldingRegistersResponse):
    """Function 3's response (see _Words)."""


class InputWords(_Words, ReadInputRegistersResponse):
    """Function 4's response (see _Words)."""


def _with_word_responses(client: Client) -> Client:
    client.register(HoldingWords)
    client.register(InputWords)
    return client


class Endpoint:
    """One bus: a TCP host (behind which an RS-485 gateway may serve several unit ids) or a serial
    line. One request at a time on it: the lock is held for a whole read plan."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._client: Client | None = None
        self._lock = threading.Lock()

    def _make_client(self) -> Client:
        raise NotImplementedError

    def _connected(self) -> Client:
        if self._client is None:
            self._client = self._make_client()
        if not self._client.connected and not self._client.connect():
            raise ModbusReadError("disconnected", f"{self.name}: cannot connect")
        return self._client

    def read(self, plan: ReadPlan, unit_id: int) -> dict[tuple[str, int], int]:
        """Words by (function, address) for every request of ``plan``, or :class:`ModbusReadError`."""
        words: dict[tuple[str, int], int] = {}
        for request, block in zip(plan.requests, self.read_blocks(plan, unit_id), strict=True):
            words.update(zip(request.keys, struct.unpack(f">{request.count}H", block), strict=True))
        return words

    def read_blocks(self, plan: ReadPlan, unit_id: int) -> list[bytes]:
        """The bytes of the words each request of ``plan`` asked for (2 per word, as they came off
        the wire), or :class:`ModbusReadError`. What a gateway decodes (agent/acquisition.py)."""
        blocks: list[bytes] = []
        with self._lock:
            client = self._connected()
            for request in plan.requests:
                where = f"{self.name} unit {unit_id} {request.function} {request.address}+{request.count}"
                reader = (
                    client.read_input_registers
                    if request.function == "input"
                    else client.read_holding_registers
                )
                response = self._answer(
                    where, functools.partial(reader, request.address, count=request.count, device_id=unit_id)
                )
                registers = response.registers
                if len(registers) < request.count:
                    raise ModbusReadError("short_response", f"{where}: {len(registers)} registers returned")
                raw = getattr(response, "raw", None)  # a response pymodbus decoded itself has none
                if not isinstance(raw, bytes):
                    raw = struct.pack(f">{len(registers)}H", *registers)
                blocks.append(raw[: 2 * request.count])  # extra words are not asked for
        return blocks

    def read_device_id(self, unit_id: int) -> dict[int, str]:
        """The basic objects of Modbus Read Device Identification (function 43, MEI type 14):
        object id -> text (0 vendor name, 1 product code, 2 major/minor revision)."""
        where = f"{self.name} unit {unit_id} device identification"
        with self._lock:
            client = self._connected()
            response = self._answer(
                where, lambda: client.read_device_information(read_code=1, object_id=0, device_id=unit_id)
            )
        information = getattr(response, "information", {}) or {}
        return {
            int(key): (value if isinstance(value, bytes) else bytes(value)).decode("ascii", "replace").strip()
            for key, value in information.items()
            if isinstance(value, (bytes, bytearray))
        }

    def _answer(self, where: str, request: Callable[[], Any]) -> Any:
        """The response to one request (the caller holds the lock), or ModbusReadError: the
        connection is dropped after a timeout or a broken connection, a Modbus exception keeps it."""
        try:
            response = request()
        except ConnectionException as exc:
            self._drop()
            raise ModbusReadError("disconnected", f"{where}: {exc}") from None
        except ModbusException as exc:
            self._drop()
            raise ModbusReadError("timeout", f"{where}: {exc}") from None
        if response.isError():
            code = getattr(response, "exception_code", None)
            raise ModbusReadError("exception", f"{where}: Modbus exception code {code}", code)
        return response

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    def close(self) -> None:
        with self._lock:
            self._drop()


class TcpEndpoint(Endpoint):
    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        super().__init__(f"tcp://{host}:{port}")
        self.host, self.port, self.timeout_s = host, port, timeout_s

    def _make_client(self) -> Client:
        return _with_word_responses(
            ModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=0)
        )


class RtuEndpoint(Endpoint):
    """Modbus RTU on a serial line; pymodbus keeps the silent interval of 3.5 characters between
    frames that the standard asks for (its RTU framer computes it from the baud rate)."""

    def __init__(self, line: RtuTransport) -> None:
        super().__init__(f"rtu://{line.serial}@{line.baudrate}{line.parity}{line.bytesize}{line.stopbits}")
        self.line = line

    def _make_client(self) -> Client:
        line = self.line
        return _with_word_responses(
            ModbusSerialClient(
                line.serial, framer=FramerType.RTU, timeout=line.timeout_s, retries=0, **line.line_settings()
            )
        )


def endpoint_for(transport: TcpTransport | RtuTransport) -> Endpoint:
    if isinstance(transport, RtuTransport):
        return RtuEndpoint(transport)
    return TcpEndpoint(transport.host, transport.port, transport.timeout_s)


def bus_key(transport: TcpTransport | RtuTransport) -> str:
    """Devices with the same key share one endpoint (and take turns on it)."""
    if isinstance(transport, RtuTransport):
        return f"rtu:{transport.serial}"
    return f"tcp:{transport.host}:{transport.port}"
