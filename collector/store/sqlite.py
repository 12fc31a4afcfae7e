"""The embedded store: one SQLite file (WAL, synchronous=FULL), same content as InfluxDB.

FULL because the collector acknowledges a message only after its records are
stored: an acknowledged record must survive a power cut.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collector.store.base import (
    ChainHead,
    Gap,
    GatewayEvent,
    GatewayState,
    Link,
    QuarantineItem,
    SealSpan,
    StoreCounts,
    StoredRecord,
    StoredSeal,
    StoreError,
    WriteSet,
)
from mrv_core.counter_hours import ALL, HourSpan, merged_with_stored, summarize_records
from mrv_core.timefmt import format_ms, time_ms

SCHEMA = """
CREATE TABLE IF NOT EXISTS seals (
    site TEXT NOT NULL, gateway TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL,
    data BLOB NOT NULL, signature BLOB NOT NULL, key_id TEXT NOT NULL, count INTEGER NOT NULL,
    first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
    PRIMARY KEY (gateway, seq));
CREATE TABLE IF NOT EXISTS readings (
    site TEXT NOT NULL, gateway TEXT NOT NULL, device TEXT NOT NULL, seq INTEGER NOT NULL,
    time_ms INTEGER NOT NULL, hash TEXT NOT NULL, prev TEXT NOT NULL, data BLOB NOT NULL,
    seal_seq INTEGER NOT NULL, leaf INTEGER NOT NULL,
    PRIMARY KEY (gateway, device, seq));
CREATE INDEX IF NOT EXISTS readings_by_time ON readings (gateway, device, time_ms, seq);
CREATE INDEX IF NOT EXISTS readings_by_seal ON readings (gateway, seal_seq, leaf);
CREATE TABLE IF NOT EXISTS gaps (
    site TEXT NOT NULL, gateway TEXT NOT NULL, device TEXT NOT NULL, first INTEGER NOT NULL,
    last INTEGER NOT NULL, time_from TEXT NOT NULL, time_to TEXT NOT NULL, detected_ms INTEGER NOT NULL,
    PRIMARY KEY (gateway, device, first));
CREATE TABLE IF NOT EXISTS gateway_state (
    gateway TEXT PRIMARY KEY, site TEXT NOT NULL, state TEXT, state_ms INTEGER,
    heartbeat TEXT, heartbeat_ms INTEGER, last_seen_ms INTEGER);
CREATE TABLE IF NOT EXISTS counter_hours (
    gateway TEXT NOT NULL, device TEXT NOT NULL, quantity TEXT NOT NULL, hour_ms INTEGER NOT NULL,
    count INTEGER NOT NULL, clean INTEGER NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    first_time TEXT NOT NULL, last_time TEXT NOT NULL, first_value TEXT NOT NULL, last_value TEXT NOT NULL,
    first_hash TEXT NOT NULL, last_hash TEXT NOT NULL, unit TEXT NOT NULL,
    PRIMARY KEY (gateway, device, hour_ms, quantity));
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, topic TEXT NOT NULL,
    gateway TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL, payload BLOB NOT NULL);
"""

_RECORD_COLUMNS = "data, gateway, seal_seq, leaf"
# HourSpan's fields, in order (a test holds them to the dataclass)
_SPAN_SELECT = (
    "SELECT gateway, device, quantity, hour_ms, count, clean, first_seq, last_seq, first_time, "
    "last_time, first_value, last_value, first_hash, last_hash, unit FROM counter_hours "
)
_SPAN_INSERT = (
    "INSERT OR REPLACE INTO counter_hours (gateway, device, quantity, hour_ms, count, clean, first_seq, "
    "last_seq, first_time, last_time, first_value, last_value, first_hash, last_hash, unit) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _hour_span(row: Sequence[Any]) -> HourSpan:
    values = list(row)
    values[5] = bool(values[5])  # clean: SQLite keeps 0 or 1
    return HourSpan(*values)


def _stored(row: tuple[bytes, str, int, int]) -> StoredRecord:
    return StoredRecord(bytes(row[0]), row[1], row[2], row[3])


class SqliteStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the SQLite store: {exc}") from None

    def _one(self, sql: str, args: Sequence[object]) -> Any:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def _all(self, sql: str, args: Sequence[object]) -> list[Any]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    def head(self, gateway: str, device: str) -> ChainHead | None:
        row = self._one(
            "SELECT seq, hash, time_ms FROM readings WHERE gateway = ? AND device = ? "
            "ORDER BY seq DESC LIMIT 1",
            (gateway, device),
        )
        return None if row is None else ChainHead(int(row[0]), str(row[1]), format_ms(int(row[2])))

    def links(self, gateway: str, device: str, seqs: Sequence[int]) -> dict[int, Link]:
        if not seqs:
            return {}
        rows = self._all(
            "SELECT seq, hash, prev FROM readings WHERE gateway = ? AND device = ? AND seq BETWEEN ? AND ?",
            (gateway, device, min(seqs), max(seqs)),
        )
        wanted = set(seqs)
        return {int(s): Link(str(h), str(p)) for s, h, p in rows if s in wanted}

    def seal_hash(self, gateway: str, seq: int) -> str | None:
        row = self._one("SELECT hash FROM seals WHERE gateway = ? AND seq = ?", (gateway, seq))
        return None if row is None else str(row[0])

    def write(self, items: WriteSet) -> None:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR IGNORE INTO seals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            s.site,
                            s.gateway,
                            s.seq,
                            s.hash,
                            s.data,
                            s.signature,
                            s.key,
                            s.count,
                            time_ms(s.first_time),
                            time_ms(s.last_time),
                        )
                        for s in items.seals
                    ],
                )
                record_ms = [time_ms(r.time) for r, _, _ in items.records]
                self._db.executemany(
                    "INSERT OR IGNORE INTO readings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (r.site, r.gateway, r.device, r.seq, at_ms, r.hash, r.prev, r.data, seal.seq, leaf)
                        for (r, seal, leaf), at_ms in zip(items.records, record_ms, strict=True)
                    ],
                )
                self._write_counter_hours(items)
                for gap in items.gaps:
                    self._write_gap(gap)
                for event in items.events:
                    self._write_event(event)
                self._db.executemany(
                    "INSERT INTO quarantine (received_ms, topic, gateway, reason, detail, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (q.received_ms, q.topic, q.gateway, q.reason, q.detail, q.payload)
                        for q in items.quarantine
                    ],
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StoreError(f"{self.path}: write failed: {exc}") from None

    def _write_counter_hours(self, items: WriteSet) -> None:
        """The hourly counter summaries of the records written, merged into the stored ones (in the
        write's transaction: a summary never counts a record the store does not hold)."""
        spans = summarize_records(r for r, _, _ in items.records)
        if not spans:
            return
        merged = merged_with_stored(spans, {}, self._stored_hours)
        self._db.executemany(_SPAN_INSERT, [span.row() for span in merged])

    def _stored_hours(self, gateway: str, device: str, first_ms: int, last_ms: int) -> list[HourSpan]:
        """A device's stored summaries of the hours first_ms..last_ms (in the write's transaction)."""
        rows = self._db.execute(
            _SPAN_SELECT + "WHERE gateway = ? AND device = ? AND hour_ms BETWEEN ? AND ?",
            (gateway, device, first_ms, last_ms),
        ).fetchall()
        return list(map(_hour_span, rows))

    def counter_hours(
        self, gateway: str, device: str, quantity: str, start_ms: int, end_ms: int
    ) -> list[HourSpan]:
        """The summaries of ``quantity`` and of all records (ALL) of a device for the hours in
        [start_ms, end_ms), by hour."""
        rows = self._all(
            _SPAN_SELECT + "WHERE gateway = ? AND device = ? AND quantity IN (?, ?) "
            "AND hour_ms >= ? AND hour_ms < ? ORDER BY hour_ms",
            (gateway, device, quantity, ALL, start_ms, end_ms),
        )
        return [_hour_span(row) for row in rows]

    def _write_gap(self, gap: Gap) -> None:
        if gap.closed:
            self._db.execute(
                "DELETE FROM gaps WHERE gateway = ? AND device = ? AND first = ?",
                (gap.gateway, gap.device, gap.first),
            )
            return
        self._db.execute(
            "INSERT OR REPLACE INTO gaps VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                gap.site,
                gap.gateway,
                gap.device,
                gap.first,
                gap.last,
                gap.time_from,
                gap.time_to,
                gap.detected_ms,
            ),
        )

    def _write_event(self, event: GatewayEvent) -> None:
        self._db.execute(
            "INSERT INTO gateway_state (gateway, site) VALUES (?, ?) ON CONFLICT(gateway) DO NOTHING",
            (event.gateway, event.site),
        )
        if event.kind == "status":
            sql = "UPDATE gateway_state SET state = ?, state_ms = ? WHERE gateway = ?"
            self._db.execute(sql, (str(event.payload.get("state")), event.received_ms, event.gateway))
        elif event.kind == "heartbeat":
            sql = "UPDATE gateway_state SET heartbeat = ?, heartbeat_ms = ? WHERE gateway = ?"
            self._db.execute(sql, (json.dumps(dict(event.payload)), event.received_ms, event.gateway))
        self._db.execute(
            "UPDATE gateway_state SET site = ?, last_seen_ms = MAX(COALESCE(last_seen_ms, 0), ?) "
            "WHERE gateway = ?",
            (event.site, event.received_ms, event.gateway),
        )

    def open_gaps(self, gateway: str | None = None, device: str | None = None) -> list[Gap]:
        rows = self._all(
            "SELECT site, gateway, device, first, last, time_from, time_to, detected_ms FROM gaps "
            "WHERE (? IS NULL OR gateway = ?) AND (? IS NULL OR device = ?) ORDER BY gateway, device, first",
            (gateway, gateway, device, device),
        )
        return [Gap(*row) for row in rows]

    def gateway_states(self) -> list[GatewayState]:
        rows = self._all(
            "SELECT site, gateway, state, state_ms, heartbeat, heartbeat_ms, last_seen_ms FROM gateway_state "
            "ORDER BY gateway",
            (),
        )
        return [
            GatewayState(site, gateway, state, state_ms, json.loads(beat) if beat else None, beat_ms, seen_ms)
            for site, gateway, state, state_ms, beat, beat_ms, seen_ms in rows
        ]

    def day_counts(self, start_ms: int, end_ms: int) -> dict[tuple[str, str], dict[int, int]]:
        rows = self._all(
            "SELECT gateway, device, (time_ms / 86400000) * 86400000 AS day, COUNT(*) FROM readings "
            "WHERE time_ms >= ? AND time_ms < ? GROUP BY gateway, device, day",
            (start_ms, end_ms),
        )
        counts: dict[tuple[str, str], dict[int, int]] = {}
        for gateway, device, day, count in rows:
            counts.setdefault((gateway, device), {})[int(day)] = int(count)
        return counts

    def hourly_last(
        self, gateway: str, device: str, quantity: str, start_ms: int, end_ms: int
    ) -> list[tuple[int, float]]:
        # SQLite returns the row of MAX(time_ms) for the bare columns: the last record of each hour.
        rows = self._all(
            "SELECT (time_ms / 3600000) * 3600000 AS hour, MAX(time_ms), "
            "json_extract(data, '$.values.' || ? || '.value') FROM readings "
            "WHERE gateway = ? AND device = ? AND time_ms >= ? AND time_ms < ? GROUP BY hour ORDER BY hour",
            (quantity, gateway, device, start_ms, end_ms),
        )
        return [(int(hour), float(value)) for hour, _, value in rows if value is not None]

    def records_between(self, gateway: str, device: str, start_ms: int, end_ms: int) -> list[StoredRecord]:
        rows = self._all(
            f"SELECT {_RECORD_COLUMNS} FROM readings WHERE gateway = ? AND device = ? "  # noqa: S608
            "AND time_ms >= ? AND time_ms < ? ORDER BY time_ms, seq",
            (gateway, device, start_ms, end_ms),
        )
        return [_stored(r) for r in rows]

    def record_before(self, gateway: str, device: str, at_ms: int) -> StoredRecord | None:
        row = self._one(
            f"SELECT {_RECORD_COLUMNS} FROM readings WHERE gateway = ? AND device = ? "  # noqa: S608
            "AND time_ms < ? ORDER BY time_ms DESC, seq DESC LIMIT 1",
            (gateway, device, at_ms),
        )
        return None if row is None else _stored(row)

    def record_at_or_after(self, gateway: str, device: str, at_ms: int) -> StoredRecord | None:
        row = self._one(
            f"SELECT {_RECORD_COLUMNS} FROM readings WHERE gateway = ? AND device = ? "  # noqa: S608
            "AND time_ms >= ? ORDER BY time_ms, seq LIMIT 1",
            (gateway, device, at_ms),
        )
        return None if row is None else _stored(row)

    def stored_seqs(self, gateway: str, device: str, seq_from: int, seq_to: int) -> list[int]:
        rows = self._all(
            "SELECT seq FROM readings WHERE gateway = ? AND device = ? AND seq BETWEEN ? AND ? ORDER BY seq",
            (gateway, device, seq_from, seq_to),
        )
        return [int(r[0]) for r in rows]

    def devices(self) -> list[tuple[str, str, str]]:
        rows = self._all("SELECT DISTINCT site, gateway, device FROM readings ORDER BY 1, 2, 3", ())
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def seal(self, gateway: str, seq: int) -> StoredSeal | None:
        row = self._one("SELECT data, signature FROM seals WHERE gateway = ? AND seq = ?", (gateway, seq))
        return None if row is None else StoredSeal(bytes(row[0]), bytes(row[1]))

    def seals_overlapping(self, gateway: str, start_ms: int, end_ms: int) -> list[SealSpan]:
        rows = self._all(
            "SELECT seq, count, first_ms, last_ms FROM seals "
            "WHERE gateway = ? AND first_ms < ? AND last_ms >= ? ORDER BY seq",
            (gateway, end_ms, start_ms),
        )
        return [SealSpan(int(a), int(b), int(c), int(d)) for a, b, c, d in rows]

    def seals_between(self, gateway: str, first_seq: int, last_seq: int) -> dict[int, StoredSeal]:
        rows = self._all(
            "SELECT seq, data, signature FROM seals WHERE gateway = ? AND seq BETWEEN ? AND ?",
            (gateway, first_seq, last_seq),
        )
        return {int(seq): StoredSeal(bytes(data), bytes(sig)) for seq, data, sig in rows}

    def records_of_seals(self, gateway: str, spans: Sequence[SealSpan]) -> list[StoredRecord]:
        if not spans:
            return []
        wanted = {span.seq for span in spans}
        rows = self._all(
            f"SELECT {_RECORD_COLUMNS} FROM readings WHERE gateway = ? AND seal_seq BETWEEN ? AND ? "  # noqa: S608
            "ORDER BY seal_seq, leaf",
            (gateway, min(wanted), max(wanted)),
        )
        return [record for record in map(_stored, rows) if record.seal_seq in wanted]

    def last_seal_by_key(self, gateway: str, key_id: str) -> int | None:
        row = self._one("SELECT MAX(seq) FROM seals WHERE gateway = ? AND key_id = ?", (gateway, key_id))
        return None if row is None or row[0] is None else int(row[0])

    def records_of_seal(self, gateway: str, seal_seq: int, first_ms: int, last_ms: int) -> list[StoredRecord]:
        rows = self._all(
            f"SELECT {_RECORD_COLUMNS} FROM readings WHERE gateway = ? AND seal_seq = ? "  # noqa: S608
            "ORDER BY leaf",
            (gateway, seal_seq),
        )
        return [_stored(r) for r in rows]

    def quarantined(self, limit: int = 100) -> list[QuarantineItem]:
        rows = self._all(
            "SELECT received_ms, topic, gateway, reason, detail, payload FROM quarantine "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [QuarantineItem(int(a), str(b), str(c), str(d), str(e), bytes(f)) for a, b, c, d, e, f in rows]

    def counts(self) -> StoreCounts:
        def count(sql: str) -> int:
            row = self._one(sql, ())
            return int(row[0]) if row else 0

        return StoreCounts(
            records=count("SELECT COUNT(*) FROM readings"),
            seals=count("SELECT COUNT(*) FROM seals"),
            quarantined=count("SELECT COUNT(*) FROM quarantine"),
            devices=count("SELECT COUNT(*) FROM (SELECT DISTINCT gateway, device FROM readings)"),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()
