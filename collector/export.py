"""Write an evidence bundle (format in :mod:`mrv_core.bundle`) from a store, streaming.

Memory holds one chunk of seals and their records at a time, whatever the
size of the window: a project year of tens of millions of records is written
without being held. The zip is written to a temp file, fsynced and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from collector.store.base import SealSpan, Store, StoreError
from mrv_core import FORMAT_VERSION
from mrv_core.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    GATEWAYS,
    MANIFEST,
    PROFILES_DIR,
    PROJECT,
    REPORT,
    SEALS,
    seal_line,
)
from mrv_core.keyring import Registry
from mrv_core.methodologies import registry as registry_of_methodologies
from mrv_core.profile import Profile
from mrv_core.record import parse_record
from mrv_core.report import Period, ProjectSpec, compute_report, project_to_dict
from mrv_core.timefmt import format_time, time_ms

SEALS_PER_QUERY = 50
# Records are canonical (checked at ingest), so the profile hash sits at a known place in their bytes.
_PROFILE_SHA = re.compile(rb'"profile":\{"id":"[^"]*","sha256":"([0-9a-f]{64})"\}')


@dataclass(frozen=True)
class BundleSummary:
    seals: int
    records: int
    missing_profiles: tuple[str, ...]
    incomplete_seals: int


class _Member:
    """A zip member being written, with its SHA-256 and size for the manifest."""

    def __init__(self, zf: zipfile.ZipFile, name: str) -> None:
        self.name = name
        self.handle = zf.open(name, "w", force_zip64=True)
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.sha.update(data)
        self.size += len(data)

    def close(self) -> dict[str, Any]:
        self.handle.close()
        return {"sha256": self.sha.hexdigest(), "bytes": self.size}


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True).encode("utf-8") + b"\n"


def write_bundle(
    store: Store,
    out: Path,
    *,
    start_ms: int,
    end_ms: int,
    period: dict[str, str],
    registry: Registry,
    profiles: Mapping[str, Profile],
    project: ProjectSpec | None = None,
    report: dict[str, Any] | None = None,
    created: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> BundleSummary:
    """Every seal with a record in [start_ms, end_ms), whole, of the project's gateways (all without one)."""
    if project is not None:
        gateways = sorted({p.gateway for p in project.points})
    else:
        gateways = sorted({gateway for _, gateway, _ in store.devices()})
    spans = {gateway: store.seals_overlapping(gateway, start_ms, end_ms) for gateway in gateways}
    total = sum(span.count for gateway_spans in spans.values() for span in gateway_spans)
    by_sha = {profile.sha256: profile for profile in profiles.values()}
    used_profiles: set[str] = set()
    members: dict[str, Any] = {}
    written = seals = incomplete = 0
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True) as zf:
        member = _Member(zf, SEALS)
        for gateway in gateways:
            for start in range(0, len(spans[gateway]), SEALS_PER_QUERY):
                chunk: list[SealSpan] = spans[gateway][start : start + SEALS_PER_QUERY]
                stored = store.seals_between(gateway, chunk[0].seq, chunk[-1].seq)
                grouped: dict[int, list[tuple[int, bytes]]] = {span.seq: [] for span in chunk}
                for record in store.records_of_seals(gateway, chunk):
                    grouped[record.seal_seq].append((record.leaf, record.data))
                    match = _PROFILE_SHA.search(record.data)
                    if match:
                        used_profiles.add(match.group(1).decode("ascii"))
                for span in chunk:
                    seal = stored.get(span.seq)
                    if seal is None:
                        raise StoreError(f"seal {gateway}/{span.seq} is listed but cannot be read")
                    incomplete += len(grouped[span.seq]) != span.count
                    member.write(seal_line(gateway, span.seq, seal.data, seal.signature, grouped[span.seq]))
                    written += len(grouped[span.seq])
                    seals += 1
                if progress is not None:
                    progress(written, total)
        members[SEALS] = member.close()
        subset = Registry(tuple(g for g in registry.gateways if g.gateway in set(gateways)))
        documents: list[tuple[str, bytes]] = [(GATEWAYS, subset.to_json().encode("utf-8"))]
        documents += [
            (f"{PROFILES_DIR}{sha}.json", by_sha[sha].canonical_json)
            for sha in sorted(used_profiles)
            if sha in by_sha
        ]
        if project is not None:
            documents.append((PROJECT, _json(project_to_dict(project))))
        if report is not None:
            documents.append((REPORT, _json(report)))
        for name, data in documents:
            zf.writestr(name, data)
            members[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        missing = tuple(sorted(sha for sha in used_profiles if sha not in by_sha))
        manifest = {
            "format": BUNDLE_FORMAT,
            "version": BUNDLE_VERSION,
            "record_format": FORMAT_VERSION,
            "created": created,
            "project": None if project is None else {"id": project.id, "name": project.name},
            "period": period,
            "counts": {"seals": seals, "records": written, "gateways": len(gateways)},
            "missing_profiles": list(missing),
            "members": members,
        }
        zf.writestr(MANIFEST, _json(manifest))
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(out)
    return BundleSummary(seals, written, missing, incomplete)


def _utc_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _boundary_window(store: Store, project: ProjectSpec, start_ms: int, end_ms: int) -> tuple[int, int]:
    """The period, widened to the readings a PE parameter takes from just outside it.

    Such a parameter is measured from the last reading before the start to the
    first at or after the end (mrv_core.counters); the seals holding those
    readings go into the bundle so that a verifier recomputes the same value.
    """
    methodology = registry_of_methodologies()[project.methodology_id]
    first, last = start_ms, end_ms
    for point in project.points:
        if methodology.parameter(point.parameter).raises != "PE":
            continue
        before = store.record_before(point.gateway, point.device, start_ms)
        after = store.record_at_or_after(point.gateway, point.device, end_ms)
        if before is not None:
            first = min(first, time_ms(parse_record(before.data).time))
        if after is not None:
            last = max(last, time_ms(parse_record(after.data).time) + 1)
    return first, last


def export_bundle(
    store: Store,
    out: Path,
    *,
    registry: Registry,
    profiles: Mapping[str, Profile],
    first_day: date,
    last_day: date,
    project: ProjectSpec | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BundleSummary:
    """A project's monitoring period (local dates, with its report), or UTC days without a project."""
    if last_day < first_day:
        raise ValueError("the last day is before the first")
    report = None
    if project is not None:
        period = Period(first_day, last_day, project.timezone)
        start, end = _utc_ms(period.start), _utc_ms(period.end)
        report = compute_report(project, period, store)
        info = {
            "from": first_day.isoformat(),
            "to": last_day.isoformat(),
            "timezone": project.timezone,
            "start_utc": format_time(period.start),
            "end_utc": format_time(period.end),
        }
        window = _boundary_window(store, project, start, end)
    else:
        first = datetime.combine(first_day, datetime.min.time(), UTC)
        last = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), UTC)
        info = {"start_utc": format_time(first), "end_utc": format_time(last)}
        window = (_utc_ms(first), _utc_ms(last))
    return write_bundle(
        store,
        out,
        start_ms=window[0],
        end_ms=window[1],
        period=info,
        registry=registry,
        profiles=profiles,
        project=project,
        report=report,
        created=format_time(datetime.now(UTC)),
        progress=progress,
    )
