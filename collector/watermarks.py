"""What the collector tells each gateway it may forget: its seals 1..N are durably stored.

A PUBACK only says that the broker has a message, and a broker can drop it
(Mosquitto's ``max_queued_messages``, a crash before its persistence file is
written). So the agent keeps every seal until the collector publishes,
retained on ``{prefix}/{site}/{gateway}/stored`` (mrv_core/watermark.py), the
highest N such that seals 1..N of the gateway are all in the store. A seal
that never arrived holds the mark back until the agent sends it again.
Stored means the seal and each of its records were durably decided: stored,
recognised as a duplicate, or quarantined.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from collector.store.base import Store

CHUNK = 1000  # seals read per query when a gateway's mark is first worked out from the store
HOLES_PER_WRITE = 3  # holes looked up in the store after one write


@dataclass
class Watermarks:
    """Per gateway: the contiguous mark, and the stored seals above it (beyond a hole)."""

    store: Store
    through: dict[str, int] = field(default_factory=dict)
    above: dict[str, set[int]] = field(default_factory=dict)

    def learn(self, gateway: str, seqs: Iterable[int]) -> int:
        """Seals of ``gateway`` that are now in the store; returns its mark.

        When a hole remains below seals this instance stored, the store is asked
        about the hole: another collector on the shared subscription may have
        stored those seals (one query per write while a hole lasts)."""
        through = self._through(gateway)
        above = self.above.setdefault(gateway, set())
        above.update(seq for seq in seqs if seq > through)
        through = _walk(through, above)
        for _ in range(HOLES_PER_WRITE):
            if not above:
                break
            filled = self.store.seals_between(gateway, through + 1, min(above) - 1)
            if not filled:
                break
            above.update(filled)
            through = _walk(through, above)
        self.through[gateway] = through
        return through

    def _through(self, gateway: str) -> int:
        """The mark as the store has it, read once per gateway (another instance may have stored some)."""
        if gateway not in self.through:
            through = 0
            while True:
                start = through
                through = _walk(through, set(self.store.seals_between(gateway, through + 1, through + CHUNK)))
                if through - start < CHUNK:
                    break
            self.through[gateway] = through
        return self.through[gateway]

    def forget(self) -> None:
        """After a failed write the marks may be ahead of the store: read them again."""
        self.through.clear()
        self.above.clear()


def _walk(through: int, above: set[int]) -> int:
    """Advance ``through`` over the seals in ``above`` that follow it without a hole (taking them out)."""
    while through + 1 in above:
        through += 1
        above.discard(through)
    return through
