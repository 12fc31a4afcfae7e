"""Reconnect waits with full jitter, so gateways cut off together do not come back together.

Plain exponential backoff (paho's own: 1, 2, 4 ... s) keeps thousands of gateways that lost the
broker at the same moment in lock-step: they all knock again at the same instants. Each wait here
is drawn at random between a small floor and the exponential ceiling ("full jitter"), which spreads
them over the whole interval. Pure: the random generator is passed in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

FLOOR_S = 0.1  # never retry in a tight loop, even when the draw is near 0


def reconnect_delay_s(attempt: int, base_s: float, cap_s: float, rnd: random.Random) -> float:
    """Seconds to wait before reconnection attempt ``attempt`` (0 first): uniform in
    [floor, min(cap_s, base_s * 2**attempt)], the floor being 0.1 s or the ceiling if smaller."""
    if attempt < 0 or base_s <= 0 or cap_s < base_s:
        raise ValueError(f"need attempt >= 0 and 0 < base <= cap (got {attempt}, {base_s}, {cap_s})")
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt, 64))  # capped exponent: no float overflow
    return rnd.uniform(min(FLOOR_S, ceiling), ceiling)


@dataclass
class Backoff:
    """The attempt count between successful connections; draws each wait with ``reconnect_delay_s``."""

    base_s: float
    cap_s: float
    rnd: random.Random = field(default_factory=random.Random)  # seeded from the OS: differs per gateway
    attempt: int = 0

    def next_delay_s(self) -> float:
        delay = reconnect_delay_s(self.attempt, self.base_s, self.cap_s, self.rnd)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """After a successful connection: the next wait is short again."""
        self.attempt = 0
