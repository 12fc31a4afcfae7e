"""API tokens with roles, stored hashed; the file must be private (mode 0600).

A token is ``mrv_`` + 43 random URL-safe characters (256 bits), shown once
when created. The file keeps its SHA-256 only: a slow password hash adds
nothing for a random 256-bit secret. Roles: ``operator`` reads status,
``verifier`` also exports evidence, ``admin`` also manages gateways.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mrv_core.secret_files import ensure_private

ROLES = ("operator", "verifier", "admin")
PERMISSIONS = {
    "operator": frozenset({"read"}),
    "verifier": frozenset({"read", "export"}),
    "admin": frozenset({"read", "export", "manage"}),
}
TOKENS_FORMAT = "jcm-mrv-tokens"


class TokenError(ValueError):
    """The tokens file is malformed, or a token operation is not possible."""


@dataclass(frozen=True)
class TokenEntry:
    name: str
    role: str
    sha256: str
    created: str = ""

    def allows(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "mrv_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Tokens:
    entries: tuple[TokenEntry, ...] = field(default=())

    def check(self, token: str | None) -> TokenEntry | None:
        """The entry of a presented token, compared in constant time; None when unknown."""
        if not token:
            return None
        digest = token_hash(token)
        found = None
        for entry in self.entries:
            if hmac.compare_digest(entry.sha256, digest):
                found = entry
        return found

    def with_entry(self, entry: TokenEntry) -> Tokens:
        if any(e.name == entry.name for e in self.entries):
            raise TokenError(f"a token named {entry.name!r} exists; revoke it first")
        return Tokens((*self.entries, entry))

    def without(self, name: str) -> Tokens:
        if not any(e.name == name for e in self.entries):
            raise TokenError(f"no token named {name!r}")
        return Tokens(tuple(e for e in self.entries if e.name != name))

    def to_json(self) -> str:
        body = {"format": TOKENS_FORMAT, "version": 1, "tokens": [asdict(e) for e in self.entries]}
        return json.dumps(body, indent=2) + "\n"


def parse_tokens(text: str, source: str) -> Tokens:
    try:
        body: Any = json.loads(text)
    except ValueError as exc:
        raise TokenError(f"{source}: not JSON: {exc}") from None
    if (
        not isinstance(body, dict)
        or body.get("format") != TOKENS_FORMAT
        or not isinstance(body.get("tokens"), list)
    ):
        raise TokenError(f"{source}: not a {TOKENS_FORMAT} file")
    entries = []
    for index, item in enumerate(body["tokens"]):
        where = f"{source}: tokens[{index}]"
        if not isinstance(item, dict):
            raise TokenError(f"{where}: expected an object")
        if item.get("role") not in ROLES:
            raise TokenError(f"{where}.role: {item.get('role')!r} is not one of {', '.join(ROLES)}")
        digest = item.get("sha256")
        if not isinstance(digest, str) or len(digest) != 64:
            raise TokenError(f"{where}.sha256: expected 64 hex digits (tokens are stored hashed)")
        entries.append(
            TokenEntry(str(item.get("name", "")), item["role"], digest, str(item.get("created", "")))
        )
    return Tokens(tuple(entries))


def load_tokens(path: Path) -> Tokens:
    """Tokens from a private file; a file others can read is refused."""
    if not path.exists():
        return Tokens()
    ensure_private(path, "the API tokens file")
    return parse_tokens(path.read_text(encoding="utf-8"), str(path))


def save_tokens(path: Path, tokens: Tokens) -> None:
    """Written with mode 0600 from the start, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, tokens.to_json().encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


@dataclass
class TokensWatcher:
    """Tokens reloaded when the file changes, so a revocation applies at once."""

    path: Path
    _stamp: tuple[int, int] | None = None
    _tokens: Tokens = field(default_factory=Tokens)

    def current(self) -> Tokens:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._stamp:
            self._tokens = load_tokens(self.path)
            self._stamp = stamp
        return self._tokens
