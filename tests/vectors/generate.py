"""Write tests/vectors/record-format-v1.json. Run only when the format deliberately changes.

    .venv/bin/python -m tests.vectors.generate

Everything here is deterministic (Ed25519 signatures are), so the file is the
same on every run; tests/unit/test_vectors.py checks the code still produces it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from mrv_core.exact import decimal_text
from mrv_core.hashing import ZERO_HASH, inclusion_proof, merkle_root
from mrv_core.record import Value, build_record, build_seal
from mrv_core.registers import decode_words, hex_to_words
from mrv_core.signing import Signer, b64

OUT = Path(__file__).with_name("record-format-v1.json")
SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"  # RFC 8032 test 1
PROFILE_SHA = "d4472379f605687b60fc43ab6ef124f166561eb7c699f24c6f1b6f2d9e766e9d"  # eastron-sdm630-v2 at the time of writing

READINGS = [
    # device, seq, time, values {quantity: (raw hex, type, order, scale, unit)}, quality
    (
        "pv-meter-1",
        1,
        "2026-11-27T00:00:00.120Z",
        {
            "energy_active_export_total": ("4640e6b6", "f32", "ABCD", "1", "kWh"),
            "power_active_total": ("c59c4000", "f32", "ABCD", "1", "W"),
        },
        [],
    ),
    (
        "pv-meter-1",
        2,
        "2026-11-27T00:01:00.118Z",
        {
            "energy_active_export_total": ("4640e6f6", "f32", "ABCD", "1", "kWh"),
            "power_active_total": ("7fc00000", "f32", "ABCD", "1", "W"),
        },
        ["invalid_value:power_active_total"],
    ),
    (
        "pv-meter-2",
        1,
        "2026-11-27T00:00:00.410Z",
        {"energy_active_export_total": ("0001e240", "u32", "ABCD", "0.01", "kWh")},
        [],
    ),
]


def build() -> dict[str, Any]:
    signer = Signer.from_seed(bytes.fromhex(SEED_HEX))
    heads: dict[str, str] = {}
    records = []
    for device, seq, time, quantities, quality in READINGS:
        values = {}
        decoded = {}
        for name, (raw, rtype, order, scale, unit) in quantities.items():
            value = decode_words(hex_to_words(raw), rtype, order, Decimal(scale))
            values[name] = Value(value, unit, raw)
            decoded[name] = {
                "raw": raw,
                "type": rtype,
                "order": order,
                "scale": scale,
                "value": None if value is None else decimal_text(value),
            }
        prev = heads.get(device, ZERO_HASH)
        data, digest = build_record(
            site="demo-site",
            gateway="gw-demo-01",
            device=device,
            profile_id="eastron-sdm630-v2",
            profile_sha256=PROFILE_SHA,
            seq=seq,
            prev=prev,
            time=datetime.strptime(time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
            clock="synced",
            values=values,
            quality=quality,
        )
        heads[device] = digest
        records.append(
            {
                "inputs": {
                    "device": device,
                    "seq": seq,
                    "prev": prev,
                    "time": time,
                    "decoding": decoded,
                    "quality": quality,
                },
                "canonical": data.decode("ascii"),
                "sha256": digest,
            }
        )
    hashes = [bytes.fromhex(r["sha256"]) for r in records]
    seal_bytes, seal_hash = build_seal(
        site="demo-site",
        gateway="gw-demo-01",
        key_id=signer.key_id,
        seq=1,
        prev=ZERO_HASH,
        created=datetime(2026, 11, 27, 0, 1, 5, tzinfo=UTC),
        record_hashes=[r["sha256"] for r in records],
        first_time="2026-11-27T00:00:00.120Z",
        last_time="2026-11-27T00:01:00.118Z",
    )
    return {
        "description": "Test vectors for docs/record-format.md, format version 1. Every value is exact.",
        "key": {
            "ed25519_seed_hex": SEED_HEX,
            "public_key_b64": b64(signer.public_key_raw),
            "key_id": signer.key_id,
        },
        "records": records,
        "seal": {
            "canonical": seal_bytes.decode("ascii"),
            "sha256": seal_hash,
            "merkle_root": merkle_root(hashes).hex(),
            "signature_b64": b64(signer.sign(seal_bytes)),
            "inclusion_proofs": [[p.hex() for p in inclusion_proof(hashes, i)] for i in range(len(hashes))],
        },
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {OUT}")
