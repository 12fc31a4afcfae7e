"""When to poll: wall-clock aligned intervals and backing off from a meter that does not answer.

Pure functions (time is passed in), used by agent/service.py with apscheduler.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

BACKOFF_AFTER = 3  # consecutive failures before polls are skipped
BACKOFF_MAX_S = 600.0  # a dead meter is still tried at least every ten minutes


def aligned_start(now: datetime, interval_s: float) -> datetime:
    """The first instant at or after ``now`` that is a whole number of intervals since the Unix epoch:
    a 60 s poll falls on :00 of every minute, a 900 s poll on :00, :15, :30, :45, on every gateway,
    so that readings of a site line up with each other and with the grid's metering periods."""
    if interval_s <= 0:
        raise ValueError(f"interval {interval_s} s is not positive")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    elapsed = (now - epoch).total_seconds()
    slots = math.ceil(elapsed / interval_s - 1e-9)
    return epoch + timedelta(seconds=slots * interval_s)


def polls_to_skip(failures: int, interval_s: float) -> int:
    """After ``failures`` consecutive failed reads, how many scheduled polls to skip before trying
    again: none for the first few, then 1, 2, 4 ... polls, never more than ``BACKOFF_MAX_S`` of
    them. A meter that times out holds its bus for the whole timeout; backing off gives that time
    back to the other meters on the bus, and the failed reads stay counted and reported."""
    if failures < BACKOFF_AFTER:
        return 0
    most = max(0, int(BACKOFF_MAX_S // interval_s) - 1)
    doubling: int = 2 ** min(failures - BACKOFF_AFTER, 30)
    return min(doubling, most)
