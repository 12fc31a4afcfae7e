"""The only module that talks to pymodbus: execute a read plan against a meter.

One connection per TCP endpoint, shared by every unit id behind it (an RS-485
gateway is one bus) and used by one request at a time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException

from agent.plan import ReadPlan

log = logging.getLogger(__name__)


class ModbusReadError(RuntimeError):
    """A read failed; ``reason`` is one of timeout, exception, disconnected, short_response."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class TcpEndpoint:
    host: str
    port: int
    timeout_s: float
    _client: ModbusTcpClient | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def _connected(self) -> ModbusTcpClient:
        if self._client is None:
            self._client = ModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=0)
        if not self._client.connected and not self._client.connect():
            raise ModbusReadError("disconnected", f"{self.name}: cannot connect")
        return self._client

    def read(self, plan: ReadPlan, unit_id: int) -> dict[tuple[str, int], int]:
        """Words by (function, address) for every request of ``plan``, or :class:`ModbusReadError`."""
        words: dict[tuple[str, int], int] = {}
        with self._lock:
            client = self._connected()
            for request in plan.requests:
                where = f"{self.name} unit {unit_id} {request.function} {request.address}+{request.count}"
                reader = (
                    client.read_input_registers
                    if request.function == "input"
                    else client.read_holding_registers
                )
                try:
                    response = reader(request.address, count=request.count, device_id=unit_id)
                except ConnectionException as exc:
                    self._drop()
                    raise ModbusReadError("disconnected", f"{where}: {exc}") from None
                except ModbusException as exc:
                    self._drop()
                    raise ModbusReadError("timeout", f"{where}: {exc}") from None
                if response.isError():
                    code = getattr(response, "exception_code", None)
                    raise ModbusReadError("exception", f"{where}: Modbus exception code {code}")
                registers = list(response.registers)
                if len(registers) < request.count:
                    raise ModbusReadError("short_response", f"{where}: {len(registers)} registers returned")
                for offset in range(request.count):
                    words[(request.function, request.address + offset)] = registers[offset]
        return words

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    def close(self) -> None:
        with self._lock:
            self._drop()
