"""From register words to the values and quality flags of one record. Pure.

Flags (docs/record-format.md) say what looks wrong; a value is never dropped
or changed for it: the verifier and the report decide what a flag means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from agent.plan import ReadPlan
from mrv_core.record import Value
from mrv_core.registers import DecodeError


@dataclass(frozen=True)
class Reading:
    values: dict[str, Value]
    quality: tuple[str, ...]


def decode_reading(plan: ReadPlan, words: Mapping[tuple[str, int], int]) -> Reading:
    """:func:`decode_blocks` of words by (function, address), as a meter that gave them sent them."""
    return decode_blocks(plan, plan.blocks(words))


def decode_blocks(plan: ReadPlan, blocks: Sequence[bytes]) -> Reading:
    """Decode every planned register from the bytes its plan's requests returned; a value the
    meter does not give (a non-finite float, a "not implemented" pattern or scale factor) is null
    and flagged, never dropped or fixed.

    The record keeps each value's words as they came, in hex (``raw``); a register with a
    scale-factor register gets its value's words followed by the scale factor's word
    (docs/record-format.md, section 5): the record alone re-decodes it."""
    for request, block in zip(plan.requests, blocks, strict=True):
        if len(block) != 2 * request.count:
            raise DecodeError(f"{request}: {len(block)} bytes for {request.count} words")
    values: dict[str, Value] = {}
    quality: list[str] = []
    for spec, slices, decode_wire, decode_text in plan.wire_decoding:
        if decode_wire is not None:  # the value's words only, as they came
            index, start, end = slices[0]
            data = blocks[index][start:end]
            raw = data.hex()
            value = decode_wire(data)
        else:
            raw = "".join(blocks[index][start:end].hex() for index, start, end in slices)
            value = decode_text(raw)
        if value is None:
            quality.append(f"invalid_value:{spec.quantity}")
        elif (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
            quality.append(f"out_of_range:{spec.quantity}")
        values[spec.quantity] = Value(value, spec.unit, raw)
    return Reading(values, tuple(quality))


FROZEN_READS = 10  # the same words this many reads in a row: the meter (or a gateway cache) is stuck


@dataclass
class QualityTracker:
    """What one device's earlier readings say about the next: counters that went back (rolled over,
    reset to zero, or just lower, as after a meter swap) and readings frozen word for word.

    Starts empty when the agent starts: the first reading after a restart is compared with nothing.
    """

    counters: dict[str, Decimal] = field(default_factory=dict)
    last_raw: tuple[str, ...] | None = None
    repeats: int = 0

    def check(self, plan: ReadPlan, reading: Reading) -> Reading:
        flags = list(reading.quality)
        for spec in plan.registers:
            value = reading.values[spec.quantity].value
            if not spec.counter or value is None:
                continue
            before = self.counters.get(spec.quantity)
            if before is not None and value < before:
                flags.append(f"{_counter_drop(before, value, spec.rollover)}:{spec.quantity}")
            self.counters[spec.quantity] = value
        raw = tuple(item.raw for item in reading.values.values())
        self.repeats = self.repeats + 1 if raw == self.last_raw else 0
        self.last_raw = raw
        if self.repeats >= FROZEN_READS - 1 and _has_instantaneous(plan):
            flags.append("frozen")
        return Reading(reading.values, tuple(flags))


def _counter_drop(before: Decimal, after: Decimal, rollover: Decimal | None) -> str:
    """Which way a cumulative counter went back, told apart where the numbers allow."""
    if rollover is not None and before >= rollover * Decimal("0.9") and after <= rollover * Decimal("0.1"):
        return "counter_rollover"
    if after <= before * Decimal("0.01"):
        return "counter_reset"  # to (nearly) zero: a reset, or a new meter
    return "counter_backwards"


def _has_instantaneous(plan: ReadPlan) -> bool:
    """Frozen means something only for meters that read values which move (power, voltage...): a
    counters-only read is legitimately identical all night."""
    return any(not spec.counter for spec in plan.registers)


@dataclass
class UnreadPolls:
    """The scheduled polls of one device that read nothing since its last record: what its next gap
    record attests (span, count, the last reason). Pure: the poller passes the times in."""

    start: datetime | None = None
    end: datetime | None = None
    polls: int = 0
    reason: str = ""

    def miss(self, moment: datetime, reason: str | None = None) -> None:
        """One poll read nothing (``reason`` None: skipped while backing off; the last reason stands)."""
        if self.start is None:
            self.start = moment
        self.end = moment
        self.polls += 1
        if reason is not None or not self.reason:
            self.reason = reason or "timeout"

    def due(self, moment: datetime, every_s: float) -> bool:
        """Whether a gap record is due while the device is still not read: one per ``every_s``."""
        return self.start is not None and (moment - self.start).total_seconds() >= every_s

    def clear(self) -> None:
        self.start = self.end = None
        self.polls = 0
        self.reason = ""
