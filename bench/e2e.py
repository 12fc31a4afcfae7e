"""End-to-end benchmark: simulated meters -> agent -> Mosquitto -> collector -> store.

Two phases per store (SQLite, InfluxDB), each with real processes:

- live: the agent polls N simulated meters as fast as configured; records/s,
  CPU seconds per 1,000 records for agent and collector, agent resident memory.
- backlog: the agent's disk buffer is pre-filled with a backlog of signed
  records (as after an outage), then agent and collector drain it; records/s
  through the whole pipeline, CPU per 1,000 records, agent resident memory.

Run with `make bench`. Figures go to docs/BENCHMARKS.md by hand, with the date
and the machine; compare ratios within one run, this machine is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent.buffer import open_stats
from bench.report import report
from tests.harness.backlog import prefill
from tests.harness.influxdb import start_influxdb
from tests.harness.mosquitto import start_mosquitto
from tests.harness.procs import Proc, free_port, port_open, wait_for
from tests.harness.programs import command as cli
from tests.harness.programs import init_gateway

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "firmware_profiles/eastron/sdm630-modbus-v2.yaml"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory in MiB from /proc (``VmHWM``: its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Result:
    store: str
    phase: str
    records: int
    seconds: float
    agent_cpu_s: float
    collector_cpu_s: float
    agent_rss_mb: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    def row(self) -> str:
        per_k = 1000 / max(self.records, 1)
        return (
            f"| {self.store} | {self.phase} | {self.records:,} | {self.rate:,.0f} | "
            f"{self.agent_cpu_s * per_k:.3f} | {self.collector_cpu_s * per_k:.3f} | {self.agent_rss_mb:.0f} |"
        )


def stored(store: dict[str, Any]) -> int:
    """Records in the store, counted cheaply (no extra Python process to steal CPU)."""
    if store["type"] == "sqlite":
        path = Path(store["path"])
        if not path.exists():
            return 0
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT COUNT(*) FROM readings").fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # schema not created yet
        finally:
            db.close()
    query = urllib.parse.urlencode({"db": store["bucket"], "q": "SELECT count(hash) FROM mrv_chain"})
    with urllib.request.urlopen(f"{store['url']}/query?{query}", timeout=10) as response:  # noqa: S310 - the harness URL
        series = json.loads(response.read())["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


def agent_config(
    folder: Path, broker_port: int, sim_ports: list[int], devices_per_port: int, poll_s: float, seal_s: float
) -> Path:
    path = folder / "agent.yaml"
    path.write_text(
        json.dumps(
            {
                "gateway": {"id": "gw-bench", "site": "bench", "key_file": "gateway.key"},
                "profiles_dir": str(ROOT / "firmware_profiles"),
                "buffer": {"path": "buffer.sqlite"},
                "seal": {"interval_s": seal_s, "max_records": 1000},
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": broker_port,
                    "client_id": f"bench-agent-{folder.name}",
                    "max_inflight": 20,
                },
                "devices": [
                    {
                        "id": f"m{p}-{u}",
                        "profile": "eastron-sdm630-v2",
                        "unit_id": u,
                        "poll_interval_s": poll_s,
                        "transport": {"host": "127.0.0.1", "port": port, "timeout_s": 2},
                    }
                    for p, port in enumerate(sim_ports)
                    for u in range(1, devices_per_port + 1)
                ],
            }
        )
    )
    init_gateway(path, folder / "keys.json")
    return path


def collector_config(folder: Path, broker_port: int, store: dict[str, Any], keyring: Path) -> Path:
    path = folder / "collector.yaml"
    path.write_text(
        json.dumps(
            {
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": broker_port,
                    "client_id": f"bench-collector-{folder.name}",
                    "receive_maximum": 200,
                    "max_messages_per_write": 50,
                },
                "store": store,
                "keyring": str(keyring),
                "profiles_dir": str(ROOT / "firmware_profiles"),
            }
        )
    )
    return path


def run_live(
    folder: Path, broker_port: int, store: dict[str, Any], seconds: float, devices: int, poll_s: float
) -> Result:
    sim_ports = [free_port(), free_port()]
    per_port = devices // 2
    sims = [
        Proc(
            cli(
                "agent",
                "simulate",
                "--profile",
                str(PROFILE),
                "--port",
                str(p),
                *[a for u in range(1, per_port + 1) for a in ("--meter", f"{u}:50")],
            ),
            folder / f"sim{p}.log",
        )
        for p in sim_ports
    ]
    for p in sim_ports:
        wait_for(lambda p=p: port_open(p), 20, "simulator")
    agent_cfg = agent_config(folder, broker_port, sim_ports, per_port, poll_s, seal_s=1)
    keyring = folder / "keys.json"
    coll_cfg = collector_config(folder, broker_port, store, keyring)
    collector = Proc(cli("collector", "run", "--config", str(coll_cfg)), folder / "collector.log")
    agent = Proc(cli("agent", "run", "--config", str(agent_cfg)), folder / "agent.log")
    try:
        time.sleep(2)  # warm-up: imports, connections
        base = stored(store)
        a0, c0, t0 = cpu_seconds(agent.pid), cpu_seconds(collector.pid), time.monotonic()
        peak = 0.0
        while time.monotonic() - t0 < seconds:
            time.sleep(0.5)
            peak = max(peak, rss_mb(agent.pid))
        done = stored(store) - base
        elapsed = time.monotonic() - t0
        result = Result(
            store["type"],
            "live",
            done,
            elapsed,
            cpu_seconds(agent.pid) - a0,
            cpu_seconds(collector.pid) - c0,
            peak,
        )
    finally:
        agent.stop()
        collector.stop()
        for sim in sims:
            sim.stop()
    return result


def run_backlog(folder: Path, broker_port: int, store: dict[str, Any], records: int, devices: int) -> Result:
    sim_port = free_port()  # nothing listens: the agent only drains its backlog
    agent_cfg = agent_config(folder, broker_port, [sim_port], devices, poll_s=3600, seal_s=3600)
    keyring = folder / "keys.json"
    prefill(
        folder / "buffer.sqlite",
        folder / "gateway.key",
        gateway="gw-bench",
        site="bench",
        records=records,
        devices=devices,
    )
    coll_cfg = collector_config(folder, broker_port, store, keyring)
    collector = Proc(cli("collector", "run", "--config", str(coll_cfg)), folder / "collector.log")
    time.sleep(1.5)
    c0 = cpu_seconds(collector.pid)
    started = time.monotonic()
    agent = Proc(cli("agent", "run", "--config", str(agent_cfg)), folder / "agent.log")
    peak = 0.0
    first: tuple[float, int] | None = None  # timing starts at the first stored record, after start-up
    try:
        while True:
            peak = max(peak, rss_mb(agent.pid))
            agent_cpu = cpu_seconds(agent.pid)
            count = stored(store)
            if first is None and count > 0:
                first = (time.monotonic(), count)
            if count >= records and open_stats(folder / "buffer.sqlite").pending_records == 0:
                break
            if time.monotonic() - started > max(600, records / 500):
                raise TimeoutError("backlog did not drain at 500 records/s or in 10 minutes")
            time.sleep(0.05)
        assert first is not None
        result = Result(
            store["type"],
            "backlog",
            records - first[1],
            time.monotonic() - first[0],
            agent_cpu,
            cpu_seconds(collector.pid) - c0,
            peak,
        )
    finally:
        agent.stop()
        collector.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--live-seconds", type=float, default=20)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--poll-s", type=float, default=0.1, help="poll interval per device (real seconds)")
    parser.add_argument("--backlog", type=int, default=30_000)
    parser.add_argument("--stores", default="sqlite,influxdb")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mrv-bench-"))
    broker = start_mosquitto(work / "mosquitto")
    influx = start_influxdb(work / "influxdb") if "influxdb" in args.stores else None
    results = []
    try:
        for name in args.stores.split(","):
            for phase in ("live", "backlog"):
                folder = work / f"{name}-{phase}"
                folder.mkdir()
                if name == "influxdb":
                    assert influx is not None
                    influx.create_database(f"bench_{phase}")
                    store: dict[str, Any] = {
                        "type": "influxdb",
                        "url": influx.url,
                        "bucket": f"bench_{phase}",
                    }
                else:
                    store = {"type": "sqlite", "path": str(folder / "collector.sqlite")}
                if phase == "live":
                    result = run_live(
                        folder, broker.port, store, args.live_seconds, args.devices, args.poll_s
                    )
                else:
                    result = run_backlog(folder, broker.port, store, args.backlog, args.devices)
                results.append(result)
                print(result.row(), flush=True)
    finally:
        broker.stop()
        if influx is not None:
            influx.stop()
    report(
        "e2e",
        [
            "store",
            "phase",
            "records",
            "records/s",
            "agent CPU s / 1k",
            "collector CPU s / 1k",
            "agent RSS MB",
        ],
        [result.row() for result in results],
        [asdict(r) | {"rate": r.rate} for r in results],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
