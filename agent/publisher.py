"""The only module that talks to paho-mqtt on the gateway: publish sealed batches.

Oldest first, at QoS 1, with a bounded window of messages in flight. A PUBACK
is not delivery: a broker acknowledges messages it then drops (Mosquitto's
``max_queued_messages``, a crash before its persistence file is written). A
seal leaves the disk buffer only when the collector says, on the retained
``{prefix}/{site}/{gateway}/stored`` topic, that seals 1..N are durably stored
(``{"gateway": G, "seals_through": N, "seal_hash": H}``), and only if its own
seal N has hash H: a retained watermark about another chain of seals (the same
gateway id reinstalled) deletes nothing. Seals the broker took but the
collector has not confirmed within ``confirm_timeout_s`` are sent again from
the oldest (the collector stores duplicates once). "No matching subscribers"
(MQTT 5) and failures are retried later.

paho calls ``on_publish`` while holding its own lock, so callbacks only put
events on a queue; the worker thread owns all state and all disk writes.

paho's loop thread reconnects by itself; ``JitteredClient`` makes each wait a
random draw (``agent.backoff``, ``mqtt.reconnect_min_s``/``reconnect_max_s``).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.backoff import Backoff
from agent.buffer import Buffer, BufferFullError
from agent.config import MqttSection
from mrv_core.envelope import build_envelope
from mrv_core.mqtt_security import broker_password
from mrv_core.watermark import parse_watermark, watermark_topic

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
ACK_TIMEOUT_S = 120.0


MAX_CONFIRM_TIMEOUT_S = 600.0


def topics(prefix: str, site: str, gateway: str) -> tuple[str, str, str, str]:
    """(records, retained status, retained heartbeat, collector's retained watermark) topics of a gateway."""
    base = f"{prefix}/{site}/{gateway}"
    return f"{base}/records", f"{base}/status", f"{base}/heartbeat", watermark_topic(prefix, site, gateway)


@dataclass
class RateLimit:
    """At most ``per_s`` records per second, on average (None: no limit). Pure: time is passed in."""

    per_s: float | None
    next_at: float = 0.0

    def ready(self, now: float) -> bool:
        return self.per_s is None or now >= self.next_at

    def spend(self, now: float, records: int) -> None:
        if self.per_s is not None:
            self.next_at = max(now, self.next_at) + records / self.per_s


class JitteredClient(mqtt.Client):
    """paho doubles its reconnect wait in lock-step on every gateway: draw each wait at random instead."""

    def __init__(self, backoff: Backoff, **kwargs: Any) -> None:
        super().__init__(CallbackAPIVersion.VERSION2, **kwargs)
        self.backoff = backoff  # reset by the on_connect callback of a successful connection

    def _reconnect_wait(self) -> None:
        # paho's loop thread calls this before every reconnection attempt; after reconnect_delay_set
        # (which clears paho's doubling) it waits exactly min_delay, which paho adds to time.time(),
        # so a float works despite the int annotation.
        delay = self.backoff.next_delay_s()
        self.reconnect_delay_set(delay, delay)  # type: ignore[arg-type]
        super()._reconnect_wait()


@dataclass
class PublisherStats:
    messages_sent: int = 0
    messages_acked: int = 0
    messages_refused: int = 0
    seals_confirmed_through: int = 0  # the collector's latest watermark
    resends: int = 0  # times unconfirmed seals were sent again from the oldest
    bad_watermarks: int = 0
    foreign_watermarks: int = 0  # well formed, but about another chain of seals: ignored
    connected: bool = False
    last_error: str = ""


@dataclass
class _InFlight:
    seal_ids: list[int]
    sent_at: float


@dataclass
class Publisher:
    config: MqttSection
    site: str
    gateway: str
    buffer: Buffer
    monotonic: Callable[[], float] = time.monotonic
    status_fields: Callable[[], dict[str, Any]] = dict  # e.g. time and key id, added to status messages
    stats: PublisherStats = field(default_factory=PublisherStats)

    def __post_init__(self) -> None:
        self.records_topic, self.status_topic, self.heartbeat_topic, self.stored_topic = topics(
            self.config.topic_prefix, self.site, self.gateway
        )
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._inflight: dict[int, _InFlight] = {}
        self._unconfirmed: dict[int, float] = {}  # seal id -> when the broker took it
        self._confirmed_id = 0  # seals up to this id are confirmed and gone (ids grow with seal seq)
        self._delete_through = 0  # the collector's watermark, to delete up to
        self._deleted_through = 0  # what was deleted (a watermark of 0 deletes nothing)
        self._confirm_timeout = self.config.confirm_timeout_s
        self._rate = RateLimit(self.config.max_records_per_s)
        self._retry: list[tuple[float, list[int]]] = []
        self._cursor = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = self._make_client()

    def _make_client(self) -> JitteredClient:
        v5 = self.config.protocol == "5"
        client = JitteredClient(
            Backoff(self.config.reconnect_min_s, self.config.reconnect_max_s),
            client_id=self.config.client_id or f"mrv-agent-{self.site}-{self.gateway}",
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
        )
        if self.config.username:
            client.username_pw_set(self.config.username, broker_password(self.config.password_file))
        if self.config.tls is not None:
            self.config.tls.check_private()
            tls = self.config.tls
            client.tls_set(
                ca_certs=str(tls.ca_file),
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
            )
        client.max_inflight_messages_set(self.config.max_inflight)
        client.will_set(self.status_topic, self._status("offline"), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _status(self, state: str) -> bytes:
        body = {"state": state, "gateway": self.gateway, "site": self.site, **self.status_fields()}
        return json.dumps(body).encode()

    def publish_heartbeat(self, body: dict[str, Any]) -> bool:
        """Retained, latest only: a heartbeat missed while disconnected is not worth buffering."""
        if not self.stats.connected:
            return False
        info = self._client.publish(self.heartbeat_topic, json.dumps(body).encode(), qos=1, retain=True)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    # paho callbacks (network thread): only enqueue.
    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self._events.put(("refused", str(reason)))
            return
        self._client.backoff.reset()  # this thread is paho's, the one that reads it
        client.publish(self.status_topic, self._status("online"), qos=1, retain=True)
        client.subscribe(self.stored_topic, qos=1)
        self._events.put(("connected", bool(flags.session_present)))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self._events.put(("disconnected", str(reason)))

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        self._events.put(("ack", (mid, reason.value, str(reason))))

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._events.put(("stored", bytes(message.payload)))

    def start(self) -> None:
        properties = None
        if self.config.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
        self._client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive_s,
            clean_start=False if self.config.protocol == "5" else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """New sealed batches are in the buffer."""
        self._events.put(("wake", None))

    def idle(self) -> bool:
        return not self._inflight and not self._retry and not self._unconfirmed

    def stop(
        self, drain_timeout_s: float = 10.0, last_heartbeat: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        """Wait up to ``drain_timeout_s`` for the buffer to empty, then disconnect cleanly.

        ``last_heartbeat`` (after the drain) tells operators what was left, before the offline status.
        """
        deadline = self.monotonic() + drain_timeout_s
        while self.monotonic() < deadline:
            if self.buffer.stats().seals == 0 and self.idle():
                break
            time.sleep(0.05)
        self._stop.set()
        self._events.put(("wake", None))
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.stats.connected:
            if last_heartbeat is not None:
                beat = last_heartbeat()
                self._client.publish(self.heartbeat_topic, json.dumps(beat).encode(), qos=1, retain=True)
            info = self._client.publish(self.status_topic, self._status("offline"), qos=1, retain=True)
            info.wait_for_publish(timeout=2)
        self._client.disconnect()
        self._client.loop_stop()

    # worker thread: owns _inflight, _retry, _cursor and every buffer write.
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._handle(*self._events.get(timeout=0.2 if self.stats.connected else 1.0))
                while True:
                    self._handle(*self._events.get_nowait())
            except queue.Empty:
                pass
            except Exception as exc:  # keep the thread alive: an event lost here comes again
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("publisher: %s", self.stats.last_error)
            try:
                self._delete_confirmed()
                self._expire_unacked()
                if self.stats.connected:
                    self._fill_window()
            except Exception as exc:  # keep publishing; the buffer still holds everything
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("publisher: %s", self.stats.last_error)
                time.sleep(1.0)

    def _handle(self, kind: str, payload: Any) -> None:
        if kind == "connected":
            self.stats.connected = True
            # paho resends every unacknowledged QoS 1 message after a reconnect;
            # give them a fresh ack deadline instead of publishing copies.
            for entry in self._inflight.values():
                entry.sent_at = self.monotonic()
            log.info("connected to mqtt://%s:%d", self.config.host, self.config.port)
            if not payload and self._unconfirmed:
                # The broker lost our session (a crash before it saved it, or a new broker): what it
                # had taken for the collector may be gone with it. Send it again now.
                self._go_back("the broker did not keep our session")
        elif kind == "disconnected":
            self.stats.connected = False
            log.warning("disconnected from the broker: %s (buffering on disk)", payload)
        elif kind == "refused":
            self.stats.last_error = f"broker refused the connection: {payload}"
            log.error("%s", self.stats.last_error)
        elif kind == "ack":
            mid, code, text = payload
            if mid not in self._inflight:
                return  # a resend's second acknowledgement, or expired meanwhile
            entry = self._inflight.pop(mid)
            if code == 0:  # the broker has it; the collector's watermark will say when it is stored
                now = self.monotonic()
                waiting = [seal_id for seal_id in entry.seal_ids if seal_id > self._confirmed_id]
                self._unconfirmed.update(dict.fromkeys(waiting, now))
                self.stats.messages_acked += 1
            else:
                self.stats.messages_refused += 1
                self.stats.last_error = f"broker answered {text} (0x{code:02x})"
                log.warning("batch not accepted (%s); retrying in %.0f s", text, self.config.retry_after_s)
                self._retry.append((self.monotonic() + self.config.retry_after_s, entry.seal_ids))

        elif kind == "stored":
            self._confirmed(payload)

    def _confirmed(self, payload: bytes) -> None:
        """The collector's watermark: seals 1..N are stored and may leave the buffer."""
        try:
            through, seal_hash = parse_watermark(payload, self.gateway)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            self.stats.bad_watermarks += 1
            log.warning("ignored a message on %s: %s", self.stored_topic, exc)
            return
        foreign = self._foreign(through, seal_hash)
        if foreign:
            self.stats.foreign_watermarks += 1
            self.stats.last_error = (
                f"ignored the watermark on {self.stored_topic} (seals through {through}): {foreign}; "
                "nothing is deleted (the same gateway id reinstalled, or another installation's store?)"
            )
            log.error("%s", self.stats.last_error)
            return
        self._delete_through = max(self._delete_through, through)
        self._delete_confirmed()
        if through > self.stats.seals_confirmed_through:
            self.stats.seals_confirmed_through = through
            self._confirm_timeout = self.config.confirm_timeout_s
            # Progress: the seals still out get a fresh deadline.
            self._unconfirmed = dict.fromkeys(self._unconfirmed, self.monotonic())

    def _foreign(self, through: int, seal_hash: str) -> str:
        """Why a watermark is not about this buffer's chain of seals ('' if it is)."""
        if through == 0:
            return ""
        ours = self.buffer.seal_hash(through)
        if ours is not None:
            return "" if ours == seal_hash else f"our seal {through} has another hash"
        made = self.buffer.sealed_through()
        if through > made:
            return f"this gateway has made only {made} seal(s)"
        return ""  # seal N left the buffer on an earlier watermark, with every seal before it

    def _delete_confirmed(self) -> None:
        """Delete what the collector confirmed; on a full disk even a delete can fail: try again later."""
        if self._delete_through <= self._deleted_through:
            return
        try:
            deleted = self.buffer.delete_through(self._delete_through)
        except BufferFullError as exc:
            if self.stats.last_error != str(exc):
                self.stats.last_error = str(exc)
                log.error("cannot delete delivered seals yet: %s", exc)
            return
        self._deleted_through = self._delete_through
        self._confirmed_id = max([self._confirmed_id, *deleted])
        for seal_id in deleted:
            self._unconfirmed.pop(seal_id, None)

    def _expire_unacked(self) -> None:
        """Messages a connected broker never acknowledged are sent again (dedupe makes it safe); so are
        seals the broker took but the collector did not confirm in time (the broker may have dropped
        them): from the oldest, with a timeout that doubles while nothing gets confirmed."""
        if not self.stats.connected:
            return
        now = self.monotonic()
        for mid, entry in list(self._inflight.items()):
            if now - entry.sent_at > ACK_TIMEOUT_S:
                del self._inflight[mid]
                self._retry.append((now, entry.seal_ids))
        if self._unconfirmed and now - min(self._unconfirmed.values()) > self._confirm_timeout:
            self._go_back(f"the collector has not confirmed them within {self._confirm_timeout:.0f} s")
            self._confirm_timeout = min(self._confirm_timeout * 2, MAX_CONFIRM_TIMEOUT_S)

    def _go_back(self, why: str) -> None:
        """Send every unconfirmed seal again, from the oldest (the collector stores each once)."""
        log.warning(
            "%d seal(s) the broker took are not confirmed stored (stored through seal %d): %s; "
            "sending them again from the oldest",
            len(self._unconfirmed),
            self.stats.seals_confirmed_through,
            why,
        )
        self._unconfirmed.clear()
        self._cursor = 0
        self.stats.resends += 1

    def _fill_window(self) -> None:
        while (
            len(self._inflight) < self.config.max_inflight
            and len(self._unconfirmed) < self.config.max_unconfirmed_seals
            and not self._stop.is_set()
            and self._rate.ready(self.monotonic())
        ):
            batches = self._next()
            if not batches:
                return
            payload = build_envelope(self.gateway, [b for _, b in batches])
            ids = [seal_id for seal_id, _ in batches]
            info = self._client.publish(self.records_topic, payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._retry.append((self.monotonic() + 1.0, ids))
                return
            self._inflight[info.mid] = _InFlight(ids, self.monotonic())
            self._rate.spend(self.monotonic(), sum(len(batch.records) for _, batch in batches))
            self.stats.messages_sent += 1

    def _next(self) -> list[Any]:
        now = self.monotonic()
        self._retry.sort()
        if self._retry and self._retry[0][0] <= now:
            _, ids = self._retry.pop(0)
            return self.buffer.batches_by_id(ids)
        if self._retry:
            return []  # keep order: wait for the retries before sending newer batches
        skip = {i for entry in self._inflight.values() for i in entry.seal_ids} | self._unconfirmed.keys()
        batches = self.buffer.next_batches(self._cursor, self.config.max_message_bytes, skip)
        if batches:
            self._cursor = max(self._cursor, *(seal_id for seal_id, _ in batches))
        return batches
