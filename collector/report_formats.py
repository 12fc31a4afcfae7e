"""The monitoring report as a JCM project submits it: xlsx, csv and html.

Every format is built from the report dict of :func:`mrv_core.report.compute_report`
(the same dict ``--format json`` prints): nothing here calculates RE, PE or ER again.

- **xlsx**: the Monitoring Report Sheet layout. "Table 1" (parameters monitored ex
  post, columns (a) to (k)), "Table 2" (parameters fixed ex ante), "Table 3" (the
  calculation: RE_p, PE_p and ER_p as live formulas over the cells of Tables 1 and
  2, next to our values), "Notes" (project, equations, findings). The formulas
  come from :data:`FORMULAS`, one builder per methodology id.
- **csv**: daily values per monitoring point (:func:`daily_values`).
- **html**: a page for a person, self-contained.

Daily values are the period's value split at local midnights: the value of day
d is the point's value for the period from its first day to d minus that for
the period to d − 1, each by the report's own boundary and gap rules (the
same :class:`~mrv_core.report.PointAccumulator`, fed once, read at each
midnight). So the days of a point add up to its value in Table 1 exactly. A
separate one-day report (``--from d --to d``) differs from this day value by
the counter's step across midnight: a parameter raising RE leaves it out, one
raising PE counts it in both days (docs/calculations.md, "Report formats").
"""

from __future__ import annotations

import bisect
import csv
import html
import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo

from mrv_core.counters import Adjustment, CounterRun
from mrv_core.exact import EXACT, decimal_text
from mrv_core.methodologies import Methodology, Parameter, registry
from mrv_core.methodologies import energy_management as _energy_management
from mrv_core.methodologies import high_efficiency as _high_efficiency
from mrv_core.record import Record, RecordError, parse_record
from mrv_core.report import Period, PointAccumulator, PointSpec, ProjectSpec, RecordSource
from mrv_core.timefmt import format_ms, time_ms

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

    from collector.projects import ProjectConfig

DAY_MS = 86_400_000
EXCEL_TEXT_LIMIT = 32_000  # a cell holds 32,767 characters; long comments are cut with a note

Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------- progress


class TerminalProgress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.active = self.stream.isatty()
        self.drawn = False
        self.last = -1

    def __call__(self, done: int, total: int) -> None:
        if not self.active:
            return
        share = min(done / total, 1.0) if total else 1.0
        step = int(share * 200)
        if step == self.last:
            return
        self.last = step
        bar = "#" * int(share * 30)
        print(f"\r  {self.label}: [{bar:<30}] {share:6.1%}", end="", file=self.stream, flush=True)
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            print(file=self.stream, flush=True)
            self.drawn = False
            self.last = -1


class CountingSource:
    """A :class:`RecordSource` that reports progress: compute_report asks for one window of a
    point's records at a time (a day), so windows asked / windows in the period is the share done."""

    def __init__(
        self, source: RecordSource, project: ProjectSpec, period: Period, progress: Progress
    ) -> None:
        self.source = source
        self.progress = progress
        span = _ms(period.end) - _ms(period.start)
        self.total = max(1, len(project.points) * -(-span // DAY_MS))
        self.done = 0

    def records_between(self, gateway: str, device: str, start_ms: int, end_ms: int) -> Sequence[Any]:
        self.done += 1
        self.progress(min(self.done, self.total), self.total)
        return self.source.records_between(gateway, device, start_ms, end_ms)

    def record_before(self, gateway: str, device: str, at_ms: int) -> Any | None:
        return self.source.record_before(gateway, device, at_ms)

    def record_at_or_after(self, gateway: str, device: str, at_ms: int) -> Any | None:
        return self.source.record_at_or_after(gateway, device, at_ms)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --------------------------------------------------------------------------- daily values


@dataclass(frozen=True)
class DayValue:
    """One monitoring point on one local day: its share of the period's value and the evidence."""

    day: date
    value: Decimal
    readings: int  # valued readings timed on that day
    missing_records: int  # missing between the readings whose steps the day carries
    unread_polls: int
    adjustments: tuple[Adjustment, ...]  # gap and correction rules applied to those steps


@dataclass(frozen=True)
class PointDays:
    point: PointSpec
    parameter: Parameter
    days: tuple[DayValue, ...]

    @property
    def total(self) -> Decimal:
        result = Decimal(0)
        for day in self.days:
            result = EXACT.add(result, day.value)
        return result


class _OutOfOrderError(Exception):
    """A record's sequence is not above the last one fed: time and sequence order disagree."""


@dataclass(frozen=True)
class _Snapshot:
    value: Decimal
    missing: int
    unread: int
    adjustments: int

    @staticmethod
    def of(run: CounterRun) -> _Snapshot:
        return _Snapshot(run.result().value, run.missing, run.unread_polls, len(run.adjustments))


def _days(period: Period) -> list[tuple[date, int, int]]:
    """(local date, start ms, end ms) of each day of the period, in the site's time zone."""
    zone = ZoneInfo(period.timezone)
    out = []
    day = period.first_day
    while day <= period.last_day:
        start = _ms(datetime.combine(day, time(0), zone))
        end = _ms(datetime.combine(day + timedelta(days=1), time(0), zone))
        out.append((day, start, end))
        day += timedelta(days=1)
    return out


def _parsed(items: Sequence[Any]) -> list[Record]:
    records = []
    for item in items:
        try:
            records.append(parse_record(item.data, strict=False))
        except RecordError:
            continue  # the report lists it as record_unreadable
    return sorted(records, key=lambda r: r.seq)


def _boundary(
    point: PointSpec, parameter: Parameter, period: Period, source: RecordSource
) -> tuple[Any | None, Any | None]:
    """A PE parameter also reads the last record before the period and the first at or after its end."""
    if parameter.raises != "PE":
        return None, None
    return (
        source.record_before(point.gateway, point.device, _ms(period.start)),
        source.record_at_or_after(point.gateway, point.device, _ms(period.end)),
    )


def _chunks(
    point: PointSpec, parameter: Parameter, period: Period, source: RecordSource
) -> Iterator[Sequence[Any]]:
    before, after = _boundary(point, parameter, period, source)
    if before is not None:
        yield [before]
    for _day, start, end in _days(period):
        yield source.records_between(point.gateway, point.device, start, end)
    if after is not None:
        yield [after]


def _windowed(
    point: PointSpec, parameter: Parameter, period: Period, source: RecordSource, tick: Callable[[], None]
) -> Iterator[Record]:
    """The point's records a local day at a time, each day sorted by sequence (as compute_report
    reads them); raises _OutOfOrderError where a sequence is not above the last one."""
    last_seq = 0
    for chunk in _chunks(point, parameter, period, source):
        for record in _parsed(chunk):
            if record.seq <= last_seq:
                raise _OutOfOrderError
            last_seq = record.seq
            yield record
        tick()


def _in_memory(point: PointSpec, parameter: Parameter, period: Period, source: RecordSource) -> list[Record]:
    """Every record of the point's device in the period, sorted by sequence (its clock went back)."""
    before, after = _boundary(point, parameter, period, source)
    raw = [
        *([before] if before is not None else []),
        *source.records_between(point.gateway, point.device, _ms(period.start), _ms(period.end)),
        *([after] if after is not None else []),
    ]
    return _parsed(raw)


def _run_days(
    point: PointSpec, parameter: Parameter, period: Period, records: Iterator[Record] | list[Record]
) -> PointDays:
    days = _days(period)
    start_ms, end_ms = days[0][1], days[-1][2]
    accumulator = PointAccumulator(point, parameter.raises, parameter.unit, start_ms, end_ms)
    run = accumulator.run
    ends = [format_ms(end) for _, _, end in days]
    start_text, end_text = format_ms(start_ms), ends[-1]
    snapshots: list[_Snapshot | None] = [None] * len(days)
    readings = [0] * len(days)
    next_day = 0
    last = len(days) - 1

    def take(moment: str) -> None:
        nonlocal next_day
        while next_day < last and moment >= ends[next_day]:
            snapshots[next_day] = _Snapshot.of(run)
            next_day += 1

    for record in records:
        reading = None if record.gap is not None else record.values.get(point.quantity)
        valued = reading is not None and reading.value is not None
        if parameter.raises == "RE":
            take(record.time)  # the day ends with the last reading before its midnight
        accumulator.feed(
            time=record.time,
            seq=record.seq,
            value=reading.value if reading is not None else None,
            unit=reading.unit if reading is not None else "",
            record_hash=record.hash,
            gap=record.gap,
        )
        if valued and start_text <= record.time < end_text:
            readings[bisect.bisect_right(ends, record.time)] += 1
        if parameter.raises == "PE" and valued and record.time >= start_text:
            take(record.time)  # the day ends with the first reading at or after its midnight
    accumulator.finish()
    for index in range(next_day, len(days)):
        snapshots[index] = _Snapshot.of(run)
    out = []
    previous = _Snapshot(Decimal(0), 0, 0, 0)
    for (day, _, _), snapshot, count in zip(days, snapshots, readings, strict=True):
        assert snapshot is not None
        out.append(
            DayValue(
                day,
                EXACT.subtract(snapshot.value, previous.value),
                count,
                snapshot.missing - previous.missing,
                snapshot.unread - previous.unread,
                tuple(run.adjustments[previous.adjustments : snapshot.adjustments]),
            )
        )
        previous = snapshot
    return PointDays(point, parameter, tuple(out))


def _monitored_points(project: ProjectSpec, methodology: Methodology) -> list[tuple[PointSpec, Parameter]]:
    """The points in the report's order: by methodology parameter, then as configured."""
    return [
        (point, parameter)
        for parameter in methodology.parameters
        if parameter.kind == "monitored"
        for point in project.points
        if point.parameter == parameter.name
    ]


def daily_values(
    project: ProjectSpec, period: Period, source: RecordSource, progress: Progress | None = None
) -> list[PointDays]:
    """Each monitoring point's value per local day of the period (see the module doc)."""
    methodology = registry()[project.methodology_id]
    points = _monitored_points(project, methodology)
    windows = len(_days(period)) + 2
    total = max(1, len(points) * windows)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(min(done, total), total)

    out = []
    for index, (point, parameter) in enumerate(points):
        done = index * windows
        try:
            out.append(_run_days(point, parameter, period, _windowed(point, parameter, period, source, tick)))
        except _OutOfOrderError:
            out.append(_run_days(point, parameter, period, _in_memory(point, parameter, period, source)))
    if progress is not None:
        progress(total, total)
    return out


def check_daily(report: Mapping[str, Any], daily: Sequence[PointDays]) -> None:
    """Raise ValueError unless each point's days add up to its value in the report (records that
    arrived between the report and the daily pass would make them differ)."""
    reported = {p["no"]: Decimal(p["value"]) for m in report["monitored"].values() for p in m["points"]}
    for point in daily:
        if reported.get(point.point.no) != point.total:
            raise ValueError(
                f"the daily values of monitoring point {point.point.no} add up to "
                f"{decimal_text(point.total)}, the report says {reported.get(point.point.no)}: the store "
                "changed while the report was made (records arriving?); run the report again"
            )


# --------------------------------------------------------------------------- words


FINDING_WORDS = {
    "gap_excluded": "records are missing between two readings; this parameter raises reference "
    "emissions, so the counter's increase across the gap is not counted (conservative)",
    "gap_included": "records are missing between two readings; this parameter raises project "
    "emissions, so the counter's increase across the gap is kept (conservative)",
    "counter_decrease": "the counter fell (reset, rollover or meter replacement); the fall is not "
    "subtracted and the energy between those two readings is not counted",
    "insufficient_readings": "fewer than two readings in the period: no energy can be derived, "
    "the value counts as zero",
    "boundary_not_covered": "no reading outside a period boundary; the inside reading is used, "
    "which may understate this project-emission parameter",
    "value_missing": "a record of the meter carries no valid value for this quantity; it is skipped",
    "record_unreadable": "a stored record could not be read; it is left out",
    "device_not_read": "the gateway could not read the meter for some polls and signed a gap record "
    "saying so",
}


def finding_words(kind: str) -> str:
    return FINDING_WORDS.get(kind, kind.replace("_", " "))


def _adjustment_words(item: Mapping[str, Any]) -> str:
    span = ""
    if item.get("time_from") and item.get("time_to"):
        seqs = ""
        if item.get("seq_from") is not None:
            seqs = f", seq {item['seq_from']}" + (
                f" to {item['seq_to']}" if item.get("seq_to") != item.get("seq_from") else ""
            )
        span = f" between the readings at {item['time_from']} and {item['time_to']}{seqs}"
    effect = item.get("effect", "0")
    effect_text = (
        "" if Decimal(effect).is_zero() else f"; effect on the value {effect} {item.get('unit', '')}"
    )
    return f"{item['rule']}{span}: {item['detail']}{effect_text}"


def _point_findings(report: Mapping[str, Any], no: int) -> list[Mapping[str, Any]]:
    """Findings of a point that are not already one of its gaps or corrections."""
    rules = {"gap_excluded", "gap_included", "counter_decrease", "insufficient_readings"}
    return [f for f in report["findings"] if f.get("point") == no and f["kind"] not in rules]


def other_comments(report: Mapping[str, Any], point: Mapping[str, Any], limit: int = 10) -> str:
    """Column (k): gaps, corrections and findings of the point, in words."""
    items = [*point["gaps"], *point["corrections"]]
    findings = _point_findings(report, point["no"])
    if not items and not findings:
        return f"No gaps or corrections: {point['readings']} consecutive readings used."
    parts = []
    missing = point["missing_records"]
    if point["gaps"]:
        effect = Decimal(0)
        for gap in point["gaps"]:
            effect = EXACT.add(effect, Decimal(gap["effect"]))
        parts.append(
            f"{len(point['gaps'])} gap(s), {missing} record(s) missing"
            + (f", {point['unread_polls']} poll(s) unread" if point.get("unread_polls") else "")
            + f"; total effect {decimal_text(effect)} {point['unit']}."
        )
    for item in items[:limit]:
        parts.append(f"{_adjustment_words(item)} ({finding_words(item['rule'])}).")
    if len(items) > limit:
        parts.append(f"... and {len(items) - limit} more, listed in the JSON report.")
    for finding in findings[:limit]:
        parts.append(f"{finding['kind']}: {finding['detail']} ({finding_words(finding['kind'])}).")
    if len(findings) > limit:
        parts.append(f"... and {len(findings) - limit} more findings, listed in the JSON report.")
    return " ".join(parts)


@dataclass(frozen=True)
class PointTexts:
    """Columns (g) to (j) of Table 1 for one monitoring point."""

    option: str
    source: str
    method: str
    frequency: str


def _meter_details(config: ProjectConfig | None, no: int) -> tuple[str, str]:
    if config is None:
        return "", ""
    for point in config.monitoring_points:
        if point.number == no:
            return point.meter_serial, point.accuracy_class
    return "", ""


def _interval_s(point: Mapping[str, Any]) -> int | None:
    """Mean seconds between the point's readings in the period (missing records counted as polls)."""
    start, end = point.get("start"), point.get("end")
    steps = point["readings"] - 1 + point["missing_records"] + point.get("unread_polls", 0)
    if not start or not end or steps < 1:
        return None
    seconds = (time_ms(end["time"]) - time_ms(start["time"])) / 1000 / steps
    return round(seconds) if seconds >= 1 else None


def point_texts(point: Mapping[str, Any], config: ProjectConfig | None = None) -> PointTexts:
    """Sensible texts for (g)-(j) from the project config and the records (the project schema has no
    keys for them yet; docs/calculations.md, "Report formats", names the keys that would)."""
    gateway, device, quantity = point["gateway"], point["device"], point["quantity"]
    serial, accuracy = _meter_details(config, point["no"])
    meter = f"meter {device}" + (f" (serial {serial})" if serial else "")
    option = f"C: own measurement by {meter} on gateway {gateway}"
    start, end = point.get("start"), point.get("end")
    source = f"Signed readings of {gateway}/{device}, quantity {quantity}, stored by mrv-collector"
    if start and end:
        source += (
            f"; period boundaries: seq {start['seq']} at {start['time']} ({start['value']} {start['unit']}) "
            f"and seq {end['seq']} at {end['time']} ({end['value']} {end['unit']}); record hashes in the "
            "JSON report and the evidence bundle"
        )
    method = (
        f"Cumulative counter {quantity} of {meter}"
        + (f", accuracy class {accuracy}" if accuracy else "")
        + f"; read by gateway {gateway}, each reading signed (Ed25519) and hash-chained with a sequence "
        "number, sent automatically to the collector, which verifies and stores it; the value is the "
        "difference of counter readings at the period boundaries with conservative gap rules "
        "(docs/calculations.md); anyone can check it with mrv-verify on the evidence bundle."
    )
    interval = _interval_s(point)
    frequency = "continuous" + (
        f", read every {interval} s (mean interval of the readings)" if interval else ""
    )
    return PointTexts(option, source, method, frequency)


# --------------------------------------------------------------------------- formulas


@dataclass(frozen=True)
class Cells:
    """Where a formula finds its inputs: a monitored parameter's total (the SUM of its points' cells,
    "0" without a point) and a fixed parameter's cell."""

    monitored: Mapping[str, str]
    fixed: Mapping[str, str]

    def m(self, name: str) -> str:
        return self.monitored.get(name, "0")

    def f(self, name: str) -> str:
        return self.fixed[name]


FormulaBuilder = Callable[[Cells], tuple[str, str]]  # the RE_p and PE_p formulas (without "=")


def _wrap(term: str) -> str:
    return f"({term})" if "+" in term or "-" in term.lstrip("-") else term


def _mul(*factors: str) -> str:
    if "0" in factors:
        return "0"
    return "*".join(_wrap(f) for f in factors)


def _div(numerator: str, denominator: str) -> str:
    return "0" if numerator == "0" else f"{_wrap(numerator)}/{_wrap(denominator)}"


def _add(*terms: str) -> str:
    kept = [t for t in terms if t != "0"]
    return "+".join(kept) if kept else "0"


def _pv_grid(c: Cells) -> tuple[str, str]:
    return _mul(c.m("EG"), c.f("EF_grid")), _mul(c.m("EG_AUX"), c.f("EF_grid"))


def _high_efficiency_builder(groups: int) -> FormulaBuilder:
    def build(c: Cells) -> tuple[str, str]:
        indices = range(1, groups + 1)
        reference = _add(
            *(
                _div(_mul(c.m(f"EC_PJ_{i}"), c.f(f"COP_PJ_{i}"), c.f("EF_elec")), c.f(f"COP_RE_{i}"))
                for i in indices
            )
        )
        project = _add(*(_mul(c.m(f"EC_PJ_{i}"), c.f("EF_elec")) for i in indices))
        return reference, project

    return build


def _boiler_heat(c: Cells) -> tuple[str, str]:
    heat_fuel = _mul(c.m("Q"), c.f("EF_fuel"))
    return (
        _div(heat_fuel, c.f("eta_RE")),
        _add(_div(heat_fuel, c.f("eta_PJ")), _mul(c.m("EC_AUX"), c.f("EF_grid"))),
    )


def _cogeneration(c: Cells) -> tuple[str, str]:
    return (
        _add(
            _mul(c.m("EL_CGS"), c.f("EF_elec")),
            _div(_mul(c.m("Q_CGS"), c.f("EF_fuel_RE")), c.f("eta_RE_boiler")),
        ),
        _mul(c.m("FC_CGS"), c.f("NCV_gas"), c.f("EF_gas")),
    )


def _energy_management_builder(carriers: int) -> FormulaBuilder:
    def build(c: Cells) -> tuple[str, str]:
        reference = _mul(c.f("SEC_ref"), c.m("OUTPUT"), c.f("EF_RE"))
        project = _add(*(_mul(c.m(f"E_{k}"), c.f(f"EF_{k}")) for k in range(1, carriers + 1)))
        return reference, project

    return build


# Methodology id -> the spreadsheet formulas of its equations. A registered methodology without an
# entry cannot be written as xlsx (and tests/integration/test_report_formats.py fails).
FORMULAS: dict[str, FormulaBuilder] = {
    "pv-grid": _pv_grid,
    **{
        ("high-efficiency-equipment" if g == 1 else f"high-efficiency-equipment-{g}-groups"): (
            _high_efficiency_builder(g)
        )
        for g in range(1, _high_efficiency.MAX_GROUPS + 1)
    },
    "boiler-heat": _boiler_heat,
    "cogeneration": _cogeneration,
    **{
        ("energy-management" if k == 1 else f"energy-management-{k}-carriers"): _energy_management_builder(k)
        for k in range(1, _energy_management.MAX_CARRIERS + 1)
    },
}


def symbolic_formulas(methodology_id: str) -> tuple[str, str]:
    """The builder's formulas over parameter names (SUM(EG) for a monitored total): for the docs and
    the sheet's own explanation."""
    methodology = registry()[methodology_id]
    cells = Cells(
        {p.name: f"SUM({p.name})" for p in methodology.parameters if p.kind == "monitored"},
        {p.name: p.name for p in methodology.parameters if p.kind == "fixed"},
    )
    return FORMULAS[methodology_id](cells)


# --------------------------------------------------------------------------- xlsx


def _significant_digits(text: str) -> int:
    return len(Decimal(text).normalize().as_tuple().digits)


def _clip(text: str) -> str:
    if len(text) <= EXCEL_TEXT_LIMIT:
        return text
    return text[:EXCEL_TEXT_LIMIT] + " ... (cut: the whole text is in the JSON report)"


def _set_text(sheet: Worksheet, row: int, column: int, text: str) -> None:
    """A text cell that stays text: a description starting with "=" must not become a formula."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # noqa: PLC0415 - openpyxl only for xlsx

    cell = sheet.cell(row=row, column=column)
    cell.value = _clip(ILLEGAL_CHARACTERS_RE.sub("\ufffd", text))
    cell.data_type = "s"


def _set_number(sheet: Worksheet, row: int, column: int, text: str) -> None:
    """An exact decimal as a number; where a double cannot hold it (more than 15 significant digits),
    a comment says so and gives the exact text (which is also in the next column)."""
    from openpyxl.comments import Comment  # noqa: PLC0415

    cell = sheet.cell(row=row, column=column)
    value = Decimal(text)
    cell.value = int(value) if value == value.to_integral_value() and abs(value) < 10**15 else float(value)
    if _significant_digits(text) > 15:
        cell.comment = Comment(
            f"Exact value: {text}. The cell holds the nearest binary floating-point number "
            "(15-16 significant digits).",
            "mrv-collector",
        )


def _quote_sheet(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


T1, T2, T3 = "Table 1", "Table 2", "Table 3"
T1_HEADERS = (
    "(a) Monitoring period",
    "(b) Monitoring point No.",
    "(c) Parameter",
    "(d) Description of data",
    "(e) Monitored value",
    "(f) Units",
    "(g) Monitoring option",
    "(h) Source of data",
    "(i) Measurement methods and procedures",
    "(j) Monitoring frequency",
    "(k) Other comments",
    "Exact value of (e) (decimal text)",
    "Parameter (project config key)",
)
T2_HEADERS = (
    "Parameter",
    "Description of data",
    "Value",
    "Units",
    "Source of data",
    "Exact value (decimal text)",
    "Parameter (project config key)",
)
T3_HEADERS = (
    "Quantity",
    "Recalculated here (live formula)",
    "Reported by mrv-collector",
    "Reported, exact (decimal text)",
    "Difference (recalculated − reported)",
    "Agrees",
    "Units",
    "Equation",
)
FIRST_ROW = 5  # rows 1-3: title and context, row 4: column headers


def _header(
    sheet: Worksheet, title: str, context: str, headers: Sequence[str], widths: Sequence[int]
) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill  # noqa: PLC0415
    from openpyxl.utils import get_column_letter  # noqa: PLC0415

    _set_text(sheet, 1, 1, title)
    sheet.cell(row=1, column=1).font = Font(bold=True, size=13)
    _set_text(sheet, 2, 1, context)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for column, (text, width) in enumerate(zip(headers, widths, strict=True), 1):
        _set_text(sheet, 4, column, text)
        cell = sheet.cell(row=4, column=column)
        cell.font = Font(bold=True)
        cell.fill = fill
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = f"A{FIRST_ROW}"


def _wrap_rows(sheet: Worksheet, first: int, last: int, columns: int) -> None:
    from openpyxl.styles import Alignment  # noqa: PLC0415

    for row in range(first, last + 1):
        for column in range(1, columns + 1):
            sheet.cell(row=row, column=column).alignment = Alignment(wrap_text=True, vertical="top")


def _context(report: Mapping[str, Any]) -> str:
    project, methodology, period = report["project"], report["methodology"], report["period"]
    return (
        f"Project {project['id']} ({project['name']}); methodology {methodology['id']} "
        f"v{methodology['version']} ({methodology['reference']}); period {period['from']} to {period['to']} "
        f"({project['timezone']})"
    )


def build_workbook(report: Mapping[str, Any], config: ProjectConfig | None = None) -> Any:
    """The Monitoring Report Sheet workbook (an openpyxl Workbook) from the report dict."""
    from openpyxl import Workbook  # noqa: PLC0415

    methodology_id = report["methodology"]["id"]
    if methodology_id not in FORMULAS:
        raise ValueError(
            f"no spreadsheet formulas for methodology {methodology_id!r}: add a builder to "
            "collector/report_formats.py FORMULAS"
        )
    book = Workbook()
    table1 = book.active
    assert table1 is not None
    table1.title = T1
    context = _context(report)
    monitored_cells = _table1_sheet(table1, report, context, config)
    fixed_cells = _table2_sheet(book.create_sheet(T2), report, context, config)
    _calculation_sheet(book.create_sheet(T3), report, context, Cells(monitored_cells, fixed_cells))
    _notes_sheet(book.create_sheet("Notes"), report, methodology_id)
    return book


def _table1_sheet(
    sheet: Worksheet, report: Mapping[str, Any], context: str, config: ProjectConfig | None
) -> dict[str, str]:
    """Table 1, one row per monitoring point; returns each monitored parameter's SUM over its rows."""
    widths = (14, 10, 12, 40, 16, 8, 30, 45, 60, 22, 60, 22, 14)
    _header(sheet, "Table 1: Parameters monitored ex post", context, T1_HEADERS, widths)
    period_text = f"{report['period']['from']} to {report['period']['to']}"
    row = FIRST_ROW
    cells: dict[str, str] = {}
    for name, item in report["monitored"].items():
        first = row
        for point in item["points"]:
            texts = point_texts(point, config)
            description = item["description"] + (f" ({point['description']})" if point["description"] else "")
            _set_text(sheet, row, 1, period_text)
            sheet.cell(row=row, column=2).value = int(point["no"])
            _set_text(sheet, row, 3, item["symbol"])
            _set_text(sheet, row, 4, description)
            _set_number(sheet, row, 5, point["value"])
            for column, text in enumerate(
                (
                    point["unit"],
                    texts.option,
                    texts.source,
                    texts.method,
                    texts.frequency,
                    other_comments(report, point),
                    point["value"],
                    name,
                ),
                6,
            ):
                _set_text(sheet, row, column, text)
            row += 1
        if row > first:
            cells[name] = f"SUM({_quote_sheet(T1)}!$E${first}:$E${row - 1})"
    _wrap_rows(sheet, FIRST_ROW, row - 1, len(T1_HEADERS))
    return cells


def _table2_sheet(
    sheet: Worksheet, report: Mapping[str, Any], context: str, config: ProjectConfig | None
) -> dict[str, str]:
    """Table 2, one row per fixed parameter (in the methodology's unit); returns each one's cell."""
    methodology = registry()[report["methodology"]["id"]]
    _header(
        sheet,
        "Table 2: Project-specific parameters fixed ex ante",
        context,
        T2_HEADERS,
        (12, 50, 14, 12, 60, 22, 14),
    )
    row = FIRST_ROW
    cells: dict[str, str] = {}
    given = {} if config is None else config.fixed
    for name, item in report["fixed"].items():
        _set_text(sheet, row, 1, item["symbol"])
        _set_text(sheet, row, 2, methodology.parameter(name).description)
        _set_number(sheet, row, 3, item["value"])
        _set_text(sheet, row, 4, item["unit"])
        source = item["source"]
        if name in given and given[name].unit != item["unit"]:
            original = f"{decimal_text(given[name].value)} {given[name].unit}"
            source += f" [given in the project config as {original}]"
        _set_text(sheet, row, 5, source)
        _set_text(sheet, row, 6, item["value"])
        _set_text(sheet, row, 7, name)
        cells[name] = f"{_quote_sheet(T2)}!$C${row}"
        row += 1
    _wrap_rows(sheet, FIRST_ROW, row - 1, len(T2_HEADERS))
    return cells


def _calculation_sheet(sheet: Worksheet, report: Mapping[str, Any], context: str, cells: Cells) -> None:
    from openpyxl.styles import Font  # noqa: PLC0415

    _header(
        sheet,
        "Table 3: Ex post calculation of CO2 emission reductions",
        context,
        T3_HEADERS,
        (26, 22, 22, 26, 18, 9, 8, 60),
    )
    reference, project = FORMULAS[report["methodology"]["id"]](cells)
    symbols = symbolic_formulas(report["methodology"]["id"])
    re_row, pe_row, er_row, rounded_row = FIRST_ROW, FIRST_ROW + 1, FIRST_ROW + 2, FIRST_ROW + 3
    rows = (
        (
            re_row,
            "RE_p (reference emissions)",
            f"={reference}",
            report["reference_emissions_tco2"],
            f"RE_p = {symbols[0]}",
        ),
        (
            pe_row,
            "PE_p (project emissions)",
            f"={project}",
            report["project_emissions_tco2"],
            f"PE_p = {symbols[1]}",
        ),
        (
            er_row,
            "ER_p (emission reductions, unrounded)",
            f"=B{re_row}-B{pe_row}",
            report["emission_reductions_unrounded_tco2"],
            "ER_p = RE_p − PE_p",
        ),
        (
            rounded_row,
            "ER_p (rounded down to whole tCO2)",
            # ROUND(…,6) absorbs the spreadsheet's binary noise (an exact 18 must not show as 17.999…
            # and floor to 17); INT floors a negative ER as the report does, where ROUNDDOWN would not.
            f"=IF(B{er_row}<0,INT(ROUND(B{er_row},6)),ROUNDDOWN(ROUND(B{er_row},6),0))",
            str(report["emission_reductions_tco2"]),
            "ER_p rounded down to whole tCO2 (after subtracting; nothing rounded before)",
        ),
    )
    for row, label, formula, ours, equation in rows:
        _set_text(sheet, row, 1, label)
        sheet.cell(row=row, column=2).value = formula
        sheet.cell(row=row, column=2).font = Font(bold=True)
        _set_number(sheet, row, 3, ours)
        _set_text(sheet, row, 4, ours)
        sheet.cell(row=row, column=5).value = f"=B{row}-C{row}"
        tolerance = "0" if row == rounded_row else f"1E-9*MAX(1,ABS(C{row}))"
        sheet.cell(row=row, column=6).value = f'=IF(ABS(E{row})<={tolerance},"yes","CHECK")'
        _set_text(sheet, row, 7, "tCO2")
        _set_text(sheet, row, 8, equation)
    note = rounded_row + 2
    lines = [
        "The formulas in column B use only the values in Table 1 (column E) and Table 2 (column C): change "
        "one and the spreadsheet recomputes RE_p, PE_p and ER_p.",
        "Column C holds mrv-collector's exact result (decimal arithmetic, 80 significant digits) as a "
        "number, column D as text; a spreadsheet computes with binary floating point (about 15 digits), "
        "so column E may show a difference in the last digits, never in the rounded ER_p.",
        "Equations of the methodology:",
        *(f"    {equation}" for equation in report["methodology"]["equations"]),
        f"Rounding: {report['rounding']}.",
    ]
    for offset, line in enumerate(lines):
        _set_text(sheet, note + offset, 1, line)


def _notes_sheet(sheet: Worksheet, report: Mapping[str, Any], methodology_id: str) -> None:
    from openpyxl.styles import Font  # noqa: PLC0415

    project, methodology, period = report["project"], report["methodology"], report["period"]
    completeness = report["completeness"]
    rows: list[tuple[str, str]] = [
        ("Project", f"{project['id']}: {project['name']}"),
        ("Methodology", f"{methodology['title']} [{methodology_id} v{methodology['version']}]"),
        ("Methodology reference", methodology["reference"]),
        (
            "Monitoring period",
            f"{period['from']} to {period['to']} ({project['timezone']}), "
            f"i.e. {period['start_utc']} to {period['end_utc']}",
        ),
        (
            "Completeness",
            f"{completeness['points_with_data']} of {completeness['points']} monitoring points "
            f"with data; {completeness['missing_records']} missing record(s)",
        ),
        ("Report schema", f"{report['schema']} (records: format {report['record_format']})"),
        (
            "Columns (g)-(j)",
            "Derived by mrv-collector from the project config and the records: (g) option C, "
            "own measurement by the point's meter and gateway; (h) the signed records and the boundary "
            "readings; (i) the meter (serial and accuracy class where monitoring_points[].meter_serial and "
            ".accuracy_class are set) and the signing chain; (j) the mean interval of the readings.",
        ),
    ]
    sheet.column_dimensions["A"].width = 26
    sheet.column_dimensions["B"].width = 110
    _set_text(sheet, 1, 1, "Notes")
    sheet.cell(row=1, column=1).font = Font(bold=True, size=13)
    row = 3
    for label, text in rows:
        _set_text(sheet, row, 1, label)
        _set_text(sheet, row, 2, text)
        row += 1
    row += 1
    _set_text(sheet, row, 1, "Findings")
    sheet.cell(row=row, column=1).font = Font(bold=True)
    row += 1
    if not report["findings"]:
        _set_text(sheet, row, 2, "none")
    for finding in report["findings"]:
        effect = f" (effect {finding['effect']} {finding['unit']})" if "effect" in finding else ""
        _set_text(sheet, row, 1, f"{finding['kind']}, point {finding.get('point', '-')}")
        _set_text(sheet, row, 2, f"{finding['detail']}{effect}: {finding_words(finding['kind'])}")
        row += 1
    _wrap_rows(sheet, 3, row, 2)


def write_xlsx(report: Mapping[str, Any], path: Path, config: ProjectConfig | None = None) -> None:
    book = build_workbook(report, config)
    _atomic_write(path, book.save)


# --------------------------------------------------------------------------- csv


CSV_COLUMNS = (
    "date",
    "point",
    "parameter",
    "symbol",
    "description",
    "gateway",
    "device",
    "quantity",
    "value",
    "unit",
    "readings",
    "missing_records",
    "unread_polls",
    "gaps",
    "gap_effect",
    "corrections",
    "notes",
)


def _csv_text(text: str) -> str:
    """Free text for a spreadsheet-opened CSV: a leading = + - @ would make it a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def render_csv(report: Mapping[str, Any], daily: Sequence[PointDays]) -> str:
    project, methodology, period = report["project"], report["methodology"], report["period"]
    out = io.StringIO()
    header = [
        f"monitoring report, daily values per monitoring point: project {project['id']} ({project['name']})",
        f"methodology: {methodology['id']} v{methodology['version']} ({methodology['title']})",
        f"period: {period['from']} to {period['to']}, local dates in {project['timezone']} "
        f"({period['start_utc']} to {period['end_utc']})",
        f"ER_p = {report['emission_reductions_tco2']} tCO2 "
        f"(unrounded {report['emission_reductions_unrounded_tco2']}; "
        f"RE_p {report['reference_emissions_tco2']}, PE_p {report['project_emissions_tco2']})",
        "value: the period's value split at local midnights by the report's boundary and gap rules; the days "
        "of a point add up to its monitored value; missing_records, gaps and corrections belong to the "
        "counter steps the day carries",
    ]
    for line in header:
        out.write("# " + line.replace("\n", " ").replace("\r", " ") + "\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    by_no = {p["no"]: p for m in report["monitored"].values() for p in m["points"]}
    for point_days in daily:
        point, parameter = point_days.point, point_days.parameter
        description = by_no.get(point.no, {}).get("description", point.description)
        for day in point_days.days:
            gaps = [a for a in day.adjustments if a.rule.startswith("gap")]
            corrections = [a for a in day.adjustments if not a.rule.startswith("gap")]
            effect = Decimal(0)
            for gap in gaps:
                effect = EXACT.add(effect, gap.effect)
            notes = "; ".join(f"{a.rule} {a.time_from} to {a.time_to}: {a.detail}" for a in day.adjustments)
            writer.writerow(
                (
                    day.day.isoformat(),
                    point.no,
                    parameter.name,
                    parameter.symbol,
                    _csv_text(description),
                    _csv_text(point.gateway),
                    _csv_text(point.device),
                    point.quantity,
                    decimal_text(day.value),
                    parameter.unit,
                    day.readings,
                    day.missing_records,
                    day.unread_polls,
                    len(gaps),
                    decimal_text(effect),
                    len(corrections),
                    _csv_text(notes),
                )
            )
    return out.getvalue()


# --------------------------------------------------------------------------- html


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1b1f23;padding:0 1rem;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccd}
.muted{color:#586069}.result{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.box{border:1px solid #ccd;border-radius:6px;padding:.7rem 1rem;min-width:12rem}
.box .big{font-size:2rem;font-weight:700}.box.main{background:#eef6ee;border-color:#8b8}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.5rem 0}
th,td{border:1px solid #d0d7de;padding:.3rem .45rem;vertical-align:top;text-align:left}
th{background:#f0f4f8}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.bad td{background:#fff4e5}svg{background:#fafbfc;border:1px solid #e1e4e8}
code{font-size:.85rem}dl{font-size:.85rem}dd{margin:0 0 .6rem 1.2rem}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _bar_chart(point_days: PointDays) -> str:
    days = point_days.days
    width_per_day = max(2, min(60, 720 // max(1, len(days))))
    bar = max(1, width_per_day - 1)
    height, left, bottom, top = 130, 24, 18, 20
    width = max(left + width_per_day * len(days) + 8, 260)
    peak = max((d.value for d in days), default=Decimal(0))
    scale = float(peak) if peak > 0 else 1.0
    unit = point_days.parameter.unit
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="daily values of point {point_days.point.no}">',
        f'<text x="4" y="12" font-size="10" fill="#586069">highest day: '
        f"{_e(decimal_text(peak))} {_e(unit)}</text>",
        f'<line x1="{left}" y1="{top}" x2="{width - 4}" y2="{top}" stroke="#e1e4e8"/>',
        f'<text x="4" y="{height - bottom}" font-size="10" fill="#586069">0</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 4}" y2="{height - bottom}" stroke="#999"/>',
    ]
    plot = height - bottom - top
    for index, day in enumerate(days):
        share = max(0.0, float(day.value) / scale) if scale else 0.0
        bar_height = share * plot
        x = left + index * width_per_day
        colour = "#d9822b" if day.missing_records or day.unread_polls or day.readings == 0 else "#2f81f7"
        parts.append(
            f'<rect x="{x}" y="{height - bottom - bar_height:.2f}" width="{bar}" height="{bar_height:.2f}" '
            f'fill="{colour}"><title>{_e(day.day.isoformat())}: {_e(decimal_text(day.value))} {_e(unit)}, '
            f"{day.readings} readings, {day.missing_records} missing</title></rect>"
        )
    first, last = days[0].day.isoformat(), days[-1].day.isoformat()
    parts.append(f'<text x="{left}" y="{height - 4}" font-size="10" fill="#586069">{_e(first)}</text>')
    parts.append(
        f'<text x="{width - 8}" y="{height - 4}" font-size="10" fill="#586069" '
        f'text-anchor="end">{_e(last)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: frozenset[int] = frozenset()
) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{cell}</td>' if index in numeric else f"<td>{cell}</td>"
            for index, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(
    report: Mapping[str, Any], daily: Sequence[PointDays], config: ProjectConfig | None = None
) -> str:
    """A self-contained page (inline CSS and SVG, no external requests); every text escaped."""
    project, methodology, period = report["project"], report["methodology"], report["period"]
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>Monitoring report {_e(project['id'])} {_e(period['from'])} to {_e(period['to'])}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Monitoring report: {_e(project['name'])}</h1>",
        f'<p class="muted">Project {_e(project["id"])} · {_e(methodology["title"])} '
        f"[{_e(methodology['id'])} v{_e(methodology['version'])}; {_e(methodology['reference'])}] · "
        f"period {_e(period['from'])} to {_e(period['to'])} ({_e(project['timezone'])}), "
        f"i.e. {_e(period['start_utc'])} to {_e(period['end_utc'])}</p>",
        '<div class="result">',
        f'<div class="box main"><div>Emission reductions ER<sub>p</sub></div>'
        f'<div class="big" id="er">{_e(report["emission_reductions_tco2"])} tCO2</div>'
        f'<div class="muted">rounded down from '
        f"{_e(report['emission_reductions_unrounded_tco2'])} tCO2</div></div>",
        f'<div class="box"><div>Reference emissions RE<sub>p</sub></div>'
        f'<div class="big">{_e(report["reference_emissions_tco2"])}</div><div class="muted">tCO2</div></div>',
        f'<div class="box"><div>Project emissions PE<sub>p</sub></div>'
        f'<div class="big">{_e(report["project_emissions_tco2"])}</div><div class="muted">tCO2</div></div>',
        "</div>",
        "<p>" + "<br>".join(_e(eq) for eq in methodology["equations"]) + "</p>",
        f'<p class="muted">{_e(report["rounding"])}.</p>',
        "<h2>Parameters monitored ex post (Table 1)</h2>",
        f"<p>(a) Monitoring period: {_e(period['from'])} to {_e(period['to'])}. Columns (h) and (i) for "
        "each point follow the table.</p>",
    ]
    rows, details = [], []
    for item in report["monitored"].values():
        for point in item["points"]:
            texts = point_texts(point, config)
            description = item["description"] + (f" ({point['description']})" if point["description"] else "")
            rows.append(
                [
                    _e(point["no"]),
                    _e(item["symbol"]),
                    _e(description),
                    _e(point["value"]),
                    _e(point["unit"]),
                    _e(texts.option),
                    _e(texts.frequency),
                    _e(other_comments(report, point)),
                ]
            )
            details.append(
                f"<dt>Point {_e(point['no'])}</dt><dd><b>(h) Source of data:</b> {_e(texts.source)}<br>"
                f"<b>(i) Measurement methods and procedures:</b> {_e(texts.method)}</dd>"
            )
    headers = [T1_HEADERS[i] for i in (1, 2, 3, 4, 5, 6, 9, 10)]
    out.append(_table(headers, rows, frozenset({0, 3})))
    out.append(f"<dl>{''.join(details)}</dl>")
    for item in report["monitored"].values():
        out.append(
            f"<p><b>{_e(item['symbol'])}</b> = {_e(item['value'])} {_e(item['unit'])} "
            f"(sum of its monitoring points; raises {_e(item['raises'])})</p>"
        )
    out.append("<h2>Parameters fixed ex ante (Table 2)</h2>")
    methodology_spec = registry().get(methodology["id"])
    fixed_rows = [
        [
            _e(item["symbol"]),
            _e(methodology_spec.parameter(name).description if methodology_spec else ""),
            _e(item["value"]),
            _e(item["unit"]),
            _e(item["source"]),
        ]
        for name, item in report["fixed"].items()
    ]
    out.append(
        _table(
            ("Parameter", "Description of data", "Value", "Units", "Source of data"),
            fixed_rows,
            frozenset({2}),
        )
    )
    out.append("<h2>Gaps, corrections and findings</h2>")
    if not report["findings"]:
        out.append("<p>None: every monitoring point has consecutive readings over the whole period.</p>")
    else:
        out.append("<ul>")
        for finding in report["findings"][:1000]:
            effect = (
                f" Effect on the value: {_e(finding['effect'])} {_e(finding['unit'])}."
                if "effect" in finding and not Decimal(finding["effect"]).is_zero()
                else ""
            )
            out.append(
                f"<li><b>Point {_e(finding.get('point', '-'))}, {_e(finding['kind'])}</b>: "
                f"{_e(finding_words(finding['kind']))}. {_e(finding['detail'])}.{effect}</li>"
            )
        out.append("</ul>")
        if len(report["findings"]) > 1000:
            out.append(f"<p>... and {len(report['findings']) - 1000} more, listed in the JSON report.</p>")
    completeness = report["completeness"]
    out.append(
        f"<p>Completeness: {_e(completeness['points_with_data'])} of {_e(completeness['points'])} monitoring "
        f"points with data; {_e(completeness['missing_records'])} missing record(s)"
        + (f"; {_e(completeness['unread_polls'])} unread poll(s)" if completeness.get("unread_polls") else "")
        + ".</p>"
    )
    out.append("<h2>Daily values</h2>")
    out.append(
        "<p class=\"muted\">Each day's value is the period's value split at local midnights by the same "
        "boundary and gap rules, so the days of a point add up to its value above. Orange bars: days with "
        "missing records, unread polls or no reading.</p>"
    )
    for point_days in daily:
        point = point_days.point
        days_with_data = sum(1 for d in point_days.days if d.readings)
        out.append(
            f"<h3>Point {_e(point.no)}: {_e(point_days.parameter.symbol)} · {_e(point.gateway)}/"
            f"{_e(point.device)} {_e(point.quantity)}"
            + (f" · {_e(point.description)}" if point.description else "")
            + "</h3>"
        )
        out.append(_bar_chart(point_days))
        out.append(
            f"<p>Days with data: {days_with_data} of {len(point_days.days)}; missing records: "
            f"{sum(d.missing_records for d in point_days.days)}; total {_e(decimal_text(point_days.total))} "
            f"{_e(point_days.parameter.unit)}.</p>"
        )
    if daily:
        out.append("<h2>Completeness per point and day</h2>")
        headers = ["Date"] + [f"Point {p.point.no}: readings / missing" for p in daily]
        day_rows = []
        for index, day in enumerate(daily[0].days):
            cells = [_e(day.day.isoformat())]
            for point_days in daily:
                entry = point_days.days[index]
                mark = " (no data)" if entry.readings == 0 else ""
                cells.append(f"{entry.readings} / {entry.missing_records}{mark}")
            day_rows.append(cells)
        out.append(_table(headers, day_rows, frozenset(range(1, len(headers)))))
        out.append(
            '<p class="muted">Readings: valued readings timed on that day. Missing records are counted on '
            "the day whose value carries the counter step across them (for a parameter raising PE, the "
            "step across midnight belongs to the day before).</p>"
        )
    out.append(
        f'<p class="muted">mrv-collector report schema {_e(report["schema"])}, record format '
        f"{_e(report['record_format'])}. The numbers come from signed meter records; mrv-verify recomputes "
        "them from the evidence bundle.</p>"
    )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- files


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write ``path`` through a temporary file beside it, so a reader never sees half a report."""
    folder = path.parent if str(path.parent) else Path()
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        umask = os.umask(0)
        os.umask(umask)
        Path(temporary).chmod(0o666 & ~umask)  # as an ordinary write would (mkstemp makes it 0600)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))
