"""The agent's configuration: one typed, validated model (docs in config/agent.example.yaml)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationInfo, field_validator

from mrv_core.config_errors import UNION_TAG, load_document
from mrv_core.mqtt_security import TlsSection

ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySection(_Strict):
    id: str = Field(pattern=ID)
    site: str = Field(pattern=ID)
    key_file: Path = Path("gateway.key")


class TcpTransport(_Strict):
    type: Literal["tcp"] = "tcp"
    host: str
    port: int = Field(default=502, ge=1, le=65535)
    timeout_s: float = Field(default=3.0, gt=0, le=60)


BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


class RtuTransport(_Strict):
    """Modbus RTU on a serial line (RS-485 through a USB adapter or the gateway's own port). Every
    device on the same ``serial`` port is one bus: one request at a time, with the same settings."""

    type: Literal["rtu"]
    serial: str = Field(description="device path, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")
    baudrate: int = Field(default=9600, description=f"one of {', '.join(map(str, BAUD_RATES))}")
    parity: Literal["N", "E", "O"] = Field(default="E", description="the Modbus standard's default is even")
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    timeout_s: float = Field(default=1.0, gt=0, le=60)

    def line_settings(self) -> dict[str, Any]:
        """Baud rate, byte size, parity and stop bits, as pyserial (and pymodbus) name them."""
        return {
            "baudrate": self.baudrate,
            "bytesize": self.bytesize,
            "parity": self.parity,
            "stopbits": self.stopbits,
        }

    @field_validator("baudrate")
    @classmethod
    def _standard_rate(cls, value: int) -> int:
        if value not in BAUD_RATES:
            raise ValueError(f"{value} is not a standard rate ({', '.join(map(str, BAUD_RATES))})")
        return value


def _transport_kind(value: Any) -> str:
    """``type`` picks the transport; configs written before RTU existed have none: TCP."""
    kind = value.get("type", "tcp") if isinstance(value, dict) else getattr(value, "type", "tcp")
    return f"{UNION_TAG}{kind}"


Transport = Annotated[
    Annotated[TcpTransport, Tag(f"{UNION_TAG}tcp")] | Annotated[RtuTransport, Tag(f"{UNION_TAG}rtu")],
    Discriminator(
        _transport_kind,
        custom_error_type="transport_type",
        custom_error_message="transport type must be 'tcp' (Modbus TCP) or 'rtu' (Modbus RTU, serial)",
    ),
]


class DeviceSection(_Strict):
    id: str = Field(pattern=ID)
    profile: str = Field(description="id of a profile in profiles_dir")
    transport: Transport
    unit_id: int = Field(default=1, ge=0, le=255)
    poll_interval_s: float = Field(default=60, gt=0)
    quantities: list[str] | None = Field(default=None, description="subset to read; all when absent")
    identity: Literal["warn", "refuse", "off"] = Field(
        default="warn",
        description="a device whose identification does not match its profile: flag its readings "
        "identity_mismatch (warn), record none of them (refuse), or do not check (off)",
    )
    identify_every_s: float = Field(
        default=86_400, gt=0, description="read the identification again this often"
    )
    gap_record_s: float = Field(
        default=900,
        gt=0,
        description="while the device is not read, sign a gap record this often (and when it answers again)",
    )


class BufferSection(_Strict):
    path: Path = Path("buffer.sqlite")
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    quota_mb: float = Field(
        default=2048,
        gt=0,
        description="stop taking readings (and say so) when the buffer holds this much; about 1.4 KB "
        "per SDM630 reading of every quantity: 2 GB is three weeks of 50 meters read every minute",
    )
    min_free_mb: float = Field(
        default=64,
        ge=0,
        description="refuse readings when the buffer's disk has less room than this (pages freed by "
        "delivered seals count as room): sealing and deleting delivered seals need some",
    )
    high_water_percent: float = Field(
        default=80, gt=0, le=100, description="warn in logs and heartbeats above this share of the quota"
    )


class SealSection(_Strict):
    interval_s: float = Field(default=60, gt=0, description="seal pending records this often")
    max_records: int = Field(default=1000, ge=1, le=100_000)


class MqttSection(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = "5"
    client_id: str | None = None
    username: str | None = None
    password_file: Path | None = Field(default=None, description="broker password, in a private file")
    tls: TlsSection | None = Field(
        default=None, description="TLS to the broker, mutual with a client certificate"
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: float = Field(
        default=1.0, gt=0, description="ceiling of the first reconnection wait; doubles each failed attempt"
    )
    reconnect_max_s: float = Field(
        default=120.0,
        gt=0,
        description="largest ceiling; each wait is drawn at random below the ceiling (jitter), so "
        "gateways that lost the broker together do not reconnect together; back to the start once connected",
    )
    topic_prefix: str = "mrv/v1"
    max_inflight: int = Field(default=20, ge=1, le=1000)
    max_message_bytes: int = Field(default=256 * 1024, ge=4096, le=64 * 1024 * 1024)
    retry_after_s: float = Field(default=5.0, gt=0, description="wait before resending refused batches")
    confirm_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="resend from the oldest unconfirmed seal when the collector has not confirmed "
        "storing it this long after the broker took it (doubles while nothing is confirmed, up to 10 min)",
    )
    max_records_per_s: float | None = Field(
        default=None,
        gt=0,
        description="publish at most this many records per second (a backlog drain after an outage "
        "must not flood the collector); new readings are taken all along; none: as fast as confirmed",
    )
    max_unconfirmed_seals: int = Field(
        default=100, ge=1, le=100_000, description="seals sent but not yet confirmed stored by the collector"
    )
    heartbeat_s: float = Field(default=60.0, gt=0, description="real seconds between retained heartbeats")

    @field_validator("reconnect_max_s")
    @classmethod
    def _max_not_below_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("reconnect_min_s")
        if low is not None and value < low:
            raise ValueError(f"must be at least reconnect_min_s ({low})")
        return value


class SimulatedClockSection(_Strict):
    """Demos and benchmarks only: time runs ``speed`` times faster from ``start``."""

    start: datetime
    anchor_unix: float
    speed: float = Field(gt=0)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("start needs a time zone, e.g. 2026-11-27T00:00:00Z")
        return value


class AgentConfig(_Strict):
    gateway: GatewaySection
    profiles_dir: Path = Path("firmware_profiles")
    buffer: BufferSection = BufferSection()
    seal: SealSection = SealSection()
    mqtt: MqttSection = MqttSection()
    devices: list[DeviceSection] = Field(min_length=1)
    simulated_clock: SimulatedClockSection | None = None

    @field_validator("devices")
    @classmethod
    def _unique_devices(cls, devices: list[DeviceSection]) -> list[DeviceSection]:
        seen: set[str] = set()
        for device in devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} appears twice")
            seen.add(device.id)
        lines: dict[str, DeviceSection] = {}  # serial port -> first device on it
        units: dict[tuple[str, int], str] = {}  # (bus, unit id) -> device
        for device in devices:
            transport = device.transport
            if isinstance(transport, RtuTransport):
                bus = transport.serial
                first = lines.setdefault(bus, device)
                if first.transport != transport:
                    raise ValueError(
                        f"devices {first.id!r} and {device.id!r} share serial line {bus} with different "
                        "settings: a bus has one baud rate, parity, stop bits, byte size and timeout"
                    )
            else:
                bus = f"{transport.host}:{transport.port}"
            other = units.setdefault((bus, device.unit_id), device.id)
            if other != device.id:
                raise ValueError(
                    f"devices {other!r} and {device.id!r} are both unit {device.unit_id} on {bus}"
                )
        return devices

    def resolved(self, base: Path) -> AgentConfig:
        """Paths relative to the config file's folder, as people expect."""

        def fix(path: Path) -> Path:
            return path if path.is_absolute() else (base / path)

        mqtt = self.mqtt.model_copy(
            update={
                "password_file": fix(self.mqtt.password_file) if self.mqtt.password_file else None,
                "tls": self.mqtt.tls.resolved(fix) if self.mqtt.tls else None,
            }
        )
        return self.model_copy(
            update={
                "gateway": self.gateway.model_copy(update={"key_file": fix(self.gateway.key_file)}),
                "profiles_dir": fix(self.profiles_dir),
                "buffer": self.buffer.model_copy(update={"path": fix(self.buffer.path)}),
                "mqtt": mqtt,
            }
        )


def load_agent_config(path: Path) -> AgentConfig:
    return load_document(path, AgentConfig, "the configuration").resolved(path.parent.resolve())
