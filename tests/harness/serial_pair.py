"""Two connected pseudo-terminals (socat): a serial line for Modbus RTU tests, no hardware needed.

What one end writes the other reads, byte for byte, as on an RS-485 bus with
one master (the agent) and the meters (a pymodbus serial server) at the far end.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.harness.procs import Proc, wait_for


@dataclass
class SerialPair:
    agent_end: Path
    meter_end: Path
    proc: Proc

    def stop(self) -> None:
        self.proc.stop()


def start_serial_pair(folder: Path) -> SerialPair:
    binary = shutil.which("socat")
    if binary is None:
        raise RuntimeError("socat is not installed: run 'make test' (it installs Debian's socat)")
    folder.mkdir(parents=True, exist_ok=True)
    agent_end, meter_end = folder / "tty-agent", folder / "tty-meters"
    proc = Proc(
        [binary, "-d", "-d", f"pty,raw,echo=0,link={agent_end}", f"pty,raw,echo=0,link={meter_end}"],
        folder / "socat.log",
    )
    wait_for(lambda: (agent_end.exists() and meter_end.exists()) or not proc.alive(), 10, "socat's ptys")
    if not proc.alive():
        raise RuntimeError(f"socat did not start: {proc.output()[-2000:]}")
    return SerialPair(agent_end, meter_end, proc)
