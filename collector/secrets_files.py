"""Files that hold secrets (tokens, private keys) must not be readable by others."""

from __future__ import annotations

import stat
from pathlib import Path


class ExposedSecretError(RuntimeError):
    """A secret file is readable by other users; the program refuses to start."""


def ensure_private(path: Path, what: str) -> None:
    """Refuse a file that group or others can read or write, naming the fix."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ExposedSecretError(f"{path}: {what} not found") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ExposedSecretError(
            f"{path}: {what} is readable by other users (mode {stat.S_IMODE(mode):o}); "
            f"run 'chmod 600 {path}' and start again"
        )
