"""Hourly summaries of counter readings: what a store keeps at ingest so that a report over a
monitoring year reads about 9,000 summaries per monitoring point instead of 525,600 records.

A summary is an index over stored records, not evidence: the records stay the
evidence and a verifier recomputes from them alone. The report uses a summary
only where feeding it is the same as feeding the hour's records one by one
(:meth:`mrv_core.counters.CounterRun.add_span`): every record of the device in
that hour is a reading with the quantity's value, in one unit, seqs
consecutive, values never falling. Anything else (a gap record, a missing
value, a fall, a duplicate or late delivery that does not continue the hour)
marks the summary unclean, and the report reads that hour's records. Pure: no
store, no clock.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, Protocol

from mrv_core.record import Record, value_columns
from mrv_core.timefmt import time_ms
from mrv_core.units import QUANTITIES

HOUR_MS = 3_600_000
ALL = ""  # the quantity of a device's summary of its records of any kind in the hour

# Quantities summarised: the cumulative counters of the shared vocabulary.
COUNTERS = frozenset(name for name, (_, counter) in QUANTITIES.items() if counter)


@dataclass(frozen=True, slots=True)
class HourSpan:
    """One quantity of one device over one UTC hour (``quantity`` ALL: its records of any kind).

    ``clean``: the hour's records are consecutive in seq and, for a quantity, each holds its value
    in ``unit`` and none falls; only then do first and last say all there is to say."""

    gateway: str
    device: str
    quantity: str
    hour_ms: int
    count: int
    clean: bool
    first_seq: int
    last_seq: int
    first_time: str = ""
    last_time: str = ""
    first_value: str = ""
    last_value: str = ""
    first_hash: str = ""
    last_hash: str = ""
    unit: str = ""

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.gateway, self.device, self.quantity, self.hour_ms)

    def row(self) -> tuple[Any, ...]:
        """The fields in order (a store's row)."""
        return _FIELDS(self)


_FIELDS = operator.attrgetter(*(field.name for field in fields(HourSpan)))


class CounterRow(NamedTuple):
    """One stored record as a summary sees it, for callers that have no Record (benchmarks, tests):
    counters maps quantity -> (unit, decimal text) for the cumulative counters that have a value
    (a gap record has none)."""

    gateway: str
    device: str
    seq: int
    time_ms: int
    time: str
    hash: str
    counters: Mapping[str, tuple[str, str]]


class _Row(Protocol):
    """What a summary keeps of a record besides its counters (a Record or a CounterRow)."""

    @property
    def seq(self) -> int: ...
    @property
    def time(self) -> str: ...
    @property
    def hash(self) -> str: ...


# A column: each record's entry of one quantity, (..., unit, decimal text), None where it has none.
Column = Sequence[tuple[str, ...] | None]
Spans = dict[tuple[str, str, str, int], HourSpan]


def summarize_records(records: Iterable[Record]) -> Spans:
    """The summaries of a batch of stored records (any order, any devices), one per device, hour and
    quantity, plus the device's ALL summary per hour. Ingest runs this on every record: records are
    grouped by their UTC hour's text and a group's counters read by one regex
    (:func:`mrv_core.record.value_columns`)."""
    groups: dict[tuple[str, str, str], list[Record]] = {}
    for record in records:
        groups.setdefault((record.gateway, record.device, record.time[:13]), []).append(record)
    out: Spans = {}
    for (gateway, device, hour_text), group in groups.items():
        group.sort(key=_SEQ)
        columns = value_columns([record.values for record in group], COUNTERS)
        out.update(_hour_spans(gateway, device, time_ms(hour_text + ":00:00.000Z"), group, columns))
    return out


def summarize(rows: Iterable[CounterRow]) -> Spans:
    """:func:`summarize_records` of rows made without records."""
    groups: dict[tuple[str, str, int], list[CounterRow]] = {}
    for row in rows:
        groups.setdefault((row.gateway, row.device, row.time_ms - row.time_ms % HOUR_MS), []).append(row)
    out: Spans = {}
    for (gateway, device, hour), group in groups.items():
        group.sort(key=_SEQ)
        counters = [row.counters for row in group]
        columns = {name: [c.get(name) for c in counters] for name in sorted(set().union(*counters))}
        out.update(_hour_spans(gateway, device, hour, group, columns))
    return out


_SEQ = operator.attrgetter("seq")
_UNIT, _TEXT = operator.itemgetter(-2), operator.itemgetter(-1)  # of a column's entry


def _hour_spans(
    gateway: str, device: str, hour: int, group: Sequence[_Row], columns: Mapping[str, Column]
) -> Iterator[tuple[tuple[str, str, str, int], HourSpan]]:
    """A device's summaries of one hour: ``group`` its records by seq, ``columns`` their counters."""
    seqs = list(map(_SEQ, group))
    consecutive = seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    every = HourSpan(gateway, device, ALL, hour, len(group), consecutive, seqs[0], seqs[-1])
    yield every.key, every
    for quantity, column in columns.items():
        span = _span(every, quantity, group, column)
        yield span.key, span


def _span(every: HourSpan, quantity: str, group: Sequence[_Row], column: Column) -> HourSpan:
    """``quantity``'s summary of a device's records of one hour (``every``: their ALL summary)."""
    if None in column:
        group = [row for row, entry in zip(group, column, strict=True) if entry is not None]
        present = [entry for entry in column if entry is not None]
        clean = False
    else:
        present = column  # type: ignore[assignment]
        clean = every.clean and len(set(map(_UNIT, present))) == 1 and _never_falls(list(map(_TEXT, present)))
    first, last = group[0], group[-1]
    return HourSpan(
        every.gateway,
        every.device,
        quantity,
        every.hour_ms,
        len(group),
        clean,
        first.seq,
        last.seq,
        first.time,
        last.time,
        _TEXT(present[0]),
        _TEXT(present[-1]),
        first.hash,
        last.hash,
        _UNIT(present[0]),
    )


def _never_falls(texts: list[str]) -> bool:
    """Whether these decimal texts never fall, in order. Floats order decimals as they are ordered
    or call them equal (beyond 15 significant digits), so falling floats are a falling counter;
    only equal floats of different texts need Decimals."""
    try:
        floats = list(map(float, texts))
    except ValueError:
        return False
    if not all(map(math.isfinite, floats)) or floats != sorted(floats):
        return False
    if len(set(floats)) == len(set(texts)):
        return True  # equal floats are equal texts: the order above is the decimals' order
    values = _decimals(texts)
    return values is not None and all(a <= b for a, b in itertools.pairwise(values))


def _decimals(texts: Sequence[str]) -> list[Decimal] | None:
    try:
        values = [Decimal(text) for text in texts]
    except InvalidOperation:
        return None
    return values if all(value.is_finite() for value in values) else None


def merge(old: HourSpan | None, new: HourSpan) -> HourSpan:
    """A stored summary and a later batch's summary of the same key: still clean only if the new
    records continue the old ones exactly (next seq, same unit, no fall); a repeat delivery, a late
    record or a gap filled afterwards leaves it unclean, and the report then reads the records."""
    if old is None:
        return new
    follows = old.clean and new.clean and new.first_seq == old.last_seq + 1
    if follows and old.quantity != ALL:
        pair = _decimals([old.last_value, new.first_value])
        follows = old.unit == new.unit and pair is not None and pair[0] <= pair[1]
    if follows:
        return replace(
            old,
            count=old.count + new.count,
            last_seq=new.last_seq,
            last_time=new.last_time,
            last_value=new.last_value,
            last_hash=new.last_hash,
        )
    return replace(
        old,
        count=old.count + new.count,
        clean=False,
        first_seq=min(old.first_seq, new.first_seq),
        last_seq=max(old.last_seq, new.last_seq),
    )


def merged_with_stored(
    spans: Mapping[tuple[str, str, str, int], HourSpan],
    known: Mapping[tuple[str, str, str, int], HourSpan],
    read: Callable[[str, str, int, int], Iterable[HourSpan]],
) -> list[HourSpan]:
    """A batch's summaries merged into the stored ones: ``known`` holds those the caller has at
    hand; for the others ``read(gateway, device, first_hour_ms, last_hour_ms)`` gives a device's
    stored summaries of those hours (inclusive), one read per device."""
    hours: dict[tuple[str, str], list[int]] = {}
    for key in spans:
        if key not in known:
            hours.setdefault((key[0], key[1]), []).append(key[3])
    stored = {
        span.key: span
        for (gateway, device), device_hours in hours.items()
        for span in read(gateway, device, min(device_hours), max(device_hours))
    }
    return [merge(known.get(key) or stored.get(key), span) for key, span in spans.items()]
