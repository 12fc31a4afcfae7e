import json
from dataclasses import replace
from decimal import Decimal

from mrv_core.record import parse_record, parse_seal
from mrv_core.signing import PublicKey, Signer
from mrv_core.verify import (
    BAD_SIGNATURE,
    DUPLICATE,
    HASH_LINK_BROKEN,
    KEY_GATEWAY_MISMATCH,
    OUT_OF_ORDER,
    RECORD_ALTERED,
    RECORD_MISSING,
    SEAL_GAP,
    SEAL_LINK_BROKEN,
    SEQUENCE_GAP,
    UNKNOWN_KEY,
    ChainChecker,
    Keyring,
    check_sealed_batch,
    seal_chain_finding,
)
from tests.factory import Gateway


def _batch(gw: Gateway, n: int = 3):  # type: ignore[no-untyped-def]
    return gw.seal([gw.record("m1", i, 100 + i) for i in range(n)])


def test_good_batch() -> None:
    gw = Gateway()
    batch = _batch(gw)
    check = check_sealed_batch(batch.seal, batch.signature, batch.records, gw.keyring())
    assert check.ok and len(check.records) == 3 and check.seal is not None and check.seal.count == 3


def test_each_damage_has_its_name() -> None:
    gw = Gateway()
    batch = _batch(gw)
    keyring = gw.keyring()
    flipped = bytearray(batch.records[1])
    flipped[flipped.index(b'"value":"') + 10] ^= 0x01
    cases = {
        RECORD_ALTERED: (
            batch.seal,
            batch.signature,
            (batch.records[0], bytes(flipped), batch.records[2]),
            keyring,
        ),
        RECORD_MISSING: (batch.seal, batch.signature, batch.records[:2], keyring),
        BAD_SIGNATURE: (batch.seal, bytes(64), batch.records, keyring),
        UNKNOWN_KEY: (batch.seal, batch.signature, batch.records, Keyring.of([])),
        KEY_GATEWAY_MISMATCH: (
            batch.seal,
            batch.signature,
            batch.records,
            Keyring.of([PublicKey("someone-else", gw.signer.public_key_raw)]),
        ),
    }
    for kind, (seal, sig, records, ring) in cases.items():
        check = check_sealed_batch(seal, sig, list(records), ring)
        assert [f.kind for f in check.findings][:1] == [kind], kind


def test_record_of_another_gateway_in_a_seal_is_foreign() -> None:
    gw = Gateway()
    other = Gateway(gateway="gw-other", signer=Signer.generate())
    stray = other.record("m1", 0, 1)
    batch = gw.seal([gw.record("m1", 0, 1), stray])
    check = check_sealed_batch(batch.seal, batch.signature, list(batch.records), gw.keyring())
    assert [f.kind for f in check.findings] == ["record_foreign"]


def test_topic_gateway_must_match() -> None:
    gw = Gateway()
    batch = _batch(gw)
    check = check_sealed_batch(
        batch.seal, batch.signature, batch.records, gw.keyring(), expected_gateway="gw-x"
    )
    assert check.findings[0].kind == KEY_GATEWAY_MISMATCH


def test_chain_checker() -> None:
    gw = Gateway()
    records = [parse_record(gw.record("m1", i, i)) for i in range(6)]
    clean = ChainChecker()
    for r in records:
        clean.add_record(r)
    assert clean.findings == []

    gapped = ChainChecker()
    for r in records[:2] + records[3:]:
        gapped.add_record(r)
    assert [(f.kind, f.seq_from, f.seq_to) for f in gapped.findings] == [(SEQUENCE_GAP, 3, 3)]

    swapped = ChainChecker()
    for r in [records[0], records[2], records[1], records[3]]:
        swapped.add_record(r)
    kinds = [f.kind for f in swapped.findings]
    assert OUT_OF_ORDER in kinds

    doubled = ChainChecker()
    for r in [records[0], records[1], records[1], records[2]]:
        doubled.add_record(r)
    assert [f.kind for f in doubled.findings] == [DUPLICATE]

    forged_body = json.loads(records[3].data)
    forged_body["prev"] = "f" * 64
    from mrv_core.canonical import canonical_bytes

    forged = parse_record(canonical_bytes(forged_body))
    broken = ChainChecker()
    for r in [*records[:3], forged]:
        broken.add_record(r)
    assert [f.kind for f in broken.findings] == [HASH_LINK_BROKEN]


def test_seal_chain_findings() -> None:
    """Each gateway's seals form a chain too: continuing, a gap, a replay, an older seal, a broken link."""
    gw = Gateway()
    seals = [parse_seal(b.seal, b.signature) for b in (_batch(gw, 1) for _ in range(4))]
    one, two, three, four = seals
    assert seal_chain_finding(None, one) is None
    assert seal_chain_finding((1, one.hash), two) is None
    gap = seal_chain_finding((1, one.hash), three)
    assert gap is not None and (gap.kind, gap.detail) == (SEAL_GAP, "seals 2..2 are missing")
    assert gap.gateway == gw.gateway and gap.time_from == three.first_time
    replay = seal_chain_finding((2, two.hash), two)
    assert replay is not None and replay.kind == DUPLICATE
    older = seal_chain_finding((3, three.hash), two)
    assert older is not None and older.kind == OUT_OF_ORDER
    broken = seal_chain_finding((3, two.hash), four)
    assert broken is not None and broken.kind == SEAL_LINK_BROKEN
    not_genesis = seal_chain_finding(None, replace(two, seq=1))
    assert not_genesis is not None and not_genesis.detail == "seal 1 does not start from genesis"
    chains = ChainChecker()
    for seal in (one, three, three, two):
        chains.add_seal(seal)
    assert [f.kind for f in chains.findings] == [SEAL_GAP, DUPLICATE, OUT_OF_ORDER]


def test_a_column_with_the_same_raw_words_under_two_claims_is_not_confirmed() -> None:
    """Pairs confirmed once are not confirmed again (a counter that does not move), but one column
    that gives the same raw words two claims goes value by value, whichever pair comes first."""
    from mrv_core.bundle import _Use
    from mrv_core.registers import column_confirmer, encode_value, hex_confirmer, words_to_hex

    one = Decimal(1)
    confirm = column_confirmer("f32", "ABCD", one)
    assert confirm is not None
    use = _Use("q", hex_confirmer("f32", "ABCD", one), confirm, {}, {}, [])
    raw = words_to_hex(encode_value(Decimal("12345.6"), "f32", "ABCD", one)).encode()
    right, wrong = "12345.6", "12345.61"
    for claims in ([right, wrong], [wrong, right]):
        assert not use._confirm_column(confirm, [raw, raw], claims)
    assert use._confirm_column(confirm, [raw, raw], [right, right])
    assert use.confirmed == {raw: right}
    assert not use._confirm_column(confirm, [raw], [wrong])  # known with another claim
    assert use._confirm_column(confirm, [raw, raw, raw], [right] * 3)  # from the cache


def test_a_confirmed_column_says_whether_it_never_falls() -> None:
    """A counter's column, confirmed by its raw floats or from the cache, tells the counter it never
    falls (so the run is taken whole); one that falls says so (and goes step by step)."""
    from mrv_core.bundle import _Use
    from mrv_core.registers import column_confirmer, encode_value, hex_confirmer, words_to_hex

    one = Decimal(1)
    confirm = column_confirmer("f32", "ABCD", one)
    assert confirm is not None
    use = _Use("q", hex_confirmer("f32", "ABCD", one), confirm, {}, {}, [])
    claims = ["10000.05", "10000.1", "10000.15"]
    raws = [words_to_hex(encode_value(Decimal(c), "f32", "ABCD", one)).encode() for c in claims]
    for _ in range(2):  # confirmed, then from the cache
        checked = use.check_column(raws, [b"kWh"] * 3, [c.encode() for c in claims])
        assert checked is not None and checked[2] is True and list(checked[0]) == list(map(Decimal, claims))
    fell = use.check_column(raws[::-1], [b"kWh"] * 3, [c.encode() for c in claims[::-1]])
    assert fell is not None and fell[2] is False
