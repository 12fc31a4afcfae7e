import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.buffer import Buffer, BufferError, BufferFullError, Offer, open_stats
from agent.clock import SystemClock
from agent.service import make_sealer
from mrv_core.record import GENESIS, build_record, parse_record, parse_seal
from mrv_core.signing import PublicKey, Signer
from mrv_core.verify import ChainChecker, Keyring, check_sealed_batch
from tests.factory import energy_value

SIGNER = Signer.from_seed(bytes(32))
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _append(buffer: Buffer, device: str, minute: int) -> int:
    return buffer.append_reading(device, T0 + timedelta(minutes=minute), _builder(device, minute))


def _builder(device: str, minute: int) -> Callable[[int, str], tuple[bytes, str]]:
    moment = T0 + timedelta(minutes=minute)

    def build(seq: int, prev: str) -> tuple[bytes, str]:
        return build_record(
            site="s",
            gateway="gw",
            device=device,
            profile_id="p",
            profile_sha256="a" * 64,
            seq=seq,
            prev=prev,
            time=moment,
            clock="synced",
            values={"energy_active_import_total": energy_value(minute)},
        )

    return build


def _sealer():  # type: ignore[no-untyped-def]
    return make_sealer(SIGNER, SystemClock(), "s", "gw")


def test_sequence_and_links_survive_reopen(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    assert [_append(buffer, "m1", i) for i in range(3)] == [1, 2, 3]
    assert _append(buffer, "m2", 0) == 1
    buffer.close()
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    assert _append(buffer, "m1", 3) == 4
    buffer.seal_pending(_sealer(), 100)
    ((_seal_id, batch),) = buffer.next_batches(0, 10**6)
    chain = ChainChecker()
    for data in batch.records:
        chain.add_record(parse_record(data))
    assert chain.findings == []
    assert parse_record(batch.records[0]).prev == GENESIS
    check = check_sealed_batch(
        batch.seal, batch.signature, batch.records, Keyring.of([PublicKey("gw", SIGNER.public_key_raw)])
    )
    assert check.ok and len(check.records) == 5


def test_seals_split_at_max_records_and_chain(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    for i in range(7):
        _append(buffer, "m1", i)
    assert buffer.seal_pending(_sealer(), 3) == 7
    batches = buffer.next_batches(0, 10**9)
    assert [len(b.records) for _, b in batches] == [3, 3, 1]
    seals = [parse_seal(b.seal, b.signature) for _, b in batches]
    assert [s.seq for s in seals] == [1, 2, 3]
    assert seals[1].prev == seals[0].hash and seals[2].prev == seals[1].hash


def test_delete_then_new_seal_is_not_skipped(tmp_path: Path) -> None:
    """Regression: SQLite reuses a deleted highest rowid; the publisher's cursor must still see new seals."""
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    _append(buffer, "m1", 0)
    buffer.seal_pending(_sealer(), 10)
    ((first_id, _),) = buffer.next_batches(0, 10**6)
    assert buffer.delete_through(1) == [first_id]
    _append(buffer, "m1", 1)
    buffer.seal_pending(_sealer(), 10)
    later = buffer.next_batches(first_id, 10**6)
    assert len(later) == 1 and later[0][0] > first_id


def test_message_size_bound_and_skip(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    for i in range(5):
        _append(buffer, "m1", i)
        buffer.seal_pending(_sealer(), 10)
    one = buffer.next_batches(0, 1)  # smaller than any seal: still one batch
    assert len(one) == 1
    rest = buffer.next_batches(0, 10**6, skip=[one[0][0]])
    assert [i for i, _ in rest] == [i for i, _ in buffer.next_batches(one[0][0], 10**6)]


def test_counters_and_stats(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    for i in range(4):
        _append(buffer, "m1", i)
    buffer.count_error()
    buffer.seal_pending(_sealer(), 2)
    ids = [i for i, _ in buffer.next_batches(0, 10**6)]
    assert buffer.delete_through(1) == ids[:1]
    assert buffer.delete_through(1) == []  # idempotent
    stats = open_stats(tmp_path / "b.sqlite")
    assert stats.counters["records_taken"] == 4 and stats.counters["read_errors"] == 1
    assert stats.counters["records_delivered"] == 2 and stats.pending_records == 2
    assert stats.chains["m1"][0] == 4


def test_delete_through_keeps_every_later_seal(tmp_path: Path) -> None:
    """The collector's watermark N frees seals 1..N, whatever order they were sent in, and nothing after."""
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    for i in range(5):
        _append(buffer, "m1", i)
        buffer.seal_pending(_sealer(), 10)
    ids = [i for i, _ in buffer.next_batches(0, 10**6)]
    assert buffer.delete_through(3) == ids[:3]
    left = buffer.next_batches(0, 10**6)
    assert [i for i, _ in left] == ids[3:]
    assert [parse_seal(b.seal, b.signature).seq for _, b in left] == [4, 5]
    assert buffer.stats().pending_records == 2


def test_buffer_of_another_gateway_is_refused(tmp_path: Path) -> None:
    Buffer(tmp_path / "b.sqlite", "gw").close()
    with pytest.raises(BufferError, match="belongs to gateway 'gw'"):
        Buffer(tmp_path / "b.sqlite", "gw2")


def test_failed_build_leaves_no_trace(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite", "gw")

    def broken(seq: int, prev: str) -> tuple[bytes, str]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        buffer.append_reading("m1", T0, broken)
    assert _append(buffer, "m1", 0) == 1  # the failed attempt did not consume a seq


def _chain_is_whole(buffer: Buffer, device: str, count: int) -> None:
    buffer.seal_pending(_sealer(), 10_000)
    records = [parse_record(d) for _, b in buffer.next_batches(0, 10**9) for d in b.records]
    chain = ChainChecker()
    for record in records:
        chain.add_record(record)
    assert chain.findings == [] and [r.seq for r in records if r.device == device] == list(
        range(1, count + 1)
    )


def test_quota_refuses_readings_then_resumes_without_losing_a_seq(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.sqlite", "gw", quota_bytes=256 * 1024)
    taken = 0
    with pytest.raises(BufferFullError, match="quota"):
        for minute in range(10_000):
            _append(buffer, "m1", minute)
            taken += 1
    assert 10 < taken < 10_000 and buffer.full and buffer.refused == 1
    assert buffer.stats().counters["records_taken"] == taken
    buffer.seal_pending(_sealer(), 10)
    with pytest.raises(BufferFullError):
        _append(buffer, "m1", taken)
    buffer.delete_through(taken // 20)  # the collector stored half the seals: their pages are free again
    assert _append(buffer, "m1", taken) == taken + 1, "the refused readings took no sequence number"
    assert not buffer.full and buffer.refused == 2


def test_disk_full_is_a_clean_refusal(tmp_path: Path) -> None:
    """SQLite's own 'database or disk is full' (SQLITE_FULL, as on a full disk), mid-transaction:
    the reading is refused, nothing written before is damaged, and the chain continues later."""
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    for minute in range(5):
        _append(buffer, "m1", minute)
    pages = buffer._db.execute("PRAGMA page_count").fetchone()[0]
    buffer._db.execute(f"PRAGMA max_page_count = {pages}")  # no page more: the next insert fails
    with pytest.raises(BufferFullError, match="full"):
        for minute in range(5, 500):
            _append(buffer, "m1", minute)
    assert buffer._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    taken = buffer.stats().counters["records_taken"]
    buffer._db.execute("PRAGMA max_page_count = 1000000")  # room again
    assert _append(buffer, "m1", 999) == taken + 1
    _chain_is_whole(buffer, "m1", taken + 1)


def test_sealing_and_deleting_on_a_full_disk_fail_cleanly(tmp_path: Path) -> None:
    """Even sealing needs room; on a full disk it raises BufferFullError (the caller retries) and
    leaves every seal whole or absent. (Deletes on a really full disk: the tmpfs integration test.)"""
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    for minute in range(50):
        _append(buffer, "m1", minute)
    buffer.seal_pending(_sealer(), 10)
    for minute in range(50, 60):
        _append(buffer, "m1", minute)
    pages = buffer._db.execute("PRAGMA page_count").fetchone()[0]
    buffer._db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(BufferFullError):
        buffer.seal_pending(_sealer(), 1)  # one record per seal, until a seal finds no page
    stats = buffer.stats()
    sealed_now = 10 - stats.unsealed_records
    assert 0 <= sealed_now < 10 and stats.seals == 5 + sealed_now, "each seal is whole or not there"
    assert stats.pending_records == 60 and buffer._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    buffer._db.execute("PRAGMA max_page_count = 1000000")
    buffer.seal_pending(_sealer(), 10)
    _chain_is_whole(buffer, "m1", 60)
    seals = buffer.stats().seals
    assert len(buffer.delete_through(seals)) == seals and buffer.stats().pending_records == 0


def test_readings_offered_together_are_written_in_one_transaction(tmp_path: Path) -> None:
    """Group commit: 30 pollers firing at once while a write is under way cost one more transaction,
    not 30; every reading gets its own seq and its chain holds; a reading whose build fails fails
    alone."""
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    begins: list[str] = []
    buffer._db.set_trace_callback(lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None)
    first_in = threading.Event()
    release = threading.Event()

    def slow(seq: int, prev: str) -> tuple[bytes, str]:  # holds the lock while the others queue up
        first_in.set()
        release.wait(10)
        return build_record(
            site="s",
            gateway="gw",
            device="m0",
            profile_id="p",
            profile_sha256="a" * 64,
            seq=seq,
            prev=prev,
            time=T0,
            clock="synced",
            values={"energy_active_import_total": energy_value(0)},
        )

    def broken(seq: int, prev: str) -> tuple[bytes, str]:
        raise ValueError("this meter's reading cannot be built")

    results: dict[str, object] = {}

    def offer(device: str) -> None:
        try:
            results[device] = (
                _append(buffer, device, 1) if device != "bad" else buffer.append_reading(device, T0, broken)
            )
        except ValueError as exc:
            results[device] = exc

    first = threading.Thread(target=lambda: results.__setitem__("m0", buffer.append_reading("m0", T0, slow)))
    first.start()
    assert first_in.wait(10)
    others = [threading.Thread(target=offer, args=(f"m{i}",)) for i in range(1, 30)]
    others.append(threading.Thread(target=offer, args=("bad",)))
    for thread in others:
        thread.start()
    time.sleep(0.3)  # all 30 have offered and wait for the lock
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    assert len(begins) == 2, "the first reading's transaction, then one for the 30 that queued"
    assert all(results[f"m{i}"] == 1 for i in range(30))
    assert isinstance(results["bad"], ValueError)
    stats = buffer.stats()
    assert stats.counters["records_taken"] == 30 and "bad" not in stats.chains


def test_the_buffer_keeps_a_small_page_cache(tmp_path: Path) -> None:
    """A gateway's memory: 512 KiB of SQLite pages, not the default 2 MB."""
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    assert buffer._db.execute("PRAGMA cache_size").fetchone()[0] == -512


def test_the_agent_tunes_glibcs_malloc_where_there_is_one() -> None:
    """Two arenas and a fixed mmap threshold (agent/cli.py): mallopt accepts every parameter."""
    import platform

    from agent.cli import _lean_malloc

    assert _lean_malloc() is (platform.libc_ver()[0] == "glibc")


def _to_the_layout_before(path: Path) -> None:
    """Rewrite a buffer as the agent wrote it before seals named their run of records: each sealed
    record marked with its seal's id and its leaf, two indexes over those marks."""
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("ALTER TABLE records ADD COLUMN seal_id INTEGER")
    db.execute("ALTER TABLE records ADD COLUMN leaf INTEGER")
    for seal_id, first, last in db.execute("SELECT id, first_record, last_record FROM seals").fetchall():
        ids = [
            row[0]
            for row in db.execute(
                "SELECT id FROM records WHERE id BETWEEN ? AND ? ORDER BY id", (first, last)
            )
        ]
        db.executemany(
            "UPDATE records SET seal_id = ?, leaf = ? WHERE id = ?",
            [(seal_id, n, i) for n, i in enumerate(ids)],
        )
    db.execute("ALTER TABLE seals DROP COLUMN first_record")
    db.execute("ALTER TABLE seals DROP COLUMN last_record")
    db.execute("CREATE INDEX records_unsealed ON records (id) WHERE seal_id IS NULL")
    db.execute("CREATE INDEX records_by_seal ON records (seal_id, leaf)")
    db.close()


def test_a_buffer_of_the_layout_before_is_moved_without_losing_a_record(tmp_path: Path) -> None:
    """A gateway upgraded with seals not yet delivered and records not yet sealed: the same
    batches go out, the unsealed records are sealed next, and delivery deletes what it did."""
    path = tmp_path / "b.sqlite"
    buffer = Buffer(path, "gw")
    for minute in range(25):
        _append(buffer, "m1", minute)
        _append(buffer, "m2", minute)
    buffer.seal_pending(_sealer(), 10)  # 5 seals of 10
    buffer.delete_through(1)  # the first one delivered
    for minute in range(25, 30):
        _append(buffer, "m1", minute)  # 5 unsealed
    before = buffer.next_batches(0, 10**9)
    stats = buffer.stats()
    buffer.close()
    _to_the_layout_before(path)
    assert open_stats(path) == stats, "mrv-agent status reads the layout before as it is"

    moved = Buffer(path, "gw")
    assert moved.next_batches(0, 10**9) == before and moved.stats() == stats
    assert moved.seal_pending(_sealer(), 10) == 5
    assert moved.delete_through(3) == [2, 3]
    left = moved.next_batches(0, 10**9)
    assert [parse_seal(b.seal, b.signature).seq for _, b in left] == [4, 5, 6]
    assert moved.stats().pending_records == 25
    assert moved._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    indexes = {row[0] for row in moved._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert not indexes & {"records_unsealed", "records_by_seal"}
    columns = {row[1] for row in moved._db.execute("PRAGMA table_info(records)")}
    assert not columns & {"seal_id", "leaf"}, "an agent of the version before refuses it at start"
    records = [parse_record(data) for _, batch in left for data in batch.records]
    assert [r.seq for r in records if r.device == "m1"] == list(range(16, 31))
    assert [r.seq for r in records if r.device == "m2"] == list(range(16, 26))


def test_a_row_sqlite_refuses_is_that_readings_own_failure(tmp_path: Path) -> None:
    """A round is one INSERT statement; a build that returns what SQLite cannot store (a bug) fails
    its own reading, not the round: the others are written with their chains whole."""
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    _append(buffer, "m1", 0)
    offers = [Offer(device, T0.isoformat(), _builder(device, minute=1)) for device in ("m1", "m2")]
    offers.insert(1, Offer("bad", T0.isoformat(), lambda seq, prev: (None, "0" * 64)))  # type: ignore[arg-type,return-value]
    buffer.append_readings(offers)
    assert [o.seq for o in offers] == [2, 0, 1]
    assert offers[0].error is None and offers[2].error is None
    assert isinstance(offers[1].error, sqlite3.IntegrityError)
    assert buffer.stats().chains.keys() == {"m1", "m2"} and buffer.stats().counters["records_taken"] == 3
    assert _append(buffer, "m1", 2) == 3 and _append(buffer, "bad", 2) == 1
    _chain_is_whole(buffer, "m1", 3)
