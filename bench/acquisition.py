"""Acquisition benchmark: the agent's CPU per delivered value, polling many meters every second.

20 and 100 simulated SDM630s on Modbus TCP (simulator processes of 20 meters
each, as behind RS-485-to-TCP gateways), 8 float32 values each (voltages,
current, power, frequency, import and export energy), polled every second by
one agent; every value signed, buffered (synchronous=FULL) and delivered
through Mosquitto to a collector that confirms it. Measured: the agent's CPU
seconds per 1,000 *delivered* values, with request merging (one request per
meter) and without (one request per value), and its peak resident memory.

Run with `python -m bench.acquisition`; figures go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.buffer import open_stats
from agent.plan import plan_reads
from bench.e2e import collector_config, cpu_seconds, rss_mb
from bench.report import report
from mrv_core.profile_schema import load_profile
from tests.harness.mosquitto import start_mosquitto
from tests.harness.procs import Proc, free_port, port_open, wait_for
from tests.harness.programs import command as cli
from tests.harness.programs import init_gateway

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = [
    "meters",
    "request merging",
    "requests per reading",
    "values delivered",
    "agent CPU ms per value",
    "agent peak RSS MB",
]
PROFILE = ROOT / "firmware_profiles/eastron/sdm630-modbus-v2.yaml"
QUANTITIES = [
    "voltage_l1",
    "voltage_l2",
    "voltage_l3",
    "current_l1",
    "power_active_total",
    "frequency",
    "energy_active_import_total",
    "energy_active_export_total",
]
PER_SIMULATOR = 20


@dataclass
class AcquisitionResult:
    meters: int
    merging: bool
    seconds: float
    values_delivered: int
    agent_cpu_s: float
    agent_peak_rss_mb: float
    requests_per_reading: int

    @property
    def cpu_ms_per_value(self) -> float:
        return self.agent_cpu_s * 1000 / max(self.values_delivered, 1)

    def row(self) -> str:
        return (
            f"| {self.meters} | {'yes' if self.merging else 'no'} | {self.requests_per_reading} | "
            f"{self.values_delivered:,} | {self.cpu_ms_per_value:.4f} | {self.agent_peak_rss_mb:.0f} |"
        )


def _profiles(folder: Path, merging: bool) -> Path:
    """The SDM630 profile as shipped (merging), or one that reads each value with its own request."""
    folder.mkdir(parents=True, exist_ok=True)
    text = PROFILE.read_text()
    if not merging:
        text = text.replace("max_registers_per_request: 80", "max_registers_per_request: 2")
        text = re.sub(r"max_gap_registers: \d+", "max_gap_registers: 0", text)
    (folder / PROFILE.name).write_text(text)
    return folder


def run(folder: Path, meters: int, merging: bool, seconds: float) -> AcquisitionResult:
    broker = start_mosquitto(folder / "broker")
    ports = [free_port() for _ in range(-(-meters // PER_SIMULATOR))]
    sims = []
    for index, port in enumerate(ports):
        units = range(1, min(PER_SIMULATOR, meters - index * PER_SIMULATOR) + 1)
        args = [a for u in units for a in ("--meter", f"{u}:50")]
        sims.append(
            Proc(
                cli("agent", "simulate", "--profile", str(PROFILE), "--port", str(port), *args),
                folder / f"sim{port}.log",
            )
        )
    for port in ports:
        wait_for(lambda port=port: port_open(port), 30, "simulator")
    profiles = _profiles(folder / "profiles", merging)
    agent_yaml = folder / "agent.yaml"
    agent_yaml.write_text(
        json.dumps(
            {
                "gateway": {"id": "gw-acq", "site": "acq", "key_file": "gateway.key"},
                "profiles_dir": str(profiles),
                "buffer": {"path": "buffer.sqlite"},
                "seal": {"interval_s": 5, "max_records": 1000},
                "mqtt": {"port": broker.port, "client_id": f"agent-{folder.name}", "heartbeat_s": 30},
                "devices": [
                    {
                        "id": f"m{p}-{u}",
                        "profile": "eastron-sdm630-v2",
                        "unit_id": u,
                        "poll_interval_s": 1,
                        "quantities": QUANTITIES,
                        "transport": {"host": "127.0.0.1", "port": port, "timeout_s": 2},
                    }
                    for p, port in enumerate(ports)
                    for u in range(1, min(PER_SIMULATOR, meters - p * PER_SIMULATOR) + 1)
                ],
            }
        )
    )
    init_gateway(agent_yaml, folder / "keys.json")
    store = {"type": "sqlite", "path": str(folder / "collector.sqlite")}
    collector = Proc(
        cli(
            "collector",
            "run",
            "--config",
            str(collector_config(folder, broker.port, store, folder / "keys.json")),
        ),
        folder / "collector.log",
    )
    wait_for(lambda: "subscribed to" in collector.output(), 60, "the collector")
    agent = Proc(cli("agent", "run", "--config", str(agent_yaml)), folder / "agent.log")
    try:
        time.sleep(5)  # start-up, first polls, first seals
        delivered0 = open_stats(folder / "buffer.sqlite").counters["records_delivered"]
        cpu0, started, peak = cpu_seconds(agent.pid), time.monotonic(), 0.0
        while time.monotonic() - started < seconds:
            time.sleep(0.5)
            peak = max(peak, rss_mb(agent.pid))
        cpu = cpu_seconds(agent.pid) - cpu0
        elapsed = time.monotonic() - started
        delivered = open_stats(folder / "buffer.sqlite").counters["records_delivered"] - delivered0
    finally:
        agent.stop()
        collector.stop()
        for sim in sims:
            sim.stop()
        broker.stop()
    profile = load_profile(profiles / PROFILE.name)
    requests = len(
        plan_reads(
            profile.select(QUANTITIES), profile.max_registers_per_request, profile.max_gap_registers
        ).requests
    )
    return AcquisitionResult(meters, merging, elapsed, delivered * len(QUANTITIES), cpu, peak, requests)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--meters", default="20,100")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mrv-bench-acq-"))
    results = []
    try:
        for meters in map(int, args.meters.split(",")):
            for merging in (True, False):
                result = run(work / f"{meters}-{merging}", meters, merging, args.seconds)
                results.append(result)
                print(result.row(), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(
        "acquisition",
        COLUMNS,
        [result.row() for result in results],
        [asdict(r) | {"cpu_ms_per_value": r.cpu_ms_per_value} for r in results],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
