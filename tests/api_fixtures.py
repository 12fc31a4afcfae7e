"""A collector's HTTP app over a real SQLite store filled through the real ingest path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from collector.gateways import Enrollment, enroll, save_registry
from collector.http_api import ApiContext, LiveState, create_app
from collector.metrics import Metrics
from collector.processing import Ingestor, ingest_messages
from collector.store.sqlite import SqliteStore
from collector.tokens import TokenEntry, Tokens, TokensWatcher, save_tokens, token_hash
from mrv_core.keyring import Registry
from tests.factory import Gateway, test_profile

NOW_MS = 1_767_268_800_000  # 2026-01-01T12:00:00Z: the factory's records start at midnight
TOKENS = {"operator": "mrv_operator-token", "verifier": "mrv_verifier-token", "admin": "mrv_admin-token"}


@dataclass
class Site:
    app: FastAPI
    store: SqliteStore
    gateway: Gateway
    registry_path: Path
    tokens_path: Path
    metrics: Metrics

    @staticmethod
    def bearer(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKENS[role]}"}


def build_site(tmp_path: Path) -> Site:
    gw = Gateway()
    store = SqliteStore(tmp_path / "collector.sqlite")
    registry_path = tmp_path / "gateways.json"
    registry = enroll(
        Registry(),
        Enrollment(gw.gateway, gw.site, gw.signer.key_id, gw.public_key.b64),
        "2025-12-31T00:00:00.000Z",
    )
    save_registry(registry_path, registry)
    ingestor = Ingestor(store, registry.keyring(), clock_ms=lambda: NOW_MS)
    base = f"mrv/v1/{gw.site}/{gw.gateway}"
    heartbeat = {
        "gateway": gw.gateway,
        "time": "2026-01-01T11:59:58.000Z",
        "heartbeat_s": 60,
        "buffer": {"pending_records": 7, "oldest_pending": "2026-01-01T11:50:00.000Z", "high_water": True},
        "publisher": {"connected": True, "resends": 2},
        "devices": {
            "m1": {"poll_interval_s": 600, "consecutive_failures": 0, "last_error": ""},
            "m2": {"poll_interval_s": 600, "consecutive_failures": 3, "last_error": "timeout: no answer"},
        },
    }
    records = [gw.record("m1", 10 * i, 1000 + i) for i in range(60)]
    ingest_messages(
        ingestor,
        [
            (f"{base}/status", json.dumps({"gateway": gw.gateway, "state": "online"}).encode()),
            (f"{base}/heartbeat", json.dumps(heartbeat).encode()),
            (gw.topic, gw.message(gw.seal(records[:20] + records[25:]))),  # seqs 21..25 missing
            (gw.topic, gw.message(gw.seal([gw.record("m2", 0, 5)]))),
            (gw.topic, b"garbage"),
        ],
    )
    tokens_path = tmp_path / "tokens.json"
    save_tokens(
        tokens_path,
        Tokens(tuple(TokenEntry(f"{role}-1", role, token_hash(token)) for role, token in TOKENS.items())),
    )
    metrics = Metrics()
    metrics.watch_gateways(store.gateway_states, now=lambda: NOW_MS / 1000)
    live = LiveState(
        broker_connected=lambda: True,
        queue_depth=lambda: 0,
        oldest_queued_age_s=lambda: None,
        totals=lambda: {"messages": 5, "stored": 56, "duplicates": 0, "gaps": 1, "quarantined": 1},
        rate_per_s=lambda: 0.5,
        store_last_error=lambda: "",
        registry_errors=lambda: 0,
    )
    app = create_app(
        ApiContext(
            store=store,
            store_type="sqlite",
            registry_path=registry_path,
            tokens=TokensWatcher(tokens_path).current,
            metrics=metrics,
            live=live,
            profiles=lambda: {test_profile().id: test_profile()},
            clock_ms=lambda: NOW_MS,
        )
    )
    return Site(app, store, gw, registry_path, tokens_path, metrics)
