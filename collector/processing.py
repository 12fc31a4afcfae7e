"""Ingest without MQTT: payload -> verified seals and records -> one durable write.

For every record the outcome is one of: stored, duplicate (same (gateway,
device, seq) and same hash: stored once already), or quarantined with a
reason. A seq beyond the chain head is stored and the hole is counted as a
gap; a hole filled later is linked to its neighbours before it is stored.
Nothing is dropped: whatever cannot be stored as good is quarantined.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from collector.store.base import (
    ChainHead,
    Gap,
    GatewayEvent,
    Link,
    QuarantineItem,
    Store,
    StoreError,
    WriteSet,
    holes,
)
from collector.watermarks import Watermarks
from mrv_core.envelope import EnvelopeError, SealedBatch, parse_envelope
from mrv_core.record import GENESIS, Record, Seal
from mrv_core.signing import b64
from mrv_core.verify import Keyring, check_sealed_batch

log = logging.getLogger(__name__)

# Quarantine reasons (stable names, counted in status and metrics).
MALFORMED_MESSAGE = "malformed_message"
MALFORMED_STATUS = "malformed_status"
TOPIC_MISMATCH = "topic_mismatch"
SEAL_CONFLICT = "seal_conflict"
SEQUENCE_CONFLICT = "sequence_conflict"
HASH_LINK_BROKEN = "hash_link_broken"


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    gaps: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    # (site, gateway) -> (N, hash of seal N): seals 1..N stored, for the gateways whose seals this
    # write handled; not summed
    watermarks: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)

    def add(self, other: IngestResult) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.gaps += other.gaps
        self.quarantined.update(other.quarantined)


@dataclass
class Prepared:
    """A group of messages verified and classified, not yet written: what to write, what happened,
    and the seals it handles per (site, gateway) (their watermarks move once it is written)."""

    out: WriteSet
    result: IngestResult
    sealed: dict[tuple[str, str], dict[int, str]]  # seal seq -> seal hash


def topic_parts(topic: str) -> tuple[str, str, str]:
    """(site, gateway, kind) of ``{prefix}/{site}/{gateway}/{kind}``; empty strings if too short."""
    parts = topic.split("/")
    return (parts[-3], parts[-2], parts[-1]) if len(parts) >= 3 else ("", "", "")


@dataclass
class _Step:
    """One message being prepared: where it came from, what it will write, what happened."""

    topic: str
    received_ms: int
    out: WriteSet
    result: IngestResult

    def quarantine(self, reason: str, detail: str, data: bytes | _Evidence, gateway: str = "") -> None:
        payload = data if isinstance(data, bytes) else data.payload()
        self.out.quarantine.append(
            QuarantineItem(self.received_ms, self.topic, gateway, reason, detail, payload)
        )
        self.result.quarantined[reason] += 1
        log.warning("quarantined (%s) from %s: %s", reason, self.topic, detail)


@dataclass
class Ingestor:
    """Holds chain heads between messages; rebuilds them from the store after a failed write."""

    store: Store
    keyring: Keyring
    clock_ms: Callable[[], int]
    heads: dict[tuple[str, str], ChainHead | None] = field(default_factory=dict)
    open_gaps: dict[tuple[str, str], list[Gap]] = field(default_factory=dict)
    # (site, gateway) -> {seal seq: seal hash} of the seals in the group being prepared
    sealed: dict[tuple[str, str], dict[int, str]] = field(default_factory=dict)
    shared: bool = False  # other collectors write the same store (MQTT shared subscription)
    watermarks: Watermarks = field(init=False)
    # Prepared but not yet written (ingest writes one group while it prepares the next): looked up
    # as if stored, so that a record or seal redelivered meanwhile is still seen as a duplicate.
    pending_links: dict[tuple[str, str], dict[int, Link]] = field(default_factory=dict)
    pending_seals: dict[tuple[str, int], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.watermarks = Watermarks(self.store)

    def _gaps(self, gateway: str, device: str) -> list[Gap]:
        key = (gateway, device)
        if key not in self.open_gaps:
            self.open_gaps[key] = self.store.open_gaps(gateway, device)
        return self.open_gaps[key]

    def _head(self, gateway: str, device: str) -> ChainHead | None:
        key = (gateway, device)
        if key not in self.heads:
            self.heads[key] = self.store.head(gateway, device)
        return self.heads[key]

    def prepare(self, topic: str, payload: bytes, out: WriteSet) -> IngestResult:
        """Verify and classify one message, adding what to store to ``out``."""
        step = _Step(topic, self.clock_ms(), out, IngestResult())
        site, topic_gateway, kind = topic_parts(topic)
        if kind in ("status", "heartbeat"):
            self._prepare_gateway_message(site, topic_gateway, kind, payload, step)
            return step.result
        quarantine = step.quarantine
        try:
            gateway, batches = parse_envelope(payload)
        except EnvelopeError as exc:
            quarantine(MALFORMED_MESSAGE, str(exc), payload)
            return step.result
        if kind == "records" and topic_gateway != gateway:
            quarantine(
                TOPIC_MISMATCH, f"envelope says {gateway}, topic says {topic_gateway}", payload, gateway
            )
            return step.result
        _seen(out, GatewayEvent(site, gateway, "seen", step.received_ms))
        for batch in batches:
            self._prepare_batch(batch, gateway, step)
        return step.result

    def _prepare_batch(self, batch: SealedBatch, gateway: str, step: _Step) -> None:
        quarantine, out = step.quarantine, step.out
        check = check_sealed_batch(
            batch.seal, batch.signature, batch.records, self.keyring, expected_gateway=gateway
        )
        evidence = _BatchEvidence(batch)
        if not check.ok or check.seal is None:
            for finding in check.findings:
                quarantine(finding.kind, finding.detail, evidence, gateway)
            return
        seal = check.seal
        known = self.pending_seals.get((seal.gateway, seal.seq))
        if known is None:
            known = self.store.seal_hash(seal.gateway, seal.seq)
        if known is not None and known != seal.hash:
            quarantine(
                SEAL_CONFLICT, f"seal {seal.seq} differs from the stored seal {seal.seq}", evidence, gateway
            )
            return
        if known is None and not any(s.gateway == seal.gateway and s.seq == seal.seq for s in out.seals):
            out.seals.append(seal)
        self.sealed.setdefault((seal.site, seal.gateway), {})[seal.seq] = seal.hash
        for leaf, record in enumerate(check.records):
            self._prepare_record(record, seal, leaf, step)

    def _prepare_record(self, record: Record, seal: Seal, leaf: int, step: _Step) -> None:
        quarantine, out, result = step.quarantine, step.out, step.result
        head = self._head(record.gateway, record.device)
        evidence = _RecordEvidence(seal, leaf, record)
        head_seq = head.seq if head else 0
        head_hash = head.hash if head else GENESIS
        where = f"{record.gateway}/{record.device} seq {record.seq}"
        if record.seq == head_seq + 1:
            if record.prev != head_hash:
                quarantine(
                    HASH_LINK_BROKEN,
                    f"{where} does not link to stored seq {head_seq}",
                    evidence,
                    record.gateway,
                )
                return
        elif record.seq > head_seq + 1:
            result.gaps += 1
            gap = Gap(
                record.site,
                record.gateway,
                record.device,
                head_seq + 1,
                record.seq - 1,
                head.time if head else "",
                record.time,
                step.received_ms,
            )
            out.gaps.append(gap)
            self._gaps(record.gateway, record.device).append(gap)
            log.warning(
                "gap: %s/%s seq %d..%d not received", record.gateway, record.device, gap.first, gap.last
            )
        else:
            links = self._links(record, out, (record.seq - 1, record.seq, record.seq + 1))
            existing = links.get(record.seq)
            if existing is not None and existing.hash == record.hash:
                result.duplicates += 1
                return
            if existing is not None:
                quarantine(
                    SEQUENCE_CONFLICT, f"{where} differs from the stored record", evidence, record.gateway
                )
                return
            if not _fits_between(links, record.seq, Link(record.hash, record.prev)):
                quarantine(
                    HASH_LINK_BROKEN,
                    f"{where} does not fit between its stored neighbours",
                    evidence,
                    record.gateway,
                )
                return
            self._fill_gap(record, out)
        out.records.append((record, seal, leaf))
        result.stored += 1
        if record.seq > head_seq:
            self.heads[(record.gateway, record.device)] = ChainHead(record.seq, record.hash, record.time)

    def _fill_gap(self, record: Record, out: WriteSet) -> None:
        """A late record shrinks, splits or closes the open gap it falls in."""
        gaps = self._gaps(record.gateway, record.device)
        for index, gap in enumerate(gaps):
            if gap.first <= record.seq <= gap.last:
                left = replace(gap, last=record.seq - 1, time_to=record.time)  # closed if seq == first
                out.gaps.append(left)
                remaining = [] if left.closed else [left]
                if record.seq < gap.last:
                    right = replace(gap, first=record.seq + 1, time_from=record.time)
                    out.gaps.append(right)
                    remaining.append(right)
                gaps[index : index + 1] = remaining
                return

    def _prepare_gateway_message(
        self, site: str, gateway: str, kind: str, payload: bytes, step: _Step
    ) -> None:
        """Retained status and heartbeats: operators' information, not evidence; never dropped silently."""
        if not payload:
            return  # an empty retained message clears the topic
        try:
            body = json.loads(payload)
        except ValueError as exc:
            step.quarantine(MALFORMED_STATUS, f"{kind} is not JSON: {exc}", payload, gateway)
            return
        if not isinstance(body, dict) or body.get("gateway") != gateway:
            step.quarantine(
                MALFORMED_STATUS, f"{kind} is not an object of gateway {gateway}", payload, gateway
            )
            return
        if kind == "status" and body.get("state") not in ("online", "offline"):
            step.quarantine(
                MALFORMED_STATUS, f"status state {body.get('state')!r} is unknown", payload, gateway
            )
            return
        step.out.events.append(GatewayEvent(site, gateway, kind, step.received_ms, body))

    def _links(self, record: Record, out: WriteSet, seqs: tuple[int, ...]) -> dict[int, Link]:
        """Stored links around ``record``, including records about to be written with it."""
        found = self.store.links(record.gateway, record.device, [s for s in seqs if s >= 1])
        held = self.pending_links.get((record.gateway, record.device), {})
        found.update((seq, held[seq]) for seq in seqs if seq in held)
        for pending, _, _ in out.records:
            if pending.gateway == record.gateway and pending.device == record.device and pending.seq in seqs:
                found[pending.seq] = Link(pending.hash, pending.prev)
        return found

    def forget_heads(self) -> None:
        """After a failed write the cached heads, gaps and watermarks may be ahead of the store; what
        was prepared and not written must be prepared again."""
        self.heads.clear()
        self.open_gaps.clear()
        self.sealed.clear()
        self.pending_links.clear()
        self.pending_seals.clear()
        self.watermarks.forget()

    def prepare_messages(self, messages: list[tuple[str, bytes]]) -> Prepared:
        """Verify and classify a group of messages; held as pending until :meth:`release`."""
        out = WriteSet()
        total = IngestResult()
        self.begin()
        for topic, payload in messages:
            total.add(self.prepare(topic, payload, out))
        prepared = Prepared(out, total, self.sealed)
        self.sealed = {}
        for seal in out.seals:
            self.pending_seals[(seal.gateway, seal.seq)] = seal.hash
        for record, _, _ in out.records:
            self.pending_links.setdefault((record.gateway, record.device), {})[record.seq] = Link(
                record.hash, record.prev
            )
        return prepared

    def commit(self, prepared: Prepared) -> IngestResult:
        """Write a prepared group durably, then work out the watermarks it moves. May run on a writer
        thread while the next group is prepared; raises :class:`StoreError` if the store failed."""
        out = prepared.out
        if out:
            self.store.write(out)
        if self.shared and out.records:
            repairs = self.repair_gaps({(r.gateway, r.device) for r, _, _ in out.records})
            if repairs:
                self.store.write(repairs)
        prepared.result.watermarks = self.confirm_sealed(prepared.sealed)
        return prepared.result

    def release(self, prepared: Prepared) -> None:
        """A group is written (or given up): the store answers for it from now on."""
        for seal in prepared.out.seals:
            self.pending_seals.pop((seal.gateway, seal.seq), None)
        for record, _, _ in prepared.out.records:
            held = self.pending_links.get((record.gateway, record.device))
            if held is not None:
                held.pop(record.seq, None)
                if not held:
                    del self.pending_links[(record.gateway, record.device)]

    def begin(self) -> None:
        """Before a write: with other collectors writing the same store, heads and open gaps are read
        from it again (cached ones may lag what the others stored)."""
        if self.shared:
            self.heads.clear()
            self.open_gaps.clear()

    def repair_gaps(self, devices: set[tuple[str, str]]) -> WriteSet:
        """Shared subscription: open gaps of ``devices`` that another collector has filled (wholly or
        partly) since they were recorded, shrunk or closed where the stored records link up."""
        out = WriteSet()
        for gateway, device in sorted(devices):
            for gap in self.store.open_gaps(gateway, device):
                stored = self.store.stored_seqs(gateway, device, gap.first, gap.last)
                if not stored:
                    continue
                links = self.store.links(gateway, device, [gap.first - 1, *stored, gap.last + 1])
                if not _links_hold(links, stored):
                    log.error(
                        "gap %s/%s seq %d..%d: records stored by another collector do not link to "
                        "their neighbours; the gap stays open",
                        gateway,
                        device,
                        gap.first,
                        gap.last,
                    )
                    continue
                pieces = [replace(gap, first=a, last=b) for a, b in holes(stored, gap.first, gap.last)]
                if not pieces or pieces[0].first != gap.first:
                    out.gaps.append(replace(gap, last=gap.first - 1))  # closed: its first seq is stored
                out.gaps.extend(pieces)
        self.open_gaps.clear()
        return out

    def confirm_sealed(
        self, sealed: dict[tuple[str, str], dict[int, str]]
    ) -> dict[tuple[str, str], tuple[int, str]]:
        """After a durable write: the watermark of every gateway whose seals it handled, with the hash
        of its last seal (the agent deletes only if its own seal has that hash: mrv_core/watermark.py)."""
        marks: dict[tuple[str, str], tuple[int, str]] = {}
        for (site, gateway), seals in sealed.items():
            through = self.watermarks.learn(gateway, seals)
            seal_hash = (
                GENESIS if through == 0 else seals.get(through) or self.store.seal_hash(gateway, through)
            )
            if seal_hash is None:  # cannot be: the mark counts stored seals only; never guess a hash
                log.error(
                    "seal %d of %s is counted stored but not found: no watermark sent", through, gateway
                )
                continue
            marks[(site, gateway)] = (through, seal_hash)
        return marks


def _fits_between(links: dict[int, Link], seq: int, here: Link) -> bool:
    """Whether a record (hash and prev) at ``seq`` links to its neighbours in ``links``, where they are
    there: its prev is the hash before it (genesis for seq 1), and the next one's prev is its hash."""
    predecessor, successor = links.get(seq - 1), links.get(seq + 1)
    before = GENESIS if seq == 1 else (predecessor.hash if predecessor else None)
    if before is not None and here.prev != before:
        return False
    return successor is None or successor.prev == here.hash


def _links_hold(links: dict[int, Link], stored: list[int]) -> bool:
    """Each stored seq links to its stored neighbours."""
    return all(seq in links and _fits_between(links, seq, links[seq]) for seq in stored)


def _seen(out: WriteSet, event: GatewayEvent) -> None:
    """One 'heard from' event per gateway and write."""
    out.events[:] = [e for e in out.events if not (e.kind == "seen" and e.gateway == event.gateway)]
    out.events.append(event)


class _Evidence:
    """What a quarantined item keeps, serialised only when something is quarantined."""

    def payload(self) -> bytes:
        raise NotImplementedError


@dataclass(frozen=True)
class _BatchEvidence(_Evidence):
    batch: SealedBatch

    def payload(self) -> bytes:
        return json.dumps(
            {
                "seal": self.batch.seal.decode("ascii", "replace"),
                "sig": b64(self.batch.signature),
                "records": [r.decode("ascii", "replace") for r in self.batch.records],
            }
        ).encode()


@dataclass(frozen=True)
class _RecordEvidence(_Evidence):
    seal: Seal
    leaf: int
    record: Record

    def payload(self) -> bytes:
        return json.dumps(
            {
                "seal": self.seal.data.decode(),
                "sig": b64(self.seal.signature),
                "leaf": self.leaf,
                "record": self.record.data.decode(),
            }
        ).encode()


def ingest_messages(ingestor: Ingestor, messages: list[tuple[str, bytes]]) -> IngestResult:
    """Verify, classify and durably store a group of messages in one write.

    Raises :class:`collector.store.base.StoreError` when the store failed; then
    nothing may be acknowledged and the same messages must be offered again.
    """
    try:
        prepared = ingestor.prepare_messages(messages)  # reads the store too
        try:
            return ingestor.commit(prepared)
        finally:
            ingestor.release(prepared)
    except StoreError:
        ingestor.forget_heads()  # heads may have moved for records that were not written
        raise
