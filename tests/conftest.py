"""Session-wide real services. They are installed by `make test`; a missing one fails loudly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.influxdb import InfluxDB, start_influxdb
from tests.harness.mosquitto import Mosquitto, start_mosquitto


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def mosquitto(services_dir: Path) -> Iterator[Mosquitto]:
    broker = start_mosquitto(services_dir / "mosquitto")
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def influxdb(services_dir: Path) -> Iterator[InfluxDB]:
    server = start_influxdb(services_dir / "influxdb")
    yield server
    server.stop()


@pytest.fixture
def influx_database(influxdb: InfluxDB) -> Iterator[str]:
    """A fresh database (bucket) per test, dropped afterwards."""
    name = f"t{uuid.uuid4().hex[:12]}"
    influxdb.create_database(name)
    yield name
    influxdb.drop_database(name)
