"""One suite, both stores (SQLite file, real InfluxDB server): ingest semantics and read-back."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.processing import (
    HASH_LINK_BROKEN,
    MALFORMED_MESSAGE,
    SEAL_CONFLICT,
    SEQUENCE_CONFLICT,
    TOPIC_MISMATCH,
    Ingestor,
    ingest_messages,
)
from collector.store.base import Store, StoreError, holes
from collector.store.influx import InfluxStore
from collector.store.sqlite import SqliteStore
from mrv_core.record import parse_record
from mrv_core.signing import Signer
from mrv_core.timefmt import time_ms
from tests.factory import Gateway, at
from tests.harness.influxdb import InfluxDB


@pytest.fixture(params=["sqlite", "influxdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SqliteStore(tmp_path / "store.sqlite")
    else:
        influxdb: InfluxDB = request.getfixturevalue("influxdb")
        database: str = request.getfixturevalue("influx_database")
        s = InfluxStore(influxdb.url, org="mrv", bucket=database, points_per_write=7)  # many requests
    yield s
    s.close()


def _ingest(store: Store, gw: Gateway, *payloads: bytes, topic: str | None = None):  # type: ignore[no-untyped-def]
    ingestor = Ingestor(store, gw.keyring(), clock_ms=lambda: 1_767_225_600_000)
    return ingest_messages(ingestor, [(topic or gw.topic, p) for p in payloads])


def test_chain_is_stored_once_and_reads_back(store: Store) -> None:
    gw = Gateway()
    first = gw.seal([gw.record("m1", i, 100 + i) for i in range(3)] + [gw.record("m2", 0, 7)])
    second = gw.seal([gw.record("m1", i, 100 + i) for i in range(3, 5)])
    message = gw.message(first, second)
    result = _ingest(store, gw, message)
    assert (result.stored, result.duplicates, result.gaps, dict(result.quarantined)) == (6, 0, 0, {})
    again = _ingest(store, gw, message)  # a redelivery
    assert (again.stored, again.duplicates) == (0, 6)

    counts = store.counts()
    assert (counts.records, counts.seals, counts.quarantined, counts.devices) == (6, 2, 0, 2)
    head = store.head("gw-test", "m1")
    assert head is not None and head.seq == 5
    assert store.stored_seqs("gw-test", "m1", 1, 10) == [1, 2, 3, 4, 5]
    assert store.devices() == [("site-test", "gw-test", "m1"), ("site-test", "gw-test", "m2")]
    between = store.records_between("gw-test", "m1", time_ms(at(gw, 1)), time_ms(at(gw, 3)))
    assert [parse_record(r.data).seq for r in between] == [2, 3]
    before = store.record_before("gw-test", "m1", time_ms(at(gw, 1)))
    after = store.record_at_or_after("gw-test", "m1", time_ms(at(gw, 4)))
    assert before is not None and parse_record(before.data).seq == 1
    assert after is not None and parse_record(after.data).seq == 5
    assert store.record_at_or_after("gw-test", "m1", time_ms(at(gw, 5))) is None
    seal = store.seal("gw-test", 1)
    assert seal is not None and seal.data == first.seal and seal.signature == first.signature
    stored = store.records_of_seal("gw-test", 1, time_ms(at(gw, 0)), time_ms(at(gw, 2)))
    assert [r.data for r in stored] == list(first.records) and [r.leaf for r in stored] == [0, 1, 2, 3]
    links = store.links("gw-test", "m1", [2, 3, 9])
    assert set(links) == {2, 3} and links[3].prev == links[2].hash


def test_gap_then_late_fill(store: Store) -> None:
    gw = Gateway()
    records = [gw.record("m1", i, i) for i in range(6)]
    early = gw.seal(records[:2] + records[4:])
    late = gw.seal(records[2:4])
    result = _ingest(store, gw, gw.message(early))
    assert (result.stored, result.gaps) == (4, 1)
    assert holes(store.stored_seqs("gw-test", "m1", 1, 6), 1, 6) == [(3, 4)]
    result = _ingest(store, gw, gw.message(late))
    assert (result.stored, dict(result.quarantined)) == (2, {})
    assert holes(store.stored_seqs("gw-test", "m1", 1, 6), 1, 6) == []


def test_conflicting_and_unlinked_records_are_quarantined(store: Store) -> None:
    gw = Gateway()
    _ingest(store, gw, gw.message(gw.seal([gw.record("m1", i, i) for i in range(3)])))
    # A second chain under the same key (an agent whose state was lost): seq 2 again, other content.
    twin = Gateway(signer=gw.signer, seal_head=gw.seal_head)
    twin.record("m1", 0, 0)
    conflicting = twin.record("m1", 1, 999)
    result = _ingest(store, twin, twin.message(twin.seal([conflicting])))
    assert dict(result.quarantined) == {SEQUENCE_CONFLICT: 1} and result.stored == 0
    # seq 4 (next after the stored 3) that links to something else
    stray = Gateway(signer=gw.signer, seal_head=twin.seal_head)
    for i in range(3):
        stray.record("m1", i, 50 + i)
    result = _ingest(store, stray, stray.message(stray.seal([stray.record("m1", 3, 60)])))
    assert dict(result.quarantined) == {HASH_LINK_BROKEN: 1}
    head = store.head("gw-test", "m1")
    assert head is not None and head.seq == 3
    assert store.counts().quarantined == 2
    reasons = sorted(q.reason for q in store.quarantined())
    assert reasons == [HASH_LINK_BROKEN, SEQUENCE_CONFLICT]
    evidence = json.loads(store.quarantined()[0].payload)
    assert set(evidence) == {"seal", "sig", "leaf", "record"}  # kept whole for re-examination


def test_seal_conflict(store: Store) -> None:
    gw = Gateway()
    _ingest(store, gw, gw.message(gw.seal([gw.record("m1", 0, 1)])))
    other = Gateway(signer=gw.signer)  # seal seq 1 again, different records
    result = _ingest(store, other, other.message(other.seal([other.record("m2", 0, 1)])))
    assert dict(result.quarantined) == {SEAL_CONFLICT: 1}


def test_bad_messages_are_kept_and_counted(store: Store) -> None:
    gw = Gateway()
    good = gw.seal([gw.record("m1", 0, 1)])
    forged = copy.copy(good)
    object.__setattr__(forged, "signature", bytes(64))
    stranger = Gateway(signer=Signer.generate())
    big_garbage = b"\xff\x00" * 50_000  # over InfluxDB 1.x's 64 KB string limit once encoded
    results = [
        _ingest(store, gw, b"not json"),
        _ingest(store, gw, big_garbage),
        _ingest(store, gw, gw.message(forged)),
        _ingest(store, gw, stranger.message(stranger.seal([stranger.record("m1", 0, 1)]))),
        _ingest(store, gw, gw.message(good), topic="mrv/v1/site-test/gw-other/records"),
    ]
    kinds = [next(iter(r.quarantined)) for r in results]
    assert kinds == [MALFORMED_MESSAGE, MALFORMED_MESSAGE, "bad_signature", "unknown_key", TOPIC_MISMATCH]
    assert store.counts().records == 0 and store.counts().quarantined == 5
    payloads = {q.payload for q in store.quarantined()}
    assert b"not json" in payloads and big_garbage in payloads


def test_unreachable_influxdb_raises_store_error() -> None:
    gw = Gateway()
    store = InfluxStore("http://127.0.0.1:9", org="mrv", bucket="mrv", timeout_s=2)
    with pytest.raises(StoreError):
        _ingest(store, gw, gw.message(gw.seal([gw.record("m1", 0, 1)])))


def test_gaps_are_recorded_split_and_closed(store: Store) -> None:
    gw = Gateway()
    records = [gw.record("m1", i, i) for i in range(10)]
    _ingest(store, gw, gw.message(gw.seal(records[:2] + records[7:])))  # seqs 3..7 missing
    (gap,) = store.open_gaps("gw-test", "m1")
    assert (gap.first, gap.last, gap.missing) == (3, 7, 5)
    assert (gap.time_from, gap.time_to) == (at(gw, 1), at(gw, 7))
    _ingest(store, gw, gw.message(gw.seal([records[4]])))  # seq 5 arrives late: 3..4 and 6..7 remain
    assert [(g.first, g.last) for g in store.open_gaps("gw-test", "m1")] == [(3, 4), (6, 7)]
    _ingest(store, gw, gw.message(gw.seal([records[2], records[3]])))  # 3..4 filled
    assert [(g.first, g.last) for g in store.open_gaps()] == [(6, 7)]
    _ingest(store, gw, gw.message(gw.seal([records[6], records[5]])))  # in any order
    assert store.open_gaps() == []
    assert holes(store.stored_seqs("gw-test", "m1", 1, 10), 1, 10) == []


def test_gateway_status_heartbeat_and_last_seen(store: Store) -> None:
    gw = Gateway()
    base = "mrv/v1/site-test/gw-test"
    heartbeat = {"gateway": "gw-test", "time": "2026-01-01T00:00:00.000Z", "buffer": {"pending_records": 3}}
    ingestor = Ingestor(store, gw.keyring(), clock_ms=lambda: 1_767_225_600_000)
    ingest_messages(
        ingestor, [(f"{base}/status", json.dumps({"gateway": "gw-test", "state": "online"}).encode())]
    )
    ingest_messages(ingestor, [(f"{base}/heartbeat", json.dumps(heartbeat).encode())])
    ingestor.clock_ms = lambda: 1_767_225_660_000
    ingest_messages(ingestor, [(gw.topic, gw.message(gw.seal([gw.record("m1", 0, 1)])))])
    (state,) = store.gateway_states()
    assert (state.site, state.gateway, state.state) == ("site-test", "gw-test", "online")
    assert state.heartbeat is not None and state.heartbeat["buffer"] == {"pending_records": 3}
    assert state.state_ms == 1_767_225_600_000 and state.last_seen_ms == 1_767_225_660_000
    bad = ingest_messages(
        ingestor,
        [
            (f"{base}/status", b'{"gateway": "gw-test", "state": "asleep"}'),
            (f"{base}/heartbeat", b"not json"),
            (f"{base}/status", b""),
        ],
    )
    assert dict(bad.quarantined) == {
        "malformed_status": 2
    }  # the empty retained message is a clear, not an error


def test_day_counts_and_hourly_values(store: Store) -> None:
    gw = Gateway()  # records every 30 minutes across two UTC days
    _ingest(store, gw, gw.message(gw.seal([gw.record("m1", 30 * i, 100 + i) for i in range(60)])))
    day = 86_400_000
    start = time_ms(at(gw, 0))
    counts = store.day_counts(start - day, start + 3 * day)
    assert counts == {("gw-test", "m1"): {start: 48, start + day: 12}}
    hours = store.hourly_last("gw-test", "m1", "energy_active_export_total", start, start + 3 * 3_600_000)
    assert hours == [(start, 101.0), (start + 3_600_000, 103.0), (start + 7_200_000, 105.0)]
