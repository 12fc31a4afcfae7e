"""A private Mosquitto broker for one test session."""

from __future__ import annotations

import getpass
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from tests.harness.procs import Proc, free_port, port_open, wait_for

CANDIDATES = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((c for c in CANDIDATES if Path(c).exists()), None)


@dataclass
class Mosquitto:
    port: int
    folder: Path
    proc: Proc

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def stop(self) -> None:
        self.proc.stop()

    def restart(self, down_s: float, sig: int = signal.SIGTERM) -> None:
        """Stop the broker (SIGKILL: no chance to save its persistence file), wait, start it on the same port."""
        self.proc.stop(sig)
        time.sleep(down_s)
        self.proc = _run(self.folder, self.port)


@dataclass(frozen=True)
class BrokerTls:
    """TLS for the test broker: client certificates required, their CN is the user name."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    acl_file: Path


def start_mosquitto(
    folder: Path, extra: str = "", tls: BrokerTls | None = None, max_queued: int | None = 0
) -> Mosquitto:
    """A broker on a free loopback port. ``max_queued``: 0 queues without limit; > 0 keeps
    Mosquitto's silent drops beyond that many; None leaves Mosquitto's default (1000, dropping)."""
    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("mosquitto is not installed: run 'make test' (it installs Debian's package)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = folder / "mosquitto.conf"
    lines = [
        # Started as root, Mosquitto would drop to user 'mosquitto', which cannot read our
        # private temp folders (certificates, persistence, log): it stays the current user.
        f"user {getpass.getuser()}",
        f"listener {port} 127.0.0.1",
        "persistence true",
        f"persistence_location {folder}/",
        f"log_dest file {folder}/mosquitto.log",
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]
    if max_queued is not None:
        lines.append(f"max_queued_messages {max_queued}")
    if tls is None:
        lines.append("allow_anonymous true")
    else:
        lines += [
            f"cafile {tls.ca_file}",
            f"certfile {tls.cert_file}",
            f"keyfile {tls.key_file}",
            "require_certificate true",
            "use_identity_as_username true",
            f"acl_file {tls.acl_file}",
        ]
    conf.write_text("\n".join(lines) + "\n" + extra)
    return Mosquitto(port, folder, _run(folder, port))


def _run(folder: Path, port: int) -> Proc:
    binary = mosquitto_binary()
    assert binary is not None
    proc = Proc([binary, "-c", str(folder / "mosquitto.conf")], folder / "stdout.log")
    wait_for(lambda: port_open(port) or not proc.alive(), 10, f"mosquitto on port {port}")
    if not proc.alive():
        raise RuntimeError(f"mosquitto did not start: {proc.output()}")
    return proc
