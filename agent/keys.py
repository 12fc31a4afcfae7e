"""The gateway's signing key on disk: created once, mode 0600, refused if exposed."""

from __future__ import annotations

import os
from pathlib import Path

from mrv_core.secret_files import ExposedSecretError, ensure_private
from mrv_core.signing import Signer


class KeyFileError(RuntimeError):
    """The key file is missing, unreadable, exposed or not an Ed25519 key."""


def load_signer(path: Path) -> Signer:
    try:
        ensure_private(path, "the gateway key", missing_hint="create one with 'mrv-agent key init'")
    except ExposedSecretError as exc:
        raise KeyFileError(str(exc)) from None
    try:
        return Signer.from_pem(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: cannot load the gateway key: {exc}") from None


def create_signer(path: Path) -> Signer:
    """Write a new key atomically (temp file, fsync, rename) with mode 0600; never overwrite."""
    if path.exists():
        raise KeyFileError(f"{path}: a gateway key exists already; refusing to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    signer = Signer.generate()
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, signer.to_pem())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.link(tmp, path)  # fails if path appeared meanwhile: never replace a key
    tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return signer


def load_or_create_signer(path: Path) -> tuple[Signer, bool]:
    """The key at ``path``, creating it on first start; the flag says it was created."""
    if path.exists():
        return load_signer(path), False
    return create_signer(path), True
