"""Clocks are passed in, never read inside the core.

:class:`ScaledClock` runs simulated time faster than real time for demos and
benchmarks; agent and simulator given the same anchor agree on the time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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


@dataclass(frozen=True)
class SystemClock:
    """The gateway's clock. Sync state is 'unknown' until an NTP check is wired in."""

    state: str = "unknown"
    speed: float = 1.0

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
