"""The monitoring-period calculation, from signed records to ER. Pure.

It reads records through :class:`RecordSource`, which the collector's stores
implement and an evidence export can implement too, so the collector and a
verifier run exactly the same code on the same bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from mrv_core import FORMAT_VERSION
from mrv_core.counter_hours import ALL, HOUR_MS, HourSpan
from mrv_core.counters import CounterEnergy, CounterReading, CounterRun, Direction, Replacement
from mrv_core.exact import EXACT, decimal_text
from mrv_core.methodologies import Methodology, registry
from mrv_core.record import Gap, Record, RecordError, parse_record, value_of
from mrv_core.timefmt import format_ms, format_time, time_ms
from mrv_core.units import convert

REPORT_SCHEMA = 1


class RecordSource(Protocol):
    """Signed record bytes of one device chain, by time (ms since the epoch)."""

    def records_between(self, gateway: str, device: str, start_ms: int, end_ms: int) -> Sequence[Any]:
        """Objects with a ``data`` attribute (record bytes), start <= time < end, by time."""
        ...

    def record_before(self, gateway: str, device: str, at_ms: int) -> Any | None: ...

    def record_at_or_after(self, gateway: str, device: str, at_ms: int) -> Any | None: ...


@dataclass(frozen=True)
class PointSpec:
    no: int
    parameter: str
    gateway: str
    device: str
    quantity: str
    description: str = ""
    # Calibration rule (off when mpe is None): readings outside every [from, until) window (UTC
    # record-time text) are corrected by the maximum permissible error ``mpe`` (a fraction).
    mpe: Decimal | None = None
    calibrated: tuple[tuple[str, str], ...] = ()
    # Falls of the counter that are not lost energy: the meter's rollover value, and documented
    # meter replacements (mrv_core.counters).
    rollover: tuple[Decimal, str] | None = None
    replacements: tuple[Replacement, ...] = ()

    def counter_dict(self) -> dict[str, Any]:
        """Rollover and replacements in the project's plain form (only those given)."""
        out: dict[str, Any] = {}
        if self.rollover is not None:
            out["rollover"] = {"value": decimal_text(self.rollover[0]), "unit": self.rollover[1]}
        if self.replacements:
            out["replacements"] = [r.as_dict() for r in self.replacements]
        return out

    def calibration_dict(self) -> dict[str, Any] | None:
        if self.mpe is None:
            return None
        return {"mpe": decimal_text(self.mpe), "valid": [list(window) for window in self.calibrated]}


@dataclass(frozen=True)
class FixedSpec:
    value: Decimal
    unit: str
    source: str


@dataclass(frozen=True)
class ProjectSpec:
    id: str
    name: str
    timezone: str
    methodology_id: str
    methodology_version: str
    methodology_reference: str
    points: tuple[PointSpec, ...]
    fixed: Mapping[str, FixedSpec]


@dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date
    timezone: str

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(0), ZoneInfo(self.timezone))

    @property
    def end(self) -> datetime:
        """Exclusive end: midnight after the last day, local time."""
        return datetime.combine(self.last_day + timedelta(days=1), time(0), ZoneInfo(self.timezone))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class PointAccumulator:
    """One monitoring point: picks readings by the boundary rule and runs the counter over them.

    Records of the point's device are fed in sequence order; records of other
    devices never reach it. The boundary rule of :mod:`mrv_core.counters`:
    readings inside [start, end) always; for a parameter raising PE also the
    last reading before the start and the first at or after the end. The
    collector feeds the records around and inside the period from its store,
    a verifier feeds every record of a bundle as it streams: same code.
    """

    point: PointSpec
    direction: Direction
    unit: str
    start_ms: int
    end_ms: int
    run: CounterRun = field(init=False)
    start_text: str = field(init=False, default="")
    end_text: str = field(init=False, default="")
    before: CounterReading | None = None
    started: bool = False
    after_taken: bool = False
    findings: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.run = CounterRun(self.unit, self.direction)
        self.run.rollover = self.point.rollover
        self.run.replacements = self.point.replacements
        mpe = self.point.mpe
        if mpe is not None:  # conservative: RE counts less, PE more, where calibration lapsed
            self.run.uncalibrated = EXACT.subtract(1, mpe) if self.direction == "RE" else EXACT.add(1, mpe)
            self.run.calibration_note = (
                f"maximum permissible error {decimal_text(EXACT.multiply(mpe, 100))} %"
            )
        # Record times are fixed-width UTC text, so comparing the text orders them: no parsing per record.
        self.start_text = format_ms(self.start_ms)
        self.end_text = format_ms(self.end_ms)

    def _start(self) -> None:
        if not self.started:
            self.started = True
            if self.direction == "PE" and self.before is not None:
                self.run.add(self.before)

    def feed(
        self,
        *,
        time: str,
        seq: int,
        value: Decimal | None,
        unit: str,
        record_hash: str,
        gap: Gap | None = None,
    ) -> None:
        """One record of the point's device; ``time`` is the record's own text (YYYY-MM-DDTHH:MM:SS.mmmZ).
        A gap record (``gap``) is the device's signed account of polls that read nothing: it is no
        missing record, and the readings around it are treated like those around missing ones."""
        if gap is not None:
            self._unread(time, seq, gap)
            return
        reading = (
            None if value is None else CounterReading(time, seq, value, unit, record_hash, self._valid(time))
        )
        if time < self.start_text:
            if self.direction == "PE" and not self.started:
                self.before = reading  # the last one before the start; a reading without value resets it
            return
        if time < self.end_text:
            if reading is None:
                self.findings.append(
                    {
                        "kind": "value_missing",
                        "point": self.point.no,
                        "seq": seq,
                        "detail": f"record has no valid {self.point.quantity}",
                    }
                )
                return
            self._start()
            self.run.add(reading)
            return
        if self.direction == "PE" and not self.after_taken:
            self.after_taken = True
            if reading is not None:
                self._start()
                self.run.add(reading)

    def feed_run(
        self,
        times: Sequence[str],
        seqs: list[int],
        values: Sequence[Decimal],
        unit: str,
        hashes: Sequence[str],
        *,
        ascending: bool | None = None,
    ) -> None:
        """Consecutive valued readings of the device, in seq order: the same as feed() for each
        (``ascending`` as in CounterRun.add_run)."""
        if times and min(times) >= self.start_text and max(times) < self.end_text:
            valid = self._valid_run(times)
            if valid is not None:
                self._start()  # all inside the period and of one calibration: straight into the run
                self.run.add_run(times, seqs, values, unit, hashes, ascending=ascending, valid=valid)
                return
        for moment, seq, value, record_hash in zip(times, seqs, values, hashes, strict=True):
            self.feed(time=moment, seq=seq, value=value, unit=unit, record_hash=record_hash)

    def feed_span(self, span: HourSpan) -> bool:
        """A clean hourly summary of the device's readings inside the period (mrv_core.counter_hours),
        the same as feeding them one by one; False, with nothing fed, where their calibration
        validity changes inside it (then its records are fed)."""
        valid = self._valid(span.first_time)
        if self.point.mpe is not None and any(
            span.first_time < moment <= span.last_time
            for window in self.point.calibrated
            for moment in window
        ):
            return False
        self._start()
        self.run.add_span(
            CounterReading(
                span.first_time, span.first_seq, Decimal(span.first_value), span.unit, span.first_hash, valid
            ),
            CounterReading(
                span.last_time, span.last_seq, Decimal(span.last_value), span.unit, span.last_hash, valid
            ),
            span.count,
        )
        return True

    def _valid(self, time: str) -> bool:
        """Whether a reading at ``time`` was taken within a valid calibration of the meter."""
        if self.point.mpe is None:
            return True
        return any(start <= time < until for start, until in self.point.calibrated)

    def _valid_run(self, times: Sequence[str]) -> bool | None:
        """The one calibration validity of readings at ``times``, None if it changes among them."""
        if self.point.mpe is None:
            return True
        first, last = min(times), max(times)
        for start, until in self.point.calibrated:
            if start <= first and last < until:
                return True
        validity = {self._valid(time) for time in times}
        return validity.pop() if len(validity) == 1 else None

    def _unread(self, time: str, seq: int, gap: Gap) -> None:
        account = f"{gap.polls} poll(s) from {gap.start} to {gap.end} ({gap.reason}, gap record seq {seq})"
        in_period = gap.end >= self.start_text and gap.start < self.end_text
        self.run.note_unread(seq, account, gap.polls if in_period else 0)
        if in_period:
            self.findings.append(
                {
                    "kind": "device_not_read",
                    "point": self.point.no,
                    "seq": seq,
                    "detail": f"{account}: signed by the gateway",
                }
            )

    def finish(self) -> CounterEnergy:
        if self.direction == "PE":
            self._start()
            if self.before is None or not self.after_taken:
                self.findings.append(
                    {
                        "kind": "boundary_not_covered",
                        "point": self.point.no,
                        "detail": "no reading "
                        + ("before the start" if self.before is None else "after the end")
                        + "; the inside reading is used, which may understate this PE parameter",
                    }
                )
        return self.run.result()


def _accumulators(project: ProjectSpec, period: Period) -> tuple[Methodology, list[PointAccumulator]]:
    methodology = registry()[project.methodology_id]
    start, end = _ms(period.start), _ms(period.end)
    accumulators = []
    for parameter in methodology.parameters:
        if parameter.kind != "monitored":
            continue
        for point in (p for p in project.points if p.parameter == parameter.name):
            accumulators.append(PointAccumulator(point, parameter.raises, parameter.unit, start, end))
    return methodology, accumulators


def _parsed(accumulator: PointAccumulator, items: Sequence[Any]) -> list[Record]:
    records = []
    for item in items:
        try:
            # Not strict: a store holds only records whose canonical form was checked at ingest, and
            # re-encoding each again tripled the time of a project year's report (a verifier
            # recomputes the report from the bundle on its own anyway). Records in the agent's usual
            # layout are read by one regex either way.
            records.append(parse_record(item.data, strict=False))
        except RecordError as exc:
            accumulator.findings.append(
                {"kind": "record_unreadable", "point": accumulator.point.no, "detail": str(exc)}
            )
    return sorted(records, key=lambda r: r.seq)


def _feed_record(accumulator: PointAccumulator, record: Record) -> None:
    value = value_of(record.values, accumulator.point.quantity)
    accumulator.feed(
        time=record.time,
        seq=record.seq,
        value=None if value is None else value.value,
        unit=value.unit if value else "",
        record_hash=record.hash,
        gap=record.gap,
    )


def _point_result(point: PointSpec, energy: CounterEnergy) -> dict[str, Any]:
    return {
        "no": point.no,
        "gateway": point.gateway,
        "device": point.device,
        "quantity": point.quantity,
        "description": point.description,
        "value": decimal_text(energy.value),
        "unit": energy.unit,
        "readings": energy.readings,
        "start": energy.start.as_dict() if energy.start else None,
        "end": energy.end.as_dict() if energy.end else None,
        "missing_records": energy.missing_records,
        **({"calibration": cal} if (cal := point.calibration_dict()) is not None else {}),
        # only where gap records account for polls (reports from before gap records stay identical)
        **({"unread_polls": energy.unread_polls} if energy.unread_polls else {}),
        "gaps": [a.as_dict(energy.unit) for a in energy.adjustments if a.rule.startswith("gap")],
        "corrections": [a.as_dict(energy.unit) for a in energy.adjustments if not a.rule.startswith("gap")],
    }


def _assemble(
    project: ProjectSpec, period: Period, methodology: Methodology, accumulators: list[PointAccumulator]
) -> dict[str, Any]:
    findings: list[dict[str, Any]] = []
    values: dict[str, Decimal] = {}
    monitored: dict[str, Any] = {}
    covered_points = 0
    for parameter in methodology.parameters:
        if parameter.kind != "monitored":
            continue
        own = [a for a in accumulators if a.point.parameter == parameter.name]
        if not own:
            continue
        total = Decimal(0)
        results = []
        for accumulator in own:
            energy = accumulator.finish()
            covered_points += 1 if energy.readings >= 2 else 0
            total = EXACT.add(total, energy.value)
            results.append(_point_result(accumulator.point, energy))
            findings.extend(accumulator.findings)
            findings.extend(
                {
                    "kind": a.rule,
                    "point": accumulator.point.no,
                    "detail": a.detail,
                    "effect": decimal_text(a.effect),
                    "unit": parameter.unit,
                }
                for a in energy.adjustments
            )
        values[parameter.name] = total
        monitored[parameter.name] = {
            "symbol": parameter.symbol,
            "value": decimal_text(total),
            "unit": parameter.unit,
            "raises": parameter.raises,
            "description": parameter.description,
            "points": results,
        }
    fixed: dict[str, Any] = {}
    for parameter in methodology.parameters:
        if parameter.kind != "fixed":
            continue
        given = project.fixed[parameter.name]
        values[parameter.name] = convert(given.value, given.unit, parameter.unit)
        fixed[parameter.name] = {
            "symbol": parameter.symbol,
            "value": decimal_text(values[parameter.name]),
            "unit": parameter.unit,
            "source": given.source,
        }
    emissions = methodology.calculate(values)
    return {
        "schema": REPORT_SCHEMA,
        "record_format": FORMAT_VERSION,
        "project": {"id": project.id, "name": project.name, "timezone": project.timezone},
        "methodology": {
            "id": methodology.id,
            "title": methodology.title,
            "version": project.methodology_version,
            "reference": project.methodology_reference,
            "equations": list(methodology.equations),
        },
        "period": {
            "from": period.first_day.isoformat(),
            "to": period.last_day.isoformat(),
            "start_utc": format_time(period.start),
            "end_utc": format_time(period.end),
        },
        "monitored": monitored,
        "fixed": fixed,
        "reference_emissions_tco2": decimal_text(emissions.reference_tco2),
        "project_emissions_tco2": decimal_text(emissions.project_tco2),
        "emission_reductions_unrounded_tco2": decimal_text(emissions.reductions_unrounded_tco2),
        "emission_reductions_tco2": emissions.reductions_tco2,
        "rounding": "ER_p rounded down to whole tCO2; all intermediate values exact",
        "completeness": {
            "points_with_data": covered_points,
            "points": len(accumulators),
            "missing_records": sum(p["missing_records"] for m in monitored.values() for p in m["points"]),
            **(
                {"unread_polls": unread}
                if (unread := sum(p.get("unread_polls", 0) for m in monitored.values() for p in m["points"]))
                else {}
            ),
        },
        "findings": findings,
    }


def compute_report(project: ProjectSpec, period: Period, source: RecordSource) -> dict[str, Any]:
    """The monitoring report from a record source (a store): the records around and inside the period."""
    methodology, accumulators = _accumulators(project, period)
    for index, streamed in enumerate(accumulators):
        if not _feed_by_windows(streamed, source):
            # The device's sequence order differs from its time order across windows (its clock went
            # back): start this point again with all its records in memory, sorted by sequence.
            accumulators[index] = _fed_in_memory(streamed, source)
    return _assemble(project, period, methodology, accumulators)


REPORT_WINDOW_MS = 86_400_000  # one day of a device's records in memory at a time
SUMMARY_WINDOW_MS = 32 * REPORT_WINDOW_MS  # hourly summaries of a point asked for at a time (1,536 rows)


def _fed_in_memory(spent: PointAccumulator, source: RecordSource) -> PointAccumulator:
    """A fresh accumulator for the same point, fed the whole period sorted by sequence."""
    accumulator = PointAccumulator(spent.point, spent.direction, spent.unit, spent.start_ms, spent.end_ms)
    point = accumulator.point
    before, after = _boundary_records(accumulator, source)
    raw = [
        *([before] if before is not None else []),
        *source.records_between(point.gateway, point.device, accumulator.start_ms, accumulator.end_ms),
        *([after] if after is not None else []),
    ]
    for record in _parsed(accumulator, raw):
        _feed_record(accumulator, record)
    return accumulator


def _boundary_records(accumulator: PointAccumulator, source: RecordSource) -> tuple[Any | None, Any | None]:
    """A PE parameter also reads the last record before the period and the first at or after its end."""
    if accumulator.direction != "PE":
        return None, None
    point = accumulator.point
    return (
        source.record_before(point.gateway, point.device, accumulator.start_ms),
        source.record_at_or_after(point.gateway, point.device, accumulator.end_ms),
    )


def _feed_by_windows(accumulator: PointAccumulator, source: RecordSource) -> bool:
    """Feed a point a day of records at a time, so that a project year never sits in memory; where
    the store keeps clean hourly counter summaries (mrv_core.counter_hours), an hour is fed as its
    summary instead of its records.

    Each window is sorted by sequence. Returns False, having fed part of the
    records, when a record's sequence is not above the last one fed: time
    order and sequence order disagree across windows, and only a sort of the
    whole period gives sequence order (the caller starts the point again).
    """
    point = accumulator.point
    before, after = _boundary_records(accumulator, source)
    chunks = itertools.chain(
        [[before]] if before is not None else [],
        _windows(accumulator, source),
        [[after]] if after is not None else [],
    )
    last_seq = 0
    for chunk in chunks:
        if isinstance(chunk, HourSpan):
            if chunk.first_seq <= last_seq:
                return False
            if accumulator.feed_span(chunk):
                last_seq = chunk.last_seq
                continue
            hour = chunk.hour_ms  # its calibration changes inside: its records instead
            items = source.records_between(point.gateway, point.device, hour, hour + HOUR_MS)
        else:
            items = chunk
        records = _parsed(accumulator, items)
        if not records:
            continue
        if records[0].seq <= last_seq:
            return False
        if not _feed_as_run(accumulator, records):
            for record in records:
                _feed_record(accumulator, record)
        last_seq = records[-1].seq
    return True


def _windows(accumulator: PointAccumulator, source: RecordSource) -> Iterator[Sequence[Any] | HourSpan]:
    """The period's records of the point's device a day at a time, or where the source has clean
    summaries of the point's quantity for whole hours (see _feed_by_windows), those summaries and
    the records of the other hours."""
    point, start, end = accumulator.point, accumulator.start_ms, accumulator.end_ms
    summaries = getattr(source, "counter_hours", None)
    by_hour: dict[int, dict[str, HourSpan]] = {}
    asked_until = start  # summaries are asked for SUMMARY_WINDOW_MS at a time (a query costs more than rows)
    for moment in range(start, end, REPORT_WINDOW_MS):
        window_end = min(moment + REPORT_WINDOW_MS, end)
        # A period that starts or ends inside an hour (a half-hour time zone) reads records.
        if summaries is None or start % HOUR_MS or end % HOUR_MS:
            yield source.records_between(point.gateway, point.device, moment, window_end)
            continue
        if moment >= asked_until:
            asked_until = min(moment + SUMMARY_WINDOW_MS, end)
            by_hour = {}
            for span in summaries(point.gateway, point.device, point.quantity, moment, asked_until):
                by_hour.setdefault(span.hour_ms, {})[span.quantity] = span
        unread = moment  # the hours from here on are read as records, up to the next summary fed
        for hour in range(moment, window_end, HOUR_MS):
            spans = by_hour.get(hour, {})
            every, span = spans.get(ALL), spans.get(point.quantity)
            if every is None or span is None or not (every.clean and span.clean):
                continue
            if (span.count, span.first_seq, span.last_seq) != (every.count, every.first_seq, every.last_seq):
                continue  # some record of the hour lacks the quantity, or they were summarised apart
            if unread < hour:
                yield source.records_between(point.gateway, point.device, unread, hour)
            yield span
            unread = hour + HOUR_MS
        if unread < window_end:
            yield source.records_between(point.gateway, point.device, unread, window_end)


def _feed_as_run(accumulator: PointAccumulator, records: list[Record]) -> bool:
    """A window's records (seq order) fed as one run when each is a reading with the point's value
    in one unit (the counter's fast path); False, with nothing fed, otherwise."""
    values = [value_of(record.values, accumulator.point.quantity) for record in records]
    units = {value.unit if value is not None and value.value is not None else None for value in values}
    if len(units) != 1 or None in units or any(record.gap is not None for record in records):
        return False
    accumulator.feed_run(
        [record.time for record in records],
        [record.seq for record in records],
        [value.value for value in values if value is not None and value.value is not None],
        units.pop() or "",
        [record.hash for record in records],
    )
    return True


class StreamingReport:
    """The same calculation over records that arrive one by one, in sequence order per device."""

    def __init__(self, project: ProjectSpec, period: Period) -> None:
        self.project = project
        self.period = period
        self.methodology, accumulators = _accumulators(project, period)
        self._all = accumulators
        self._by_device: dict[tuple[str, str], list[PointAccumulator]] = {}
        for accumulator in accumulators:
            key = (accumulator.point.gateway, accumulator.point.device)
            self._by_device.setdefault(key, []).append(accumulator)

    def wants(self, gateway: str, device: str) -> list[PointAccumulator]:
        return self._by_device.get((gateway, device), [])

    def feed(
        self,
        accumulators: list[PointAccumulator],
        *,
        time: str,
        seq: int,
        record_hash: str,
        values: Mapping[str, Any],
        gap: Gap | None = None,
    ) -> None:
        """``values`` as in the record JSON: quantity -> {"value": decimal text or null, "unit": ...};
        ``gap`` for a gap record."""
        for accumulator in accumulators:
            if gap is not None:
                accumulator.feed(time=time, seq=seq, value=None, unit="", record_hash=record_hash, gap=gap)
                continue
            item = values.get(accumulator.point.quantity)
            text = item.get("value") if isinstance(item, dict) else None
            accumulator.feed(
                time=time,
                seq=seq,
                value=None if text is None else Decimal(text),
                unit=item.get("unit", "") if isinstance(item, dict) else "",
                record_hash=record_hash,
            )

    def finish(self) -> dict[str, Any]:
        return _assemble(self.project, self.period, self.methodology, self._all)


def project_to_dict(project: ProjectSpec) -> dict[str, Any]:
    """The plain JSON form a bundle carries (no YAML, no pydantic needed to read it)."""
    return {
        "id": project.id,
        "name": project.name,
        "timezone": project.timezone,
        "methodology": {
            "id": project.methodology_id,
            "version": project.methodology_version,
            "reference": project.methodology_reference,
        },
        "points": [
            {
                "no": p.no,
                "parameter": p.parameter,
                "gateway": p.gateway,
                "device": p.device,
                "quantity": p.quantity,
                "description": p.description,
                **({"calibration": cal} if (cal := p.calibration_dict()) is not None else {}),
                **p.counter_dict(),
            }
            for p in project.points
        ],
        "fixed": {
            name: {"value": decimal_text(f.value), "unit": f.unit, "source": f.source}
            for name, f in project.fixed.items()
        },
    }


def project_from_dict(body: Mapping[str, Any]) -> ProjectSpec:
    methodology = body["methodology"]
    return ProjectSpec(
        id=str(body["id"]),
        name=str(body["name"]),
        timezone=str(body["timezone"]),
        methodology_id=str(methodology["id"]),
        methodology_version=str(methodology["version"]),
        methodology_reference=str(methodology["reference"]),
        points=tuple(
            PointSpec(
                int(p["no"]),
                str(p["parameter"]),
                str(p["gateway"]),
                str(p["device"]),
                str(p["quantity"]),
                str(p.get("description", "")),
                mpe=None if "calibration" not in p else Decimal(str(p["calibration"]["mpe"])),
                calibrated=tuple(
                    (str(start), str(until)) for start, until in p.get("calibration", {}).get("valid", [])
                ),
                rollover=None
                if "rollover" not in p
                else (Decimal(str(p["rollover"]["value"])), str(p["rollover"]["unit"])),
                replacements=tuple(
                    Replacement(
                        str(r["time"]),
                        Decimal(str(r["old_final"])),
                        Decimal(str(r["new_initial"])),
                        str(r["unit"]),
                        str(r.get("note", "")),
                    )
                    for r in p.get("replacements", [])
                ),
            )
            for p in body["points"]
        ),
        fixed={
            name: FixedSpec(Decimal(str(f["value"])), str(f["unit"]), str(f["source"]))
            for name, f in body["fixed"].items()
        },
    )


def compare_reports(expected: Any, actual: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Every place where two reports differ: (path, expected, actual)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual), key=str):
            out += compare_reports(expected.get(key), actual.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            d
            for i, (a, b) in enumerate(zip(expected, actual, strict=True))
            for d in compare_reports(a, b, f"{path}[{i}]")
        ]
    return [] if expected == actual else [(path, expected, actual)]


@dataclass(frozen=True)
class _Held:
    data: bytes
    time_ms: int
    seq: int


class MemoryRecordSource:
    """A :class:`RecordSource` over record bytes held in memory (exports, tests)."""

    def __init__(self, records: Sequence[bytes]) -> None:
        chains: dict[tuple[str, str], list[_Held]] = {}
        for data in records:
            record = parse_record(data, strict=False)
            chains.setdefault((record.gateway, record.device), []).append(
                _Held(data, time_ms(record.time), record.seq)
            )
        self._chains = {k: sorted(v, key=lambda h: (h.time_ms, h.seq)) for k, v in chains.items()}

    def _chain(self, gateway: str, device: str) -> list[_Held]:
        return self._chains.get((gateway, device), [])

    def records_between(self, gateway: str, device: str, start_ms: int, end_ms: int) -> Sequence[Any]:
        return [h for h in self._chain(gateway, device) if start_ms <= h.time_ms < end_ms]

    def record_before(self, gateway: str, device: str, at_ms: int) -> Any | None:
        found = [h for h in self._chain(gateway, device) if h.time_ms < at_ms]
        return found[-1] if found else None

    def record_at_or_after(self, gateway: str, device: str, at_ms: int) -> Any | None:
        return next((h for h in self._chain(gateway, device) if h.time_ms >= at_ms), None)
