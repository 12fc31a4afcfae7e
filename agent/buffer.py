"""The gateway's disk buffer (SQLite, WAL): chains, records, seals, counters.

Durability: ``synchronous=FULL`` by default, so a record is on disk when
:meth:`Buffer.append_reading` returns, even through a power cut (in WAL mode
NORMAL could lose the last transactions). A record and the advance of its
device chain are one transaction, so a crash can never reuse a sequence number
or break a hash link. Records leave the buffer only when the collector said
their seal is durably stored (:meth:`Buffer.delete_through`), not when the
broker acknowledged it: a broker can drop acknowledged messages. Ids are
AUTOINCREMENT: the publisher walks seals by id, and a reused id (SQLite reuses
the highest deleted rowid otherwise) would be skipped.

A seal covers a run of records by id (``first_record``..``last_record``, in
that order): sealing takes the oldest unsealed records, so the sealed records
are always those up to the last seal's ``last_record`` and a seal marks no
record. Buffers written before (each record marked with its seal) are moved
to this layout when opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mrv_core.envelope import SealedBatch
from mrv_core.record import GENESIS
from mrv_core.timefmt import format_time

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS device_chain (
    device TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL, time TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seal_chain (
    id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, seq INTEGER NOT NULL, time TEXT NOT NULL,
    hash TEXT NOT NULL, data BLOB NOT NULL,
    UNIQUE (device, seq));
CREATE TABLE IF NOT EXISTS seals (
    id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL UNIQUE, data BLOB NOT NULL,
    signature BLOB NOT NULL, count INTEGER NOT NULL, size INTEGER NOT NULL,
    first_time TEXT NOT NULL, first_record INTEGER, last_record INTEGER);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

COUNTERS = (
    "records_taken",
    "records_sealed",
    "records_delivered",
    "seals_made",
    "seals_delivered",
    "read_errors",
)

# (seal seq, prev seal hash, record hashes, first time, last time) -> (seal bytes, signature)
Sealer = Callable[[int, str, list[str], str, str], tuple[bytes, bytes]]


class BufferError(RuntimeError):
    """The buffer cannot be opened or belongs to another gateway."""


class BufferFullError(BufferError):
    """No reading is taken: the buffer reached its quota or the disk is full. Nothing buffered is touched."""


@dataclass(frozen=True)
class BufferStats:
    unsealed_records: int
    sealed_records: int
    seals: int
    oldest_time: str | None
    counters: dict[str, int]
    chains: dict[str, tuple[int, str]]

    @property
    def pending_records(self) -> int:
        return self.unsealed_records + self.sealed_records


@dataclass
class Offer:
    """A reading waiting to be written by the next group commit, and what became of it."""

    device: str
    time_text: str
    build: Callable[[int, str], tuple[bytes, str]]
    seq: int = 0
    error: BaseException | None = None
    done: bool = False


class Buffer:
    """Thread-safe: one connection, one lock; every write is one transaction."""

    def __init__(
        self,
        path: Path,
        gateway: str,
        synchronous: str = "FULL",
        quota_bytes: int | None = None,
        reserve_bytes: int = 0,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise BufferError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.quota_bytes = quota_bytes
        self.reserve_bytes = reserve_bytes  # free space readings must leave for sealing and deleting
        self.full = False  # the last reading offered was refused (quota or disk full)
        self.refused = 0  # readings refused since start (kept in memory: the disk may have no room)
        self._lock = threading.Lock()
        self._offers: list[Offer] = []  # readings waiting for the next group commit
        self._offers_lock = threading.Lock()
        self._heads: dict[str, tuple[int, str]] | None = None  # see _chain_heads
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        # Small disks: checkpoint every 1 MB of WAL and give the space back after, so that the WAL
        # never needs more room than the free-space reserve keeps.
        self._db.execute("PRAGMA wal_autocheckpoint=256")
        self._db.execute("PRAGMA journal_size_limit=2097152")
        # A gateway's memory: SQLite keeps up to 2 MB of pages per connection by default; the buffer
        # works at the tail of its tables (new records, the oldest seals), which 512 KiB holds.
        self._db.execute("PRAGMA cache_size=-512")
        self._db.executescript(SCHEMA)
        self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])  # fixed once created
        self._claim(gateway)
        _seals_by_range(self._db)

    def _claim(self, gateway: str) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='gateway'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('gateway', ?)", (gateway,))
        elif row[0] != gateway:
            raise BufferError(
                f"{self.path}: buffer belongs to gateway {row[0]!r}, config says {gateway!r}; "
                "its chains cannot continue under another id"
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction (the caller holds the lock). SQLite's "database or disk is full"
        becomes :class:`BufferFullError`; SQLite may have rolled back by itself then."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
                raise BufferFullError(f"{self.path}: {exc}") from exc
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _bump(self, name: str, by: int = 1) -> None:
        self._db.execute(
            "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
            (name, by, by),
        )

    def count_error(self) -> None:
        with self._lock, contextlib.suppress(BufferFullError), self._transaction():
            self._bump("read_errors")  # a count, not evidence: not worth failing a poll for

    def append_reading(
        self, device: str, moment: datetime, build: Callable[[int, str], tuple[bytes, str]]
    ) -> int:
        """Give ``build`` the next (seq, prev) of ``device``, store what it returns; the seq, once the
        reading is durably on disk. Raises what :meth:`append_readings` gives back."""
        (offer,) = self.append_readings([Offer(device, format_time(moment), build)])
        if offer.error is not None:
            raise offer.error
        return offer.seq

    def append_readings(self, offers: list[Offer]) -> list[Offer]:
        """Write these readings (each ``build`` is given its device's next seq and prev) and return
        them once durably on disk, each with its seq, or its error: :class:`BufferFullError`, with
        nothing written, when the buffer holds its quota, the disk has less free room than the
        reserve (sealing and deleting delivered seals need some), or the disk is full (the chain
        does not advance, so no sequence number is lost); what its ``build`` raised.

        Readings offered meanwhile by other pollers (they fire together on the wall clock's grid)
        go in the same transaction, one fsync for all (group commit): whoever holds the lock writes
        every reading offered so far; a reading whose build fails is its own failure (it takes no
        seq; the others are written). A bus offers a whole poll round at once.
        """
        with self._offers_lock:
            self._offers.extend(offers)
        with self._lock:
            if not all(offer.done for offer in offers):
                self._write_offers()
        return offers

    def _write_offers(self) -> None:
        """Every reading offered so far, in one transaction (the caller holds the lock)."""
        with self._offers_lock:
            offers, self._offers = self._offers, []
        refusal = self._no_room()
        if refusal:
            self._refuse_all(
                offers,
                BufferFullError(
                    f"{self.path}: {refusal}; no reading is taken until delivered seals free space"
                ),
            )
            return
        self._write(offers)

    def _write(self, offers: list[Offer]) -> None:
        """These readings in one transaction (the caller holds the lock and checked for room)."""
        try:
            with self._transaction():
                written = self._append_all(offers)
        except BufferFullError as exc:
            self._refuse_all(offers, exc)
            return
        except (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError) as exc:
            # A row SQLite refuses (a build's bug; never expected): the round is written again
            # reading by reading, so that the failure is that reading's own, as a build's is.
            self._heads = None
            if len(offers) == 1:
                offers[0].seq, offers[0].error, offers[0].done = 0, exc, True
                return
            for offer in offers:
                offer.seq, offer.error = 0, None
                self._write([offer])
            return
        except BaseException as exc:
            self._heads = None  # after a failed transaction, the heads are read again from the disk
            for offer in offers:
                offer.error, offer.done = exc, True
            raise
        heads = self._chain_heads()
        for device, (seq, digest, _) in written.items():
            heads[device] = (seq, digest)
        for offer in offers:
            offer.done = True
        self.full = False

    def _chain_heads(self) -> dict[str, tuple[int, str]]:
        """Each device's last (seq, hash), as committed: read once, then kept with every commit (the
        buffer is the chains' only writer; a SELECT per reading was a third of its cost)."""
        if self._heads is None:
            self._heads = {
                device: (seq, digest)
                for device, seq, digest in self._db.execute("SELECT device, seq, hash FROM device_chain")
            }
        return self._heads

    def _append_all(self, offers: list[Offer]) -> dict[str, tuple[int, str, str]]:
        """Build and insert the offered readings (in the caller's transaction), each with its
        device's next seq and prev; a reading whose build fails gets its error and takes no seq.
        Returns each device's new head (seq, hash, time)."""
        heads = self._chain_heads()
        written: dict[str, tuple[int, str, str]] = {}
        rows: list[tuple[str, int, str, str, bytes]] = []
        for offer in offers:
            last = written.get(offer.device) or heads.get(offer.device)
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            try:
                data, digest = offer.build(seq, prev)
            except Exception as exc:  # noqa: BLE001 - this reading's own failure, given back to its poller
                offer.error = exc
                continue
            offer.seq = seq
            rows.append((offer.device, seq, offer.time_text, digest, data))
            written[offer.device] = (seq, digest, offer.time_text)
        self._db.executemany(
            "INSERT INTO records (device, seq, time, hash, data) VALUES (?, ?, ?, ?, ?)", rows
        )
        self._db.executemany(
            "INSERT INTO device_chain VALUES (?, ?, ?, ?) ON CONFLICT(device) DO UPDATE "
            "SET seq = excluded.seq, hash = excluded.hash, time = excluded.time",
            [(device, seq, digest, time) for device, (seq, digest, time) in written.items()],
        )
        if rows:
            self._bump("records_taken", len(rows))
        return written

    def _refuse_all(self, offers: list[Offer], error: BufferFullError) -> None:
        for offer in offers:
            self._refuse()
            offer.seq, offer.error, offer.done = 0, error, True

    def _no_room(self) -> str:
        """Why no reading may be taken now ('' if it may): quota, or free room below the reserve.
        Pages freed by delivered seals count as room: SQLite reuses them."""
        used, freed = self._page_bytes()
        if self.quota_bytes is not None and used >= self.quota_bytes:
            return f"the buffer holds {used:,} bytes, its quota is {self.quota_bytes:,}"
        if self.reserve_bytes:
            free = shutil.disk_usage(self.path.parent).free + freed
            if free < self.reserve_bytes:
                return f"{free:,} bytes of room left on its disk, below the reserve of {self.reserve_bytes:,}"
        return ""

    def _refuse(self) -> None:
        self.full = True
        self.refused += 1

    def _page_bytes(self) -> tuple[int, int]:
        """(bytes the buffer's pages hold, bytes of pages freed by delivered seals, which SQLite reuses)."""
        pages = int(self._db.execute("PRAGMA page_count").fetchone()[0])
        free = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * self._page_size, free * self._page_size

    def used_bytes(self) -> int:
        with self._lock:
            return self._page_bytes()[0]

    def seal_pending(self, sealer: Sealer, max_records: int) -> int:
        """Seal unsealed records, oldest first, ``max_records`` per seal; records sealed."""
        total = 0
        while True:
            sealed = self._seal_once(sealer, max_records)
            if not sealed:
                return total
            total += sealed

    def _seal_once(self, sealer: Sealer, max_records: int) -> int:
        with self._lock, self._transaction():
            return self._seal(sealer, max_records)

    def _seal(self, sealer: Sealer, max_records: int) -> int:
        """One seal over the oldest unsealed records (in the caller's transaction); records sealed."""
        rows = self._db.execute(
            "SELECT id, hash, time FROM records WHERE id > ? ORDER BY id LIMIT ?",
            (sealed_through_record(self._db), max_records),
        ).fetchall()
        if not rows:
            return 0
        head = self._db.execute("SELECT seq, hash FROM seal_chain").fetchone()
        seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
        times = sorted(r[2] for r in rows)
        data, signature = sealer(seq, prev, [r[1] for r in rows], times[0], times[-1])
        first, last = rows[0][0], rows[-1][0]
        (records_size,) = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM records WHERE id BETWEEN ? AND ?", (first, last)
        ).fetchone()
        self._db.execute(
            "INSERT INTO seals (seq, data, signature, count, size, first_time, first_record, last_record) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                seq,
                data,
                signature,
                len(rows),
                len(data) + len(signature) + records_size,
                times[0],
                first,
                last,
            ),
        )
        self._db.execute(
            "INSERT INTO seal_chain VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE "
            "SET seq = excluded.seq, hash = excluded.hash",
            (seq, hashlib.sha256(data).hexdigest()),
        )
        self._bump("seals_made")
        self._bump("records_sealed", len(rows))
        return len(rows)

    def _sealed_records(self, first: int, last: int) -> tuple[bytes, ...]:
        """The records of a seal, in its order (the caller holds the lock)."""
        rows = self._db.execute(
            "SELECT data FROM records WHERE id BETWEEN ? AND ? ORDER BY id", (first, last)
        )
        return tuple(row[0] for row in rows)

    def next_batches(
        self, after_id: int, max_bytes: int, skip: Iterable[int] = ()
    ) -> list[tuple[int, SealedBatch]]:
        """Oldest sealed batches with id > ``after_id`` (minus ``skip``) up to ``max_bytes``.

        Always returns at least one batch when one exists, even if it is larger.
        """
        skipped = set(skip)
        out: list[tuple[int, SealedBatch]] = []
        used = 0
        with self._lock:
            seals = self._db.execute(
                "SELECT id, data, signature, size, first_record, last_record FROM seals "
                "WHERE id > ? ORDER BY id LIMIT 1000",
                (after_id,),
            ).fetchall()
            for seal_id, data, signature, size, first, last in seals:
                if seal_id in skipped:
                    continue
                if out and used + size > max_bytes:
                    break
                records = self._sealed_records(first, last)
                out.append((seal_id, SealedBatch(bytes(data), bytes(signature), records)))
                used += size
        return out

    def batches_by_id(self, seal_ids: Sequence[int]) -> list[tuple[int, SealedBatch]]:
        out = []
        with self._lock:
            for seal_id in sorted(seal_ids):
                row = self._db.execute(
                    "SELECT data, signature, first_record, last_record FROM seals WHERE id = ?", (seal_id,)
                ).fetchone()
                if row is None:
                    continue  # delivered meanwhile
                records = self._sealed_records(row[2], row[3])
                out.append((seal_id, SealedBatch(bytes(row[0]), bytes(row[1]), records)))
        return out

    def seal_hash(self, seal_seq: int) -> str | None:
        """SHA-256 (hex) of seal ``seal_seq`` if it is still here."""
        with self._lock:
            row = self._db.execute("SELECT data FROM seals WHERE seq = ?", (seal_seq,)).fetchone()
        return None if row is None else hashlib.sha256(bytes(row[0])).hexdigest()

    def sealed_through(self) -> int:
        """The number of the last seal this buffer made (0 before the first)."""
        with self._lock:
            row = self._db.execute("SELECT seq FROM seal_chain").fetchone()
        return 0 if row is None else int(row[0])

    def delete_through(self, seal_seq: int) -> list[int]:
        """Forget the seals numbered up to ``seal_seq`` and their records, because the collector has
        stored them all; idempotent. Returns the ids of the seals that left the buffer."""
        with self._lock, self._transaction():
            ids = [row[0] for row in self._db.execute("SELECT id FROM seals WHERE seq <= ?", (seal_seq,))]
            removed = self._db.execute(
                "DELETE FROM records WHERE id <= (SELECT MAX(last_record) FROM seals WHERE seq <= ?)",
                (seal_seq,),
            ).rowcount
            self._db.execute("DELETE FROM seals WHERE seq <= ?", (seal_seq,))
            self._bump("records_delivered", removed)
            self._bump("seals_delivered", len(ids))
        return ids

    def stats(self) -> BufferStats:
        with self._lock:
            return read_stats(self._db)


def sealed_through_record(db: sqlite3.Connection) -> int:
    """The id of the last sealed record (0 if none is): the records after it are unsealed. The
    records of delivered seals leave with their seals, so 0 is right once every seal is gone."""
    return int(db.execute("SELECT COALESCE(MAX(last_record), 0) FROM seals").fetchone()[0])


def _seals_by_range(db: sqlite3.Connection) -> None:
    """Move a buffer of the layout before (each record marked with its seal_id and leaf, two
    indexes kept on every insert) to seals that name their run of records: one transaction, one
    way (docs/gateway-install.md, upgrades)."""
    if _seals_name_ranges(db):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("ALTER TABLE seals ADD COLUMN first_record INTEGER")
        db.execute("ALTER TABLE seals ADD COLUMN last_record INTEGER")
        db.execute(
            "UPDATE seals SET first_record = (SELECT MIN(id) FROM records WHERE seal_id = seals.id), "
            "last_record = (SELECT MAX(id) FROM records WHERE seal_id = seals.id)"
        )
        db.execute("DROP INDEX IF EXISTS records_unsealed")
        db.execute("DROP INDEX IF EXISTS records_by_seal")
        # without these columns an agent of the version before refuses the buffer at start (its
        # schema indexes them) instead of sending seals without their records
        db.execute("ALTER TABLE records DROP COLUMN seal_id")
        db.execute("ALTER TABLE records DROP COLUMN leaf")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _seals_name_ranges(db: sqlite3.Connection) -> bool:
    """Whether the buffer has this layout (seals name their run of records) or the one before."""
    return "last_record" in {row[1] for row in db.execute("PRAGMA table_info(seals)")}


def read_stats(db: sqlite3.Connection) -> BufferStats:
    if _seals_name_ranges(db):
        boundary = sealed_through_record(db)
    else:  # the layout before, read-only (mrv-agent status before the agent has moved it)
        sealed_ids = "SELECT COALESCE(MAX(id), 0) FROM records WHERE seal_id IS NOT NULL"
        boundary = db.execute(sealed_ids).fetchone()[0]
    unsealed = db.execute("SELECT COUNT(*) FROM records WHERE id > ?", (boundary,)).fetchone()[0]
    sealed = db.execute("SELECT COUNT(*) FROM records WHERE id <= ?", (boundary,)).fetchone()[0]
    seals = db.execute("SELECT COUNT(*) FROM seals").fetchone()[0]
    oldest = db.execute("SELECT MIN(time) FROM records").fetchone()[0]
    counters = dict.fromkeys(COUNTERS, 0)
    counters.update(dict(db.execute("SELECT name, value FROM counters").fetchall()))
    chains = {d: (s, t) for d, s, t in db.execute("SELECT device, seq, time FROM device_chain")}
    return BufferStats(unsealed, sealed, seals, oldest, counters, chains)


def open_stats(path: Path) -> BufferStats:
    """Read-only look at a buffer another process is writing (``mrv-agent status``)."""
    if not path.exists():
        raise BufferError(f"{path}: no buffer yet (has the agent run?)")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return read_stats(db)
    finally:
        db.close()
