"""Prometheus metrics of the collector (served on /metrics, operator token required)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from collector.processing import IngestResult
from collector.store.base import GatewayState
from mrv_core import verify

# Quarantine reasons that are failed verifications (as opposed to chain or transport problems).
VERIFICATION_REASONS = frozenset(
    {
        verify.UNKNOWN_KEY,
        verify.KEY_GATEWAY_MISMATCH,
        verify.BAD_SIGNATURE,
        verify.KEY_REVOKED,
        verify.KEY_RETIRED,
        verify.RECORD_MISSING,
        verify.RECORD_ALTERED,
        verify.RECORD_FOREIGN,
        verify.MALFORMED,
    }
)


class _GatewayAges(Collector):
    """Seconds since each gateway was last heard from, computed at scrape time."""

    def __init__(self, states: Callable[[], list[GatewayState]], now: Callable[[], float]) -> None:
        self._states = states
        self._now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "mrv_gateway_last_seen_age_seconds",
            "Seconds since the gateway was last heard from",
            labels=["gateway"],
        )
        now_ms = self._now() * 1000
        try:
            states = self._states()
        except Exception:  # noqa: BLE001 - a store outage must not break the whole scrape
            states = []
        for state in states:
            if state.last_seen_ms is not None:
                family.add_metric([state.gateway], (now_ms - state.last_seen_ms) / 1000)
        yield family


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter("mrv_ingest_messages", "MQTT messages processed and acknowledged", registry=r)
        self.records = Counter("mrv_ingest_records", "Records by outcome", ["outcome"], registry=r)
        self.quarantined = Counter("mrv_quarantined", "Quarantined items by reason", ["reason"], registry=r)
        self.verification_failures = Counter(
            "mrv_verification_failures",
            "Items that failed signature or seal verification",
            ["reason"],
            registry=r,
        )
        self.gaps = Counter("mrv_gaps_detected", "Sequence gaps detected at ingest", registry=r)
        self.store_errors = Counter(
            "mrv_store_errors", "Failed store writes (messages kept unacknowledged)", registry=r
        )
        self.store_write_seconds = Histogram(
            "mrv_store_write_seconds",
            "Duration of one durable store write",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.broker_connected = Gauge("mrv_broker_connected", "1 while connected to the broker", registry=r)
        self.auth_failures = Counter(
            "mrv_api_auth_failures", "API requests refused for their token", registry=r
        )
        self.api_responses = Counter(
            "mrv_api_responses", "API responses by status code", ["status"], registry=r
        )

    def watch_gateways(
        self, states: Callable[[], list[GatewayState]], now: Callable[[], float] = time.time
    ) -> None:
        self.registry.register(_GatewayAges(states, now))

    def count(self, result: IngestResult, seconds: float, messages: int) -> None:
        self.messages.inc(messages)
        self.records.labels("stored").inc(result.stored)
        self.records.labels("duplicate").inc(result.duplicates)
        self.gaps.inc(result.gaps)
        for reason, n in result.quarantined.items():
            self.quarantined.labels(reason).inc(n)
            if reason in VERIFICATION_REASONS:
                self.verification_failures.labels(reason).inc(n)
        self.store_write_seconds.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
