"""Run our own programs as real processes, the way an operator would."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from mrv_core.keyring import keyring_json

MODULES = {"agent": "agent.cli", "collector": "collector.cli", "verify": "collector.verify_cli"}


def command(tool: str, *args: str) -> list[str]:
    """argv for mrv-agent, mrv-collector or mrv-verify with this interpreter."""
    return [sys.executable, "-m", MODULES[tool], *args]


def init_gateway(agent_config: Path, keyring: Path) -> dict[str, str]:
    """Create the gateway key with `mrv-agent key init` and register it in a one-gateway keyring."""
    subprocess.run(
        command("agent", "key", "init", "--config", str(agent_config)), check=True, capture_output=True
    )
    shown = subprocess.run(
        command("agent", "key", "show", "--json", "--config", str(agent_config)),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    entry: dict[str, str] = json.loads(shown)
    keyring.write_text(keyring_json([entry]))
    return entry


def run_on_a_terminal(argv: list[str], timeout_s: float = 120) -> tuple[int, str, bytes]:
    """Run ``argv`` with its stderr on a pseudo-terminal (as a technician's shell has it) and its
    stdout on a pipe: (exit code, stdout, everything written to the terminal)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    stdout, _ = proc.communicate(timeout=60)
    os.close(leader)
    return proc.returncode, stdout, seen
