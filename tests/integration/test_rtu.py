"""Modbus RTU for real: meters served by pymodbus's serial server at one end of a pseudo-terminal
pair (socat), read by the agent at the other, one request at a time on the bus."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.acquisition import decode_reading
from agent.buffer import open_stats
from agent.clock import ScaledClock
from agent.config import RtuTransport
from agent.modbus import ModbusReadError, RtuEndpoint
from agent.plan import plan_reads
from agent.simulator import Simulator, default_meters
from mrv_core.profile_schema import load_profile
from tests.harness.procs import Proc, wait_for
from tests.harness.programs import command
from tests.harness.serial_pair import SerialPair, start_serial_pair

ROOT = Path(__file__).parents[2]
PROFILE = ROOT / "firmware_profiles/eastron/sdm630-modbus-v2.yaml"
NOON = ScaledClock(start=datetime(2026, 6, 1, 4, tzinfo=UTC), anchor=0.0, speed=1.0, real=lambda: 0.0)


def _line(path: Path, timeout_s: float = 1.0) -> RtuTransport:
    # No parity: a Linux pseudo-terminal refuses PARENB (tcsetattr fails with EINVAL), and parity
    # means nothing on it anyway; real lines set what their meters use (8E1 is the standard's default).
    return RtuTransport(type="rtu", serial=str(path), baudrate=19200, parity="N", timeout_s=timeout_s)


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[tuple[SerialPair, Simulator]]:
    """Two SDM630 meters, units 1 and 2, on one RTU line at 19200 8N1; time stands still at noon."""
    pair = start_serial_pair(tmp_path / "serial")
    meters = default_meters(load_profile(PROFILE), NOON, {1: 40.0, 2: 25.0})
    simulator = Simulator(meters, serial=_line(pair.meter_end))
    simulator.start()
    try:
        yield pair, simulator
    finally:
        simulator.stop()
        pair.stop()


@pytest.mark.integration
def test_meters_on_one_rtu_line_are_read_word_for_word(bus: tuple[SerialPair, Simulator]) -> None:
    pair, simulator = bus
    profile = load_profile(PROFILE)
    plan = plan_reads(profile.registers, profile.max_registers_per_request, profile.max_gap_registers)
    endpoint = RtuEndpoint(_line(pair.agent_end))
    try:
        for meter in simulator.meters:
            words = endpoint.read(plan, meter.unit_id)
            served = meter.registers()
            assert words == {key: served.get(key, 0) for key in words}, f"unit {meter.unit_id}, word for word"
            reading = decode_reading(plan, words)
            energy = reading.values["energy_active_export_total"].value
            assert energy is not None and energy > 0, "a PV plant at noon has exported energy"
        first, second = (decode_reading(plan, endpoint.read(plan, m.unit_id)) for m in simulator.meters)
        assert first.values != second.values, "two meters, two answers: the unit id reached the bus"
    finally:
        endpoint.close()


@pytest.mark.integration
def test_a_silent_unit_times_out_and_the_line_keeps_working(bus: tuple[SerialPair, Simulator]) -> None:
    pair, _simulator = bus
    profile = load_profile(PROFILE)
    plan = plan_reads(profile.registers, profile.max_registers_per_request, profile.max_gap_registers)
    endpoint = RtuEndpoint(_line(pair.agent_end, timeout_s=0.3))
    try:
        started = time.monotonic()
        with pytest.raises(ModbusReadError) as failure:
            endpoint.read(plan, 9)  # nothing answers as unit 9 on this bus
        assert failure.value.reason in ("timeout", "exception", "disconnected"), failure.value
        assert time.monotonic() - started < 10
        assert endpoint.read(plan, 1), "the next meter on the line is read as before"
    finally:
        endpoint.close()


@pytest.mark.integration
def test_probe_over_a_serial_line(bus: tuple[SerialPair, Simulator]) -> None:
    pair, _ = bus
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "probe",
            "--profile",
            str(PROFILE),
            "--serial",
            str(pair.agent_end),
            "--baud",
            "19200",
            "--parity",
            "N",
            "--unit",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"rtu://{pair.agent_end}@19200N81 unit 2" in done.stdout
    line = next(text for text in done.stdout.splitlines() if "energy_active_export_total" in text)
    assert "kWh" in line and "raw " in line


@pytest.mark.integration
def test_the_agent_polls_rtu_meters_from_its_config(
    tmp_path: Path, bus: tuple[SerialPair, Simulator]
) -> None:
    """config -> bus -> records: two devices share one serial line (one endpoint, taking turns)."""
    pair, _ = bus
    config = tmp_path / "agent.yaml"
    line = {"type": "rtu", "serial": str(pair.agent_end), "baudrate": 19200, "parity": "N", "timeout_s": 1}
    config.write_text(
        json.dumps(
            {
                "gateway": {"id": "gw-rtu", "site": "rtu-site", "key_file": "gateway.key"},
                "profiles_dir": str(ROOT / "firmware_profiles"),
                "buffer": {"path": "buffer.sqlite"},
                "mqtt": {"port": 1, "client_id": f"agent-{tmp_path.name}"},  # no broker: it buffers
                "devices": [
                    {
                        "id": f"m{unit}",
                        "profile": "eastron-sdm630-v2",
                        "unit_id": unit,
                        "poll_interval_s": 0.5,
                    }
                    | {"transport": line}
                    for unit in (1, 2)
                ],
            }
        )
    )
    checked = subprocess.run(
        command("agent", "check-config", "--config", str(config)), capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    assert f"unit 2 at rtu://{pair.agent_end}@19200N81" in checked.stdout
    agent = Proc(
        command("agent", "run", "--config", str(config), "--drain-timeout", "0"), tmp_path / "agent.log"
    )
    try:
        wait_for(lambda: _chains(tmp_path).get("m2", 0) >= 3, 30, "three readings of each meter")
    finally:
        agent.stop()
    assert _chains(tmp_path).get("m1", 0) >= 3
    assert "read failed" not in agent.output()


def _chains(folder: Path) -> dict[str, int]:
    path = folder / "buffer.sqlite"
    if not path.exists():
        return {}
    try:
        stats = open_stats(path)
    except sqlite3.OperationalError:  # the agent has created the file, not yet its tables
        return {}
    return {device: seq for device, (seq, _) in stats.chains.items()}
