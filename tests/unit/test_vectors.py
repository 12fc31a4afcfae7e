"""The published vectors (tests/vectors/record-format-v1.json) are what the code produces.

A failure here means the wire format changed: that breaks every verifier in
the field. Change the format version and docs/record-format.md, then regenerate.
"""

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from mrv_core.exact import decimal_text
from mrv_core.hashing import inclusion_proof, merkle_root, root_from_proof
from mrv_core.record import Value, build_gap_record, build_record, build_seal, parse_record, parse_seal
from mrv_core.registers import decode_words, hex_to_words, register_decoder
from mrv_core.signing import PublicKey, Signer, unb64

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "record-format-v1.json").read_text())


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def test_key() -> None:
    signer = Signer.from_seed(bytes.fromhex(VECTORS["key"]["ed25519_seed_hex"]))
    assert PublicKey("x", signer.public_key_raw).b64 == VECTORS["key"]["public_key_b64"]
    assert signer.key_id == VECTORS["key"]["key_id"]
    assert signer.key_id == hashlib.sha256(unb64(VECTORS["key"]["public_key_b64"])).hexdigest()[:32]


def test_records_reproduce_exactly() -> None:
    for vector in VECTORS["records"]:
        inputs = vector["inputs"]
        values = {}
        for name, d in inputs["decoding"].items():
            value = decode_words(hex_to_words(d["raw"]), d["type"], d["order"], Decimal(d["scale"]))
            assert (None if value is None else Decimal(d["value"])) == value
            values[name] = Value(value, "kWh" if name.startswith("energy") else "W", d["raw"])
        data, digest = build_record(
            site="demo-site",
            gateway="gw-demo-01",
            device=inputs["device"],
            profile_id="eastron-sdm630-v2",
            profile_sha256=json.loads(vector["canonical"])["profile"]["sha256"],
            seq=inputs["seq"],
            prev=inputs["prev"],
            time=_time(inputs["time"]),
            clock="synced",
            values=values,
            quality=inputs["quality"],
        )
        assert data == vector["canonical"].encode("ascii")
        assert digest == vector["sha256"] == hashlib.sha256(data).hexdigest()
        assert parse_record(data).seq == inputs["seq"]


def test_chain_links() -> None:
    r1, r2, _ = VECTORS["records"]
    assert r2["inputs"]["prev"] == r1["sha256"]


def test_seal_signature_root_and_proofs() -> None:
    seal = VECTORS["seal"]
    hashes = [bytes.fromhex(r["sha256"]) for r in VECTORS["records"]]
    assert merkle_root(hashes).hex() == seal["merkle_root"]
    signer = Signer.from_seed(bytes.fromhex(VECTORS["key"]["ed25519_seed_hex"]))
    data, digest = build_seal(
        site="demo-site",
        gateway="gw-demo-01",
        key_id=signer.key_id,
        seq=1,
        prev="0" * 64,
        created=datetime(2026, 11, 27, 0, 1, 5, tzinfo=UTC),
        record_hashes=[r["sha256"] for r in VECTORS["records"]],
        first_time="2026-11-27T00:00:00.120Z",
        last_time="2026-11-27T00:01:00.118Z",
    )
    assert data.decode() == seal["canonical"] and digest == seal["sha256"]
    assert json.loads(data)["root"] == seal["merkle_root"]
    signature = unb64(seal["signature_b64"])
    assert signer.sign(data) == signature  # Ed25519 is deterministic
    assert PublicKey("gw-demo-01", signer.public_key_raw).verifies(data, signature)
    assert parse_seal(data, signature).count == len(hashes)
    for index, proof in enumerate(seal["inclusion_proofs"]):
        assert [p.hex() for p in inclusion_proof(hashes, index)] == proof
        root = root_from_proof(hashes[index], index, len(hashes), [bytes.fromhex(p) for p in proof])
        assert root.hex() == seal["merkle_root"]


def test_gap_records_reproduce_exactly() -> None:
    """A signed gap record (docs/record-format.md 1.3), linked after the second reading of pv-meter-1."""
    (vector,) = VECTORS["gap_records"]
    inputs = vector["inputs"]
    data, digest = build_gap_record(
        site="demo-site",
        gateway="gw-demo-01",
        device=inputs["device"],
        profile_id="eastron-sdm630-v2",
        profile_sha256=json.loads(vector["canonical"])["profile"]["sha256"],
        seq=inputs["seq"],
        prev=inputs["prev"],
        time=_time(inputs["time"]),
        clock="synced",
        start=_time(inputs["from"]),
        end=_time(inputs["to"]),
        polls=inputs["polls"],
        reason=inputs["reason"],
    )
    assert data == vector["canonical"].encode("ascii")
    assert digest == vector["sha256"] == hashlib.sha256(data).hexdigest()
    assert inputs["prev"] == VECTORS["records"][1]["sha256"]
    record = parse_record(data)
    assert record.kind == "gap" and record.gap is not None and record.gap.polls == inputs["polls"]


def test_scale_factor_values_decode_exactly() -> None:
    """Raw text = the value's words, then the scale-factor word (an int16 power of ten)."""
    for vector in VECTORS["scale_factor_values"]:
        decode = register_decoder(
            vector["type"], vector["order"], Decimal(vector["scale"]), True, vector["not_implemented"]
        )
        value = decode(vector["raw"])
        assert (None if value is None else decimal_text(value)) == vector["value"], vector
