"""The only module that talks to paho-mqtt in the collector: subscribe, store, then ack.

``manual_ack=True``: a message is acknowledged only after everything in it is
durably stored or quarantined; then each gateway whose seals it carried gets
its watermark (collector/watermarks.py), which is what lets the agent delete.
If the store fails, the same messages are retried (with backoff) and nothing
is acknowledged, so the broker keeps them; its window of unacknowledged
messages (MQTT 5 receive maximum) bounds what we hold in memory. Callbacks
only enqueue; a worker thread verifies each group while a writer thread writes
the one before (what is prepared and not yet written counts as stored for
duplicate checks); groups are acknowledged in order, each after its write.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from collector.config import MqttSection
from collector.metrics import Metrics
from collector.processing import Ingestor, IngestResult, Prepared, ingest_messages
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


@dataclass
class _Writing:
    """A group of messages prepared and handed to the writer thread."""

    group: list[mqtt.MQTTMessage]
    prepared: Prepared
    future: Future[IngestResult]
    started: float


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
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
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
        self._writer.shutdown(wait=True)
        self._client.disconnect()
        self._client.loop_stop()

    def _take(self, wait_s: float) -> list[mqtt.MQTTMessage]:
        try:
            first = self._messages.get(timeout=wait_s) if wait_s else self._messages.get_nowait()
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
        """Prepare a group while the previous one is being written (the store and our CPU work in
        parallel: on two cores this is what takes ingest past 20,000 records/s); acknowledge each
        group, in order, once it is written. In a shared group each write must see what the others
        stored, so there one group is prepared only after the last is written."""
        depth = 1 if self.config.shared_group else 2
        writing: deque[_Writing] = deque()
        while not self._stop.is_set():
            group = self._take(wait_s=0 if writing else 0.5)
            if group:
                try:
                    writing.append(self._start(group))
                except StoreError as exc:  # verifying reads the store too (heads, seals, links)
                    self._store_failed(exc, len(group))
                    self._recover(writing, group)
                    continue
            while writing and (len(writing) >= depth or writing[0].future.done() or not group):
                if not self._finish(writing):
                    self._recover(writing, [])
        while writing:  # stopping: let what is being written finish and be acknowledged
            if not self._finish(writing):
                break  # unacknowledged: the broker gives it to the next session

    def _start(self, group: list[mqtt.MQTTMessage]) -> _Writing:
        if self.keyring_source is not None:  # enrollments and revocations apply from the next group
            self.ingestor.keyring = self.keyring_source()
        if self.stats.in_hand_since is None:
            self.stats.in_hand_since = min(m.timestamp for m in group)
        started = time.monotonic()
        prepared = self.ingestor.prepare_messages([(m.topic, bytes(m.payload)) for m in group])
        return _Writing(group, prepared, self._writer.submit(self.ingestor.commit, prepared), started)

    def _finish(self, writing: deque[_Writing]) -> bool:
        """Wait for the oldest write; acknowledge it if it succeeded. False if the store failed."""
        oldest = writing[0]
        try:
            result = oldest.future.result()
        except StoreError as exc:
            self._store_failed(exc, len(oldest.group))
            return False
        writing.popleft()
        self.ingestor.release(oldest.prepared)
        self._acknowledge(oldest.group, result, oldest.started)
        self.stats.in_hand_since = min(m.timestamp for m in writing[0].group) if writing else None
        return True

    def _recover(self, writing: deque[_Writing], failed: list[mqtt.MQTTMessage]) -> None:
        """A write failed (or reading the store while verifying ``failed``, the newest group): wait for
        the writes under way, forget what was prepared on top of the store, and store the groups again
        one by one, in order, retrying until the store is back (nothing acknowledged meanwhile)."""
        for item in writing:
            item.future.exception()  # wait; each is stored again below
        groups = [item.group for item in writing] + ([failed] if failed else [])
        writing.clear()
        self.ingestor.forget_heads()
        for group in groups:
            if not self._store_then_ack(group):
                return  # stopping: the broker redelivers them to the next session

    def _store_failed(self, exc: StoreError, messages: int) -> None:
        self.stats.store_errors += 1
        if self.metrics:
            self.metrics.store_errors.inc()
        self.stats.last_error = str(exc)
        log.error("store unavailable, holding %d message(s) unacknowledged: %s", messages, exc)

    def _store_then_ack(self, group: list[mqtt.MQTTMessage]) -> bool:
        """One group, prepared and written with retries and backoff; False if stopping first."""
        backoff = 0.5
        self.stats.in_hand_since = min(m.timestamp for m in group)
        while True:
            if self.keyring_source is not None:
                self.ingestor.keyring = self.keyring_source()
            started = time.monotonic()
            try:
                result = ingest_messages(self.ingestor, [(m.topic, bytes(m.payload)) for m in group])
                break
            except StoreError as exc:
                self._store_failed(exc, len(group))
                if self._stop.wait(backoff):
                    return False
                backoff = min(backoff * 2, 30.0)
        self._acknowledge(group, result, started)
        self.stats.in_hand_since = None
        return True

    def _acknowledge(self, group: list[mqtt.MQTTMessage], result: IngestResult, started: float) -> None:
        for message in group:
            self._client.ack(message.mid, message.qos)
        for (site, gateway), (through, seal_hash) in result.watermarks.items():  # agents may forget these
            topic = watermark_topic(self.config.topic_prefix, site, gateway)
            self._client.publish(topic, watermark_payload(gateway, through, seal_hash), qos=1, retain=True)
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
