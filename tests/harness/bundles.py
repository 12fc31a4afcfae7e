"""An evidence bundle of a test store, written by the real 'mrv-collector export'."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from collector.gateways import Enrollment, enroll, save_registry
from collector.processing import Ingestor
from collector.store.sqlite import SqliteStore
from mrv_core.keyring import Registry
from tests.factory import Gateway
from tests.harness.programs import command


def enrolled_store(folder: Path, gw: Gateway) -> tuple[SqliteStore, Ingestor]:
    """The collector's side for one test gateway: its key enrolled in ``folder``/gateways.json and
    an ingestor into the store ``folder``/c.sqlite (what export_bundle reads)."""
    registry = enroll(Registry(), Enrollment(gw.gateway, gw.site, gw.signer.key_id, gw.public_key.b64), "")
    save_registry(folder / "gateways.json", registry)
    store = SqliteStore(folder / "c.sqlite")
    return store, Ingestor(store, registry.keyring(), clock_ms=lambda: 0)


def export_bundle(
    folder: Path, profiles: dict[str, str | bytes], project_yaml: str, first: str, last: str
) -> Path:
    """``folder`` holds the store (c.sqlite) and keyring (gateways.json); the profiles (file name ->
    YAML) and the project go next to them; the bundle covers the local dates ``first``..``last``."""
    (folder / "profiles").mkdir()
    for name, text in profiles.items():
        path = folder / "profiles" / name
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    (folder / "project.yaml").write_text(project_yaml)
    config = folder / "collector.yaml"
    config.write_text(
        json.dumps(
            {
                "store": {"type": "sqlite", "path": str(folder / "c.sqlite")},
                "keyring": str(folder / "gateways.json"),
                "profiles_dir": str(folder / "profiles"),
            }
        )
    )
    bundle = folder / "bundle.zip"
    period = ["--project", str(folder / "project.yaml"), "--from", first, "--to", last]
    done = subprocess.run(
        command("collector", "export", "--config", str(config), *period, "--out", str(bundle)),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return bundle
