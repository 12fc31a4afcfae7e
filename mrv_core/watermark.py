"""The collector's word to a gateway that its seals 1..N are stored: the end-to-end acknowledgement.

A broker's PUBACK only says the broker has a message. The collector publishes,
retained, on ``{prefix}/{site}/{gateway}/stored``, ``{"gateway": G,
"seals_through": N, "seal_hash": H}`` once seals 1..N of G are all durably
stored (collector/watermarks.py), H being the SHA-256 of seal N's bytes
(seals are hash-linked, so H stands for seals 1..N); the agent deletes its
seals up to N, and no further, only if its own seal N has that hash
(agent/publisher.py). A retained watermark outlives the chain it was about:
a gateway reinstalled under the same id, or the previous run of a test, would
otherwise make a new agent delete seals nobody stored. Both sides use this
module, so the wire form is written once.
"""

from __future__ import annotations

import json
import re

from mrv_core.hashing import ZERO_HASH

_HEX64 = re.compile(r"[0-9a-f]{64}")


def watermark_topic(prefix: str, site: str, gateway: str) -> str:
    return f"{prefix}/{site}/{gateway}/stored"


def watermark_payload(gateway: str, through: int, seal_hash: str) -> bytes:
    """``seal_hash``: of seal ``through`` (the zero hash when ``through`` is 0)."""
    return json.dumps({"gateway": gateway, "seals_through": through, "seal_hash": seal_hash}).encode()


def parse_watermark(payload: bytes, gateway: str) -> tuple[int, str]:
    """(``seals_through``, ``seal_hash``) of a watermark message for ``gateway``; ValueError saying
    what is wrong."""
    body = json.loads(payload)
    if not isinstance(body, dict) or body.get("gateway") != gateway:
        raise ValueError(f"not a watermark of gateway {gateway}")
    through = body.get("seals_through")
    if type(through) is not int or through < 0:
        raise ValueError(f"seals_through {through!r} is not a seal number")
    seal_hash = body.get("seal_hash")
    if not isinstance(seal_hash, str) or not _HEX64.fullmatch(seal_hash):
        raise ValueError(f"seal_hash {seal_hash!r} is not the SHA-256 of a seal (64 lowercase hex digits)")
    if through == 0 and seal_hash != ZERO_HASH:
        raise ValueError("seals_through 0 names no seal: its seal_hash must be the zero hash")
    return through, seal_hash
