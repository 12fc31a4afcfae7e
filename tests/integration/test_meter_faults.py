"""What real meters do to a gateway, served on demand by the simulator over real Modbus TCP, and
what the agent makes of it: the right error reason, or the right quality flag, never a silent fix."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.acquisition import FROZEN_READS, QualityTracker, Reading, decode_reading
from agent.buffer import Buffer
from agent.clock import ScaledClock
from agent.config import DeviceSection
from agent.modbus import ModbusReadError, TcpEndpoint
from agent.plan import ReadPlan, plan_reads
from agent.service import DevicePoller
from agent.simulator import SLOW_S, SimulatedMeter, Simulator, default_meters
from mrv_core.profile_schema import load_profile
from mrv_core.record import parse_record
from tests.harness.procs import free_port
from tests.harness.programs import command
from tests.integration.test_rtu import PROFILE, ROOT

_PROFILE = load_profile(PROFILE)
PLAN: ReadPlan = plan_reads(
    _PROFILE.registers, _PROFILE.max_registers_per_request, _PROFILE.max_gap_registers
)


class _Site:
    def __init__(self, meter: SimulatedMeter, endpoint: TcpEndpoint) -> None:
        self.meter, self.endpoint = meter, endpoint

    def read(self) -> Reading:
        return decode_reading(PLAN, self.endpoint.read(PLAN, self.meter.unit_id))


@pytest.fixture
def site() -> Iterator[_Site]:
    """One SDM630 at noon, its simulated clock running an hour per real second (values move)."""
    clock = ScaledClock(start=datetime(2026, 6, 1, 4, tzinfo=UTC), anchor=time.time(), speed=3600.0)
    (meter,) = default_meters(_PROFILE, clock, {5: 40.0})
    port = free_port()
    simulator = Simulator([meter], port=port)
    simulator.start()
    endpoint = TcpEndpoint("127.0.0.1", port, timeout_s=SLOW_S * 2)
    try:
        yield _Site(meter, endpoint)
    finally:
        endpoint.close()
        simulator.stop()


@pytest.mark.integration
def test_exception_silence_and_slowness_are_told_apart(site: _Site) -> None:
    site.meter.fault = "exception"
    with pytest.raises(ModbusReadError) as failure:
        site.read()
    assert failure.value.reason == "exception" and "code 4" in str(failure.value)
    site.meter.fault = "slow"
    started = time.monotonic()
    assert site.read().quality == ()
    assert time.monotonic() - started >= SLOW_S, "late, but within the timeout: a reading"
    site.meter.fault = "silent"
    with pytest.raises(ModbusReadError) as failure:
        site.read()
    assert failure.value.reason in ("timeout", "disconnected"), failure.value
    site.meter.fault = None
    assert site.read().values["energy_active_import_total"].value is not None, "answers again"


@pytest.mark.integration
def test_a_counter_reset_and_a_frozen_meter_are_flagged(site: _Site) -> None:
    tracker = QualityTracker()
    assert tracker.check(PLAN, site.read()).quality == ()
    site.meter.fault = "counter_reset"
    time.sleep(0.05)
    flags = tracker.check(PLAN, site.read()).quality
    assert "counter_reset:energy_active_export_total" in flags
    site.meter.fault = "frozen"
    flags = [tracker.check(PLAN, site.read()).quality for _ in range(FROZEN_READS)]
    assert flags[-1] == ("frozen",) and flags[0] == ()


@pytest.mark.integration
def test_garbage_registers_are_read_as_they_are(site: _Site) -> None:
    site.meter.fault = "garbage"
    first, second = site.read(), site.read()
    assert first.values != second.values, "random words, decoded as the profile says"
    assert all(v.raw for v in first.values.values())


@pytest.mark.integration
def test_scan_finds_the_meters_on_a_bus_and_the_profile_that_fits(tmp_path: Path) -> None:
    """Units 3 and 7 behind one TCP endpoint; 7 answers every request with an exception."""
    clock = ScaledClock(start=datetime(2026, 6, 1, 4, tzinfo=UTC), anchor=time.time(), speed=60.0)
    meters = default_meters(_PROFILE, clock, {3: 40.0, 7: 20.0})
    meters[1].fault = "exception"
    port = free_port()
    simulator = Simulator(meters, port=port)
    simulator.start()
    try:
        done = subprocess.run(
            [
                *command("agent", "scan", "--host", "127.0.0.1", "--port", str(port), "--units", "1-8"),
                "--timeout",
                "0.3",
                "--profiles",
                str(ROOT / "firmware_profiles"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        simulator.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("unit")]
    # Unit 3 is an SDM630: its map also reads sensibly as the SDM120's and SDM72D's (the same
    # Eastron layout), and no other make's; unit 7 refuses every profile's requests.
    fits = sorted(line.split(" (")[0] for line in lines if line.startswith("unit   3: fits "))
    assert fits == [
        f"unit   3: fits {p}" for p in ("eastron-sdm120-modbus", "eastron-sdm630-v2", "eastron-sdm72d-m-v2")
    ]
    (refused,) = [line for line in lines if line.startswith("unit   7")]
    assert refused.startswith("unit   7: answers, no profile fits: ") and "eastron-sdm630-v2: " in refused
    assert "code 4" in refused and len(lines) == 4, done.stdout
    empty = subprocess.run(
        command("agent", "scan", "--host", "127.0.0.1", "--port", str(free_port()), "--units", "1-2"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert empty.returncode == 1 and "nothing answered" in empty.stdout


@pytest.mark.integration
def test_a_meter_that_does_not_answer_leaves_a_signed_gap_in_its_chain(site: _Site, tmp_path: Path) -> None:
    """The poller over real Modbus TCP: polls that read nothing (an exception, then backing off) are
    signed into the device's chain as one gap record when the meter answers again, before the
    reading; a long outage gets one every ``gap_record_s`` without waiting for the meter."""
    device = DeviceSection.model_validate(
        {
            "id": "m5",
            "profile": _PROFILE.id,
            "transport": {"type": "tcp", "host": "127.0.0.1", "port": site.endpoint.port},
            "unit_id": site.meter.unit_id,
            "poll_interval_s": 1,
            "gap_record_s": 36_000,  # simulated seconds (an hour per real second): 10 s here
        }
    )
    buffer = Buffer(tmp_path / "b.sqlite", "gw-f")
    poller = DevicePoller(device, _PROFILE, PLAN, site.endpoint, buffer, site.meter.clock, "s", "gw-f")
    try:
        poller.poll()
        site.meter.fault = "exception"
        for _ in range(4):  # one failed read, then polls skipped while backing off, then a failed one
            poller.poll()
        assert poller.unread.polls == 4 and poller.unread.reason == "exception:4"
        site.meter.fault = None
        while poller.skip:
            poller.poll()
        poller.poll()  # the meter answers: the gap record first, then the reading
        rows = (
            sqlite3.connect(tmp_path / "b.sqlite").execute("SELECT data FROM records ORDER BY id").fetchall()
        )
        records = [parse_record(bytes(row[0])) for row in rows]
        assert [r.kind for r in records] == ["reading", "gap", "reading"]
        assert [r.seq for r in records] == [1, 2, 3] and records[2].prev == records[1].hash
        gap = records[1].gap
        assert gap is not None and gap.reason == "exception:4" and gap.polls >= 4
        assert records[0].time < gap.start <= gap.end <= records[1].time <= records[2].time
        assert poller.unread.polls == 0 and poller.gap_records == 1
        # A meter that stays silent: a gap record once an hour of (simulated) polls went unread.
        poller.device = device.model_copy(update={"gap_record_s": 3600})
        site.meter.fault = "exception"
        deadline = time.monotonic() + 30
        while poller.gap_records < 2 and time.monotonic() < deadline:
            poller.poll()
            time.sleep(0.05)
        assert poller.gap_records == 2
    finally:
        buffer.close()
