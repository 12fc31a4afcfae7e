"""The whole chain for real: pymodbus server -> mrv-agent -> Mosquitto -> mrv-collector -> store.

Agent and collector run as separate processes; the broker and InfluxDB are the
real servers; the simulated meters are a real Modbus TCP server in this process
so that the test knows every word they served.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.buffer import open_stats
from agent.clock import ScaledClock
from agent.simulator import Simulator, default_meters
from collector.store.sqlite import SqliteStore
from mrv_core.keyring import parse_keyring
from mrv_core.profile import Profile
from mrv_core.profile_schema import load_profile
from mrv_core.record import Record, parse_record
from mrv_core.registers import words_to_hex
from mrv_core.signing import unb64
from mrv_core.verify import ChainChecker, check_sealed_batch
from tests.harness.influxdb import InfluxDB
from tests.harness.mosquitto import Mosquitto
from tests.harness.procs import Proc, free_port, wait_for
from tests.harness.programs import command, init_gateway

ROOT = Path(__file__).parents[2]
PROFILE_PATH = ROOT / "firmware_profiles/eastron/sdm630-modbus-v2.yaml"
SPEED = 60.0  # one simulated minute per real second
START = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)  # local noon at the simulated site (UTC+8)


@dataclass
class Served:
    """Every response the simulated meters gave, by unit id."""

    responses: dict[int, list[tuple[str, int, list[int]]]] = field(default_factory=lambda: defaultdict(list))

    def __call__(self, unit: int, function: str, address: int, words: list[int]) -> None:
        self.responses[unit].append((function, address, list(words)))

    def contains(self, unit: int, profile: Profile, record: Record) -> bool:
        """Some single response of ``unit`` holds exactly the raw words of every value in ``record``."""
        for function, address, words in self.responses[unit]:
            if all(
                words_to_hex(words[spec.address - address : spec.address - address + spec.width]) == value.raw
                and spec.function == function
                for name, value in record.values.items()
                for spec in [profile.register(name)]
            ):
                return True
        return False


@dataclass
class Site:
    folder: Path
    agent_config: Path
    collector_config: Path
    keyring: Path
    profile: Profile
    served: Served
    simulator: Simulator
    units: dict[str, int]


@contextmanager
def site_for(tmp_path: Path, mosquitto: Mosquitto, store: dict[str, Any]) -> Iterator[Site]:
    profile = load_profile(PROFILE_PATH)
    served = Served()
    anchor = time.time() + 1.0
    clock = ScaledClock(start=START, anchor=anchor, speed=SPEED)
    port = free_port()
    simulator = Simulator(default_meters(profile, clock, {1: 40.0, 2: 25.0}), port=port, served=served)
    simulator.start()
    agent_config = tmp_path / "agent.yaml"
    agent_config.write_text(
        json.dumps(
            {
                "gateway": {"id": "gw-it-01", "site": "it-site", "key_file": "state/gateway.key"},
                "profiles_dir": str(ROOT / "firmware_profiles"),
                "buffer": {"path": "state/buffer.sqlite"},
                "seal": {"interval_s": 30, "max_records": 50},
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": mosquitto.port,
                    "client_id": f"agent-{tmp_path.name}",
                    "heartbeat_s": 1,
                    "topic_prefix": f"mrv-{tmp_path.name}/v1",  # retained messages of other tests stay out
                },
                "simulated_clock": {"start": START.isoformat(), "anchor_unix": anchor, "speed": SPEED},
                "devices": [
                    {
                        "id": "pv-1",
                        "profile": "eastron-sdm630-v2",
                        "unit_id": 1,
                        "poll_interval_s": 6,
                        "transport": {"host": "127.0.0.1", "port": port, "timeout_s": 2},
                    },
                    {
                        "id": "pv-2",
                        "profile": "eastron-sdm630-v2",
                        "unit_id": 2,
                        "poll_interval_s": 6,
                        "transport": {"host": "127.0.0.1", "port": port, "timeout_s": 2},
                    },
                ],
            }
        )
    )
    keyring = tmp_path / "keys.json"
    init_gateway(agent_config, keyring)
    collector_config = tmp_path / "collector.yaml"
    collector_config.write_text(
        json.dumps(
            {
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": mosquitto.port,
                    "client_id": f"collector-{tmp_path.name}",
                    "topic_prefix": f"mrv-{tmp_path.name}/v1",
                },
                "store": store,
                "keyring": str(keyring),
                "profiles_dir": str(ROOT / "firmware_profiles"),
            }
        )
    )
    try:
        yield Site(
            tmp_path,
            agent_config,
            collector_config,
            keyring,
            profile,
            served,
            simulator,
            {"pv-1": 1, "pv-2": 2},
        )
    finally:
        simulator.stop()


def _stored_count(site: Site) -> int:
    done = subprocess.run(
        command("collector", "status", "--json", "--config", str(site.collector_config)),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["records"])


def _run_chain(site: Site, seconds: float) -> int:
    """Run collector and agent, stop the agent cleanly, wait for the collector to store everything."""
    collector = Proc(
        command("collector", "run", "--config", str(site.collector_config), "--stats-every", "2"),
        site.folder / "collector.log",
    )
    agent = Proc(
        command("agent", "run", "--config", str(site.agent_config), "--drain-timeout", "20"),
        site.folder / "agent.log",
    )
    try:
        time.sleep(seconds)
        assert agent.stop() == 0, agent.output()
        stats = open_stats(site.folder / "state/buffer.sqlite")
        taken = stats.counters["records_taken"]
        assert stats.pending_records == 0, "the agent left records undelivered"
        assert stats.counters["records_delivered"] == taken
        wait_for(lambda: _stored_count(site) >= taken, 30, f"the collector to store {taken} records")
        return taken
    finally:
        agent.stop()
        assert collector.stop() == 0, collector.output()


def _check_evidence(
    site: Site,
    records: list[Record],
    seals: dict[int, tuple[bytes, bytes]],
    seal_members: dict[int, list[tuple[int, bytes]]],
    taken: int,
) -> None:
    keyring = parse_keyring(site.keyring.read_text(), "keys.json")
    by_device: dict[str, list[int]] = defaultdict(list)
    for record in records:
        by_device[record.device].append(record.seq)
    assert sum(len(v) for v in by_device.values()) == taken
    for device, seqs in by_device.items():
        assert sorted(seqs) == list(range(1, len(seqs) + 1)), f"{device}: every seq exactly once"
        assert len(seqs) > 20
    for seq, (seal, signature) in seals.items():
        members = [data for _, data in sorted(seal_members[seq])]
        check = check_sealed_batch(seal, signature, members, keyring)
        assert check.ok, check.findings
    chains = ChainChecker()
    for record in sorted(records, key=lambda r: (r.device, r.seq)):
        chains.add_record(record)
        assert site.served.contains(site.units[record.device], site.profile, record), (
            f"{record.device} seq {record.seq}: values differ from what the meter served"
        )
    assert chains.findings == []
    counters = [
        parse_record(r.data).values["energy_active_export_total"].value for r in records if r.device == "pv-1"
    ]
    assert counters == sorted(counters) and counters[-1] > counters[0]  # the sun moved the counter


def _verify_export(site: Site) -> None:
    export = site.folder / "bundle.zip"
    subprocess.run(
        command(
            "collector",
            "export",
            "--config",
            str(site.collector_config),
            "--from",
            "2026-11-27",
            "--to",
            "2026-11-27",
            "--out",
            str(export),
        ),
        check=True,
        capture_output=True,
    )
    verdict = subprocess.run(
        command("verify", str(export), "--keys", str(site.keyring)), capture_output=True, text=True
    )
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    assert verdict.stdout.startswith("VERIFIED: ")


@pytest.mark.integration
def test_chain_into_influxdb(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, influx_database: str
) -> None:
    with site_for(
        tmp_path, mosquitto, {"type": "influxdb", "url": influxdb.url, "bucket": influx_database}
    ) as site:
        taken = _run_chain(site, 8)
        # Read back with InfluxQL from the server itself, not through our store code.
        where = "WHERE gateway = 'gw-it-01'"
        readings = influxdb.query(
            f"SELECT seq, record, seal_seq, leaf FROM mrv_reading {where} GROUP BY device", influx_database
        )["results"][0]["series"]
        rows = [dict(zip(s["columns"], v, strict=True)) for s in readings for v in s["values"]]
        records = [parse_record(r["record"].encode()) for r in rows]
        assert all(r["seq"] == rec.seq for r, rec in zip(rows, records, strict=True))
        seal_rows = influxdb.query(f"SELECT seal, sig FROM mrv_seal {where}", influx_database)["results"][0][
            "series"
        ][0]
        seals = {int(v[0]): (v[1].encode(), unb64(v[2])) for v in seal_rows["values"]}
        members: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        for row in rows:
            members[int(row["seal_seq"])].append((int(row["leaf"]), row["record"].encode()))
        _check_evidence(site, records, seals, members, taken)
        _verify_export(site)


@pytest.mark.integration
def test_chain_into_sqlite(tmp_path: Path, mosquitto: Mosquitto) -> None:
    with site_for(
        tmp_path, mosquitto, {"type": "sqlite", "path": str(tmp_path / "collector.sqlite")}
    ) as site:
        taken = _run_chain(site, 6)
        db = sqlite3.connect(tmp_path / "collector.sqlite")
        rows = db.execute("SELECT data, seal_seq, leaf FROM readings").fetchall()
        records = [parse_record(bytes(r[0])) for r in rows]
        seals = {
            int(s): (bytes(d), bytes(g)) for s, d, g in db.execute("SELECT seq, data, signature FROM seals")
        }
        members: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        for data, seal_seq, leaf in rows:
            members[int(seal_seq)].append((int(leaf), bytes(data)))
        db.close()
        _check_evidence(site, records, seals, members, taken)
        _verify_export(site)
        # The operators' view arrived too: the retained status (offline after the clean stop) and heartbeats.
        store = SqliteStore(tmp_path / "collector.sqlite")
        (state,) = store.gateway_states()
        store.close()
        assert (state.site, state.gateway, state.state) == ("it-site", "gw-it-01", "offline")
        assert state.heartbeat is not None and set(state.heartbeat["devices"]) == {"pv-1", "pv-2"}
        assert state.heartbeat["devices"]["pv-1"]["poll_interval_s"] == 6
        assert state.heartbeat["buffer"]["pending_records"] == 0  # the last heartbeat, after the drain
