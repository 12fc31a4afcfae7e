"""Polls on the wall clock's grid, backing off a meter that does not answer, and the gateway clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.buffer import Buffer
from agent.clock import EARLIEST, SystemClock, sync_state
from agent.config import DeviceSection
from agent.modbus import Endpoint, ModbusReadError
from agent.plan import ReadPlan, plan_reads
from agent.schedule import BACKOFF_AFTER, aligned_start, polls_to_skip
from agent.service import BusPoller, DevicePoller, bus_groups
from tests import factory


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_polls_fall_on_the_wall_clocks_grid() -> None:
    assert aligned_start(_at("2026-11-29 12:00:17.5"), 60) == _at("2026-11-29 12:01:00")
    assert aligned_start(_at("2026-11-29 12:01:00"), 60) == _at("2026-11-29 12:01:00"), "already on it"
    assert aligned_start(_at("2026-11-29 12:07:00"), 900) == _at("2026-11-29 12:15:00")
    assert aligned_start(_at("2026-11-29 23:59:59"), 3600) == _at("2026-11-30 00:00:00")
    start = aligned_start(_at("2026-11-29 12:00:01"), 7)
    assert (start - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() % 7 == 0
    with pytest.raises(ValueError, match="not positive"):
        aligned_start(_at("2026-11-29 12:00:00"), 0)


def test_a_silent_meter_is_tried_less_often_but_at_least_every_ten_minutes() -> None:
    assert [polls_to_skip(n, 60) for n in range(BACKOFF_AFTER)] == [0] * BACKOFF_AFTER
    assert [polls_to_skip(BACKOFF_AFTER + n, 60) for n in range(6)] == [1, 2, 4, 8, 9, 9]
    assert polls_to_skip(1000, 60) == 9, "capped: tried again within ten minutes"
    assert polls_to_skip(10, 900) == 0, "a 15-minute poll is never skipped"


class _Meter(Endpoint):
    """A meter that does not answer until told to (a unit-test fake of the Modbus endpoint)."""

    def __init__(self) -> None:
        super().__init__("fake://meter")
        self.answers = False
        self.reads = 0

    def read_blocks(self, plan: ReadPlan, unit_id: int) -> list[bytes]:
        self.reads += 1
        if not self.answers:
            raise ModbusReadError("timeout", "no answer")
        return [bytes(2 * request.count) for request in plan.requests]


def test_the_poller_backs_off_and_starts_over_when_the_meter_answers(tmp_path: Path) -> None:
    profile = factory.test_profile()
    device = DeviceSection.model_validate(
        {"id": "m1", "profile": profile.id, "poll_interval_s": 60, "transport": {"host": "127.0.0.1"}}
    )
    meter = _Meter()
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    plan = plan_reads(profile.registers, profile.max_registers_per_request, profile.max_gap_registers)
    poller = DevicePoller(device, profile, plan, meter, buffer, SystemClock(), "s", "gw")
    for _ in range(BACKOFF_AFTER + 1 + 1 + 2):  # 3 failures, skip 1, fail, skip 2
        poller.poll()
    assert (meter.reads, poller.skipped, poller.failures) == (BACKOFF_AFTER + 1, 3, BACKOFF_AFTER + 1)
    meter.answers = True
    assert poller.unread.polls == BACKOFF_AFTER + 1 + 3  # failed and skipped polls read nothing
    poller.poll()  # the next scheduled poll after the skips: tried, and it answers
    assert (poller.failures, poller.skip) == (0, 0)
    assert buffer.stats().counters["records_taken"] == 2 and poller.gap_records == 1  # the gap, the reading
    poller.poll()
    assert meter.reads == BACKOFF_AFTER + 3, "back to every poll"


def test_the_clock_state_comes_from_the_time_service(tmp_path: Path) -> None:
    answers: dict[str, str | None] = {}

    def run(argv: list[str]) -> str | None:
        return answers.get(argv[0])

    nowhere = tmp_path / "no-marker"
    for timedatectl, chronyc, state in (
        ("yes\n", None, "synced"),
        ("no\n", "Leap status     : Normal\n", "unsynced"),  # systemd's word first
        (None, "Reference ID    : C0A80001\nLeap status     : Normal\n", "synced"),
        (None, "Leap status     : Not synchronised\n", "unsynced"),
        (None, None, "unknown"),
    ):
        answers.update(timedatectl=timedatectl, chronyc=chronyc)
        assert sync_state(run, nowhere) == state
    marker = tmp_path / "synchronized"
    marker.touch()
    assert sync_state(run, marker) == "synced", "timesyncd's marker file"


def test_the_system_clock_asks_the_time_service_once_a_minute() -> None:
    asked: list[str] = []

    def probe() -> str:
        asked.append("synced")
        return "synced"

    clock = SystemClock(probe=probe, refresh_s=60)
    assert [clock.state for _ in range(100)] == ["synced"] * 100 and len(asked) == 1


@dataclass(frozen=True)
class _Stopped:
    """A gateway clock stuck in 1970, as a Raspberry Pi without RTC boots (a unit-test fake)."""

    state: str = "unsynced"
    speed: float = 1.0

    def now(self) -> datetime:
        return datetime(1970, 1, 1, 0, 5, tzinfo=UTC)


def test_a_reading_is_not_stamped_with_a_clock_before_the_release(tmp_path: Path) -> None:
    profile = factory.test_profile()
    device = DeviceSection.model_validate(
        {"id": "m1", "profile": profile.id, "poll_interval_s": 60, "transport": {"host": "127.0.0.1"}}
    )
    meter = _Meter()
    meter.answers = True
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    plan = plan_reads(profile.registers, profile.max_registers_per_request, profile.max_gap_registers)
    poller = DevicePoller(device, profile, plan, meter, buffer, _Stopped(), "s", "gw")
    poller.poll()
    assert buffer.stats().counters["records_taken"] == 0
    assert poller.failures == 1 and "1970-01-01T00:05:00.000Z, before" in poller.last_error
    assert EARLIEST.year >= 2026


def _poller(
    buffer: Buffer, name: str, *, host: str = "10.0.0.1", interval: float = 1, answers: bool = False
) -> DevicePoller:
    """A device of the test profile behind a fake meter, polled on the wall clock."""
    profile = factory.test_profile()
    section = DeviceSection.model_validate(
        {"id": name, "profile": profile.id, "poll_interval_s": interval, "transport": {"host": host}}
    )
    meter = _Meter()
    meter.answers = answers
    return DevicePoller(
        section, profile, plan_reads(profile.registers), meter, buffer, SystemClock(), "s", "gw"
    )


def test_one_job_per_bus_and_interval_reads_its_devices_in_turn(tmp_path: Path) -> None:
    """Devices of one TCP host (or serial line) and poll interval share one scheduled job; a device
    whose poll raises does not stop the others on its bus."""
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    pollers = [
        _poller(buffer, "a", interval=60),
        _poller(buffer, "b", interval=60),
        _poller(buffer, "c", host="10.0.0.2", interval=60),
        _poller(buffer, "d", interval=900),
    ]
    groups = bus_groups(pollers)
    assert sorted([p.device.id for p in group.pollers] for group in groups.values()) == [
        ["a", "b"],
        ["c"],
        ["d"],
    ]

    failing = pollers[0]
    failing.read = lambda: (_ for _ in ()).throw(RuntimeError("a bug"))  # type: ignore[method-assign]
    BusPoller(pollers[:2]).poll()
    assert pollers[1].unread.polls == 1, "b was polled after a failed"
    buffer.close()


def test_a_bus_keeps_its_poll_round_in_one_transaction(tmp_path: Path) -> None:
    """A transaction costs the gateway ~200 us of CPU and an fsync whatever it holds: a bus reads
    all its devices, then writes their readings together, each chained as if written alone; a
    device that does not answer is counted unread, the others are kept."""
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    pollers = [_poller(buffer, name, answers=name != "c") for name in ("a", "b", "c", "d")]
    for poller in pollers:
        poller.failures = 1
    statements: list[str] = []
    buffer._db.set_trace_callback(statements.append)
    BusPoller(pollers).poll()
    BusPoller(pollers).poll()
    buffer._db.set_trace_callback(None)
    assert statements.count("COMMIT") == 2 + 2, "a round: one transaction (and c's error count)"
    assert buffer.stats().counters["records_taken"] == 6
    assert [p.failures for p in pollers] == [0, 0, 3, 0]
    assert pollers[2].unread.polls == 2
    heads = dict(buffer._db.execute("SELECT device, seq FROM device_chain"))
    assert heads == {"a": 2, "b": 2, "d": 2}
    buffer.close()


def test_a_full_buffer_refuses_a_whole_round_and_keeps_nothing(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite", "gw", quota_bytes=1)
    pollers = [_poller(buffer, name, answers=True) for name in ("a", "b")]
    for poller in pollers:
        poller.failures = 2
    BusPoller(pollers).poll()
    assert buffer.stats().counters.get("records_taken", 0) == 0
    assert buffer.refused == 2 and buffer.full
    assert [p.failures for p in pollers] == [2, 2], "a refused reading is not a read that succeeded"
    buffer.close()
