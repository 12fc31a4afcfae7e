"""A real Mosquitto with TLS, client certificates and the shipped ACL, and the collector behind it.

Gateway A cannot publish as gateway B (the broker refuses it), and what A
signs with a key that is not its own is quarantined by the collector.
"""

from __future__ import annotations

import getpass
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.buffer import Buffer
from agent.clock import SystemClock
from agent.config import MqttSection as AgentMqtt
from agent.publisher import Publisher
from agent.service import make_sealer
from collector.store.sqlite import SqliteStore
from mrv_core.keyring import keyring_json
from mrv_core.mqtt_security import TlsSection
from mrv_core.record import build_record
from mrv_core.signing import Signer
from mrv_core.watermark import watermark_payload
from tests.factory import Gateway, energy_value
from tests.harness.mosquitto import BrokerTls, Mosquitto, start_mosquitto
from tests.harness.procs import Proc, free_port, port_open, wait_for
from tests.harness.programs import command
from tests.harness.tls import CertificateAuthority, Identity

ROOT = Path(__file__).parents[2]
SITE = "secure-site"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Identity]:
    ca = CertificateAuthority(tmp_path / "pki")
    ids = {name: ca.issue(name) for name in ("gw-a", "gw-b", "mrv-collector")}
    ids["broker"] = ca.issue("localhost", server=True)
    ids["ca"] = Identity(ca.ca_file, ca.ca_file)
    return ids


@pytest.fixture
def broker(tmp_path: Path, pki: dict[str, Identity]) -> Iterator[Mosquitto]:
    tls = BrokerTls(pki["ca"].cert, pki["broker"].cert, pki["broker"].key, ROOT / "config/mosquitto/acl")
    server = start_mosquitto(tmp_path / "broker", tls=tls)
    yield server
    server.stop()


def _client(name: str, pki: dict[str, Identity], port: int, *, with_cert: bool = True) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{name}", protocol=mqtt.MQTTv5)
    identity = pki[name]
    client.tls_set(
        ca_certs=str(pki["ca"].cert),
        certfile=str(identity.cert) if with_cert else None,
        keyfile=str(identity.key) if with_cert else None,
        cert_reqs=ssl.CERT_REQUIRED,
    )
    client.connect("127.0.0.1", port)
    client.loop_start()
    if with_cert:
        wait_for(client.is_connected, 10, f"{name} to connect over TLS")
    return client


def test_gateways_cannot_publish_as_each_other(
    tmp_path: Path, pki: dict[str, Identity], broker: Mosquitto
) -> None:
    gw_a = Gateway(gateway="gw-a", site=SITE, signer=Signer.generate())
    gw_b = Gateway(gateway="gw-b", site=SITE, signer=Signer.generate())
    keyring = tmp_path / "gateways.json"
    keyring.write_text(
        keyring_json(
            [
                {
                    "gateway": g.gateway,
                    "site": SITE,
                    "key_id": g.signer.key_id,
                    "public_key": g.public_key.b64,
                }
                for g in (gw_a, gw_b)
            ]
        )
    )
    config = tmp_path / "collector.yaml"
    config.write_text(
        json.dumps(
            {
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": broker.port,
                    "client_id": "mrv-collector-1",
                    "tls": {
                        "ca_file": str(pki["ca"].cert),
                        "cert_file": str(pki["mrv-collector"].cert),
                        "key_file": str(pki["mrv-collector"].key),
                    },
                },
                "store": {"type": "sqlite", "path": str(tmp_path / "c.sqlite")},
                "keyring": str(keyring),
            }
        )
    )
    collector = Proc(
        command("collector", "run", "--config", str(config), "--stats-every", "1"), tmp_path / "collector.log"
    )
    try:
        wait_for(lambda: "subscribed to" in collector.output(), 20, "the collector to subscribe over TLS")
        a = _client("gw-a", pki, broker.port)
        acks: dict[int, str] = {}
        a.on_publish = lambda _c, _u, mid, reason, _p: acks.__setitem__(mid, str(reason))
        # 1. its own records on its own topic: stored
        a.publish(gw_a.topic, gw_a.message(gw_a.seal([gw_a.record("m1", 0, 1)])), qos=1).wait_for_publish(5)
        # 2. gateway B's (validly signed) records on B's topic, published by A: refused by the broker
        b_batch = gw_b.seal([gw_b.record("m1", 0, 1)])
        denied = a.publish(gw_b.topic, gw_b.message(b_batch), qos=1)
        wait_for(lambda: denied.mid in acks, 10, "the broker's answer")
        assert acks[denied.mid] == "Not authorized"
        # 3. a seal signed by B's key, sent by A on A's topic: refused by the collector
        wait_for(a.is_connected, 15, "gw-a to reconnect (Mosquitto ends the session after a refusal)")
        a.publish(gw_a.topic, gw_a.message(b_batch), qos=1).wait_for_publish(5)
        a.loop_stop()
        a.disconnect()

        def settled() -> bool:
            store = SqliteStore(tmp_path / "c.sqlite")
            try:
                return store.counts().records >= 1 and store.counts().quarantined >= 1
            finally:
                store.close()

        wait_for(settled, 20, "the collector to store and quarantine")
    finally:
        assert collector.stop() == 0, collector.output()
    store = SqliteStore(tmp_path / "c.sqlite")
    assert store.devices() == [(SITE, "gw-a", "m1")], "nothing may be stored for gw-b"
    reasons = [q.reason for q in store.quarantined()]
    store.close()
    assert reasons == ["key_gateway_mismatch"]


def test_no_certificate_no_connection(pki: dict[str, Identity], broker: Mosquitto) -> None:
    """Without a client certificate the broker ends the TLS session (TLS 1.3: after the handshake)."""
    try:
        client = _client("gw-a", pki, broker.port, with_cert=False)
    except (ssl.SSLError, OSError):
        return  # refused during the handshake (TLS 1.2)
    try:
        time.sleep(2)
        assert not client.is_connected()
    finally:
        client.loop_stop()


def test_agent_publishes_over_mutual_tls(tmp_path: Path, pki: dict[str, Identity], broker: Mosquitto) -> None:
    received: list[bytes] = []
    collector = _client("mrv-collector", pki, broker.port)
    collector.on_message = lambda _c, _u, m: received.append(m.payload)
    collector.subscribe(f"mrv/v1/{SITE}/gw-a/records", qos=1)
    signer = Signer.generate()
    buffer = Buffer(tmp_path / "b.sqlite", "gw-a")
    buffer.append_reading(
        "m1",
        SystemClock().now(),
        lambda seq, prev: build_record(
            site=SITE,
            gateway="gw-a",
            device="m1",
            profile_id="p",
            profile_sha256="a" * 64,
            seq=seq,
            prev=prev,
            time=SystemClock().now(),
            clock="synced",
            values={"energy_active_import_total": energy_value(1)},
        ),
    )
    buffer.seal_pending(make_sealer(signer, SystemClock(), SITE, "gw-a"), 10)
    tls = TlsSection(ca_file=pki["ca"].cert, cert_file=pki["gw-a"].cert, key_file=pki["gw-a"].key)
    publisher = Publisher(AgentMqtt(port=broker.port, client_id="agent-gw-a", tls=tls), SITE, "gw-a", buffer)
    publisher.start()
    try:
        wait_for(lambda: bool(received), 20, "the collector identity to receive it over mutual TLS")
        assert buffer.stats().seals == 1, "kept until the collector says it is stored"
        # The ACL lets the collector identity publish gw-a's watermark and gw-a read it.
        seal_hash = buffer.seal_hash(1)
        assert seal_hash is not None
        collector.publish(
            f"mrv/v1/{SITE}/gw-a/stored", watermark_payload("gw-a", 1, seal_hash), qos=1, retain=True
        )
        wait_for(lambda: buffer.stats().seals == 0, 20, "the watermark to free the seal")
    finally:
        publisher.stop(drain_timeout_s=1)
        collector.loop_stop()
        collector.disconnect()
        buffer.close()
    pki["gw-a"].key.chmod(0o644)
    with pytest.raises(Exception, match="readable by other users"):
        Publisher(AgentMqtt(port=broker.port, tls=tls), SITE, "gw-a", Buffer(tmp_path / "c.sqlite", "gw-a"))


def test_shipped_broker_config_works(tmp_path: Path, pki: dict[str, Identity]) -> None:
    """config/mosquitto/mosquitto-tls.conf as shipped, with this test's certificates in place."""
    etc = tmp_path / "etc-mrv"
    etc.mkdir()
    for name, source in (
        ("ca.pem", pki["ca"].cert),
        ("broker.pem", pki["broker"].cert),
        ("broker.key", pki["broker"].key),
        ("acl", ROOT / "config/mosquitto/acl"),
    ):
        (etc / name).write_bytes(source.read_bytes())
    port = free_port()
    conf = (ROOT / "config/mosquitto/mosquitto-tls.conf").read_text()
    assert "allow_anonymous true" not in conf and "require_certificate true" in conf
    conf = (
        conf.replace("/etc/mosquitto/mrv/", f"{etc}/")
        .replace("listener 8883", f"listener {port} 127.0.0.1")
        .replace("/var/lib/mosquitto/", f"{tmp_path}/")
    )
    (tmp_path / "mosquitto.conf").write_text(f"user {getpass.getuser()}\n{conf}")
    broker = Proc(["mosquitto", "-c", str(tmp_path / "mosquitto.conf")], tmp_path / "mosquitto.log")
    try:
        wait_for(lambda: port_open(port) or not broker.alive(), 10, "the shipped broker config")
        assert broker.alive(), broker.output()
        client = _client("gw-a", pki, port)
        acks: dict[int, str] = {}
        client.on_publish = lambda _c, _u, mid, reason, _p: acks.__setitem__(mid, str(reason))
        own = client.publish("mrv/v1/site/gw-a/heartbeat", b"{}", qos=1)
        other = client.publish("mrv/v1/site/gw-b/heartbeat", b"{}", qos=1)
        # A watermark makes a gateway delete its seals: only the collector may publish one.
        forged = client.publish("mrv/v1/site/gw-a/stored", watermark_payload("gw-a", 9, "ab" * 32), qos=1)
        wait_for(lambda: {own.mid, other.mid, forged.mid} <= acks.keys(), 10, "every answer")
        assert acks[own.mid] in ("Success", "No matching subscribers") and acks[other.mid] == "Not authorized"
        assert acks[forged.mid] == "Not authorized"
        client.loop_stop()
    finally:
        broker.stop()
