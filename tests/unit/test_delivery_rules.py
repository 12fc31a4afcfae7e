"""Delivery rules: the collector's watermark (seals 1..N stored, never past a hole), the agent's reading of it,
the backlog drain rate and the agent's jittered reconnect backoff."""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.client import ConnectFlags
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from agent.backoff import FLOOR_S, Backoff, reconnect_delay_s
from agent.buffer import Buffer
from agent.config import MqttSection
from agent.keys import create_signer
from agent.publisher import JitteredClient, Publisher, RateLimit
from collector.config import MqttSection as CollectorMqtt
from collector.ingest import MqttIngest
from collector.processing import Ingestor
from collector.store.base import StoreError
from collector.store.sqlite import SqliteStore
from collector.watermarks import CHUNK, Watermarks
from mrv_core.watermark import parse_watermark, watermark_payload
from tests.factory import Gateway
from tests.harness.backlog import prefill
from tests.harness.procs import wait_for


class _Seals:
    """A store that holds some seal numbers (a unit-test fake: only seals_between is used)."""

    def __init__(self, seqs: set[int]) -> None:
        self.seqs = seqs
        self.queries = 0

    def seals_between(self, gateway: str, first: int, last: int) -> dict[int, Any]:
        self.queries += 1
        return {seq: object() for seq in self.seqs if first <= seq <= last}


def test_mark_stops_at_a_hole_and_jumps_when_it_is_filled() -> None:
    marks = Watermarks(_Seals(set()))  # type: ignore[arg-type]
    assert marks.learn("gw", [1, 2, 3]) == 3
    assert marks.learn("gw", [5, 6]) == 3, "seal 4 never arrived"
    assert marks.learn("gw", [4]) == 6
    assert marks.learn("gw", [2]) == 6, "a duplicate changes nothing"
    assert marks.learn("other", [2]) == 0, "per gateway"


def test_mark_is_read_from_the_store_once_per_gateway() -> None:
    store = _Seals(set(range(1, CHUNK + 6)) | {CHUNK + 8})
    marks = Watermarks(store)  # type: ignore[arg-type]
    assert marks.learn("gw", []) == CHUNK + 5, "across more than one chunk"
    queries = store.queries
    assert marks.learn("gw", [CHUNK + 6]) == CHUNK + 6
    assert store.queries == queries, "no hole: learned from the write, not from the store"
    marks.forget()  # after a failed write
    assert marks.learn("gw", []) == CHUNK + 5 and store.queries > queries


def test_a_hole_another_collector_filled_is_read_from_the_store() -> None:
    """Two collectors on a shared subscription each store every other seal."""
    store = _Seals({1, 2})
    marks = Watermarks(store)  # type: ignore[arg-type]
    assert marks.learn("gw", [4]) == 2, "seal 3 is nowhere yet"
    store.seqs |= {3, 4, 5}  # the other instance stored 3 and 5 meanwhile
    assert marks.learn("gw", [6]) == 6


H = "ab" * 32  # a seal hash


def test_agent_reads_only_its_own_well_formed_watermark() -> None:
    assert parse_watermark(watermark_payload("gw-1", 42, H), "gw-1") == (42, H)
    for payload, reason in (
        (watermark_payload("gw-2", 42, H), "not a watermark of gateway gw-1"),
        (b'{"gateway": "gw-1", "seals_through": "42", "seal_hash": "%s"}' % H.encode(), "not a seal number"),
        (b'{"gateway": "gw-1", "seals_through": -1}', "is not a seal number"),
        (b'{"gateway": "gw-1", "seals_through": true}', "is not a seal number"),
        (b'{"gateway": "gw-1", "seals_through": 4}', "seal_hash None is not"),  # before hashes: refused
        (watermark_payload("gw-1", 4, H.upper()), "is not the SHA-256 of a seal"),
        (watermark_payload("gw-1", 0, H), "must be the zero hash"),
        (b"[1]", "not a watermark"),
        (b"", "Expecting value"),
    ):
        with pytest.raises(ValueError, match=reason):
            parse_watermark(payload, "gw-1")


def test_drain_rate_limit_averages_out() -> None:
    """1,000 records/s: a 250-record seal every quarter second, whatever the caller's rhythm."""
    rate, now, sent = RateLimit(1000.0), 0.0, 0
    while now < 10.0:
        if rate.ready(now):
            rate.spend(now, 250)
            sent += 250
        now += 0.01
    assert 9_750 <= sent <= 10_250
    unlimited = RateLimit(None)
    unlimited.spend(0.0, 10**9)
    assert unlimited.ready(0.0)


def _draws(
    attempt: int, base_s: float = 1.0, cap_s: float = 120.0, seed: int = 7, n: int = 500
) -> list[float]:
    rnd = random.Random(seed)
    return [reconnect_delay_s(attempt, base_s, cap_s, rnd) for _ in range(n)]


def test_reconnect_delay_stays_between_the_floor_and_the_ceiling() -> None:
    for attempt in (0, 1, 3, 7, 10, 5000):  # 2.0**5000 would overflow a float
        ceiling = min(120.0, 2.0 ** min(attempt, 10))
        assert all(FLOOR_S <= d <= ceiling for d in _draws(attempt)), attempt
    tiny = _draws(0, base_s=0.01, cap_s=0.01)
    assert all(0.0 < d <= 0.01 for d in tiny), "a ceiling under the floor wins"
    with pytest.raises(ValueError):
        reconnect_delay_s(-1, 1.0, 120.0, random.Random(0))


def test_reconnect_ceiling_doubles_with_attempts_up_to_the_cap() -> None:
    highest = [max(_draws(attempt, base_s=1.0, cap_s=30.0)) for attempt in range(8)]
    for attempt, top in enumerate(highest):
        ceiling = min(30.0, 2.0**attempt)
        assert 0.95 * ceiling <= top <= ceiling, (attempt, top)
    assert highest[:5] == sorted(highest[:5]) and highest[4] > 15, "grows: 1, 2, 4, 8, 16 s"
    assert all(top > 28.5 for top in highest[5:]), "then stays at the 30 s cap"


def test_reconnect_delay_is_jittered() -> None:
    """Fails on plain exponential backoff: gateways cut off together must not retry together."""
    for attempt in (0, 3, 10):
        assert reconnect_delay_s(attempt, 1.0, 120.0, random.Random(1)) != reconnect_delay_s(
            attempt, 1.0, 120.0, random.Random(2)
        ), "two gateways, the same attempt, different waits"
        draws, ceiling = _draws(attempt), min(120.0, 2.0**attempt)
        assert min(draws) < 0.25 * ceiling and max(draws) > 0.75 * ceiling, "spread over the whole interval"
        assert len(set(draws)) > 400


def test_backoff_starts_over_after_a_successful_connection(tmp_path: Path) -> None:
    backoff = Backoff(1.0, 120.0, random.Random(3))
    for _ in range(6):
        backoff.next_delay_s()
    assert backoff.attempt == 6
    backoff.reset()
    assert backoff.next_delay_s() <= 1.0 and backoff.attempt == 1

    # The publisher resets it on a successful CONNACK, not on a refused one.
    publisher = Publisher(MqttSection(), "s", "gw-1", Buffer(tmp_path / "b.sqlite", "gw-1"))
    client = publisher._client
    client.backoff.attempt = 5
    refused = ReasonCode(PacketTypes.CONNACK, "Not authorized")
    publisher._on_connect(client, None, ConnectFlags(False), refused, None)
    assert client.backoff.attempt == 5, "a refused connection keeps backing off"
    success = ReasonCode(PacketTypes.CONNACK, "Success")
    publisher._on_connect(client, None, ConnectFlags(False), success, None)
    assert client.backoff.attempt == 0


@dataclass
class _Recorded(Backoff):
    delays: list[float] = field(default_factory=list)

    def next_delay_s(self) -> float:
        self.delays.append(super().next_delay_s())
        return self.delays[-1]


def test_paho_loop_thread_waits_our_jittered_delay() -> None:
    """JitteredClient overrides a private paho method: if paho renamed it, reconnects would silently
    go back to lock-step. Against a local port that refuses connections, paho's own loop thread must
    draw from our backoff before each attempt and wait (at least) what was drawn."""
    backoff = _Recorded(0.05, 0.2, random.Random(5))
    failures: list[float] = []
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        client = JitteredClient(backoff, client_id="jitter-test")
        client.on_connect_fail = lambda _c, _u: failures.append(time.monotonic())
        client.connect_async("127.0.0.1", refusing.getsockname()[1])
        client.loop_start()
        deadline = time.monotonic() + 10
        while len(failures) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        client.loop_stop()
    assert len(failures) >= 4 and backoff.attempt >= 3
    for i, delay in enumerate(backoff.delays[:3]):
        assert failures[i + 1] - failures[i] >= delay - 0.005, (i, delay)
    assert len(set(backoff.delays)) == len(backoff.delays), "each wait drawn anew"


def test_reconnect_bounds_are_validated() -> None:
    assert MqttSection().reconnect_min_s == 1.0 and MqttSection().reconnect_max_s == 120.0
    with pytest.raises(ValueError, match=r"reconnect_max_s\n.*must be at least reconnect_min_s \(10\.0\)"):
        MqttSection(reconnect_min_s=10, reconnect_max_s=5)
    with pytest.raises(ValueError, match=r"reconnect_min_s\n.*greater than 0"):
        MqttSection(reconnect_min_s=0)


def _ingestor(tmp_path: Path) -> tuple[Ingestor, SqliteStore, Gateway]:
    store = SqliteStore(tmp_path / "store.sqlite")
    gw = Gateway()
    return Ingestor(store, gw.keyring(), clock_ms=lambda: 0), store, gw


def test_a_group_prepared_while_the_last_is_being_written_sees_its_records_as_stored(tmp_path: Path) -> None:
    """Ingest prepares the next group while the last one is written: a redelivery in between is a
    duplicate, not a second copy, and what it adds continues the chain."""
    ingestor, store, gw = _ingestor(tmp_path)
    records = [gw.record("m1", i, i) for i in range(4)]
    first_message = gw.message(gw.seal(records[:3]))
    first = ingestor.prepare_messages([(gw.topic, first_message)])
    again = ingestor.prepare_messages(
        [(gw.topic, first_message), (gw.topic, gw.message(gw.seal(records[3:])))]
    )
    assert (again.result.stored, again.result.duplicates, again.result.gaps) == (1, 3, 0)
    assert [seal.seq for seal in again.out.seals] == [2], "seal 1 is written once"
    for prepared in (first, again):
        ingestor.commit(prepared)
        ingestor.release(prepared)
    assert store.counts().records == 4 and store.counts().seals == 2
    assert not ingestor.pending_links and not ingestor.pending_seals


def test_a_failed_write_forgets_what_was_prepared_on_top_of_it(tmp_path: Path) -> None:
    ingestor, store, gw = _ingestor(tmp_path)
    message = gw.message(gw.seal([gw.record("m1", i, i) for i in range(3)]))
    ingestor.prepare_messages([(gw.topic, message)])  # its write fails: never committed
    ingestor.forget_heads()
    retried = ingestor.prepare_messages([(gw.topic, message)])
    assert retried.result.stored == 3, "prepared again from what the store holds"
    ingestor.commit(retried)
    assert store.counts().records == 3


def test_a_watermark_about_another_chain_of_seals_deletes_nothing(tmp_path: Path) -> None:
    """A retained watermark outlives its chain: the same gateway id reinstalled (a fresh buffer whose
    seals restart at 1) must not delete seals nobody stored because an old watermark says 27."""
    create_signer(tmp_path / "gateway.key")
    prefill(
        tmp_path / "b.sqlite",
        tmp_path / "gateway.key",
        gateway="gw",
        site="s",
        records=3,
        devices=1,
        seal_records=1,
    )
    buffer = Buffer(tmp_path / "b.sqlite", "gw")
    publisher = Publisher(MqttSection(), "s", "gw", buffer)
    ours = buffer.seal_hash(2)
    assert ours is not None
    for through, seal_hash, why in (
        (2, "cd" * 32, "another hash"),  # our seal 2 is not the seal 2 that was stored
        (27, "cd" * 32, "made only 3 seal"),  # we never made a seal 27
    ):
        publisher._confirmed(watermark_payload("gw", through, seal_hash))
        publisher._delete_confirmed()
        assert buffer.stats().seals == 3, why
        assert why in publisher.stats.last_error
    assert publisher.stats.foreign_watermarks == 2
    publisher._confirmed(watermark_payload("gw", 2, ours))
    assert buffer.stats().seals == 1, "ours: seals 1 and 2 leave"
    publisher._confirmed(watermark_payload("gw", 1, "ef" * 32))
    assert publisher.stats.foreign_watermarks == 2, "seal 1 left already: nothing to check, nothing to do"
    assert buffer.stats().seals == 1


class _FlakyStore(SqliteStore):
    """A real SQLite store whose first reads of seals fail, as InfluxDB does while it restarts."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures

    def seal_hash(self, gateway: str, seq: int) -> str | None:
        if self.failures:
            self.failures -= 1
            raise StoreError("store restarting")
        return super().seal_hash(gateway, seq)


def test_ingest_survives_a_store_that_fails_while_a_group_is_verified(tmp_path: Path) -> None:
    """Verifying reads the store (seals, heads, links): a failure there is waited out like a failed
    write, in order, and the worker goes on (it once died of it, and the collector stopped ingesting)."""
    gw = Gateway()
    store = _FlakyStore(tmp_path / "store.sqlite", failures=2)
    ingest = MqttIngest(CollectorMqtt(), Ingestor(store, gw.keyring(), clock_ms=lambda: 0))
    for mid, minute in enumerate((0, 3), start=1):
        message = mqtt.MQTTMessage(mid=mid, topic=gw.topic.encode())
        message.payload = gw.message(gw.seal([gw.record("m1", minute + i, i) for i in range(3)]))
        message.qos = 1
        ingest._messages.put(message)
    worker = threading.Thread(target=ingest._run, daemon=True)
    worker.start()
    try:
        wait_for(lambda: ingest.stats.messages == 2, 20, "both messages stored and acknowledged")
    finally:
        ingest._stop.set()
        worker.join(10)
    assert ingest.stats.store_errors == 2 and ingest.stats.totals.stored == 6
    assert store.counts().records == 6 and not worker.is_alive()
