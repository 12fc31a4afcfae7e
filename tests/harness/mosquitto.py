"""A private Mosquitto broker for one test session."""

from __future__ import annotations

import shutil
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


def start_mosquitto(folder: Path, extra: str = "") -> Mosquitto:
    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("mosquitto is not installed: run 'make test' (it installs Debian's package)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence true\n"
        f"persistence_location {folder}/\n"
        "max_queued_messages 0\n"
        f"log_dest file {folder}/mosquitto.log\n"
        "log_type error\nlog_type warning\nlog_type notice\n" + extra
    )
    proc = Proc([binary, "-c", str(conf)], folder / "stdout.log")
    wait_for(lambda: port_open(port) or not proc.alive(), 10, f"mosquitto on port {port}")
    if not proc.alive():
        raise RuntimeError(f"mosquitto did not start: {proc.output()}")
    return Mosquitto(port, folder, proc)
