"""Gateway registry: file format, enrollment rules, and what revocation and rotation mean for seals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.gateways import (
    Enrollment,
    KeyringWatcher,
    RegistryError,
    enroll,
    load_registry,
    parse_enrollment,
    revoke,
    rotate,
    save_registry,
)
from mrv_core.keyring import KeyringError, Registry, keyring_json, parse_registry
from mrv_core.signing import PublicKey, Signer, fingerprint
from mrv_core.verify import KEY_RETIRED, KEY_REVOKED, check_sealed_batch
from tests.factory import Gateway

T0, T1, T2 = "2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"


def _request(gw: Gateway, signer: Signer | None = None) -> Enrollment:
    key = PublicKey(gw.gateway, (signer or gw.signer).public_key_raw)
    return Enrollment(gw.gateway, gw.site, key.key_id, key.b64)


def test_round_trip_and_version1() -> None:
    gw = Gateway()
    registry = enroll(Registry(), _request(gw), T0)
    again = parse_registry(registry.to_json(), "r.json")
    assert again == registry and again.keyring().keys[gw.signer.key_id].gateway == gw.gateway
    v1 = json.dumps(
        {
            "keys": [
                {
                    "gateway": gw.gateway,
                    "site": gw.site,
                    "key_id": gw.signer.key_id,
                    "public_key": gw.public_key.b64,
                }
            ]
        }
    )
    assert set(parse_registry(v1, "old.json").keyring().keys) == {gw.signer.key_id}
    assert (
        parse_registry(
            keyring_json(
                [{"gateway": "g", "site": "s", "key_id": gw.signer.key_id, "public_key": gw.public_key.b64}]
            ),
            "k",
        )
        .gateways[0]
        .gateway
        == "g"
    )


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda b: b["gateways"][0]["keys"][0].update(key_id="00" * 16), "does not match the key"),
        (lambda b: b["gateways"][0]["keys"][0].update(public_key="!!"), "not a base64 Ed25519 public key"),
        (lambda b: b["gateways"].append(dict(b["gateways"][0])), "registered twice"),
        (lambda b: b["gateways"][0]["keys"][0].update(valid_through_seal="3"), "valid_through_seal"),
        (lambda b: b.update(version=3), "not a jcm-mrv-keyring version 2"),
    ],
)
def test_malformed_registry_is_named(mutate, expected) -> None:  # type: ignore[no-untyped-def]
    body = json.loads(enroll(Registry(), _request(Gateway()), T0).to_json())
    mutate(body)
    with pytest.raises(KeyringError, match=expected) as info:
        parse_registry(json.dumps(body), "reg.json")
    assert str(info.value).startswith("reg.json: ")


def test_enrollment_rules() -> None:
    gw = Gateway()
    registry = enroll(Registry(), _request(gw), T0)
    with pytest.raises(RegistryError, match="registered already"):
        enroll(registry, _request(gw), T1)
    with pytest.raises(RegistryError, match="has an active key"):
        enroll(registry, _request(gw, Signer.generate()), T1)
    with pytest.raises(RegistryError, match="not enrolled"):
        rotate(registry, "gw-unknown", _request(gw, Signer.generate()), T1)
    fresh = _request(gw, Signer.generate())
    other_site = Enrollment(gw.gateway, "elsewhere", fresh.key_id, fresh.public_key)
    revoked, _ = revoke(registry, gw.gateway, key_id=None, reason="lost", now=T1, valid_through_seal=None)
    with pytest.raises(RegistryError, match="belongs to site"):
        enroll(revoked, other_site, T2)


def test_revocation_keeps_what_was_stored_and_refuses_the_rest() -> None:
    gw = Gateway()
    first = gw.seal([gw.record("m1", 0, 1)])
    second = gw.seal([gw.record("m1", 1, 2)])
    registry, entry = revoke(
        enroll(Registry(), _request(gw), T0),
        gw.gateway,
        key_id=None,
        reason="stolen",
        now=T1,
        valid_through_seal=1,
    )
    assert entry.state == "revoked" and entry.valid_through_seal == 1
    keyring = registry.keyring()
    assert check_sealed_batch(first.seal, first.signature, first.records, keyring).ok
    late = check_sealed_batch(second.seal, second.signature, second.records, keyring)
    assert [f.kind for f in late.findings] == [KEY_REVOKED] and "stolen" in late.findings[0].detail
    with pytest.raises(RegistryError, match="revoked at"):
        revoke(registry, gw.gateway, key_id=entry.key_id, reason="again", now=T2, valid_through_seal=None)


def test_rotation_keeps_both_chains_verifiable() -> None:
    gw = Gateway()  # creates seals at gw.start (2026-01-01T00:00)
    old_batch = gw.seal([gw.record("m1", 0, 1)])
    new_signer = Signer.generate()
    registry = rotate(enroll(Registry(), _request(gw), T0), gw.gateway, _request(gw, new_signer), T0)
    keyring = registry.keyring()
    assert check_sealed_batch(old_batch.seal, old_batch.signature, old_batch.records, keyring).ok
    gw.signer = new_signer  # the same seal chain continues under the new key
    new_batch = gw.seal([gw.record("m1", 1, 2)])
    assert check_sealed_batch(new_batch.seal, new_batch.signature, new_batch.records, keyring).ok
    retired_early = rotate(
        enroll(Registry(), _request(gw, Signer.from_seed(bytes(range(32)))), T0),
        gw.gateway,
        _request(gw, Signer.generate()),
        "2025-12-31T00:00:00.000Z",
    ).keyring()
    late = check_sealed_batch(old_batch.seal, old_batch.signature, old_batch.records, retired_early)
    assert [f.kind for f in late.findings] == [KEY_RETIRED]


def test_enrollment_request_is_checked(tmp_path: Path) -> None:
    gw = Gateway()
    request = {
        "type": "mrv-enrollment-request",
        "gateway": gw.gateway,
        "site": gw.site,
        "key_id": gw.signer.key_id,
        "public_key": gw.public_key.b64,
    }
    assert parse_enrollment(json.dumps(request), "req.json").key_id == gw.signer.key_id
    with pytest.raises(RegistryError, match=r"req\.json: key_id"):
        parse_enrollment(json.dumps({**request, "key_id": "ab" * 16}), "req.json")
    with pytest.raises(RegistryError, match="not an enrollment request"):
        parse_enrollment("{}", "req.json")
    right = fingerprint(gw.signer.public_key_raw)
    assert (
        parse_enrollment(json.dumps({**request, "fingerprint": right}), "req.json").key_id == gw.signer.key_id
    )
    with pytest.raises(RegistryError, match="fingerprint does not match"):
        parse_enrollment(json.dumps({**request, "fingerprint": right.replace("a", "b")}), "req.json")


def test_watcher_reloads_and_survives_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "gateways.json"
    watcher = KeyringWatcher(path)
    assert watcher.current().keys == {}
    gw = Gateway()
    save_registry(path, enroll(Registry(), _request(gw), T0))
    assert set(watcher.current().keys) == {gw.signer.key_id}
    path.write_text("{broken")
    assert set(watcher.current().keys) == {gw.signer.key_id} and watcher.errors == 1
    assert load_registry(tmp_path / "absent.json") == Registry()
