"""The monitoring-period calculation, from signed records to ER. Pure.

It reads records through :class:`RecordSource`, which the collector's stores
implement and an evidence export can implement too, so the collector and a
verifier run exactly the same code on the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from mrv_core import FORMAT_VERSION
from mrv_core.counters import CounterEnergy, CounterReading, Direction, counter_energy
from mrv_core.exact import EXACT, decimal_text
from mrv_core.methodologies import Methodology, registry
from mrv_core.record import RecordError, parse_record
from mrv_core.timefmt import format_time, time_ms
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


def _readings(raw: Sequence[Any], point: PointSpec, findings: list[dict[str, Any]]) -> list[CounterReading]:
    out: list[CounterReading] = []
    for item in raw:
        try:
            record = parse_record(item.data)
        except RecordError as exc:
            findings.append({"kind": "record_unreadable", "point": point.no, "detail": str(exc)})
            continue
        if record.gateway != point.gateway or record.device != point.device:
            findings.append(
                {
                    "kind": "record_foreign",
                    "point": point.no,
                    "detail": f"{record.gateway}/{record.device} seq {record.seq}",
                }
            )
            continue
        value = record.values.get(point.quantity)
        if value is None or value.value is None:
            findings.append(
                {
                    "kind": "value_missing",
                    "point": point.no,
                    "seq": record.seq,
                    "detail": f"record has no valid {point.quantity}",
                }
            )
            continue
        out.append(CounterReading(record.time, record.seq, value.value, value.unit, record.hash))
    return out


def select_readings(
    source: RecordSource,
    point: PointSpec,
    period: Period,
    direction: Direction,
    findings: list[dict[str, Any]],
) -> list[CounterReading]:
    """Readings per the boundary rule of :mod:`mrv_core.counters` (inside for RE, covering for PE)."""
    start, end = _ms(period.start), _ms(period.end)
    inside = list(source.records_between(point.gateway, point.device, start, end))
    if direction == "RE":
        return _readings(inside, point, findings)
    before = source.record_before(point.gateway, point.device, start)
    after = source.record_at_or_after(point.gateway, point.device, end)
    if before is None or after is None:
        findings.append(
            {
                "kind": "boundary_not_covered",
                "point": point.no,
                "detail": "no reading "
                + ("before the start" if before is None else "after the end")
                + "; the inside reading is used, which may understate this PE parameter",
            }
        )
    covering = ([before] if before is not None else []) + inside + ([after] if after is not None else [])
    return _readings(covering, point, findings)


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
        "gaps": [a.as_dict(energy.unit) for a in energy.adjustments if a.rule.startswith("gap")],
        "corrections": [a.as_dict(energy.unit) for a in energy.adjustments if not a.rule.startswith("gap")],
    }


def compute_report(project: ProjectSpec, period: Period, source: RecordSource) -> dict[str, Any]:
    """The monitoring report as a JSON-ready dict (decimals as strings, ER as an integer)."""
    methodology: Methodology = registry()[project.methodology_id]
    findings: list[dict[str, Any]] = []
    values: dict[str, Decimal] = {}
    monitored: dict[str, Any] = {}
    expected_points = 0
    covered_points = 0
    for parameter in methodology.parameters:
        if parameter.kind != "monitored":
            continue
        points = [p for p in project.points if p.parameter == parameter.name]
        if not points:
            continue
        total = Decimal(0)
        results = []
        for point in points:
            readings = select_readings(source, point, period, parameter.raises, findings)
            energy = counter_energy(readings, parameter.unit, parameter.raises)
            expected_points += 1
            covered_points += 1 if energy.readings >= 2 else 0
            total = EXACT.add(total, energy.value)
            results.append(_point_result(point, energy))
            findings.extend(
                {
                    "kind": a.rule,
                    "point": point.no,
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
            "points": expected_points,
            "missing_records": sum(p["missing_records"] for m in monitored.values() for p in m["points"]),
        },
        "findings": findings,
    }


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
