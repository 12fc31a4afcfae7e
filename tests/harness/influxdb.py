"""A private InfluxDB (Debian's 1.6 package) for one test session, behind the v2 write shim."""

from __future__ import annotations

import json
import shutil
import signal
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness.influx_shim import InfluxShim
from tests.harness.procs import Proc, free_port, wait_for


def influxd_binary() -> str | None:
    return shutil.which("influxd") or ("/usr/bin/influxd" if Path("/usr/bin/influxd").exists() else None)


@dataclass
class InfluxDB:
    port: int
    folder: Path
    proc: Proc
    shim: InfluxShim

    @property
    def direct_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """What the collector is given: the shim, which serves /api/v2/write and passes /query."""
        return self.shim.url

    def query(self, q: str, db: str = "") -> dict[str, Any]:
        params = {"q": q, "epoch": "ns"}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(f"{self.direct_url}/query", data=data, timeout=30) as response:
            return dict(json.loads(response.read()))

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        self.query(f'DROP DATABASE "{name}"')

    def stop(self) -> None:
        self.shim.stop()
        self.proc.stop()

    def restart(self, down_s: float, sig: int = signal.SIGTERM) -> None:
        """Stop the server (the shim stays, answering errors), wait ``down_s``, start it again on the same port."""
        self.proc.stop(sig)
        time.sleep(down_s)
        self.proc = _run_influxd(self.folder, self.port)


def _ping(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as response:
            return int(response.status) == 204
    except OSError:
        return False


def start_influxdb(folder: Path) -> InfluxDB:
    binary = influxd_binary()
    if binary is None:
        raise RuntimeError("influxd is not installed: run 'make test' (it installs Debian's influxdb)")
    folder.mkdir(parents=True, exist_ok=True)
    http_port, rpc_port = free_port(), free_port()
    conf = folder / "influxdb.conf"
    conf.write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{folder}/meta"
[data]
  dir = "{folder}/data"
  wal-dir = "{folder}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
[logging]
  level = "warn"
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
""")
    proc = _run_influxd(folder, http_port)
    shim = InfluxShim(f"http://127.0.0.1:{http_port}", free_port()).start()
    return InfluxDB(http_port, folder, proc, shim)


def _run_influxd(folder: Path, http_port: int) -> Proc:
    binary = influxd_binary()
    assert binary is not None
    proc = Proc([binary, "run", "-config", str(folder / "influxdb.conf")], folder / "influxd.log")
    wait_for(lambda: _ping(http_port) or not proc.alive(), 30, f"influxd on port {http_port}")
    if not proc.alive():
        raise RuntimeError(f"influxd did not start: {proc.output()[-2000:]}")
    return proc
