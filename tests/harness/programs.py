"""Run our own programs as real processes, the way an operator would."""

from __future__ import annotations

import json
import subprocess
import sys
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
