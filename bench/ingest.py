"""Collector ingest benchmark: verified records per second into InfluxDB, one collector.

The agent's end-to-end drain is bounded by the agent itself (one gateway's
SQLite buffer and signing), so this measures the collector alone, as a central
collector fed by many gateways sees it: a backlog of signed messages, exactly
as the agent publishes them (one sealed batch per message, read from an agent
buffer filled by the agent's code), waits in Mosquitto for the collector's
persistent session; then the collector starts and takes them, verifying every
seal and record, checking chains, writing to InfluxDB and acknowledging only
after each write. Figures: records/s from the first stored record to the last,
and CPU per record of the collector, influxd, Mosquitto and this process (which
hosts the harness's v2-to-1.x write shim; InfluxDB 1.8+ serves that route
natively).

Run with `make bench` (after bench.e2e) or `python -m bench.ingest`.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.buffer import Buffer
from bench.e2e import agent_config, collector_config, cpu_seconds, stored
from bench.report import report
from mrv_core.envelope import build_envelope
from mrv_core.watermark import parse_watermark, watermark_topic
from tests.harness.backlog import prefill
from tests.harness.influxdb import InfluxDB, start_influxdb
from tests.harness.mosquitto import Mosquitto, start_mosquitto
from tests.harness.procs import Proc, free_port, wait_for
from tests.harness.programs import command as cli

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = [
    "records",
    "records/s",
    "collector CPU us/record",
    "influxd us/record",
    "Mosquitto us/record",
    "harness (shim) us/record",
    "message bytes/record",
]
GATEWAY, SITE = "gw-bench", "bench"
SEAL_RECORDS = 1000  # what prefill seals at a time


@dataclass
class IngestResult:
    records: int
    seconds: float
    messages: int
    bytes_per_record: float
    collector_us: float  # CPU per record
    influxd_us: float
    mosquitto_us: float
    harness_us: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    def row(self) -> str:
        return (
            f"| {self.records:,} | {self.rate:,.0f} | {self.collector_us:.0f} | {self.influxd_us:.0f} | "
            f"{self.mosquitto_us:.0f} | {self.harness_us:.0f} | {self.bytes_per_record:,.0f} |"
        )


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def queue_backlog(buffer_path: Path, broker: Mosquitto, max_message_bytes: int) -> tuple[int, int]:
    """Publish the buffer's sealed batches as the agent does (QoS 1, one message up to
    ``max_message_bytes``, at least one seal); returns (messages, bytes) once all are acknowledged."""
    buffer = Buffer(buffer_path, GATEWAY, "NORMAL")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-feeder", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    topic = f"mrv/v1/{SITE}/{GATEWAY}/records"
    infos, size, after = [], 0, 0
    try:
        while batches := buffer.next_batches(after, max_message_bytes):
            after = batches[-1][0]
            payload = build_envelope(GATEWAY, [batch for _, batch in batches])
            size += len(payload)
            infos.append(client.publish(topic, payload, qos=1))
        for info in infos:
            info.wait_for_publish(timeout=120)
            if not info.is_published():
                raise RuntimeError("the broker did not acknowledge the backlog")
    finally:
        client.disconnect()
        client.loop_stop()
        buffer.close()
    return len(infos), size


class _Watermarks:
    """The highest ``seals_through`` the collector has published for the bench gateway."""

    def __init__(self, broker: Mosquitto) -> None:
        self.through = 0
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-watch")
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", broker.port)
        self._client.subscribe(watermark_topic("mrv/v1", SITE, GATEWAY), qos=1)
        self._client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        self.through = max(self.through, parse_watermark(message.payload, GATEWAY)[0])

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def run_ingest(folder: Path, broker: Mosquitto, influx: InfluxDB, records: int, devices: int) -> IngestResult:
    agent_cfg = agent_config(folder, broker.port, [free_port()], devices, poll_s=3600, seal_s=3600)
    prefill(
        folder / "buffer.sqlite",
        folder / "gateway.key",
        gateway=GATEWAY,
        site=SITE,
        records=records,
        devices=devices,
        seal_records=SEAL_RECORDS,
    )
    influx.create_database("bench_ingest")
    store = {"type": "influxdb", "url": influx.url, "bucket": "bench_ingest"}
    coll_cfg = collector_config(folder, broker.port, store, folder / "keys.json")
    max_message_bytes = json.loads(agent_cfg.read_text())["mqtt"].get("max_message_bytes", 256 * 1024)

    def collector(name: str) -> Proc:
        proc = Proc(cli("collector", "run", "--config", str(coll_cfg)), folder / f"{name}.log")
        wait_for(lambda: "subscribed to" in proc.output(), 60, "the collector to subscribe")
        return proc

    first = collector("collector-session")  # its persistent session now queues what arrives
    assert first.stop() == 0, first.output()
    messages, size = queue_backlog(folder / "buffer.sqlite", broker, max_message_bytes)
    print(f"ingest: {records:,} records in {messages} messages queued in Mosquitto", flush=True)

    marks = _Watermarks(broker)  # progress from the collector's own watermarks: no queries
    proc = Proc(cli("collector", "run", "--config", str(coll_cfg)), folder / "collector.log")
    started = time.monotonic()
    begin: tuple[float, int, float, float, float, float] | None = None
    seals = -(-records // SEAL_RECORDS)
    try:
        while (through := marks.through) < seals:
            now = time.monotonic()
            if begin is None and through > 0:  # timing starts at the first write, after start-up
                begin = (
                    now,
                    through * SEAL_RECORDS,
                    cpu_seconds(proc.pid),
                    cpu_seconds(influx.proc.pid),
                    cpu_seconds(broker.proc.pid),
                    _self_cpu_s(),
                )
            if now - started > max(600, records / 500) or not proc.alive():
                raise TimeoutError(f"ingest stalled at seal {through} of {seals}: {proc.output()[-2000:]}")
            time.sleep(0.01)
        end = time.monotonic()
        assert begin is not None
        done = records - begin[1]
        per = 1e6 / done
        result = IngestResult(
            records=done,
            seconds=end - begin[0],
            messages=messages,
            bytes_per_record=size / records,
            collector_us=(cpu_seconds(proc.pid) - begin[2]) * per,
            influxd_us=(cpu_seconds(influx.proc.pid) - begin[3]) * per,
            mosquitto_us=(cpu_seconds(broker.proc.pid) - begin[4]) * per,
            harness_us=(_self_cpu_s() - begin[5]) * per,
        )
    finally:
        proc.stop()
        marks.stop()
    if (count := stored(store)) != records:
        raise RuntimeError(f"the store holds {count:,} records, not {records:,}")
    # the periodic stats line says "0 quarantined": any other mention is a quarantine
    if any("quarantin" in line and " 0 quarantined" not in line for line in proc.output().splitlines()):
        raise RuntimeError("the collector quarantined records of a clean backlog")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--devices", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mrv-bench-ingest-"))
    broker = start_mosquitto(work / "mosquitto")  # no queue limit: the backlog waits whole
    influx = start_influxdb(work / "influxdb")
    try:
        folder = work / "ingest"
        folder.mkdir()
        result = run_ingest(folder, broker, influx, args.records, args.devices)
    finally:
        broker.stop()
        influx.stop()
    report(
        "ingest",
        COLUMNS,
        [result.row()],
        [asdict(result) | {"rate": result.rate}],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
