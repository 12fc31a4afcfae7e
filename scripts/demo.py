"""`make demo`: a simulated PV site through the whole chain, two days in about a minute.

Starts a broker (our own Mosquitto on a free port, or the embedded amqtt where
Mosquitto cannot be installed), two simulated SDM630 meters, the agent and the
collector (SQLite store), with time accelerated through an injected clock.
Then exports the evidence bundle of the monitoring period, verifies it
independently with mrv-verify (which recomputes the report) and
prints the emission reductions of the demo period. Everything it starts, it
stops. Exit status 1 if any record was lost or anything failed to verify.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from agent.buffer import open_stats
from tests.harness.mosquitto import mosquitto_binary, start_mosquitto
from tests.harness.procs import Proc, free_port, port_open, wait_for
from tests.harness.programs import command as cli
from tests.harness.programs import init_gateway

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".demo"
TZ = "Asia/Ulaanbaatar"
FIRST_DAY, LAST_DAY = date(2026, 11, 25), date(2026, 11, 26)
SPEED = 2880.0  # two simulated days in one real minute
POLL_S = 300  # every 5 simulated minutes
METERS = {"pv-meter-1": (1, 600.0), "pv-meter-2": (2, 400.0)}  # unit id, kWp


def say(text: str = "") -> None:
    print(text, flush=True)


def start_broker(choice: str) -> tuple[object, int, str, str]:
    """(handle with stop(), port, protocol, description)."""
    if choice in ("auto", "mosquitto") and mosquitto_binary():
        broker = start_mosquitto(WORK / "mosquitto")
        return broker, broker.port, "5", f"Mosquitto ({mosquitto_binary()}), own instance"
    if choice == "mosquitto":
        raise SystemExit("demo: mosquitto is not installed")
    port = free_port()
    proc = Proc([sys.executable, str(ROOT / "scripts/amqtt_broker.py"), str(port)], WORK / "amqtt.log")
    wait_for(lambda: port_open(port) or not proc.alive(), 20, "the embedded amqtt broker")
    if not proc.alive():
        raise SystemExit(f"demo: amqtt did not start:\n{proc.output()}")
    why = "as asked" if choice == "amqtt" else "Mosquitto could not be installed here"
    return proc, port, "3.1.1", f"embedded amqtt (MQTT 3.1.1; {why})"


def write_configs(
    port: int, protocol: str, sim_port: int, start: datetime, anchor: float
) -> tuple[Path, Path, Path]:
    agent = WORK / "agent.yaml"
    agent.write_text(
        json.dumps(
            {
                "gateway": {"id": "gw-demo-01", "site": "demo-site", "key_file": "state/gateway.key"},
                "profiles_dir": str(ROOT / "firmware_profiles"),
                "buffer": {"path": "state/buffer.sqlite"},
                "seal": {"interval_s": 1800, "max_records": 1000},
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": port,
                    "protocol": protocol,
                    "client_id": "demo-agent",
                    "heartbeat_s": 5,
                },
                "simulated_clock": {"start": start.isoformat(), "anchor_unix": anchor, "speed": SPEED},
                "devices": [
                    {
                        "id": device,
                        "profile": "eastron-sdm630-v2",
                        "unit_id": unit,
                        "poll_interval_s": POLL_S,
                        "transport": {"type": "tcp", "host": "127.0.0.1", "port": sim_port, "timeout_s": 2},
                    }
                    for device, (unit, _) in METERS.items()
                ],
            },
            indent=2,
        )
    )
    keys = WORK / "gateway-keys.json"
    init_gateway(agent, keys)
    collector = WORK / "collector.yaml"
    collector.write_text(
        json.dumps(
            {
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": port,
                    "protocol": protocol,
                    "client_id": "demo-collector",
                },
                "store": {"type": "sqlite", "path": "state/collector.sqlite"},
                "keyring": str(keys),
                "profiles_dir": str(ROOT / "firmware_profiles"),
            },
            indent=2,
        )
    )
    return agent, collector, keys


def stored_count() -> int:
    path = WORK / "state/collector.sqlite"
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM readings").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def agent_counters() -> dict[str, int]:
    path = WORK / "state/buffer.sqlite"
    return open_stats(path).counters if path.exists() else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "state").mkdir(parents=True)
    zone = ZoneInfo(TZ)
    period_start = datetime.combine(FIRST_DAY, datetime.min.time(), zone)
    period_end = datetime.combine(LAST_DAY + timedelta(days=1), datetime.min.time(), zone)
    sim_start = period_start - timedelta(minutes=30)
    sim_stop = period_end + timedelta(minutes=30)

    say("JCM MRV demo: a grid-connected PV site with two Eastron SDM630 meters (simulated),")
    say(f"monitoring period {FIRST_DAY} to {LAST_DAY} ({TZ}), time running {SPEED:.0f}x faster.")
    broker, port, protocol, what = start_broker(args.broker)
    say(f"  broker     {what}, 127.0.0.1:{port}")
    started: list[Proc] = []
    ok = False
    try:
        sim_port = free_port()
        anchor = time.time() + 4.0  # simulated time starts once everything is up
        agent_cfg, collector_cfg, keys = write_configs(port, protocol, sim_port, sim_start, anchor)
        meters = [arg for _, (unit, kw) in METERS.items() for arg in ("--meter", f"{unit}:{kw}")]
        simulator = Proc(
            cli(
                "agent",
                "simulate",
                "--profile",
                str(ROOT / "firmware_profiles/eastron/sdm630-modbus-v2.yaml"),
                "--port",
                str(sim_port),
                *meters,
                "--clock-start",
                sim_start.isoformat(),
                "--clock-speed",
                str(SPEED),
                "--clock-anchor",
                str(anchor),
            ),
            WORK / "simulator.log",
        )
        started.append(simulator)
        wait_for(lambda: port_open(sim_port), 20, "the simulated meters")
        say(f"  meters     Modbus TCP 127.0.0.1:{sim_port}, units 1 and 2 (600 kWp and 400 kWp PV arrays)")
        collector = Proc(
            cli("collector", "run", "--config", str(collector_cfg), "--stats-every", "10"),
            WORK / "collector.log",
        )
        started.append(collector)
        agent = Proc(
            cli("agent", "run", "--config", str(agent_cfg), "--drain-timeout", "30"), WORK / "agent.log"
        )
        started.append(agent)
        say("  agent      polls every 5 simulated minutes, seals every 30, publishes at QoS 1")
        say("  collector  verifies every seal and record, stores in SQLite, then acknowledges")
        say()
        real_stop = anchor + (sim_stop - sim_start).total_seconds() / SPEED
        while time.time() < real_stop:
            time.sleep(min(5.0, max(0.1, real_stop - time.time())))
            for proc in started:
                if not proc.alive():
                    raise SystemExit(f"demo: {proc.argv[2]} stopped unexpectedly:\n{proc.output()[-3000:]}")
            c = agent_counters()
            sim_now = sim_start + timedelta(seconds=max(0.0, time.time() - anchor) * SPEED)
            say(
                f"  {sim_now.astimezone(zone):%Y-%m-%d %H:%M} site time: "
                f"read {c.get('records_taken', 0):>5}, "
                f"signed {c.get('records_sealed', 0):>5}, delivered {c.get('records_delivered', 0):>5}, "
                f"stored {stored_count():>5}"
            )
        say("\nstopping the agent: it seals what it read and delivers the rest ...")
        if agent.stop() != 0:
            raise SystemExit(f"demo: the agent failed:\n{agent.output()[-3000:]}")
        counters = agent_counters()
        taken = counters["records_taken"]
        wait_for(lambda: stored_count() >= taken, 60, "the collector to store every record")
        collector.stop()
        simulator.stop()

        bundle = WORK / "evidence-bundle.zip"
        project_file = str(ROOT / "config/projects/demo-pv.yaml")
        subprocess.run(
            cli(
                "collector",
                "export",
                "--config",
                str(collector_cfg),
                "--project",
                project_file,
                "--from",
                str(FIRST_DAY),
                "--to",
                str(LAST_DAY),
                "--out",
                str(bundle),
            ),
            check=True,
            capture_output=True,
        )
        # The verifier's own copy of the gateway keys pins them (a bundle could carry forged ones).
        verdict = subprocess.run(
            cli("verify", str(bundle), "--keys", str(keys)), capture_output=True, text=True
        )
        status = json.loads(
            subprocess.run(
                cli("collector", "status", "--json", "--config", str(collector_cfg)),
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        report_args = [
            "--config",
            str(collector_cfg),
            "--project",
            str(ROOT / "config/projects/demo-pv.yaml"),
            "--from",
            str(FIRST_DAY),
            "--to",
            str(LAST_DAY),
        ]
        report_text = subprocess.run(
            cli("collector", "report", *report_args), check=True, capture_output=True, text=True
        ).stdout
        report_json = subprocess.run(
            cli("collector", "report", *report_args, "--format", "json"),
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (WORK / "report.json").write_text(report_json)
        report = json.loads(report_json)

        missing = sum(d["missing_records"] for d in status["devices"])
        say()
        say("Evidence")
        say(f"  records read by the agent           {taken}")
        say(f"  signed, in {counters['seals_made']:>4} seals (Ed25519)     {counters['records_sealed']}")
        say(f"  delivered (collector confirmed)     {counters['records_delivered']}")
        say(
            f"  verified and stored by collector    {status['records']}  "
            f"(quarantined {status['quarantined']}, missing {missing})"
        )
        say(f"  independent check (mrv-verify)      {verdict.stdout.strip().splitlines()[0]}")
        say()
        say(report_text)
        say(
            f"Emission reductions {FIRST_DAY} to {LAST_DAY}: {report['emission_reductions_tco2']} tCO2 "
            f"(ER = RE - PE = {report['reference_emissions_tco2']} - "
            f"{report['project_emissions_tco2']} tCO2, rounded down)"
        )
        operators = subprocess.run(
            cli("collector", "status", "--config", str(collector_cfg)),
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        say("\nOperators' view ('mrv-collector status'; the same picture as the status page and API):")
        say("\n".join("  " + line for line in operators.splitlines()))
        say(
            "  (the demo's gateway runs on an accelerated clock, so its clock offset is large by design;"
            " on a site this column shows a drifting or unsynchronised gateway clock)"
        )
        say(f"\nFiles: {WORK.relative_to(ROOT)}/ (configs, keys, logs, evidence-bundle.zip, report.json)")
        say(f"A verifier checks the bundle alone with: mrv-verify {bundle.relative_to(ROOT)}")
        ok = (
            taken == counters["records_delivered"] == status["records"]
            and missing == 0
            and status["quarantined"] == 0
            and verdict.returncode == 0
        )
        if not ok:
            say("\nDEMO FAILED: records were lost, quarantined or did not verify; see the logs above.")
    finally:
        for proc in reversed(started):
            proc.stop()
        broker.stop()  # type: ignore[attr-defined]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
