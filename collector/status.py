"""The operators' picture, built from the store and the registry: one model for API, page and CLI."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from collector.store.base import FAR_FUTURE_MS, Gap, GatewayState, Store
from mrv_core.exact import decimal_text
from mrv_core.keyring import Registry
from mrv_core.record import RecordError, parse_record
from mrv_core.timefmt import format_ms, time_ms

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
STALE_HEARTBEATS = 3  # online, but silent for this many heartbeat intervals: stale
SPARK_QUANTITIES = ("energy_active_export_total", "energy_active_import_total", "energy_active_total")


@dataclass(frozen=True)
class Window:
    now_ms: int
    days: int = 30

    @property
    def first_day_ms(self) -> int:
        return (self.now_ms // DAY_MS - self.days + 1) * DAY_MS

    @property
    def end_ms(self) -> int:
        return (self.now_ms // DAY_MS + 1) * DAY_MS


def _age_s(now_ms: int, then_ms: int | None) -> float | None:
    return None if then_ms is None else round((now_ms - then_ms) / 1000, 1)


def gateway_view(state: GatewayState | None, entry: Any, now_ms: int) -> dict[str, Any]:
    """One gateway: online/offline/stale from the retained status and heartbeats, buffer, clock offset."""
    beat = dict(state.heartbeat or {}) if state else {}
    interval = float(beat.get("heartbeat_s", 60) or 60)
    seen_age = _age_s(now_ms, state.last_seen_ms if state else None)
    status = (state.state if state and state.state else "unknown") if state else "never seen"
    if status == "online" and seen_age is not None and seen_age > STALE_HEARTBEATS * interval:
        status = "stale"
    if entry is None:
        status = "not enrolled" if state else status
    clock_offset = None
    if state and state.heartbeat_ms is not None and isinstance(beat.get("time"), str):
        try:
            clock_offset = round((state.heartbeat_ms - time_ms(beat["time"])) / 1000, 1)
        except ValueError:
            clock_offset = None
    buffer = beat.get("buffer") or {}
    devices = beat.get("devices") or {}
    return {
        "site": state.site if state else entry.site,
        "gateway": state.gateway if state else entry.gateway,
        "status": status,
        "last_seen": format_ms(state.last_seen_ms) if state and state.last_seen_ms else None,
        "last_seen_age_s": seen_age,
        "heartbeat_age_s": _age_s(now_ms, state.heartbeat_ms if state else None),
        "clock_offset_s": clock_offset,
        "clock": beat.get("clock"),
        "buffer_pending_records": buffer.get("pending_records"),
        "oldest_pending": buffer.get("oldest_pending"),
        "buffer_alarm": "full" if buffer.get("full") else "high water" if buffer.get("high_water") else None,
        "resends": (beat.get("publisher") or {}).get("resends"),
        "device_errors": {
            name: {"consecutive_failures": d.get("consecutive_failures"), "last_error": d.get("last_error")}
            for name, d in devices.items()
            if isinstance(d, dict) and d.get("consecutive_failures")
        },
        "keys": [{"key_id": k.key_id, "state": k.state} for k in entry.keys] if entry else [],
    }


def gateways(store: Store, registry: Registry, now_ms: int) -> list[dict[str, Any]]:
    states = {s.gateway: s for s in store.gateway_states()}
    names = sorted({g.gateway for g in registry.gateways} | set(states))
    return [gateway_view(states.get(name), registry.gateway(name), now_ms) for name in names]


def _poll_intervals(states: list[GatewayState]) -> dict[tuple[str, str], float]:
    intervals = {}
    for state in states:
        for device, info in ((state.heartbeat or {}).get("devices") or {}).items():
            if isinstance(info, dict) and isinstance(info.get("poll_interval_s"), int | float):
                intervals[(state.gateway, device)] = float(info["poll_interval_s"])
    return intervals


def _sparkline(
    store: Store, gateway: str, device: str, quantities: list[str], last_ms: int
) -> dict[str, Any]:
    """Hourly increase of the device's energy counter over the 24 h up to its last reading."""
    quantity = next((q for q in SPARK_QUANTITIES if q in quantities), None)
    if quantity is None:
        return {"quantity": None, "values": []}
    end = last_ms // HOUR_MS * HOUR_MS  # the hour in progress is left out: it would look like a drop
    hours = store.hourly_last(gateway, device, quantity, end - 25 * HOUR_MS, end)
    values = [max(0.0, b - a) for (_, a), (_, b) in pairwise(hours)]
    return {"quantity": quantity, "unit_per": "hour", "values": [round(v, 6) for v in values[-24:]]}


def _gap_view(gap: Gap) -> dict[str, Any]:
    return {
        "first_seq": gap.first,
        "last_seq": gap.last,
        "missing": gap.missing,
        "from": gap.time_from,
        "to": gap.time_to,
    }


def devices(store: Store, window: Window, *, sparklines: bool = True) -> list[dict[str, Any]]:
    """Each device: last reading with values and flags, completeness per UTC day, open gaps."""
    counts = store.day_counts(window.first_day_ms, window.end_ms)
    intervals = _poll_intervals(store.gateway_states())
    out = []
    for site, gateway, device in store.devices():
        last = store.record_before(gateway, device, FAR_FUTURE_MS)
        record = None
        if last is not None:
            try:
                record = parse_record(last.data)
            except RecordError:
                record = None
        interval = intervals.get((gateway, device))
        per_day = counts.get((gateway, device), {})
        first = store.record_at_or_after(gateway, device, 0)
        first_day = time_ms(parse_record(first.data).time) // DAY_MS * DAY_MS if first else window.end_ms
        days = []
        for index in range(window.days):
            day = window.first_day_ms + index * DAY_MS
            records = per_day.get(day, 0)
            # nothing is expected before the device's first reading
            expected = round(DAY_MS / 1000 / interval) if interval and day >= first_day else None
            ratio = None if not expected else round(min(1.0, records / expected), 4)
            days.append(
                {"day": format_ms(day)[:10], "records": records, "expected": expected, "ratio": ratio}
            )
        gaps = store.open_gaps(gateway, device)
        values = {}
        if record is not None:
            values = {
                name: {"value": None if v.value is None else decimal_text(v.value), "unit": v.unit}
                for name, v in record.values.items()
            }
        entry: dict[str, Any] = {
            "site": site,
            "gateway": gateway,
            "device": device,
            "last_seq": record.seq if record else None,
            "last_time": record.time if record else None,
            "values": values,
            "quality": list(record.quality) if record else [],
            "poll_interval_s": interval,
            "completeness": days,
            "open_gaps": [_gap_view(g) for g in gaps[:20]],
            "missing_records": sum(g.missing for g in gaps),
        }
        if sparklines and record is not None:
            entry["sparkline"] = _sparkline(store, gateway, device, list(record.values), time_ms(record.time))
        out.append(entry)
    return out


def quarantine(store: Store, limit: int = 100) -> dict[str, Any]:
    items = store.quarantined(limit)
    reasons: dict[str, int] = {}
    for item in items:
        reasons[item.reason] = reasons.get(item.reason, 0) + 1
    return {
        "total": store.counts().quarantined,
        "recent_reasons": reasons,
        "items": [
            {
                "received": format_ms(q.received_ms),
                "reason": q.reason,
                "detail": q.detail,
                "gateway": q.gateway,
                "topic": q.topic,
                "bytes": len(q.payload),
            }
            for q in items
        ],
    }
