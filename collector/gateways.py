"""The gateway registry: enrollment, rotation and revocation of gateway keys.

The registry is the keyring file (format in :mod:`mrv_core.keyring`) that the
collector verifies against and that evidence exports carry for verifiers. It
is written atomically, and a running collector picks up changes without a
restart (:class:`KeyringWatcher`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mrv_core.keyring import GatewayEntry, KeyEntry, KeyringError, Registry, parse_registry
from mrv_core.signing import PublicKey, fingerprint, unb64
from mrv_core.verify import Keyring

log = logging.getLogger(__name__)

ENROLLMENT_TYPE = "mrv-enrollment-request"


class RegistryError(ValueError):
    """An enrollment, rotation or revocation that would make the registry wrong."""


@dataclass(frozen=True)
class Enrollment:
    gateway: str
    site: str
    key_id: str
    public_key: str
    created: str = ""


def parse_enrollment(text: str, source: str) -> Enrollment:
    """An enrollment request as printed by ``mrv-agent enroll``; the key must match its id."""
    try:
        body: Any = json.loads(text)
    except ValueError as exc:
        raise RegistryError(f"{source}: not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("type") != ENROLLMENT_TYPE:
        raise RegistryError(f"{source}: not an enrollment request (type {ENROLLMENT_TYPE})")
    for name in ("gateway", "site", "key_id", "public_key"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise RegistryError(f"{source}: {name}: missing or not a string")
    try:
        computed = PublicKey.from_b64(body["gateway"], body["public_key"]).key_id
    except ValueError as exc:
        raise RegistryError(f"{source}: public_key: not a base64 Ed25519 key ({exc})") from None
    if computed != body["key_id"]:
        raise RegistryError(f"{source}: key_id {body['key_id']} does not match the public key ({computed})")
    given = body.get("fingerprint")
    if given and given != fingerprint(unb64(body["public_key"])):
        raise RegistryError(f"{source}: fingerprint does not match the public key")
    return Enrollment(
        body["gateway"], body["site"], body["key_id"], body["public_key"], str(body.get("created", ""))
    )


def load_registry(path: Path) -> Registry:
    """The registry at ``path``; an absent file is an empty registry."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Registry()
    except OSError as exc:
        raise KeyringError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_registry(text, str(path))


def save_registry(path: Path, registry: Registry) -> None:
    """Temp file, fsync, rename: a reader sees the old or the new registry, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(registry.to_json())
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def _key_registered(registry: Registry, key_id: str) -> str | None:
    for gateway in registry.gateways:
        if any(k.key_id == key_id for k in gateway.keys):
            return gateway.gateway
    return None


def enroll(registry: Registry, request: Enrollment, now: str) -> Registry:
    owner = _key_registered(registry, request.key_id)
    if owner is not None:
        raise RegistryError(f"key {request.key_id} is registered already (gateway {owner})")
    known = registry.gateway(request.gateway)
    if known is not None and known.active_key is not None:
        raise RegistryError(
            f"gateway {request.gateway} has an active key ({known.active_key.key_id}); "
            "use 'gateways rotate' to replace it"
        )
    if known is not None and known.site != request.site:
        raise RegistryError(f"gateway {request.gateway} belongs to site {known.site}, not {request.site}")
    entry = known or GatewayEntry(request.gateway, request.site)
    return registry.with_gateway(
        replace(entry, keys=(*entry.keys, KeyEntry(request.key_id, request.public_key, now)))
    )


def rotate(registry: Registry, gateway: str, request: Enrollment, now: str) -> Registry:
    """Retire the gateway's active key now and enroll the new one; both chains stay verifiable."""
    known = registry.gateway(gateway)
    if known is None:
        raise RegistryError(f"gateway {gateway} is not enrolled; use 'gateways add'")
    if request.gateway != gateway:
        raise RegistryError(f"the request is for gateway {request.gateway}, not {gateway}")
    owner = _key_registered(registry, request.key_id)
    if owner is not None:
        raise RegistryError(f"key {request.key_id} is registered already (gateway {owner})")
    keys = tuple(replace(k, retired=now) if k.state == "active" else k for k in known.keys)
    return registry.with_gateway(
        replace(known, keys=(*keys, KeyEntry(request.key_id, request.public_key, now)))
    )


def revoke(
    registry: Registry,
    gateway: str,
    *,
    key_id: str | None,
    reason: str,
    now: str,
    valid_through_seal: int | None,
) -> tuple[Registry, KeyEntry]:
    """Revoke a key (the active one by default): seals after ``valid_through_seal`` are refused."""
    known = registry.gateway(gateway)
    if known is None:
        raise RegistryError(f"gateway {gateway} is not enrolled")
    target = known.active_key if key_id is None else next((k for k in known.keys if k.key_id == key_id), None)
    if target is None:
        raise RegistryError(f"gateway {gateway} has no {'active key' if key_id is None else f'key {key_id}'}")
    if target.revoked is not None:
        raise RegistryError(f"key {target.key_id} was revoked at {target.revoked} already")
    revoked = replace(target, revoked=now, valid_through_seal=valid_through_seal, reason=reason)
    keys = tuple(revoked if k.key_id == target.key_id else k for k in known.keys)
    return registry.with_gateway(replace(known, keys=keys)), revoked


@dataclass
class KeyringWatcher:
    """The keyring of a registry file, reloaded when the file changes.

    A registry that fails to parse is reported loudly and the last good one
    stays in force: refusing every message would only pile them up at the
    broker, and accepting with a broken registry is not possible.
    """

    path: Path
    _stamp: tuple[int, int] | None = None
    _keyring: Keyring = field(default_factory=lambda: Keyring.of([]))
    errors: int = 0

    def current(self) -> Keyring:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._stamp:
            try:
                self._keyring = load_registry(self.path).keyring()
                self._stamp = stamp
                log.info("gateway registry %s: %d key(s)", self.path, len(self._keyring.keys))
            except KeyringError as exc:
                self.errors += 1
                log.error("gateway registry not reloaded, the previous one stays in force: %s", exc)
                self._stamp = stamp
        return self._keyring
