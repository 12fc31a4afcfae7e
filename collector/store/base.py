"""The store interface: what ingest, reports and exports need, nothing more.

Keys are deterministic: a record is identified by (gateway, device, seq) and a
seal by (gateway, seq), so writing the same thing twice stores it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mrv_core.record import Record, Seal

# Later than any record (2255), yet inside InfluxDB's int64 nanosecond range.
FAR_FUTURE_MS = 9_000_000_000_000


class StoreError(RuntimeError):
    """The store cannot be reached or refused a write; nothing was acknowledged."""


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str
    time: str = ""  # the head record's time, for the span of a gap that opens after it


@dataclass(frozen=True)
class Link:
    """A stored record's place in its chain."""

    hash: str
    prev: str


@dataclass(frozen=True)
class StoredRecord:
    data: bytes
    seal_gateway: str
    seal_seq: int
    leaf: int


@dataclass(frozen=True)
class StoredSeal:
    data: bytes
    signature: bytes


@dataclass(frozen=True)
class SealSpan:
    """Where a stored seal lies: its seq, record count and the times of its first and last records."""

    seq: int
    count: int
    first_ms: int
    last_ms: int


@dataclass(frozen=True)
class QuarantineItem:
    received_ms: int
    topic: str
    gateway: str
    reason: str
    detail: str
    payload: bytes


@dataclass(frozen=True)
class Gap:
    """Records of one device chain known to be missing: seqs ``first``..``last`` (inclusive).

    Identified by (gateway, device, first). A gap whose ``last`` is below its
    ``first`` has been filled (closed): stores that cannot delete keep it so.
    ``time_from`` and ``time_to`` are the times of the stored neighbours.
    """

    site: str
    gateway: str
    device: str
    first: int
    last: int
    time_from: str
    time_to: str
    detected_ms: int

    @property
    def closed(self) -> bool:
        return self.last < self.first

    @property
    def missing(self) -> int:
        return max(0, self.last - self.first + 1)


@dataclass(frozen=True)
class GatewayEvent:
    """What a gateway said about itself (retained status, heartbeat) or that it was heard from."""

    site: str
    gateway: str
    kind: str  # "status", "heartbeat" or "seen"
    received_ms: int
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GatewayState:
    site: str
    gateway: str
    state: str | None = None
    state_ms: int | None = None
    heartbeat: Mapping[str, Any] | None = None
    heartbeat_ms: int | None = None
    last_seen_ms: int | None = None


@dataclass
class WriteSet:
    """Everything one ingest step stores, written durably in one go."""

    seals: list[Seal] = field(default_factory=list)
    records: list[tuple[Record, Seal, int]] = field(default_factory=list)  # record, seal, leaf
    quarantine: list[QuarantineItem] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)  # opened, shrunk or closed, in order
    events: list[GatewayEvent] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.seals or self.records or self.quarantine or self.gaps or self.events)


@dataclass(frozen=True)
class StoreCounts:
    records: int
    seals: int
    quarantined: int
    devices: int


class Store(Protocol):
    def head(self, gateway: str, device: str) -> ChainHead | None:
        """The stored record of ``device`` with the highest seq."""
        ...

    def links(self, gateway: str, device: str, seqs: Sequence[int]) -> dict[int, Link]:
        """Hash and prev of the stored records among ``seqs``."""
        ...

    def seal_hash(self, gateway: str, seq: int) -> str | None: ...

    def write(self, items: WriteSet) -> None:
        """Store everything durably, or raise :class:`StoreError` having acknowledged nothing."""
        ...

    def records_between(self, gateway: str, device: str, start_ms: int, end_ms: int) -> list[StoredRecord]:
        """Records with start_ms <= time < end_ms, ordered by time then seq."""
        ...

    def record_before(self, gateway: str, device: str, at_ms: int) -> StoredRecord | None:
        """The last record with time < at_ms."""
        ...

    def record_at_or_after(self, gateway: str, device: str, at_ms: int) -> StoredRecord | None:
        """The first record with time >= at_ms."""
        ...

    def stored_seqs(self, gateway: str, device: str, seq_from: int, seq_to: int) -> list[int]:
        """Stored sequence numbers in [seq_from, seq_to], ascending."""
        ...

    def devices(self) -> list[tuple[str, str, str]]:
        """(site, gateway, device) of everything stored."""
        ...

    def seal(self, gateway: str, seq: int) -> StoredSeal | None: ...

    def seals_overlapping(self, gateway: str, start_ms: int, end_ms: int) -> list[SealSpan]:
        """Seals of ``gateway`` with a record in [start_ms, end_ms), by seq."""
        ...

    def seals_between(self, gateway: str, first_seq: int, last_seq: int) -> dict[int, StoredSeal]:
        """Stored seals of ``gateway`` with first_seq <= seq <= last_seq."""
        ...

    def records_of_seals(self, gateway: str, spans: Sequence[SealSpan]) -> list[StoredRecord]:
        """The stored records of these seals (a few dozen at a time), by seal seq and leaf."""
        ...

    def last_seal_by_key(self, gateway: str, key_id: str) -> int | None:
        """Highest stored seal seq of ``gateway`` signed with ``key_id`` (for revocation)."""
        ...

    def records_of_seal(self, gateway: str, seal_seq: int, first_ms: int, last_ms: int) -> list[StoredRecord]:
        """The stored records of one seal, by leaf; times bound the search."""
        ...

    def quarantined(self, limit: int = 100) -> list[QuarantineItem]: ...

    def open_gaps(self, gateway: str | None = None, device: str | None = None) -> list[Gap]:
        """Gaps not filled yet, of one device, one gateway or all, by gateway, device and first seq."""
        ...

    def gateway_states(self) -> list[GatewayState]:
        """The latest status, heartbeat and time heard from, per gateway."""
        ...

    def day_counts(self, start_ms: int, end_ms: int) -> dict[tuple[str, str], dict[int, int]]:
        """Records per (gateway, device) per UTC day (day start in ms) in [start_ms, end_ms)."""
        ...

    def hourly_last(
        self, gateway: str, device: str, quantity: str, start_ms: int, end_ms: int
    ) -> list[tuple[int, float]]:
        """The last value of ``quantity`` in each hour of [start_ms, end_ms) that has one."""
        ...

    def counts(self) -> StoreCounts: ...

    def close(self) -> None: ...


def holes(seqs: Iterable[int], seq_from: int, seq_to: int) -> list[tuple[int, int]]:
    """Missing ranges of [seq_from, seq_to] given the sorted stored ``seqs``."""
    out: list[tuple[int, int]] = []
    expected = seq_from
    for seq in seqs:
        if seq > expected:
            out.append((expected, seq - 1))
        expected = max(expected, seq + 1)
    if expected <= seq_to:
        out.append((expected, seq_to))
    return out
