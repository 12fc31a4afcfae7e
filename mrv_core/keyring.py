"""The gateway registry file: who may sign, with which key, when. Read by collectors and verifiers.

JSON, so that a verifier needs no YAML parser (format version 2)::

    {"format": "jcm-mrv-keyring", "version": 2, "gateways": [
      {"gateway": "gw-01", "site": "site-a", "keys": [
        {"key_id": "...", "public_key": "<base64>", "enrolled": "2026-...Z",
         "retired": null, "revoked": null, "valid_through_seal": null, "reason": ""}]}]}

Each key's ``key_id`` is checked against the key itself, so a typo cannot
attach a key to the wrong id. Version 1 (``{"keys": [{gateway, site, key_id,
public_key}]}``) is still read: every key in it is active. The meaning of
``retired``, ``revoked`` and ``valid_through_seal`` is in
:class:`mrv_core.verify.KeyValidity`.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from mrv_core.signing import PublicKey
from mrv_core.verify import Keyring, KeyValidity

KEYRING_FORMAT = "jcm-mrv-keyring"
KEYRING_VERSION = 2


class KeyringError(ValueError):
    """The keyring file is malformed; the message names the file, entry and reason."""


@dataclass(frozen=True)
class KeyEntry:
    key_id: str
    public_key: str  # raw Ed25519 key, base64
    enrolled: str = ""
    retired: str | None = None
    revoked: str | None = None
    valid_through_seal: int | None = None
    reason: str = ""

    @property
    def state(self) -> str:
        return "revoked" if self.revoked else "retired" if self.retired else "active"

    def validity(self) -> KeyValidity:
        return KeyValidity(self.enrolled, self.retired, self.revoked, self.valid_through_seal, self.reason)


@dataclass(frozen=True)
class GatewayEntry:
    gateway: str
    site: str
    keys: tuple[KeyEntry, ...] = field(default=())

    @property
    def active_key(self) -> KeyEntry | None:
        return next((k for k in reversed(self.keys) if k.state == "active"), None)


@dataclass(frozen=True)
class Registry:
    gateways: tuple[GatewayEntry, ...] = field(default=())

    def gateway(self, gateway: str) -> GatewayEntry | None:
        return next((g for g in self.gateways if g.gateway == gateway), None)

    def with_gateway(self, entry: GatewayEntry) -> Registry:
        others = tuple(g for g in self.gateways if g.gateway != entry.gateway)
        return replace(self, gateways=tuple(sorted((*others, entry), key=lambda g: g.gateway)))

    def keyring(self) -> Keyring:
        keys = []
        validity: dict[str, KeyValidity] = {}
        for gateway in self.gateways:
            for key in gateway.keys:
                keys.append(PublicKey.from_b64(gateway.gateway, key.public_key))
                validity[key.key_id] = key.validity()
        return Keyring.of(keys, validity)

    def to_json(self) -> str:
        body = {
            "format": KEYRING_FORMAT,
            "version": KEYRING_VERSION,
            "gateways": [
                {"gateway": g.gateway, "site": g.site, "keys": [asdict(k) for k in g.keys]}
                for g in self.gateways
            ],
        }
        return json.dumps(body, indent=2) + "\n"


def _key(entry: Any, gateway: str, where: str) -> KeyEntry:
    if not isinstance(entry, dict):
        raise KeyringError(f"{where}: expected an object")
    for name in ("key_id", "public_key"):
        if not isinstance(entry.get(name), str):
            raise KeyringError(f"{where}.{name}: missing or not a string")
    try:
        computed = PublicKey.from_b64(gateway, entry["public_key"]).key_id
    except (binascii.Error, ValueError) as exc:
        raise KeyringError(f"{where}.public_key: not a base64 Ed25519 public key ({exc})") from None
    if computed != entry["key_id"]:
        raise KeyringError(f"{where}.key_id: {entry['key_id']} does not match the key ({computed})")
    through = entry.get("valid_through_seal")
    if through is not None and (not isinstance(through, int) or isinstance(through, bool) or through < 0):
        raise KeyringError(f"{where}.valid_through_seal: expected a seal number or null")
    for name in ("retired", "revoked"):
        if entry.get(name) is not None and not isinstance(entry[name], str):
            raise KeyringError(f"{where}.{name}: expected a UTC time or null")
    return KeyEntry(
        key_id=entry["key_id"],
        public_key=entry["public_key"],
        enrolled=str(entry.get("enrolled") or ""),
        retired=entry.get("retired"),
        revoked=entry.get("revoked"),
        valid_through_seal=through,
        reason=str(entry.get("reason") or ""),
    )


def _version1(entries: list[Any], source: str) -> Registry:
    gateways: dict[str, GatewayEntry] = {}
    for index, entry in enumerate(entries):
        where = f"{source}: keys[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("gateway"), str):
            raise KeyringError(f"{where}.gateway: missing or not a string")
        key = _key(entry, entry["gateway"], where)
        known = gateways.get(entry["gateway"], GatewayEntry(entry["gateway"], str(entry.get("site", ""))))
        gateways[entry["gateway"]] = replace(known, keys=(*known.keys, key))
    return Registry(tuple(gateways.values()))


def parse_registry(text: str, source: str) -> Registry:
    try:
        body: Any = json.loads(text)
    except ValueError as exc:
        raise KeyringError(f"{source}: not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise KeyringError(f"{source}: expected a JSON object")
    if "keys" in body and "gateways" not in body:
        if not isinstance(body["keys"], list):
            raise KeyringError(f"{source}: keys: expected a list of gateway keys")
        return _version1(body["keys"], source)
    if body.get("format") != KEYRING_FORMAT or body.get("version") != KEYRING_VERSION:
        raise KeyringError(f"{source}: not a {KEYRING_FORMAT} version {KEYRING_VERSION} file")
    if not isinstance(body.get("gateways"), list):
        raise KeyringError(f"{source}: gateways: expected a list")
    gateways = []
    seen_keys: set[str] = set()
    for index, entry in enumerate(body["gateways"]):
        where = f"{source}: gateways[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("gateway"), str):
            raise KeyringError(f"{where}.gateway: missing or not a string")
        if not isinstance(entry.get("keys"), list):
            raise KeyringError(f"{where}.keys: expected a list")
        keys = tuple(_key(k, entry["gateway"], f"{where}.keys[{i}]") for i, k in enumerate(entry["keys"]))
        for key in keys:
            if key.key_id in seen_keys:
                raise KeyringError(f"{where}: key {key.key_id} is registered twice")
            seen_keys.add(key.key_id)
        gateways.append(GatewayEntry(entry["gateway"], str(entry.get("site", "")), keys))
    if len({g.gateway for g in gateways}) != len(gateways):
        raise KeyringError(f"{source}: a gateway id appears twice")
    return Registry(tuple(gateways))


def parse_keyring(text: str, source: str) -> Keyring:
    return parse_registry(text, source).keyring()


def keyring_json(entries: Iterable[Mapping[str, str]]) -> str:
    """A registry of active keys from enrollment entries ({gateway, site, key_id, public_key})."""
    registry = Registry()
    for entry in entries:
        known = registry.gateway(entry["gateway"]) or GatewayEntry(entry["gateway"], entry.get("site", ""))
        key = KeyEntry(entry["key_id"], entry["public_key"], entry.get("enrolled", ""))
        registry = registry.with_gateway(replace(known, keys=(*known.keys, key)))
    return registry.to_json()
