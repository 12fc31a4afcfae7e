"""Wiring of the collector: ingest worker, HTTP service and metrics around one store."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from collector.config import CollectorConfig
from collector.gateways import KeyringWatcher
from collector.http_api import ApiContext, LiveState, create_app
from collector.ingest import MqttIngest
from collector.metrics import Metrics
from collector.processing import Ingestor
from collector.projects import load_projects
from collector.store.base import Store
from collector.tokens import TokensWatcher
from mrv_core.profile import Profile
from mrv_core.profile_schema import load_profile_dir
from mrv_core.verify import Keyring

log = logging.getLogger(__name__)


@dataclass
class CollectorService:
    config: CollectorConfig
    store: Store
    keyring: Keyring
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        self.registry = KeyringWatcher(self.config.keyring)
        self.registry.current()
        ingestor = Ingestor(
            self.store,
            self.keyring,
            clock_ms=lambda: int(time.time() * 1000),
            shared=self.config.mqtt.shared_group is not None,
        )
        self.ingest = MqttIngest(
            self.config.mqtt, ingestor, keyring_source=self.registry.current, metrics=self.metrics
        )
        self.metrics.watch_gateways(self.store.gateway_states)
        self._http: uvicorn.Server | None = None
        self._http_thread: threading.Thread | None = None
        if self.config.http is not None:
            self.tokens = TokensWatcher(self.config.http.tokens_file)
            self.tokens.current()  # refuse to start with an exposed or broken tokens file
            if not self.tokens.current().entries:
                log.warning(
                    "no API tokens in %s: every API route will answer 401 ('mrv-collector tokens add')",
                    self.config.http.tokens_file,
                )

    def _profiles(self) -> dict[str, Profile]:
        directory = self.config.profiles_dir
        return load_profile_dir(directory) if directory.exists() else {}

    def _live(self) -> LiveState:
        stats = self.ingest.stats
        return LiveState(
            broker_connected=lambda: stats.connected,
            queue_depth=self.ingest.queue_depth,
            oldest_queued_age_s=self.ingest.oldest_age_s,
            totals=stats.as_totals,
            rate_per_s=lambda: stats.rate_per_s(time.monotonic()),
            store_last_error=lambda: stats.last_error,
            registry_errors=lambda: self.registry.errors,
        )

    def app(self) -> Any:
        return create_app(
            ApiContext(
                store=self.store,
                store_type=self.config.store.type,
                registry_path=self.config.keyring,
                tokens=self.tokens.current,
                metrics=self.metrics,
                live=self._live(),
                profiles=self._profiles,
                projects=lambda: load_projects(self.config.projects_dir),
            )
        )

    def start(self) -> None:
        self.ingest.start()
        if self.config.http is not None:
            http = self.config.http
            # No access log: nothing a request carries (tokens travel in headers) reaches the logs anyway.
            config = uvicorn.Config(
                self.app(), host=http.host, port=http.port, log_level="warning", access_log=False
            )
            self._http = uvicorn.Server(config)
            self._http_thread = threading.Thread(target=self._http.run, name="http", daemon=True)
            self._http_thread.start()
            log.info("status API and page on http://%s (OpenAPI at /openapi.json)", http.listen)

    def stop(self) -> None:
        if self._http is not None:
            self._http.should_exit = True
            if self._http_thread is not None:
                self._http_thread.join(timeout=10)
        self.ingest.stop()
