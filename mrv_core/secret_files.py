"""Files that hold secrets (tokens, private keys) must not be readable by others."""

from __future__ import annotations

import stat
from pathlib import Path


class ExposedSecretError(RuntimeError):
    """A secret file is missing or readable by other users; the program refuses to start."""


def ensure_private(path: Path, what: str, missing_hint: str = "") -> None:
    """Refuse a file that group or others can read or write, naming the fix."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ExposedSecretError(
            f"{path}: {what} not found{'; ' + missing_hint if missing_hint else ''}"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ExposedSecretError(
            f"{path}: {what} is readable by other users (mode {stat.S_IMODE(mode):o}); "
            f"run 'chmod 600 {path}' and start again"
        )


def read_private_text(path: Path, what: str) -> str:
    """The content of a private file (a password), without its trailing newline."""
    ensure_private(path, what)
    return path.read_text(encoding="utf-8").rstrip("\n")
