"""Write a record export (format in :mod:`mrv_core.evidence`) from a store."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from collector.store.base import Store, StoreError
from mrv_core.evidence import header_line, profile_line, record_line, seal_line
from mrv_core.profile import Profile
from mrv_core.record import parse_record, parse_seal
from mrv_core.timefmt import time_ms


@dataclass(frozen=True)
class ExportSummary:
    seals: int
    records: int
    missing_profiles: tuple[str, ...]


def export_records(
    store: Store,
    out: Path,
    start_ms: int,
    end_ms: int,
    profiles: Mapping[str, Profile],
    *,
    start_text: str,
    end_text: str,
) -> ExportSummary:
    """Every seal with a record in [start, end), whole; written to a temp file, fsynced, renamed."""
    wanted: set[tuple[str, int]] = set()
    for _site, gateway, device in store.devices():
        for stored in store.records_between(gateway, device, start_ms, end_ms):
            wanted.add((stored.seal_gateway, stored.seal_seq))
    by_sha = {p.sha256: p for p in profiles.values()}
    lines: list[str] = []
    used_profiles: set[str] = set()
    records = 0
    for gateway, seq in sorted(wanted):
        seal = store.seal(gateway, seq)
        if seal is None:
            raise StoreError(f"seal {gateway}/{seq} is referenced by stored records but missing")
        parsed = parse_seal(seal.data, seal.signature)
        lines.append(seal_line(gateway, seq, seal.data, seal.signature))
        for stored in store.records_of_seal(
            gateway, seq, time_ms(parsed.first_time), time_ms(parsed.last_time)
        ):
            used_profiles.add(parse_record(stored.data).profile_sha256)
            lines.append(record_line(gateway, seq, stored.leaf, stored.data))
            records += 1
    missing = tuple(sorted(sha for sha in used_profiles if sha not in by_sha))
    head = [
        header_line(
            **{
                "from": start_text,
                "to": end_text,
                "seals": len(wanted),
                "records": records,
                "missing_profiles": list(missing),
            }
        )
    ]
    head += [profile_line(by_sha[sha]) for sha in sorted(used_profiles) if sha in by_sha]
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="ascii") as handle:
        for line in head + lines:
            handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(out)
    return ExportSummary(len(wanted), records, missing)
