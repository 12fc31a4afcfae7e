"""The collector's word to a gateway that its seals 1..N are stored: the end-to-end acknowledgement.

A broker's PUBACK only says the broker has a message. The collector publishes,
retained, on ``{prefix}/{site}/{gateway}/stored``, ``{"gateway": G,
"seals_through": N}`` once seals 1..N of G are all durably stored
(collector/watermarks.py); the agent deletes its seals up to N and no further
(agent/publisher.py). Both sides use this module, so the wire form is written once.
"""

from __future__ import annotations

import json


def watermark_topic(prefix: str, site: str, gateway: str) -> str:
    return f"{prefix}/{site}/{gateway}/stored"


def watermark_payload(gateway: str, through: int) -> bytes:
    return json.dumps({"gateway": gateway, "seals_through": through}).encode()


def parse_watermark(payload: bytes, gateway: str) -> int:
    """``seals_through`` of a watermark message for ``gateway``; ValueError saying what is wrong."""
    body = json.loads(payload)
    if not isinstance(body, dict) or body.get("gateway") != gateway:
        raise ValueError(f"not a watermark of gateway {gateway}")
    through = body.get("seals_through")
    if type(through) is not int or through < 0:
        raise ValueError(f"seals_through {through!r} is not a seal number")
    return through
