"""Energy of a monitoring period from cumulative counter readings. Pure.

Rules (each one appears in the result with its effect):

- **Boundaries** come from readings, never from interpolation, chosen by the
  direction of the parameter: for a parameter that raises reference emissions
  (RE) the first reading at or after the period start and the last reading
  before the period end (the counted span lies inside the period, so the
  energy is never over-stated); for one that raises project emissions (PE) the
  last reading before the start and the first at or after the end (the span
  covers the period, so it is never under-stated).
- **Gaps**: where consecutive readings are not consecutive in sequence, the
  records in between are missing. For an RE parameter the counter increase
  across a gap is excluded (counts as zero); for a PE parameter it is kept.
- **Counter decrease** (reset, rollover or meter replacement): the negative
  step is never subtracted and the energy between the two readings is not
  counted; counting resumes from the reading after the fall, with a finding.
  (Rollover values and replacement records refine this in a later version.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, NamedTuple

from mrv_core.exact import EXACT, decimal_text
from mrv_core.units import convert

_ZERO = Decimal(0)

Direction = Literal["RE", "PE"]


class CounterReading(NamedTuple):
    """One counter reading (a tuple: verifiers make millions of them)."""

    time: str
    seq: int
    value: Decimal
    unit: str
    record_hash: str
    valid: bool = True  # taken within a valid calibration of its meter (or no calibration rule)

    def as_dict(self) -> dict[str, object]:
        return {
            "time": self.time,
            "seq": self.seq,
            "value": decimal_text(self.value),
            "unit": self.unit,
            "record_hash": self.record_hash,
        }


@dataclass(frozen=True)
class Adjustment:
    rule: str
    detail: str
    effect: Decimal  # in the result unit; negative lowers the value
    seq_from: int | None = None
    seq_to: int | None = None
    time_from: str = ""
    time_to: str = ""

    def as_dict(self, unit: str) -> dict[str, object]:
        out: dict[str, object] = {
            "rule": self.rule,
            "detail": self.detail,
            "effect": decimal_text(self.effect),
            "unit": unit,
        }
        for name in ("seq_from", "seq_to", "time_from", "time_to"):
            value = getattr(self, name)
            if value not in (None, ""):
                out[name] = value
        return out


@dataclass(frozen=True)
class CounterEnergy:
    value: Decimal
    unit: str
    start: CounterReading | None
    end: CounterReading | None
    readings: int
    adjustments: tuple[Adjustment, ...] = field(default=())
    missing_records: int = 0
    unread_polls: int = 0  # polls the device's signed gap records account for


@dataclass(frozen=True)
class Replacement:
    """A meter replaced at ``time`` (UTC record-time text): the old meter's last and the new meter's
    first reading, from the replacement protocol, bridge the counter's fall."""

    time: str
    old_final: Decimal
    new_initial: Decimal
    unit: str
    note: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "time": self.time,
            "old_final": decimal_text(self.old_final),
            "new_initial": decimal_text(self.new_initial),
            "unit": self.unit,
            "note": self.note,
        }


ROLLOVER_ZONE = Decimal("0.1")  # a fall from the top tenth of the range to its bottom tenth


@dataclass
class CounterRun:
    """Energy from consecutive counter readings, added one at a time (in sequence order)."""

    unit: str
    direction: Direction
    total: Decimal = Decimal(0)
    first: CounterReading | None = None
    last: CounterReading | None = None
    count: int = 0
    missing: int = 0
    adjustments: list[Adjustment] = field(default_factory=list)
    # First reading of the open segment: a run of plain steps (no gap, no fall, one unit) whose
    # energy is its last reading minus its first. Summing the steps one by one gives the same exact
    # number at the cost of two Decimal operations per reading; verifiers feed millions.
    segment: CounterReading | None = None
    # Signed gap records seen (seq -> what they say): between two readings they are not missing
    # records but the device's own account of polls that read nothing.
    unread: dict[int, str] = field(default_factory=dict)
    unread_polls: int = 0
    # Calibration: energy between readings not both taken within a valid calibration is multiplied
    # by this (1 - MPE for RE, 1 + MPE for PE; None: no calibration rule). A segment is a run of
    # plain steps of one validity (None until its first step).
    uncalibrated: Decimal | None = None
    calibration_note: str = ""
    segment_valid: bool | None = None
    # Where a fall of the counter is not lost energy: the meter's rollover value (value, unit) and
    # documented meter replacements.
    rollover: tuple[Decimal, str] | None = None
    replacements: tuple[Replacement, ...] = ()

    def note_unread(self, seq: int, account: str, polls: int) -> None:
        """A gap record of the device: ``polls`` polls read nothing (``account`` says when and why)."""
        self.unread[seq] = account
        self.unread_polls += polls

    def _why_absent(self, before: int, after: int, gap: int) -> str:
        """Between readings ``before`` and ``after``: records missing, signed gaps, or both."""
        accounts = [self.unread.pop(seq) for seq in range(before + 1, after) if seq in self.unread]
        missing = gap - len(accounts)
        self.missing += missing
        parts = [f"{missing} record(s) missing"] if missing else []
        if accounts:
            parts.append("device not read: " + "; ".join(accounts))
        return "; ".join(parts)

    def add(self, after: CounterReading) -> None:
        before, self.last = self.last, after
        self.count += 1
        if before is None:
            self.first = self.segment = after
            self.segment_valid = None
            return
        valid = before.valid and after.valid
        if after.value >= before.value and after.seq <= before.seq + 1 and after.unit == before.unit:
            if self.segment_valid is None or self.segment_valid == valid:
                self.segment_valid = valid
                return  # a plain step: the open segment grows
            # the meter's calibration starts or ends here: the segment closes, a new one starts
            self._close_segment(before)
            self.segment, self.segment_valid = before, valid
            return
        self._close_segment(before)
        self.segment, self.segment_valid = after, None
        gap = after.seq - before.seq - 1
        step = convert(EXACT.subtract(after.value, before.value), after.unit, self.unit)
        if step < 0:
            bridged = None if gap > 0 and self.direction == "RE" else self._bridge(before, after)
            if bridged is not None:
                rule, energy, detail = bridged
                counted = energy if valid else self._uncalibrated(energy, before, after)
                self.adjustments.append(
                    Adjustment(rule, detail, counted, before.seq, after.seq, before.time, after.time)
                )
                self.total = EXACT.add(self.total, counted)
                return
            self.adjustments.append(
                Adjustment(
                    "counter_decrease",
                    f"counter fell by {decimal_text(-step)} {self.unit} (reset, rollover or replacement); "
                    "the fall is not subtracted",
                    Decimal(0),
                    before.seq,
                    after.seq,
                    before.time,
                    after.time,
                )
            )
            return
        if gap > 0:
            why = self._why_absent(before.seq, after.seq, gap)
            if self.direction == "RE":
                self.adjustments.append(
                    Adjustment(
                        "gap_excluded",
                        f"{why}; the increase across the gap counts as zero",
                        -step,
                        before.seq + 1,
                        after.seq - 1,
                        before.time,
                        after.time,
                    )
                )
                return
            self.adjustments.append(
                Adjustment(
                    "gap_included",
                    f"{why}; the increase across the gap is kept (PE, conservative)",
                    Decimal(0),
                    before.seq + 1,
                    after.seq - 1,
                    before.time,
                    after.time,
                )
            )
        self.total = EXACT.add(self.total, step if valid else self._uncalibrated(step, before, after))

    def _bridge(self, before: CounterReading, after: CounterReading) -> tuple[str, Decimal, str] | None:
        """The energy across a fall of the counter that a documented replacement or the meter's
        rollover explains: (rule, energy in the result unit, detail); None if nothing does."""
        for replacement in self.replacements:
            if before.time <= replacement.time <= after.time:
                old_part = EXACT.subtract(
                    convert(replacement.old_final, replacement.unit, before.unit), before.value
                )
                new_part = EXACT.subtract(
                    after.value, convert(replacement.new_initial, replacement.unit, after.unit)
                )
                if old_part < 0 or new_part < 0:
                    return None  # the protocol's readings do not fit the meter's: the fall rule stands
                energy = EXACT.add(
                    convert(old_part, before.unit, self.unit), convert(new_part, after.unit, self.unit)
                )
                return (
                    "meter_replacement",
                    energy,
                    f"meter replaced at {replacement.time} ({replacement.note}): old meter's last "
                    f"{decimal_text(replacement.old_final)} {replacement.unit}, new meter's first "
                    f"{decimal_text(replacement.new_initial)} {replacement.unit}; "
                    f"{decimal_text(energy)} {self.unit} counted across it",
                )
        if self.rollover is not None and before.unit == after.unit:
            top = convert(self.rollover[0], self.rollover[1], before.unit)
            zone = EXACT.multiply(top, ROLLOVER_ZONE)
            if before.value >= EXACT.subtract(top, zone) and 0 <= after.value <= zone and before.value <= top:
                energy = convert(
                    EXACT.add(EXACT.subtract(top, before.value), after.value), before.unit, self.unit
                )
                return (
                    "counter_rollover",
                    energy,
                    f"counter rolled over at {decimal_text(self.rollover[0])} {self.rollover[1]}; "
                    f"{decimal_text(energy)} {self.unit} counted across it",
                )
        return None

    def _close_segment(self, end: CounterReading) -> None:
        energy = self._segment_energy(end)
        if self.segment_valid is False and self.segment is not None:
            energy = self._uncalibrated(energy, self.segment, end)
        self.total = EXACT.add(self.total, energy)

    def _uncalibrated(self, energy: Decimal, start: CounterReading, end: CounterReading) -> Decimal:
        """Energy measured without a valid calibration, corrected by the maximum permissible error
        in the conservative direction; the correction is recorded with its effect."""
        if self.uncalibrated is None or not energy:
            return energy
        corrected = EXACT.multiply(energy, self.uncalibrated)
        self.adjustments.append(
            Adjustment(
                "calibration_correction",
                f"readings outside a valid calibration of the meter ({self.calibration_note}): "
                f"{decimal_text(energy)} {self.unit} x {decimal_text(self.uncalibrated)}",
                EXACT.subtract(corrected, energy),
                start.seq,
                end.seq,
                start.time,
                end.time,
            )
        )
        return corrected

    def add_run(
        self,
        times: Sequence[str],
        seqs: list[int],
        values: Sequence[Decimal],
        unit: str,
        hashes: Sequence[str],
        *,
        ascending: bool | None = None,
        valid: bool = True,
    ) -> None:
        """Consecutive readings of one device (seq order, one unit): the same as add() for each.

        When every step is plain (no gap, no fall, same unit as the last reading, one calibration
        validity: ``valid`` is every reading's), only the last reading is kept: the open segment
        grows by the whole run. ``ascending``: whether ``values`` never fall, when the caller knows
        it (verifiers know it from the raw floats and make only the Decimals they need); None to
        check here.
        """
        last = self.last
        plain = (
            bool(seqs)
            and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            and (list(values) == sorted(values) if ascending is None else ascending)
            and (last is None or (values[0] >= last.value and seqs[0] <= last.seq + 1 and unit == last.unit))
            and (last is None or (last.valid == valid and self.segment_valid in (None, valid)))
        )
        if not plain:
            for time, seq, value, record_hash in zip(times, seqs, values, hashes, strict=True):
                self.add(CounterReading(time, seq, value, unit, record_hash, valid))
            return
        if last is None:
            self.first = self.segment = CounterReading(times[0], seqs[0], values[0], unit, hashes[0], valid)
            self.segment_valid = None
        if last is not None or len(seqs) > 1:
            self.segment_valid = valid
        self.last = CounterReading(times[-1], seqs[-1], values[-1], unit, hashes[-1], valid)
        self.count += len(seqs)

    def add_span(self, first: CounterReading, last: CounterReading, count: int) -> None:
        """``count`` consecutive readings from ``first`` to ``last`` (seq order) that are plain among
        themselves (no gap, no fall, one unit, one calibration validity): the same as add() for each.
        A store's hourly counter summary is such a span (mrv_core.counter_hours)."""
        self.add(first)  # whatever lies between the last reading and this one
        if count < 2:
            return
        # add() for the second reading: a plain step, which closes the open segment only where the
        # calibration validity changes here; the steps after it are plain in one segment.
        valid = first.valid and last.valid
        if self.segment_valid is not None and self.segment_valid != valid:
            self._close_segment(first)
            self.segment = first
        self.segment_valid = valid
        self.last = last
        self.count += count - 1

    def _segment_energy(self, end: CounterReading) -> Decimal:
        start = self.segment
        if start is None:
            return _ZERO
        return convert(EXACT.subtract(end.value, start.value), end.unit, self.unit)

    def result(self) -> CounterEnergy:
        if self.last is not None:
            self._close_segment(self.last)  # the run ends here: nothing is added after a result
            self.segment = self.last
            self.segment_valid = None
        adjustments = list(self.adjustments)
        if self.count < 2:
            adjustments.append(
                Adjustment(
                    "insufficient_readings", f"{self.count} reading(s): no energy can be derived", Decimal(0)
                )
            )
        return CounterEnergy(
            self.total if self.count >= 2 else Decimal(0),
            self.unit,
            self.first,
            self.last,
            self.count,
            tuple(adjustments),
            self.missing,
            self.unread_polls,
        )


def counter_energy(readings: Sequence[CounterReading], unit: str, direction: Direction) -> CounterEnergy:
    """Energy between the first and last of ``readings`` (already chosen by the boundary rule).

    ``readings`` are in sequence order and all belong to one device chain.
    """
    run = CounterRun(unit, direction)
    for reading in readings:
        run.add(reading)
    return run.result()
