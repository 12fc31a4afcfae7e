"""mrv-verify on real bundles: a clean one verifies, and each tampering has its own finding and exit 1.

The bundle is written by 'mrv-collector export' from a store filled through
the real ingest path; tampering edits its members and, except where the
manifest is the target, rewrites the manifest so that only the deeper checks
can catch it (as a careful forger would).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from collector.gateways import Enrollment, enroll, revoke, save_registry
from collector.processing import Ingestor, ingest_messages
from collector.store.sqlite import SqliteStore
from mrv_core import bundle as bundle_module
from mrv_core import registers as registers_module
from mrv_core.bundle import seal_line
from mrv_core.config_errors import load_yaml_text
from mrv_core.keyring import Registry, parse_registry
from mrv_core.profile_schema import load_profile, parse_profile
from mrv_core.record import Value, build_seal
from mrv_core.registers import encode_value, words_to_hex
from mrv_core.signing import Signer
from tests.factory import TEST_PROFILE_YAML, Gateway
from tests.harness.bundles import enrolled_store, export_bundle
from tests.harness.programs import command

ONE = Decimal(1)

PROJECT_YAML = """
id: TAMPER-PV
name: Tamper suite PV
host_country: Mongolia
timezone: UTC
methodology: {id: pv-grid, version: "1.0", reference: test}
monitoring_points:
  - {number: 1, parameter: EG, gateway: gw-v, device: a, quantity: energy_active_export_total}
  - {number: 2, parameter: EG, gateway: gw-v, device: b, quantity: energy_active_export_total}
  - {number: 3, parameter: EG_AUX, gateway: gw-v, device: b, quantity: energy_active_export_total}
fixed:
  EF_grid: {value: "0.8", unit: tCO2/MWh, source: test document}
"""


@dataclass
class Site:
    folder: Path
    config: Path
    project: Path
    bundle: Path
    registry: Path
    gateway: Gateway


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(tool, *args), capture_output=True, text=True)


# The same registers under another model's id: another profile, another hash.
OTHER_PROFILE_YAML = TEST_PROFILE_YAML.replace("id: test-energy-meter", "id: test-energy-meter-b")
OTHER_PROFILE = parse_profile(load_yaml_text(OTHER_PROFILE_YAML, "other"), "other")


def _fill(folder: Path, gw: Gateway, registry: Registry, blocks: range, mixed: bool = False) -> None:
    """Devices a and b; with ``mixed``, b is a meter of another model (its records cite another profile)."""
    store = SqliteStore(folder / "c.sqlite")
    ingestor = Ingestor(store, registry.keyring(), clock_ms=lambda: 0)
    profiles = {"a": None, "b": OTHER_PROFILE if mixed else None}
    for block in blocks:  # seals of 6 readings per device, every 15 minutes: 90 minutes, aligned on midnight
        records = [
            gw.record(d, block * 90 + 15 * i, 100 * block + 10 * i, profile=profiles[d])
            for i in range(6)
            for d in ("a", "b")
        ]
        ingest_messages(ingestor, [(gw.topic, gw.message(gw.seal(records)))])
    store.close()


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return _make_site(tmp_path)


def _make_site(tmp_path: Path, mixed: bool = False) -> Site:
    gw = Gateway(gateway="gw-v", site="site-v")
    registry = enroll(Registry(), Enrollment(gw.gateway, gw.site, gw.signer.key_id, gw.public_key.b64), "")
    save_registry(tmp_path / "gateways.json", registry)
    _fill(tmp_path, gw, registry, range(40), mixed)  # 2026-01-01 00:00 .. 2026-01-03 11:45
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/test.yaml").write_text(TEST_PROFILE_YAML)
    if mixed:
        (tmp_path / "profiles/other.yaml").write_text(OTHER_PROFILE_YAML)
    (tmp_path / "project.yaml").write_text(PROJECT_YAML)
    config = tmp_path / "collector.yaml"
    config.write_text(
        json.dumps(
            {
                "store": {"type": "sqlite", "path": str(tmp_path / "c.sqlite")},
                "keyring": str(tmp_path / "gateways.json"),
                "profiles_dir": str(tmp_path / "profiles"),
            }
        )
    )
    bundle = tmp_path / "bundle.zip"
    done = _run(
        "collector",
        "export",
        "--config",
        str(config),
        "--project",
        str(tmp_path / "project.yaml"),
        "--from",
        "2026-01-02",
        "--to",
        "2026-01-02",
        "--out",
        str(bundle),
    )
    assert done.returncode == 0, done.stderr
    return Site(tmp_path, config, tmp_path / "project.yaml", bundle, tmp_path / "gateways.json", gw)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write(path: Path, members: dict[str, bytes], *, fix_manifest: bool = True) -> Path:
    if fix_manifest:
        manifest = json.loads(members["manifest.json"])
        manifest["members"] = {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in members.items()
            if name != "manifest.json"
        }
        members = {**members, "manifest.json": json.dumps(manifest).encode()}
    out = path.with_name("tampered.zip")
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def _verify(path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    done = _run("verify", str(path), "--json", *extra)
    return done.returncode, json.loads(done.stdout)


def _kinds(result: dict[str, Any]) -> set[str]:
    return {f["kind"] for f in result["findings"]}


def _lines(members: dict[str, bytes]) -> list[dict[str, Any]]:
    """evidence.txt as seal dicts with their records as [leaf, text] pairs."""
    seals: list[dict[str, Any]] = []
    for line in members["evidence.txt"].decode().splitlines():
        if line.startswith("{"):
            seals.append({**json.loads(line), "records": []})
        else:
            leaf, _, text = line.partition(" ")
            seals[-1]["records"].append([int(leaf), text])
    return seals


def _with_lines(members: dict[str, bytes], seals: list[dict[str, Any]]) -> dict[str, bytes]:
    text = b""
    for seal in seals:
        header = {k: v for k, v in seal.items() if k != "records"}
        text += json.dumps(header, separators=(",", ":")).encode() + b"\n"
        text += b"".join(f"{leaf} {record}".encode() + b"\n" for leaf, record in seal["records"])
    return {**members, "evidence.txt": text}


def test_clean_bundle_verifies(site: Site) -> None:
    code, result = _verify(site.bundle)
    assert code == 0 and result["verdict"] == "verified", result["findings"]
    # the PE parameter reads from just outside the day: the seals holding those readings came along
    seals = _lines(_members(site.bundle))
    assert json.loads(seals[0]["seal"])["last_time"] == "2026-01-01T23:45:00.000Z"
    assert json.loads(seals[-1]["seal"])["first_time"] == "2026-01-03T00:00:00.000Z"
    assert result["report_recomputed"] and result["emission_reductions_tco2"] is not None
    members = _members(site.bundle)
    assert {"manifest.json", "evidence.txt", "gateways.json", "project.json", "report.json"} <= set(members)
    assert any(name.startswith("profiles/") for name in members)
    report = json.loads(members["report.json"])
    assert report["emission_reductions_tco2"] == result["emission_reductions_tco2"]
    # whole seals: the day's records plus the rest of the seals at its edges
    assert result["records"] == 2 * 96 + 2 * 12  # the day, and one seal of context on each side
    assert result["decoded_values"] == result["records"]  # each record's export energy, read by the report
    human = _run("verify", str(site.bundle))
    assert human.returncode == 0 and human.stdout.startswith("VERIFIED: bundle.zip: project TAMPER-PV")


def _flip(members: dict[str, bytes]) -> dict[str, bytes]:
    lines = _lines(members)
    leaf, text = lines[3]["records"][2]
    lines[3]["records"][2] = [leaf, text.replace('"value":"', '"value":"9', 1)]
    return _with_lines(members, lines)


def _delete(members: dict[str, bytes]) -> dict[str, bytes]:
    lines = _lines(members)
    del lines[3]["records"][4]
    return _with_lines(members, lines)


def _insert_foreign(site: Site) -> Callable[[dict[str, bytes]], dict[str, bytes]]:
    other = Gateway(gateway="gw-other", site="site-v", signer=Signer.generate())

    def tamper(members: dict[str, bytes]) -> dict[str, bytes]:
        # gw-other is registered (its key is valid), but it signs a seal claiming to be gw-v
        body = json.loads(members["gateways.json"])
        body["gateways"].append(
            {
                "gateway": "gw-other",
                "site": "site-v",
                "keys": [
                    {
                        "key_id": other.signer.key_id,
                        "public_key": other.public_key.b64,
                        "enrolled": "",
                        "retired": None,
                        "revoked": None,
                        "valid_through_seal": None,
                        "reason": "",
                    }
                ],
            }
        )
        forged = Gateway(gateway="gw-v", site="site-v", signer=other.signer, start=site.gateway.start)
        batch = forged.seal([forged.record("a", 24 * 60 + 5, 1)])
        line = seal_line("gw-v", 999, batch.seal, batch.signature, [(0, batch.records[0])])
        return {
            **members,
            "gateways.json": json.dumps(body).encode(),
            "evidence.txt": members["evidence.txt"] + line,
        }

    return tamper


def _replay(site: Site) -> Callable[[dict[str, bytes]], dict[str, bytes]]:
    # A genuine seal of the same gateway from another period (a week later), appended.
    later = Gateway(
        gateway="gw-v",
        site="site-v",
        signer=site.gateway.signer,
        heads=dict(site.gateway.heads),
        seal_head=site.gateway.seal_head,
        start=site.gateway.start,
    )
    batch = later.seal([later.record("a", 10 * 24 * 60, 99_999)])
    line = seal_line("gw-v", later.seal_head[0], batch.seal, batch.signature, [(0, batch.records[0])])
    return lambda members: {**members, "evidence.txt": members["evidence.txt"] + line}


def _swap(members: dict[str, bytes]) -> dict[str, bytes]:
    lines = _lines(members)
    records = lines[3]["records"]
    records[0], records[2] = records[2], records[0]  # both of device a: seq order and signed order broken
    return _with_lines(members, lines)


def _report(members: dict[str, bytes]) -> dict[str, bytes]:
    report = json.loads(members["report.json"])
    report["emission_reductions_tco2"] += 1
    return {**members, "report.json": json.dumps(report).encode()}


def _swap_key(members: dict[str, bytes]) -> dict[str, bytes]:
    impostor = Signer.generate()
    body = json.loads(members["gateways.json"])
    key = body["gateways"][0]["keys"][0]
    key.update(key_id=impostor.key_id, public_key=Gateway(signer=impostor).public_key.b64)
    return {**members, "gateways.json": json.dumps(body).encode()}


def _revoked(site: Site) -> Callable[[dict[str, bytes]], dict[str, bytes]]:
    registry = parse_registry(site.registry.read_text(), "r")
    revoked, _ = revoke(
        registry, "gw-v", key_id=None, reason="stolen", now="2026-01-01T12:00:00.000Z", valid_through_seal=12
    )  # the gateway kept signing after its key was revoked
    return lambda members: {**members, "gateways.json": revoked.to_json().encode()}


def _manifest(members: dict[str, bytes]) -> dict[str, bytes]:
    manifest = json.loads(members["manifest.json"])
    manifest["members"]["report.json"]["sha256"] = "0" * 64
    return {**members, "manifest.json": json.dumps(manifest).encode()}


def _profile(members: dict[str, bytes]) -> dict[str, bytes]:
    name = next(n for n in members if n.startswith("profiles/"))
    body = json.loads(members[name])
    body["registers"][0]["scale"] = "0.1"  # every energy value would mean ten times more
    return {**members, name: json.dumps(body, sort_keys=True, separators=(",", ":")).encode()}


def test_each_tampering_has_its_own_finding(site: Site) -> None:
    original = _members(site.bundle)
    cases: dict[str, tuple[Callable[[dict[str, bytes]], dict[str, bytes]], str, bool]] = {
        "flipped byte in a record": (_flip, "record_altered", True),
        "record deleted": (_delete, "record_missing", True),
        "record inserted, signed with another gateway's key": (
            _insert_foreign(site),
            "key_gateway_mismatch",
            True,
        ),
        "record replayed from another period": (_replay(site), "out_of_period", True),
        "two records swapped": (_swap, "out_of_order", True),
        "a report number changed": (_report, "report_mismatch", True),
        "a public key swapped": (_swap_key, "unknown_key", True),
        "a revoked key used after revocation": (_revoked(site), "key_revoked", True),
        "a manifest hash changed": (_manifest, "manifest_mismatch", False),
        "a profile changed after signing": (_profile, "profile_mismatch", True),
    }
    seen: dict[str, set[str]] = {}
    for name, (tamper, expected, fix_manifest) in cases.items():
        code, result = _verify(_write(site.bundle, tamper(dict(original)), fix_manifest=fix_manifest))
        assert code == 1 and result["verdict"] == "failed", name
        seen[name] = _kinds(result)
        assert expected in seen[name], f"{name}: expected {expected}, got {seen[name]}"
    primaries = {expected for _, expected, _ in cases.values()}
    assert len(primaries) == len(cases)  # ten distinct kinds
    for name, (_, expected, _) in cases.items():
        others = primaries - {expected}
        assert not (seen[name] & others), f"{name} is also reported as {seen[name] & others}"


def test_findings_name_device_span_and_effect(site: Site) -> None:
    code, result = _verify(_write(site.bundle, _delete(_members(site.bundle))))
    gap = next(f for f in result["findings"] if f["kind"] == "sequence_gap")
    # the whole seal with the deleted record is refused, so its six records of device a form the gap
    assert code == 1 and gap["device"] == "a" and gap["seq_to"] - gap["seq_from"] == 5
    assert gap["time_from"] < gap["time_to"]
    missing = next(f for f in result["findings"] if f["kind"] == "record_missing")
    assert "not counted" in missing["effect"]
    human = _run("verify", str(_write(site.bundle, _report(_members(site.bundle)))))
    assert human.returncode == 1 and human.stdout.startswith("FAILED: ")
    assert "report_mismatch" in human.stdout and "emission_reductions_tco2" in human.stdout


def test_trusted_keys_pin_the_registry(site: Site) -> None:
    assert _verify(site.bundle, "--keys", str(site.registry))[0] == 0
    code, result = _verify(
        _write(site.bundle, _swap_key(_members(site.bundle))), "--keys", str(site.registry)
    )
    assert code == 1 and "keyring_mismatch" in _kinds(result)


def test_unreadable_inputs_exit_2(tmp_path: Path) -> None:
    assert _run("verify", str(tmp_path / "missing.zip")).returncode == 2
    keys = tmp_path / "k.json"
    keys.write_text("{}")
    (tmp_path / "b.zip").write_bytes(b"not a zip")
    done = _run("verify", str(tmp_path / "b.zip"), "--keys", str(keys))
    assert done.returncode == 2 and "k.json: not a jcm-mrv-keyring" in done.stderr
    assert _run("verify", str(tmp_path / "b.zip")).returncode == 1  # unreadable bundle: a finding


def _count_lean_seals(patch: pytest.MonkeyPatch) -> list[int]:
    """The seqs of the seals the lean path takes from now on (in ``patch``'s context)."""
    fast_seals: list[int] = []
    original = bundle_module.BundleVerifier._fast_seal

    def counting(self: bundle_module.BundleVerifier, seal: Any, *args: Any) -> None:
        fast_seals.append(seal.seq)
        original(self, seal, *args)

    patch.setattr(bundle_module.BundleVerifier, "_fast_seal", counting)
    return fast_seals


def _both_paths(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], dict[str, Any]]:
    """The result of the lean path (which must have been taken) and of the full path alone."""
    with monkeypatch.context() as patch:
        fast_seals = _count_lean_seals(patch)
        fast = bundle_module.verify_bundle(path).as_dict()
        assert fast_seals, "the regular seals should take the lean path"
        patch.setattr(bundle_module, "_FIRST_LINE", re.compile(rb"(?!)"))  # no seal is regular now
        fast_seals.clear()
        full = bundle_module.verify_bundle(path).as_dict()
        assert not fast_seals
    return fast, full


def test_a_site_with_two_meter_models_takes_the_lean_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seals mixing meters of two models (two profiles) are regular too: every seal takes the lean
    path, and it finds exactly what the full path finds."""
    site = _make_site(tmp_path, mixed=True)
    with monkeypatch.context() as patch:
        fast_seals = _count_lean_seals(patch)
        result = bundle_module.verify_bundle(site.bundle)
    assert result.ok and len(fast_seals) == result.seals
    assert len(_members(site.bundle).keys() & {f"profiles/{OTHER_PROFILE.sha256}.json"}) == 1
    fast, full = _both_paths(site.bundle, monkeypatch)
    assert fast == full and fast["decoded_values"] == fast["records"]


@pytest.mark.parametrize("tamper", [None, _flip, _delete, _swap, _report])
def test_fast_and_full_paths_agree(site: Site, monkeypatch: pytest.MonkeyPatch, tamper: Any) -> None:
    """The lean path for regular seals gives exactly the verdict and findings of the full path."""
    path = site.bundle if tamper is None else _write(site.bundle, tamper(_members(site.bundle)))
    fast, full = _both_paths(path, monkeypatch)
    assert fast == full


def test_a_signed_record_with_an_impossible_date_is_malformed_on_both_paths(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway that signs 2026-02-30 has a bug; its record is refused, whichever path reads it."""
    later = Gateway(
        gateway="gw-v",
        site="site-v",
        signer=site.gateway.signer,
        heads=dict(site.gateway.heads),
        seal_head=site.gateway.seal_head,
        start=site.gateway.start,
    )
    good = later.record("a", 10 * 24 * 60, 99_999)
    bad = good.replace(b'"time":"2026-01-11T00:00:00.000Z"', b'"time":"2026-02-30T00:00:00.000Z"')
    assert bad != good
    seq, prev = later.seal_head
    seal, _ = build_seal(
        site="site-v",
        gateway="gw-v",
        key_id=later.signer.key_id,
        seq=seq + 1,
        prev=prev,
        created=later.start,
        record_hashes=[hashlib.sha256(bad).hexdigest()],
        first_time="2026-01-11T00:00:00.000Z",
        last_time="2026-01-11T00:00:00.000Z",
    )
    members = _members(site.bundle)
    line = seal_line("gw-v", seq + 1, seal, later.signer.sign(seal), [(0, bad)])
    fast, full = _both_paths(
        _write(site.bundle, {**members, "evidence.txt": members["evidence.txt"] + line}), monkeypatch
    )
    assert "malformed" in _kinds(full)
    assert fast == full


SDM630 = Path(__file__).resolve().parents[2] / "firmware_profiles/eastron/sdm630-modbus-v2.yaml"


def _float_site(tmp_path: Path, wrong_claim: int | None, *, flat: bool = False) -> Path:
    """A bundle of SDM630 readings (float32 counters, as most sites have them): two meters, every
    15 minutes over two days; the reading numbered ``wrong_claim`` of meter a is signed with a claimed
    value one digit off its raw words (a gateway bug the verifier must name). With ``flat`` the
    counters stop moving after 07:30 (a PV plant at night): the same raw words again and again."""
    profile = load_profile(SDM630)
    spec = profile.register("energy_active_export_total")
    gw = Gateway(gateway="gw-v", site="site-v")
    store, ingestor = enrolled_store(tmp_path, gw)
    count = 0
    for block in range(24):
        records = []
        for step in range(8):
            minute = (block * 8 + step) * 15
            for device in ("a", "b"):
                words = words_to_hex(
                    encode_value(
                        Decimal("12345.6") + Decimal("0.37") * (min(minute, 450) if flat else minute),
                        "f32",
                        "ABCD",
                        ONE,
                    )
                )
                claim = spec.decode_hex(words)
                assert claim is not None
                if device == "a" and count == wrong_claim:
                    claim += Decimal("0.01")
                count += device == "a"
                value = Value(claim, "kWh", words)
                records.append(gw.record(device, minute, 0, profile=profile, values={spec.quantity: value}))
        ingest_messages(ingestor, [(gw.topic, gw.message(gw.seal(records)))])
    store.close()
    return export_bundle(
        tmp_path, {"sdm630.yaml": SDM630.read_bytes()}, PROJECT_YAML, "2026-01-01", "2026-01-01"
    )


@pytest.mark.parametrize(
    ("wrong_claim", "flat"), [(None, False), (10, False), (40, False), (None, True), (40, True)]
)
def test_float_counters_are_checked_a_column_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wrong_claim: int | None, flat: bool
) -> None:
    """Float32 counters of regular seals are confirmed a run at a time (one call per device and
    seal, raw words confirmed before are not confirmed again); the result is exactly the full path's,
    and a claim that is not its raw words' value is named on both paths, also where the same raw
    words were confirmed with the right claim before (a counter that did not move)."""
    bundle = _float_site(tmp_path, wrong_claim, flat=flat)
    confirmed: list[bool] = []
    original = registers_module.column_confirmer

    def counting(*args: Any) -> Any:
        confirm = original(*args)
        assert confirm is not None  # float32 at scale 1

        def counted(raws: Any, claims: Any) -> Any:
            floats = confirm(raws, claims)
            confirmed.append(floats is not None)
            return floats

        return counted

    monkeypatch.setattr(bundle_module, "column_confirmer", counting)
    fast, full = _both_paths(bundle, monkeypatch)
    assert fast == full
    assert fast["decoded_values"] >= 2 * 96  # both meters' counters of the day, and the seals around it
    mismatches = [f for f in fast["findings"] if f["kind"] == "value_mismatch"]
    if wrong_claim is None:
        assert fast["verdict"] == "verified" and not mismatches
        assert confirmed and all(confirmed)
    else:
        assert fast["verdict"] == "failed" and len(mismatches) == 1 and mismatches[0]["device"] == "a"
        assert confirmed.count(False) <= 1  # the one run holding it went value by value


def test_a_signed_gap_goes_through_ingest_export_and_verification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A meter that did not answer for an hour: the gateway's gap record is stored by the collector,
    exported in the device's chain, and the verifier accepts it (no missing record, no chain break)
    and reproduces the report, which names the unread polls and excludes the increase (RE)."""
    gw = Gateway(gateway="gw-v", site="site-v")
    store, ingestor = enrolled_store(tmp_path, gw)
    for block in range(40):  # as _fill: 6 readings per device and seal, every 15 minutes
        records = []
        for i in range(6):
            minute = block * 90 + 15 * i
            for device in ("a", "b"):
                if device == "a" and 34 * 60 <= minute < 35 * 60:  # 2026-01-02 10:00-10:59 unread
                    continue
                if device == "a" and minute == 35 * 60:
                    records.append(gw.gap("a", 34 * 60, 34 * 60 + 45, polls=4))
                records.append(gw.record(device, minute, 100 * block + 10 * i))
        ingest_messages(ingestor, [(gw.topic, gw.message(gw.seal(records)))])
    store.close()
    bundle = export_bundle(
        tmp_path, {"test.yaml": TEST_PROFILE_YAML}, PROJECT_YAML, "2026-01-02", "2026-01-02"
    )
    assert b'"kind":"gap"' in _members(bundle)["evidence.txt"]
    code, result = _verify(bundle)
    assert code == 0 and result["verdict"] == "verified", result["findings"]
    report = json.loads(_members(bundle)["report.json"])
    point = report["monitored"]["EG"]["points"][0]
    assert point["device"] == "a" and point["missing_records"] == 0 and point["unread_polls"] == 4
    assert [g["rule"] for g in point["gaps"]] == ["gap_excluded"]
    assert "device_not_read" in {f["kind"] for f in report["findings"]}
    fast, full = _both_paths(bundle, monkeypatch)
    assert fast == full
