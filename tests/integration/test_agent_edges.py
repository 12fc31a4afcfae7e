"""The agent's edges against real peers: a Modbus server for probe, Mosquitto for delivery rules."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.buffer import Buffer
from agent.clock import SystemClock
from agent.config import MqttSection
from agent.publisher import Publisher
from agent.service import make_sealer
from agent.simulator import Simulator, default_meters
from mrv_core.profile_schema import load_profile
from mrv_core.record import build_record
from mrv_core.signing import Signer
from mrv_core.watermark import watermark_payload
from tests.factory import energy_value
from tests.harness.mosquitto import Mosquitto
from tests.harness.procs import free_port, wait_for

ROOT = Path(__file__).parents[2]
PROFILE = ROOT / "firmware_profiles/eastron/sdm630-modbus-v2.yaml"


def test_probe_reads_a_meter_once() -> None:
    profile = load_profile(PROFILE)
    port = free_port()
    simulator = Simulator(default_meters(profile, SystemClock(), {3: 50.0}), port=port)
    simulator.start()
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "agent.cli",
                "probe",
                "--profile",
                str(PROFILE),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--unit",
                "3",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "Eastron SDM630-Modbus V2 (eastron-sdm630-v2)" in done.stdout
        assert "1 request(s)" in done.stdout
        line = next(text for text in done.stdout.splitlines() if "energy_active_export_total" in text)
        assert "kWh" in line and "raw " in line
        missing = subprocess.run(
            [
                sys.executable,
                "-m",
                "agent.cli",
                "probe",
                "--profile",
                str(PROFILE),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--unit",
                "9",
                "--timeout",
                "0.5",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert missing.returncode == 2 and "read failed (timeout)" in missing.stderr, "nobody is unit 9"
    finally:
        simulator.stop()


def _buffer_with_one_seal(path: Path) -> Buffer:
    buffer = Buffer(path, "gw-edge")
    signer = Signer.generate()

    def build(seq: int, prev: str) -> tuple[bytes, str]:
        return build_record(
            site="s",
            gateway="gw-edge",
            device="m1",
            profile_id="p",
            profile_sha256="a" * 64,
            seq=seq,
            prev=prev,
            time=SystemClock().now(),
            clock="synced",
            values={"energy_active_import_total": energy_value(1)},
        )

    buffer.append_reading("m1", SystemClock().now(), build)
    buffer.seal_pending(make_sealer(signer, SystemClock(), "s", "gw-edge"), 10)
    return buffer


def test_no_matching_subscriber_keeps_the_batch(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """MQTT 5: a PUBACK 'no matching subscribers' means the broker dropped it; the agent keeps it."""
    buffer = _buffer_with_one_seal(tmp_path / "b.sqlite")
    config = MqttSection(port=mosquitto.port, client_id=f"edge-{tmp_path.name}", retry_after_s=0.5)
    publisher = Publisher(config, "s", "gw-edge", buffer)
    publisher.start()
    try:
        wait_for(lambda: publisher.stats.messages_refused >= 1, 15, "a 'no matching subscribers' answer")
        assert buffer.stats().seals == 1, "the batch must stay on disk"
        received: list[bytes] = []
        subscriber = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sub-{tmp_path.name}", protocol=mqtt.MQTTv5
        )
        subscriber.on_message = lambda _c, _u, m: received.append(m.payload)
        subscriber.connect("127.0.0.1", mosquitto.port)
        subscriber.subscribe("mrv/v1/s/gw-edge/records", qos=1)
        subscriber.loop_start()
        try:
            wait_for(lambda: bool(received), 15, "the subscriber to get the batch once it subscribed")
            assert b'"gateway":"gw-edge"' in received[0]
            time.sleep(0.5)
            assert buffer.stats().seals == 1, "a PUBACK is not delivery: the collector has not said stored"
            seal_hash = buffer.seal_hash(1)
            assert seal_hash is not None
            subscriber.publish(
                "mrv/v1/s/gw-edge/stored", watermark_payload("gw-edge", 1, seal_hash), qos=1, retain=True
            )
            wait_for(lambda: buffer.stats().seals == 0, 15, "the seal to leave once the collector stored it")
            subscriber.publish("mrv/v1/s/gw-edge/stored", b"", qos=1, retain=True)  # clear it for others
        finally:
            subscriber.loop_stop()
            subscriber.disconnect()
    finally:
        publisher.stop(drain_timeout_s=1)
        buffer.close()
    assert buffer.path.exists()
