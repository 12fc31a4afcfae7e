"""Clocks are passed in, never read inside the core.

:class:`ScaledClock` runs simulated time faster than real time for demos and
benchmarks; agent and simulator given the same anchor agree on the time.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    @property
    def state(self) -> str:
        """Clock-sync state written into records (see mrv_core.record.CLOCK_STATES)."""
        ...

    @property
    def speed(self) -> float:
        """Simulated seconds per real second (1 for a real clock)."""
        ...

    def now(self) -> datetime: ...


# A gateway's clock before this date is wrong (a Raspberry Pi without RTC boots in 1970 or at its
# last shutdown): records are not stamped with it. Set to the release date of this version.
EARLIEST = datetime(2026, 11, 1, tzinfo=UTC)
SYNC_MARKER = Path("/run/systemd/timesync/synchronized")  # systemd-timesyncd touches it once synced
Runner = Callable[[list[str]], str | None]  # stdout of a command, None if it cannot run


def _run(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=3, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def sync_state(run: Runner = _run, marker: Path = SYNC_MARKER) -> str:
    """'synced', 'unsynced' or 'unknown', from what the OS's time service says: systemd's
    NTPSynchronized (timedatectl), chrony's leap status, or timesyncd's marker file."""
    if marker.exists():
        return "synced"
    answer = run(["timedatectl", "show", "--property=NTPSynchronized", "--value"])
    if answer is not None and answer.strip() in ("yes", "no"):
        return "synced" if answer.strip() == "yes" else "unsynced"
    tracking = run(["chronyc", "-n", "tracking"])
    if tracking is not None:
        for line in tracking.splitlines():
            if line.startswith("Leap status"):
                return "unsynced" if "Not synchronised" in line else "synced"
    return "unknown"


@dataclass
class SystemClock:
    """The gateway's clock, with the time service's sync state (asked at most once a minute), which
    every record carries."""

    probe: Callable[[], str] = sync_state
    refresh_s: float = 60.0
    speed: float = 1.0
    _state: str = field(default="unknown", init=False)
    _asked: float = field(default=-1e18, init=False)

    @property
    def state(self) -> str:
        now = time.monotonic()
        if now - self._asked >= self.refresh_s:
            self._state, self._asked = self.probe(), now
        return self._state

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class ScaledClock:
    """Simulated time: ``start`` at real Unix time ``anchor``, advancing ``speed`` times faster."""

    start: datetime
    anchor: float
    speed: float
    real: Callable[[], float] = field(default=time.time, compare=False)
    state: str = "simulated"

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(self.real() - self.anchor) * self.speed)
