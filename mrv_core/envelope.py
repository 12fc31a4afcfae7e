"""The MQTT payload: sealed batches of records, carried verbatim.

``{"v":1,"gateway":G,"batches":[{"seal":S,"sig":B64,"records":[R,...]},...]}``
where S and each R are the signed canonical bytes as JSON strings (they are
ASCII, so the string is the bytes). The envelope itself is not signed: it is
only transport, and everything in it that matters is.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mrv_core import FORMAT_VERSION


class EnvelopeError(ValueError):
    """A payload that is not an envelope of this format."""


@dataclass(frozen=True)
class SealedBatch:
    seal: bytes
    signature: bytes
    records: tuple[bytes, ...]


def build_envelope(gateway: str, batches: Sequence[SealedBatch]) -> bytes:
    body = {
        "v": FORMAT_VERSION,
        "gateway": gateway,
        "batches": [
            {
                "seal": b.seal.decode("ascii"),
                "sig": base64.b64encode(b.signature).decode("ascii"),
                "records": [r.decode("ascii") for r in b.records],
            }
            for b in batches
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode("ascii")


def _ascii(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError(f"{what} is not a string")
    try:
        return value.encode("ascii")
    except UnicodeEncodeError:
        raise EnvelopeError(f"{what} is not ASCII (signed bytes always are)") from None


def parse_envelope(payload: bytes) -> tuple[str, list[SealedBatch]]:
    """Gateway and batches of a payload; :class:`EnvelopeError` says what is wrong."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise EnvelopeError(f"payload is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise EnvelopeError("payload is not a JSON object")
    if body.get("v") != FORMAT_VERSION:
        raise EnvelopeError(f"envelope version {body.get('v')!r} is not {FORMAT_VERSION}")
    gateway = body.get("gateway")
    batches = body.get("batches")
    if not isinstance(gateway, str) or not isinstance(batches, list) or not batches:
        raise EnvelopeError("envelope needs a gateway and a non-empty list of batches")
    out = []
    for i, item in enumerate(batches):
        if not isinstance(item, dict) or not isinstance(item.get("records"), list):
            raise EnvelopeError(f"batches[{i}] needs seal, sig and records")
        try:
            signature = base64.b64decode(_ascii(item.get("sig"), f"batches[{i}].sig"), validate=True)
        except binascii.Error:
            raise EnvelopeError(f"batches[{i}].sig is not base64") from None
        out.append(
            SealedBatch(
                seal=_ascii(item.get("seal"), f"batches[{i}].seal"),
                signature=signature,
                records=tuple(_ascii(r, f"batches[{i}].records[{j}]") for j, r in enumerate(item["records"])),
            )
        )
    return gateway, out
