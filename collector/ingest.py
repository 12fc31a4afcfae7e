"""The only module that talks to paho-mqtt in the collector: subscribe, store, then ack.

``manual_ack=True``: a message is acknowledged only after everything in it is
durably stored or quarantined; then each gateway whose seals it carried gets
its watermark (collector/watermarks.py), which is what lets the agent delete.
If the store fails, the same messages are retried (with backoff) and nothing
is acknowledged, so the broker keeps them; its window of unacknowledged
messages (MQTT 5 receive maximum) bounds what we hold in memory. Callbacks
only enqueue; one worker thread does the work.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.config import MqttSection
from collector.metrics import Metrics
from collector.processing import Ingestor, IngestResult, ingest_messages
from collector.store.base import StoreError
from mrv_core.mqtt_security import broker_password
from mrv_core.verify import Keyring
from mrv_core.watermark import watermark_payload, watermark_topic

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
SHARED_SESSION_EXPIRY_S = 60


def session_expiry_s(config: MqttSection) -> int:
    """Long for a lone collector (the broker keeps its messages while it restarts); short in a shared
    group, where the broker keeps handing a dead member its share until the session expires."""
    if config.session_expiry_s is not None:
        return config.session_expiry_s
    return SHARED_SESSION_EXPIRY_S if config.shared_group else SESSION_EXPIRY_S


@dataclass
class IngestStats:
    messages: int = 0
    totals: IngestResult = field(default_factory=IngestResult)
    store_errors: int = 0
    connected: bool = False
    last_error: str = ""
    in_hand_since: float | None = None  # monotonic receive time of the oldest message being stored
    recent: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=10_000))

    def rate_per_s(self, now: float, window_s: float = 60.0) -> float:
        """Records stored per second over the last ``window_s`` seconds."""
        stored = sum(n for at, n in self.recent if now - at <= window_s)
        return stored / window_s

    def as_totals(self) -> dict[str, int]:
        return {
            "messages": self.messages,
            "stored": self.totals.stored,
            "duplicates": self.totals.duplicates,
            "gaps": self.totals.gaps,
            "quarantined": sum(self.totals.quarantined.values()),
        }


class MqttIngest:
    def __init__(
        self,
        config: MqttSection,
        ingestor: Ingestor,
        keyring_source: Callable[[], Keyring] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.ingestor = ingestor
        self.keyring_source = keyring_source
        self.metrics = metrics
        self.stats = IngestStats()
        share = f"$share/{config.shared_group}/" if config.shared_group else ""
        self.topics = [
            f"{share}{config.topic_prefix}/+/+/{kind}" for kind in ("records", "status", "heartbeat")
        ]
        self._messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        v5 = config.protocol == "5"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            # MQTT 3.1.1 has no session expiry: in a shared group a persistent session would hold a
            # dead member's share for ever, so there the session is clean (agents resend what is lost).
            clean_session=None if v5 else config.shared_group is not None,
            manual_ack=True,
        )
        if config.username:
            self._client.username_pw_set(config.username, broker_password(config.password_file))
        if config.tls is not None:
            config.tls.check_private()
            self._client.tls_set(
                ca_certs=str(config.tls.ca_file),
                certfile=str(config.tls.cert_file) if config.tls.cert_file else None,
                keyfile=str(config.tls.key_file) if config.tls.key_file else None,
            )
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self.stats.last_error = f"broker refused the connection: {reason}"
            log.error("%s", self.stats.last_error)
            return
        self.stats.connected = True
        if self.metrics:
            self.metrics.broker_connected.set(1)
        client.subscribe([(topic, 1) for topic in self.topics])
        log.info(
            "subscribed to %s on mqtt://%s:%d (session present: %s)",
            ", ".join(self.topics),
            self.config.host,
            self.config.port,
            flags.session_present,
        )

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.stats.connected = False
        if self.metrics:
            self.metrics.broker_connected.set(0)
        if not self._stop.is_set():
            log.warning("disconnected from the broker: %s", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._messages.put(message)

    def start(self) -> None:
        properties = None
        if self.config.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = session_expiry_s(self.config)
            properties.ReceiveMaximum = self.config.receive_maximum
        self._client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive_s,
            clean_start=False if self.config.protocol == "5" else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._client.loop_start()
        self._worker = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        """Finish the group in hand, then disconnect; unacknowledged messages stay with the broker."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=30)
        self._client.disconnect()
        self._client.loop_stop()

    def _take(self) -> list[mqtt.MQTTMessage]:
        try:
            first = self._messages.get(timeout=0.5)
        except queue.Empty:
            return []
        group = [first]
        budget = self.config.max_bytes_per_write - len(first.payload)
        while len(group) < self.config.max_messages_per_write and budget > 0:
            try:
                message = self._messages.get_nowait()
            except queue.Empty:
                break
            group.append(message)
            budget -= len(message.payload)
        return group

    def _run(self) -> None:
        while not self._stop.is_set():
            group = self._take()
            if group:
                self._store_then_ack(group)

    def _store_then_ack(self, group: list[mqtt.MQTTMessage]) -> None:
        if self.keyring_source is not None:  # enrollments and revocations apply from the next group
            self.ingestor.keyring = self.keyring_source()
        self.stats.in_hand_since = min(m.timestamp for m in group)
        backoff = 0.5
        while True:
            started = time.monotonic()
            try:
                result = ingest_messages(self.ingestor, [(m.topic, bytes(m.payload)) for m in group])
                break
            except StoreError as exc:
                self.stats.store_errors += 1
                if self.metrics:
                    self.metrics.store_errors.inc()
                self.stats.last_error = str(exc)
                log.error("store unavailable, holding %d message(s) unacknowledged: %s", len(group), exc)
                if self._stop.wait(backoff):
                    return  # stopping: the broker redelivers them to the next session
                backoff = min(backoff * 2, 30.0)
        for message in group:
            self._client.ack(message.mid, message.qos)
        for (site, gateway), through in result.watermarks.items():  # the agents may now forget these
            topic = watermark_topic(self.config.topic_prefix, site, gateway)
            self._client.publish(topic, watermark_payload(gateway, through), qos=1, retain=True)
        self.stats.in_hand_since = None
        self.stats.messages += len(group)
        self.stats.totals.add(result)
        self.stats.recent.append((time.monotonic(), result.stored))
        if self.metrics:
            self.metrics.count(result, time.monotonic() - started, len(group))
        if result.quarantined or result.gaps:
            log.warning(
                "ingest: %d stored, %d duplicate, %d gap(s), quarantined %s",
                result.stored,
                result.duplicates,
                result.gaps,
                dict(result.quarantined),
            )
        if self.stats.store_errors and self.stats.last_error:
            log.info("store reachable again; resumed")
            self.stats.last_error = ""

    def queue_depth(self) -> int:
        return self._messages.qsize()

    def oldest_age_s(self) -> float | None:
        since = self.stats.in_hand_since
        return None if since is None else round(time.monotonic() - since, 3)

    def wait_idle(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._messages.empty():
                return True
            time.sleep(0.05)
        return False
