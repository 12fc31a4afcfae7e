"""The collector's configuration: one typed, validated model (see config/collector.example.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mrv_core.config_errors import load_document
from mrv_core.mqtt_security import TlsSection


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSection(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = "5"
    client_id: str = "mrv-collector"
    username: str | None = None
    password_file: Path | None = Field(default=None, description="broker password, in a private file")
    tls: TlsSection | None = Field(
        default=None, description="TLS to the broker, mutual with a client certificate"
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    topic_prefix: str = "mrv/v1"
    shared_group: str | None = Field(
        default=None, description="share the load with other collectors via $share/<group>/..."
    )
    session_expiry_s: int | None = Field(
        default=None,
        ge=0,
        description="MQTT 5 session expiry; default 7 days, or 60 s with shared_group: Mosquitto keeps "
        "handing a dead member of a shared group its share until its session expires, and the agents "
        "send again whatever the collectors did not confirm, so a short expiry loses nothing",
    )
    receive_maximum: int = Field(
        default=100, ge=1, le=65535, description="unacknowledged messages the broker may send (MQTT 5)"
    )
    max_messages_per_write: int = Field(default=50, ge=1, le=10_000)
    max_bytes_per_write: int = Field(
        default=16 * 1024 * 1024, ge=1, description="stop adding messages to one store write beyond this size"
    )


class SqliteStoreSection(_Strict):
    type: Literal["sqlite"]
    path: Path = Path("collector.sqlite")


class InfluxStoreSection(_Strict):
    type: Literal["influxdb"]
    url: str
    org: str = "mrv"
    bucket: str = "mrv"
    database: str = Field(default="", description="InfluxQL database; defaults to the bucket")
    token: str = ""
    timeout_s: float = Field(default=30, gt=0)
    points_per_write: int = Field(default=5000, ge=1, le=100_000, description="points per HTTP write request")


StoreSection = Annotated[SqliteStoreSection | InfluxStoreSection, Field(discriminator="type")]


class HttpSection(_Strict):
    listen: str = Field(default="127.0.0.1:8080", pattern=r"^[^:\s]+:\d{1,5}$", description="host:port")
    tokens_file: Path = Field(default=Path("tokens.json"), description="API tokens, stored hashed, mode 0600")

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


class CollectorConfig(_Strict):
    mqtt: MqttSection = MqttSection()
    http: HttpSection | None = Field(
        default=None, description="status API, page and metrics; off when absent"
    )
    store: StoreSection = SqliteStoreSection(type="sqlite")
    keyring: Path = Field(description="JSON file of registered gateway keys")
    profiles_dir: Path = Path("firmware_profiles")
    projects_dir: Path = Field(
        default=Path("projects"), description="project YAMLs, for exports by project id"
    )

    def resolved(self, base: Path) -> CollectorConfig:
        def fix(path: Path) -> Path:
            return path if path.is_absolute() else base / path

        store = self.store
        if isinstance(store, SqliteStoreSection):
            store = store.model_copy(update={"path": fix(store.path)})
        http = self.http.model_copy(update={"tokens_file": fix(self.http.tokens_file)}) if self.http else None
        mqtt = self.mqtt.model_copy(
            update={
                "password_file": fix(self.mqtt.password_file) if self.mqtt.password_file else None,
                "tls": self.mqtt.tls.resolved(fix) if self.mqtt.tls else None,
            }
        )
        return self.model_copy(
            update={
                "keyring": fix(self.keyring),
                "profiles_dir": fix(self.profiles_dir),
                "projects_dir": fix(self.projects_dir),
                "store": store,
                "http": http,
                "mqtt": mqtt,
            }
        )


def load_collector_config(path: Path) -> CollectorConfig:
    return load_document(path, CollectorConfig, "the configuration").resolved(path.parent.resolve())
