"""Report benchmark: one monitoring year of one-minute readings from 50 meters, from SQLite or InfluxDB.

Issue 5 asks for the time and peak memory of a report over a year of
one-minute data from 50 meters (about 26 million records). The records are
written straight into the collector's SQLite store (canonical bytes of the
agent's layout, hash-linked per device, float32 counters with their raw
words; not signed or sealed: the report does not read seals), with the
hourly counter summaries the store keeps at ingest (made by the same
``mrv_core.counter_hours.summarize``), then ``compute_report`` runs for a
pv-grid project whose 50 points read the 50 meters, as ``mrv-collector
report`` does. The store is cached in .bench/.

With ``--store influxdb`` the same records go through the InfluxDB store's own
write into a private InfluxDB started here on a free loopback port (Debian's
1.6 behind the tests' v2 write shim), which is removed afterwards.

    python -m bench.year_report [--days 365] [--meters 50] [--store sqlite|influxdb]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.e2e import rss_mb
from bench.verify import pv_grid_project
from collector.store.base import WriteSet
from collector.store.influx import InfluxStore
from collector.store.sqlite import _SPAN_INSERT, SqliteStore
from mrv_core.counter_hours import CounterRow, summarize
from mrv_core.profile_schema import load_profile
from mrv_core.record import Record, Seal, build_seal, parse_record, parse_seal
from mrv_core.registers import shortest_float_text
from mrv_core.report import Period, PointSpec, compute_report
from mrv_core.timefmt import format_time
from tests.harness.influxdb import start_influxdb

ROOT = Path(__file__).resolve().parents[1]
PROFILE = load_profile(ROOT / "firmware_profiles/eastron/sdm630-modbus-v2.yaml")
START = datetime(2026, 1, 1, tzinfo=UTC)
QUANTITY = "energy_active_export_total"
BUCKET = "bench_year"
LAYOUT = (
    '{"clock":"synced","device":"m%02d","gateway":"gw-year","kind":"reading","prev":"%s",'
    '"profile":{"id":"eastron-sdm630-v2","sha256":"' + PROFILE.sha256 + '"},"quality":[],"seq":%d,'
    '"site":"year","time":"%s","v":1,"values":{"energy_active_export_total":{"raw":"%s","unit":"kWh",'
    '"value":"%s"}}}'
)


def readings(days: int, meters: int) -> Iterator[tuple[int, int, int, str, bytes, str, str, str]]:
    """The records minute by minute: (minute, meter, time ms, time text, bytes, hash, prev, claimed
    value)."""
    heads = ["0" * 64] * meters
    pack = struct.Struct(">f").pack
    for minute in range(days * 1440):
        moment = START + timedelta(minutes=minute)
        text = format_time(moment)
        at_ms = int(moment.timestamp() * 1000)
        for meter in range(meters):
            data32 = pack(10_000.0 + meter * 1_000 + minute * 0.05)
            (as32,) = struct.unpack(">f", data32)
            claim = shortest_float_text(as32, "f32")
            data = (LAYOUT % (meter, heads[meter], minute + 1, text, data32.hex(), claim)).encode()
            digest = hashlib.sha256(data).hexdigest()
            yield minute, meter, at_ms, text, data, digest, heads[meter], claim
            heads[meter] = digest


def generate(path: Path, days: int, meters: int) -> float:
    """The SQLite store, filled minute by minute; returns the seconds it took."""
    started = time.monotonic()
    store = SqliteStore(path)
    store.close()
    import sqlite3  # straight into the store's tables, as its ingest would

    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    rows = []
    hour: list[CounterRow] = []  # the hour's records as the store's counter summaries see them
    for minute, meter, at_ms, text, data, digest, prev, claim in readings(days, meters):
        device = f"m{meter:02d}"
        rows.append(("year", "gw-year", device, minute + 1, at_ms, digest, prev, data, 1, 0))
        counters = {QUANTITY: ("kWh", claim)}
        hour.append(CounterRow("gw-year", device, minute + 1, at_ms, text, digest, counters))
        if meter == meters - 1 and (minute % 60 == 59 or minute == days * 1440 - 1):
            db.executemany(_SPAN_INSERT, [span.row() for span in summarize(hour).values()])
            hour = []
        if len(rows) >= 200_000:
            db.executemany("INSERT INTO readings VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            db.commit()
            rows = []
    db.executemany("INSERT INTO readings VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    db.commit()
    db.close()
    return time.monotonic() - started


def fill_influxdb(store: InfluxStore, days: int, meters: int) -> float:
    """The same records written by the InfluxDB store's own write, as ingest would (one stand-in
    seal: the report does not read seals); returns the seconds it took."""
    started = time.monotonic()
    seal_data, _ = build_seal(
        site="year",
        gateway="gw-year",
        key_id="bench",
        seq=1,
        prev="0" * 64,
        created=START,
        record_hashes=["0" * 64],
        first_time=format_time(START),
        last_time=format_time(START),
    )
    seal = parse_seal(seal_data, b"", strict=False)
    batch: list[tuple[Record, Seal, int]] = []
    for _, _, _, _, data, _, _, _ in readings(days, meters):
        batch.append((parse_record(data, strict=False), seal, 0))
        if len(batch) == 5000:
            store.write(WriteSet(records=batch))
            batch = []
    if batch:
        store.write(WriteSet(records=batch))
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--meters", type=int, default=50)
    parser.add_argument(
        "--store",
        choices=("sqlite", "influxdb"),
        default="sqlite",
        help="influxdb: a private InfluxDB (Debian's 1.6, started here on a free port) filled by the "
        "store's own write, measured, then removed",
    )
    parser.add_argument(
        "--influxdb-url", help="measure the report on this InfluxDB, already filled (run by --store influxdb)"
    )
    args = parser.parse_args()
    if args.influxdb_url:
        print(
            _measure(
                InfluxStore(args.influxdb_url, org="bench", bucket=BUCKET), "InfluxDB", args.days, args.meters
            )
        )
        return 0
    if args.store == "influxdb":
        return _influxdb(args.days, args.meters)
    cache = ROOT / ".bench"
    cache.mkdir(exist_ok=True)
    path = cache / f"year-{args.days}d-{args.meters}m.sqlite"
    if not path.exists():
        print(f"generating {args.days * 1440 * args.meters:,} records into {path} (once) ...", flush=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        seconds = generate(partial, args.days, args.meters)
        partial.replace(path)
        print(f"  generated in {seconds:.0f} s, {path.stat().st_size / 1e9:.1f} GB", flush=True)
    print(_measure(SqliteStore(path), "SQLite", args.days, args.meters))
    return 0


def _influxdb(days: int, meters: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        influx = start_influxdb(Path(folder) / "influxdb")
        try:
            influx.create_database(BUCKET)
            store = InfluxStore(influx.url, org="bench", bucket=BUCKET)
            print(f"writing {days * 1440 * meters:,} records into InfluxDB ...", flush=True)
            print(f"  written in {fill_influxdb(store, days, meters):.0f} s", flush=True)
            store.close()
            # The report in a process of its own: its peak memory is the report's, not the filling's.
            command = [
                sys.executable,
                "-m",
                "bench.year_report",
                "--days",
                str(days),
                "--meters",
                str(meters),
            ]
            subprocess.run([*command, "--influxdb-url", influx.url], check=True, cwd=ROOT)
        finally:
            influx.stop()
    return 0


def _measure(store: SqliteStore | InfluxStore, name: str, days: int, meters: int) -> str:
    """The report of a pv-grid project reading every meter over the whole store, on one core."""
    points = tuple(PointSpec(m + 1, "EG", "gw-year", f"m{m:02d}", QUANTITY) for m in range(meters))
    project = pv_grid_project("YEAR", "year", points)
    period = Period(date(2026, 1, 1), date(2026, 1, 1) + timedelta(days=days - 1), "UTC")
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cpu, wall = time.process_time(), time.monotonic()
    report = compute_report(project, period, store)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    store.close()
    records = sum(p["readings"] for p in report["monitored"]["EG"]["points"])
    # VmHWM, not getrusage's ru_maxrss: a process started by another keeps its parent's maxrss from
    # the fork (the report of a filled InfluxDB read 243 MB that way, 64 MB by VmHWM on 15 days).
    peak = rss_mb(os.getpid(), "VmHWM")
    # Every meter's counter rises 0.05 kWh a minute: the year's export is exactly that, inside the period.
    expected = Decimal("0.05") * (days * 1440 - 1) * meters / 1000
    return (
        f"\n{datetime.now(UTC):%Y-%m-%d}: {records:,} records, {meters} points, {days} days, {name}; "
        f"report in {wall:.1f} s wall, {cpu:.1f} s CPU ({cpu / max(records, 1) * 1e6:.1f} µs per record), "
        f"peak RSS {peak:.0f} MB; EG {report['monitored']['EG']['value']} MWh (float32 counters; "
        f"0.05 kWh a minute is {expected} MWh), ER {report['emission_reductions_tco2']} tCO2"
    )


if __name__ == "__main__":
    sys.exit(main())
