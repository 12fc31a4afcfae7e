"""The file of registered gateway keys, read by the collector and by verifiers.

JSON, so that a verifier needs no YAML parser::

    {"keys": [{"gateway": "gw-01", "site": "site-a", "key_id": "...", "public_key": "<base64>"}]}

``key_id`` is checked against the key itself, so a typo cannot attach a key to
the wrong id. Enrollment and revocation history come with a later format.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

from mrv_core.signing import PublicKey
from mrv_core.verify import Keyring


class KeyringError(ValueError):
    """The keyring file is malformed; the message names the file, entry and reason."""


def parse_keyring(text: str, source: str) -> Keyring:
    try:
        body: Any = json.loads(text)
    except ValueError as exc:
        raise KeyringError(f"{source}: not JSON: {exc}") from None
    entries = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise KeyringError(f"{source}: keys: expected a list of gateway keys")
    keys: list[PublicKey] = []
    for index, entry in enumerate(entries):
        where = f"{source}: keys[{index}]"
        if not isinstance(entry, dict):
            raise KeyringError(f"{where}: expected an object")
        for name in ("gateway", "key_id", "public_key"):
            if not isinstance(entry.get(name), str):
                raise KeyringError(f"{where}.{name}: missing or not a string")
        try:
            key = PublicKey.from_b64(entry["gateway"], entry["public_key"])
            computed = key.key_id
        except (binascii.Error, ValueError) as exc:
            raise KeyringError(f"{where}.public_key: not a base64 Ed25519 public key ({exc})") from None
        if computed != entry["key_id"]:
            raise KeyringError(f"{where}.key_id: {entry['key_id']} does not match the key ({computed})")
        keys.append(key)
    return Keyring.of(keys)


def keyring_json(entries: list[dict[str, str]]) -> str:
    return json.dumps({"keys": entries}, indent=2) + "\n"
