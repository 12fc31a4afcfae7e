"""Nothing lost when the broker drops what it acknowledged.

Mosquitto with a small ``max_queued_messages`` (its default is 1000) keeps
only a few messages for a collector that is away, acknowledges every publish
to the agent, and drops the rest without a word. The agent must keep each
seal until the collector says it is stored, and send again what never
arrived. Real broker, real agent and collector processes.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import signal
import sqlite3
import subprocess
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from agent.buffer import BufferStats, open_stats
from mrv_core.watermark import watermark_payload, watermark_topic
from tests.harness.backlog import prefill
from tests.harness.influxdb import InfluxDB
from tests.harness.mosquitto import Mosquitto, start_mosquitto
from tests.harness.netcut import CuttableRelay
from tests.harness.procs import Proc, free_port, wait_for
from tests.harness.programs import command, init_gateway
from tests.integration.test_pipeline import START, _verify_export, site_for

ROOT = Path(__file__).parents[2]
GATEWAY, SITE = "gw-drop", "drop-site"
DEVICES, RECORDS, PER_SEAL = 5, 1000, 25  # 40 seals, one per message
BROKER_DOWN_S = 180


def _configs(
    folder: Path, port: int, confirm_timeout_s: float = 2, unconfirmed: int = 100
) -> tuple[Path, Path]:
    agent = folder / "agent.yaml"
    agent.write_text(
        json.dumps(
            {
                "gateway": {"id": GATEWAY, "site": SITE, "key_file": "gateway.key"},
                "profiles_dir": str(ROOT / "firmware_profiles"),
                "buffer": {"path": "buffer.sqlite"},
                "seal": {"interval_s": 3600, "max_records": PER_SEAL},
                "mqtt": {
                    "port": port,
                    "client_id": f"agent-{folder.name}",
                    "max_message_bytes": 4096,  # smaller than a seal: one seal per message
                    "confirm_timeout_s": confirm_timeout_s,
                    "max_unconfirmed_seals": unconfirmed,
                },
                "devices": [  # nothing answers there: the agent only drains its backlog
                    {
                        "id": "m0-1",
                        "profile": "eastron-sdm630-v2",
                        "unit_id": 1,
                        "poll_interval_s": 3600,
                        "transport": {"host": "127.0.0.1", "port": free_port(), "timeout_s": 1},
                    }
                ],
            }
        )
    )
    init_gateway(agent, folder / "keys.json")
    collector = folder / "collector.yaml"
    collector.write_text(
        json.dumps(
            {
                "mqtt": {"port": port, "client_id": f"collector-{folder.name}"},
                "store": {"type": "sqlite", "path": str(folder / "collector.sqlite")},
                "keyring": str(folder / "keys.json"),
                "profiles_dir": str(ROOT / "firmware_profiles"),
            }
        )
    )
    return agent, collector


def _backlog(
    folder: Path,
    port: int,
    records: int = RECORDS,
    confirm_timeout_s: float = 2,
    *,
    per_seal: int = PER_SEAL,
    unconfirmed: int = 100,
) -> tuple[Path, Path]:
    """Agent and collector configs, and ``records`` readings waiting in the agent's buffer."""
    configs = _configs(folder, port, confirm_timeout_s, unconfirmed)
    prefill(
        folder / "buffer.sqlite",
        folder / "gateway.key",
        gateway=GATEWAY,
        site=SITE,
        records=records,
        devices=DEVICES,
        seal_records=per_seal,
    )
    return configs


# Readings, not the gap records the agent signs for its device that nothing answers (SQL on the
# stored bytes, not our store code).
READING = 'CAST(data AS TEXT) LIKE \'%"kind":"reading"%\''
GAP = 'CAST(data AS TEXT) LIKE \'%"kind":"gap"%\''


def _stored(folder: Path) -> dict[str, list[int]]:
    """The seqs of the readings the collector's store holds, per device (read by SQL, not by our
    store code)."""
    seqs: dict[str, list[int]] = defaultdict(list)
    path = folder / "collector.sqlite"
    if path.exists():
        db = sqlite3.connect(path)
        try:
            for device, seq in db.execute(
                f"SELECT device, seq FROM readings WHERE gateway = ? AND {READING}", (GATEWAY,)
            ):
                seqs[device].append(seq)
        except sqlite3.OperationalError:  # not created yet
            pass
        finally:
            db.close()
    return seqs


def _assert_all_once(folder: Path, records: int = RECORDS) -> None:
    per_device = records // DEVICES
    assert {d: sorted(s) for d, s in _stored(folder).items()} == {
        f"m0-{n}": list(range(1, per_device + 1)) for n in range(1, DEVICES + 1)
    }, "every reading stored exactly once"
    db = sqlite3.connect(folder / "collector.sqlite")
    (quarantined,) = db.execute("SELECT COUNT(*) FROM quarantine").fetchone()
    (open_gaps,) = db.execute("SELECT COUNT(*) FROM gaps WHERE first <= last").fetchone()
    # The agent's device m0-1 never answers (its host has nobody): the polls it missed are signed
    # as gap records after the backlog's readings, in m0-1's chain.
    gap_seqs = [seq for (seq,) in db.execute(f"SELECT seq FROM readings WHERE device = 'm0-1' AND {GAP}")]
    (others,) = db.execute(f"SELECT COUNT(*) FROM readings WHERE NOT ({READING}) AND NOT ({GAP})").fetchone()
    db.close()
    assert quarantined == 0
    assert open_gaps == 0, "every hole was filled"
    assert others == 0 and all(seq > per_device for seq in gap_seqs)
    stats = open_stats(folder / "buffer.sqlite")
    assert stats.counters["records_delivered"] == records + len(gap_seqs) and stats.seals == 0


def _assert_taken_stored_once(stats: BufferStats, store: Path) -> None:
    """A live run: everything the agent took was delivered, and the SQLite store holds each device's
    seqs 1..N once, with nothing quarantined."""
    taken = stats.counters["records_taken"]
    assert stats.pending_records == 0 and stats.counters["records_delivered"] == taken
    db = sqlite3.connect(store)
    rows = db.execute("SELECT device, COUNT(*), MIN(seq), MAX(seq) FROM readings GROUP BY device").fetchall()
    (quarantined,) = db.execute("SELECT COUNT(*) FROM quarantine").fetchone()
    db.close()
    assert quarantined == 0 and sum(n for _, n, _, _ in rows) == taken
    assert all(n == high and low == 1 for _, n, low, high in rows), "each seq once, none missing"


def _drain_then_stop(folder: Path, agent: Proc, collector: Proc, timeout_s: float, what: str) -> None:
    """Wait until the agent's buffer is empty (everything confirmed stored), then stop both cleanly."""
    try:
        wait_for(lambda: open_stats(folder / "buffer.sqlite").pending_records == 0, timeout_s, what)
    finally:
        assert agent.stop() == 0, agent.output()
        assert collector.stop() == 0, collector.output()


def _live_agent(config: Path, log: Path, drain_s: int = 60) -> Proc:
    """``mrv-agent run`` polling the site's simulated meters; on stop it delivers for up to ``drain_s``."""
    return Proc(command("agent", "run", "--config", str(config), "--drain-timeout", str(drain_s)), log)


def _collector(folder: Path, config: Path, name: str) -> Proc:
    proc = Proc(command("collector", "run", "--config", str(config)), folder / f"{name}.log")
    wait_for(lambda: "subscribed to" in proc.output(), 30, "the collector to subscribe")
    return proc


@pytest.mark.integration
def test_a_drain_into_a_broker_at_its_default_queue_limit_loses_nothing(tmp_path: Path) -> None:
    """Mosquitto as installed (max_queued_messages 1000) while the collector is away: 1,500 seals of
    2 readings, one per message, so the broker acknowledges them all and drops 500."""
    broker = start_mosquitto(tmp_path / "broker", max_queued=None)
    records, seals = 3000, 1500
    try:
        agent_config, collector_config = _backlog(
            tmp_path, broker.port, records=records, per_seal=2, unconfirmed=2000
        )
        assert _collector(tmp_path, collector_config, "collector-1").stop() == 0
        agent = Proc(command("agent", "run", "--config", str(agent_config)), tmp_path / "agent.log")
        broker_log = tmp_path / "broker/mosquitto.log"
        wait_for(lambda: "being dropped" in broker_log.read_text(), 60, "the broker to drop what it took")
        time.sleep(1)
        assert open_stats(tmp_path / "buffer.sqlite").seals == seals, "a PUBACK must not delete anything"
        collector = _collector(tmp_path, collector_config, "collector-2")
        _drain_then_stop(tmp_path, agent, collector, 120, "every seal to be confirmed stored")
        assert "sending them again from the oldest" in agent.output()
        _assert_all_once(tmp_path, records)
    finally:
        broker.stop()


@pytest.mark.integration
def test_acknowledged_but_dropped_seals_are_sent_again(tmp_path: Path) -> None:
    broker = start_mosquitto(tmp_path / "broker", max_queued=5)
    try:
        agent_config, collector_config = _backlog(tmp_path, broker.port)
        # The collector's persistent session exists, then the collector goes away: the broker now
        # queues at most 5 messages for it and drops the rest, acknowledging every publish.
        assert _collector(tmp_path, collector_config, "collector-1").stop() == 0
        agent = Proc(command("agent", "run", "--config", str(agent_config)), tmp_path / "agent.log")
        broker_log = tmp_path / "broker/mosquitto.log"
        wait_for(
            lambda: "being dropped" in broker_log.read_text(),
            30,
            "the broker to drop messages it acknowledged",
        )
        time.sleep(1)
        assert open_stats(tmp_path / "buffer.sqlite").seals == RECORDS // PER_SEAL, (
            "a PUBACK must not delete anything"
        )
        collector = _collector(tmp_path, collector_config, "collector-2")
        _drain_then_stop(tmp_path, agent, collector, 90, "every seal to be confirmed stored")
        assert "sending them again from the oldest" in agent.output()
        _assert_all_once(tmp_path)
    finally:
        broker.stop()


AGENT_KILLS, COLLECTOR_KILLS = 20, 10


def _backlog_stored(folder: Path) -> int:
    """Readings of the pre-filled backlog (devices m0-*) in the collector's store."""
    db = sqlite3.connect(folder / "collector.sqlite")
    try:
        (count,) = db.execute(
            f"SELECT COUNT(*) FROM readings WHERE device LIKE 'm0-%' AND {READING}"
        ).fetchone()
    except sqlite3.OperationalError:
        count = 0  # not created yet
    finally:
        db.close()
    return int(count)


@pytest.mark.integration
def test_agent_killed_20_times_and_collector_10_times(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """SIGKILL, as a power cut would, at random moments: the agent while it polls two meters (buffer
    writes, sealing) and drains a backlog (publishing, deleting on watermarks), the collector while it
    ingests. Every reading taken is stored once, and the chains hold."""
    rnd = random.Random(4)
    store = {"type": "sqlite", "path": str(tmp_path / "collector.sqlite")}
    with site_for(tmp_path, mosquitto, store) as site:
        config = json.loads(site.agent_config.read_text())
        config["mqtt"].update(confirm_timeout_s=3, max_records_per_s=200)  # the drain outlasts the kills
        site.agent_config.write_text(json.dumps(config))
        prefill(  # a backlog beside the live meters' chains, so that there is always something to send
            tmp_path / "state/buffer.sqlite",
            tmp_path / "state/gateway.key",
            gateway=config["gateway"]["id"],
            site=config["gateway"]["site"],
            records=10_000,
            devices=DEVICES,
            seal_records=PER_SEAL,
        )
        kinds = ["agent"] * AGENT_KILLS + ["collector"] * COLLECTOR_KILLS
        rnd.shuffle(kinds)
        collector = _collector(tmp_path, site.collector_config, "collector-0")
        agent = _live_agent(site.agent_config, tmp_path / "agent-0.log")
        try:
            for round_, kind in enumerate(kinds, start=1):
                time.sleep(rnd.uniform(0.3, 1.2))
                if kind == "collector":
                    collector.kill()
                    collector = _collector(tmp_path, site.collector_config, f"collector-{round_}")
                else:
                    agent.kill()
                    agent = _live_agent(site.agent_config, tmp_path / f"agent-{round_}.log")
            assert _backlog_stored(tmp_path) < 10_000, "the drain ended before the last kill"
            agent.stop()  # the last one drains at full speed
            config["mqtt"].pop("max_records_per_s")
            site.agent_config.write_text(json.dumps(config))
            agent = _live_agent(site.agent_config, tmp_path / "agent-last.log")
            wait_for(lambda: _backlog_stored(tmp_path) == 10_000, 120, "the backlog to be stored")
            assert agent.stop() == 0, agent.output()  # stops polling, delivers what is left
        finally:
            agent.stop()
            assert collector.stop() == 0, collector.output()
    stats = open_stats(tmp_path / "state/buffer.sqlite")
    assert stats.counters["records_taken"] > 10_000, "the meters were read between the kills"
    _assert_taken_stored_once(stats, tmp_path / "collector.sqlite")
    db = sqlite3.connect(tmp_path / "collector.sqlite")
    (open_gaps,) = db.execute("SELECT COUNT(*) FROM gaps WHERE first <= last").fetchone()
    db.close()
    assert open_gaps == 0, "every hole a kill made was filled"


@pytest.mark.integration
def test_broker_down_for_minutes_while_meters_are_polled(tmp_path: Path) -> None:
    """The broker is stopped for BROKER_DOWN_S (three minutes) while the agent polls its meters: it
    buffers on disk, reconnects when the broker is back, and the backlog drains while new readings
    keep coming. Everything taken is stored once."""
    broker = start_mosquitto(tmp_path / "broker")
    store = {"type": "sqlite", "path": str(tmp_path / "collector.sqlite")}
    try:
        with site_for(tmp_path, broker, store) as site:
            config = json.loads(site.agent_config.read_text())
            config["mqtt"].update(reconnect_max_s=5)  # the test need not wait for a two-minute retry
            site.agent_config.write_text(json.dumps(config))
            collector = _collector(tmp_path, site.collector_config, "collector")
            agent = _live_agent(site.agent_config, tmp_path / "agent.log")
            try:
                time.sleep(3)
                broker.proc.stop()
                taken_before = open_stats(tmp_path / "state/buffer.sqlite").counters["records_taken"]
                time.sleep(BROKER_DOWN_S)
                during = open_stats(tmp_path / "state/buffer.sqlite")
                broker.restart(down_s=0)
                wait_for(lambda: agent.output().count("connected to mqtt://") >= 2, 60, "the agent back")
                time.sleep(3)
                assert agent.stop() == 0, agent.output()
            finally:
                agent.stop()
                assert collector.stop() == 0, collector.output()
        assert during.counters["records_taken"] - taken_before > BROKER_DOWN_S, "polled all along"
        assert during.pending_records > BROKER_DOWN_S, "kept on disk while the broker was away"
        _assert_taken_stored_once(open_stats(tmp_path / "state/buffer.sqlite"), tmp_path / "collector.sqlite")
    finally:
        broker.stop()


@pytest.mark.integration
def test_a_watermark_left_by_another_installation_deletes_nothing(tmp_path: Path) -> None:
    """The broker holds a retained watermark for this gateway id from before (a reinstalled gateway,
    another installation's collector): the agent must not delete its seals on it."""
    broker = start_mosquitto(tmp_path / "broker")
    try:
        agent_config, collector_config = _backlog(tmp_path, broker.port)
        stale = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="old-collector")
        stale.connect("127.0.0.1", broker.port)
        stale.loop_start()
        topic = watermark_topic("mrv/v1", SITE, GATEWAY)
        stale.publish(topic, watermark_payload(GATEWAY, 30, "ab" * 32), qos=1, retain=True).wait_for_publish(
            10
        )
        stale.loop_stop()
        stale.disconnect()
        agent = Proc(command("agent", "run", "--config", str(agent_config)), tmp_path / "agent.log")
        wait_for(lambda: "ignored the watermark" in agent.output(), 30, "the agent to see the stale mark")
        assert open_stats(tmp_path / "buffer.sqlite").seals == RECORDS // PER_SEAL, "nothing deleted"
        collector = _collector(tmp_path, collector_config, "collector")
        _drain_then_stop(tmp_path, agent, collector, 90, "every seal to be confirmed stored")
        _assert_all_once(tmp_path)
    finally:
        broker.stop()


@pytest.mark.integration
def test_broker_crash_and_influxdb_outage_during_a_live_run(
    tmp_path: Path, influxdb: InfluxDB, influx_database: str
) -> None:
    """Meters polled all along. The collector goes away, the broker takes seals for it, then is
    SIGKILLed (what it held dies with it: it saves its persistence file only now and then) and
    restarted; then InfluxDB is stopped and restarted. Every reading taken is stored once."""
    broker = start_mosquitto(tmp_path / "broker")  # this test's own: it gets killed
    store = {"type": "influxdb", "url": influxdb.url, "bucket": influx_database}
    try:
        with site_for(tmp_path, broker, store) as site:
            collector = _collector(tmp_path, site.collector_config, "collector-1")
            agent = _live_agent(site.agent_config, tmp_path / "agent.log")
            try:
                time.sleep(3)
                assert collector.stop() == 0, collector.output()
                time.sleep(5)  # seals go to the broker, queued for the collector's session
                broker.restart(down_s=2, sig=signal.SIGKILL)
                collector = _collector(tmp_path, site.collector_config, "collector-2")
                time.sleep(3)
                influxdb.restart(down_s=3)
                time.sleep(4)
                assert agent.stop() == 0, agent.output()
            finally:
                agent.stop()
                assert collector.stop() == 0, collector.output()
        stats = open_stats(tmp_path / "state/buffer.sqlite")
        taken = stats.counters["records_taken"]
        assert stats.pending_records == 0 and stats.counters["records_delivered"] == taken
        series = influxdb.query(
            "SELECT seq FROM mrv_reading WHERE gateway = 'gw-it-01' GROUP BY device", influx_database
        )["results"][0]["series"]
        seqs = {s["tags"]["device"]: sorted(v[1] for v in s["values"]) for s in series}
        assert sum(map(len, seqs.values())) == taken
        assert all(found == list(range(1, len(found) + 1)) for found in seqs.values()), (
            "each seq once, none missing"
        )
        assert "store unavailable" in (tmp_path / "collector-2.log").read_text(), "InfluxDB was really away"
        assert "the broker did not keep our session" in (tmp_path / "agent.log").read_text()
    finally:
        broker.stop()


@pytest.mark.integration
def test_network_cut_without_a_close(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The link between agent and broker goes silent (no FIN, no RST): keepalive notices, the agent
    buffers, reconnects when the network is back and nothing is lost or doubled."""
    relay = CuttableRelay(mosquitto.port).start()
    store = {"type": "sqlite", "path": str(tmp_path / "collector.sqlite")}
    try:
        with site_for(tmp_path, mosquitto, store) as site:
            config = json.loads(site.agent_config.read_text())
            config["mqtt"].update(port=relay.port, keepalive_s=5)  # the agent goes through the relay
            site.agent_config.write_text(json.dumps(config))
            collector = _collector(tmp_path, site.collector_config, "collector")
            agent = _live_agent(site.agent_config, tmp_path / "agent.log")
            try:
                time.sleep(3)
                relay.cut_network()
                wait_for(lambda: "disconnected from the broker" in agent.output(), 30, "keepalive to notice")
                time.sleep(2)  # readings keep being taken, into the buffer
                relay.restore_network()
                wait_for(lambda: agent.output().count("connected to mqtt://") >= 2, 60, "a reconnection")
                time.sleep(2)
                assert agent.stop() == 0, agent.output()
            finally:
                agent.stop()
                assert collector.stop() == 0, collector.output()
        stats = open_stats(tmp_path / "state/buffer.sqlite")
        _assert_taken_stored_once(stats, tmp_path / "collector.sqlite")
    finally:
        relay.stop()


@pytest.mark.integration
def test_gateway_clock_stepped_back_an_hour(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The gateway restarts with its clock an hour behind (a lost RTC, a bad NTP answer): sequence
    numbers go on, times go back; nothing is lost, doubled or refused, and the evidence still verifies."""
    store = {"type": "sqlite", "path": str(tmp_path / "collector.sqlite")}
    with site_for(tmp_path, mosquitto, store) as site:
        collector = _collector(tmp_path, site.collector_config, "collector")
        try:
            for run, back_s in enumerate((0, 3600)):
                config = json.loads(site.agent_config.read_text())
                clock = config["simulated_clock"]
                clock["start"] = (START - timedelta(seconds=back_s)).isoformat()
                clock["anchor_unix"] = time.time()
                site.agent_config.write_text(json.dumps(config))
                agent = _live_agent(site.agent_config, tmp_path / f"agent-{run}.log", drain_s=30)
                time.sleep(4)
                assert agent.stop() == 0, agent.output()
        finally:
            assert collector.stop() == 0, collector.output()
        stats = open_stats(tmp_path / "state/buffer.sqlite")
        taken = stats.counters["records_taken"]
        assert stats.pending_records == 0 and stats.counters["records_delivered"] == taken
        db = sqlite3.connect(tmp_path / "collector.sqlite")
        rows = db.execute("SELECT device, seq, time_ms FROM readings ORDER BY device, seq").fetchall()
        (quarantined,) = db.execute("SELECT COUNT(*) FROM quarantine").fetchone()
        db.close()
        assert len(rows) == taken and quarantined == 0
        by_device: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for device, seq, at in rows:
            by_device[device].append((seq, at))
        for device, readings in by_device.items():
            assert [seq for seq, _ in readings] == list(range(1, len(readings) + 1)), device
            steps = [b - a for (_, a), (_, b) in itertools.pairwise(readings)]
            assert min(steps) < -50 * 60_000, f"{device}: the step back is in the evidence as signed"
        _verify_export(site)


@pytest.mark.integration
def test_two_collectors_on_a_shared_subscription_one_killed(tmp_path: Path) -> None:
    """Two collectors share the load ($share/...) and one store; one is killed with SIGKILL mid-drain.
    Mosquitto keeps handing the dead one its share until its session expires (5 s here, 60 s by
    default in a shared group); the agent sends again what was not confirmed, the other stores it,
    and the gaps each collector saw in the other's share are closed."""
    broker = start_mosquitto(tmp_path / "broker")
    records = 10 * RECORDS
    try:
        agent_config, collector_config = _backlog(tmp_path, broker.port, records=records, confirm_timeout_s=3)
        configs = []
        for name in ("a", "b"):
            config = json.loads(collector_config.read_text())
            config["mqtt"].update(
                client_id=f"collector-{name}-{tmp_path.name}", shared_group="mrv", session_expiry_s=5
            )
            path = tmp_path / f"collector-{name}.yaml"
            path.write_text(json.dumps(config))
            configs.append(path)
        first, second = (_collector(tmp_path, path, path.stem) for path in configs)
        agent = Proc(command("agent", "run", "--config", str(agent_config)), tmp_path / "agent.log")
        try:
            wait_for(lambda: sum(map(len, _stored(tmp_path).values())) > records // 5, 60, "a fifth stored")
            first.kill()
        finally:
            _drain_then_stop(
                tmp_path, agent, second, 120, "every seal confirmed stored by the collector left"
            )
        assert "subscribed to $share/mrv/" in second.output()
        _assert_all_once(tmp_path, records)
    finally:
        broker.stop()


@pytest.mark.integration
def test_buffer_disk_full(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The gateway's state lives on a 4 MB filesystem (tmpfs) that fills while the collector is away:
    readings are refused when the room left falls below the reserve; then another file takes the
    rest, so that even deleting delivered seals fails (the agent keeps going and retries). When the
    disk is freed the buffer drains and readings resume; nothing is lost, damaged or doubled.
    Needs root (mount), as `make test` runs."""
    store = {"type": "sqlite", "path": str(tmp_path / "collector.sqlite")}
    with site_for(tmp_path, mosquitto, store) as site:
        config = json.loads(site.agent_config.read_text())
        config["buffer"]["min_free_mb"] = 1.5  # the room kept for sealing and deleting
        for device in config["devices"]:
            device["poll_interval_s"] = 1  # 120 readings a second: the disk fills in seconds
        site.agent_config.write_text(json.dumps(config))
        state = tmp_path / "state"
        key = (state / "gateway.key").read_bytes()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(state)],
            capture_output=True,
            text=True,
        )
        assert mounted.returncode == 0, f"cannot mount a tmpfs (run the suite as root): {mounted.stderr}"
        try:
            (state / "gateway.key").write_bytes(key)
            (state / "gateway.key").chmod(0o600)
            agent = _live_agent(site.agent_config, tmp_path / "agent.log")
            collector = None
            try:
                wait_for(lambda: "acquisition paused" in agent.output(), 120, "the disk to fill")
                time.sleep(2)  # it stays paused, and alive
                assert agent.alive(), agent.output()
                full = open_stats(state / "buffer.sqlite")
                # Something else takes the reserve too: now the disk is really full (closing the
                # filler may fail too, flushing what did not fit).
                with contextlib.suppress(OSError), (state / "filler").open("wb") as filler:
                    while True:
                        filler.write(b"\0" * 65536)
                        filler.flush()
                collector = _collector(tmp_path, site.collector_config, "collector")
                time.sleep(3)  # watermarks arrive; deleting needs room too
                assert agent.alive(), agent.output()
                (state / "filler").unlink()  # the operator frees the disk
                wait_for(lambda: "acquisition resumed" in agent.output(), 120, "room again after delivery")
                time.sleep(2)
                assert agent.stop() == 0, agent.output()
            finally:
                agent.stop()
                if collector is not None:
                    assert collector.stop() == 0, collector.output()
            stats = open_stats(state / "buffer.sqlite")
        finally:
            subprocess.run(["umount", "-l", str(state)], check=False)
    assert "below the reserve" in agent.output()
    assert "cannot delete delivered seals yet" in agent.output(), "the really full disk was reached"
    assert stats.counters["records_taken"] > full.counters["records_taken"] > 0, "taken again after the pause"
    _assert_taken_stored_once(stats, tmp_path / "collector.sqlite")
