"""Evidence bundles and their independent verification (docs/evidence-bundle.md).

A bundle is one zip file. Members, in the order they are written:

- ``seals.jsonl``: one line per seal, each gateway's seals in seq order:
  ``{"gateway": G, "seq": N, "seal": "<signed bytes>", "sig": "<base64>",
  "records": [[leaf, "<signed bytes>"], ...]}``. Whole seals: every record of
  every seal with a record in the bundle's window, so every Merkle root can be
  recomputed; records outside the window only ever sit in a seal that has
  records inside it.
- ``gateways.json``: the gateway registry (keys with enrollment, retirement
  and revocation), as in :mod:`mrv_core.keyring`.
- ``profiles/<sha256>.json``: the canonical bytes of each firmware profile used.
- ``project.json`` and ``report.json`` when the bundle is for a project: the
  project (methodology, monitoring points, fixed values) and the report the
  collector computed.
- ``manifest.json`` last: format, version, project, period and the SHA-256
  and size of every other member.

The verifier streams ``seals.jsonl`` once: memory does not grow with the
number of records. It needs nothing but this core and ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from mrv_core.canonical import CanonicalError
from mrv_core.hashing import ZERO_HASH, merkle_root
from mrv_core.keyring import KeyringError, Registry, parse_registry
from mrv_core.profile import Profile, RegisterSpec
from mrv_core.record import RecordError, parse_record, parse_seal
from mrv_core.report import Period, StreamingReport, compare_reports, project_from_dict
from mrv_core.timefmt import parse_time, time_ms
from mrv_core.verify import (
    BAD_SIGNATURE,
    DUPLICATE,
    HASH_LINK_BROKEN,
    KEY_GATEWAY_MISMATCH,
    MALFORMED,
    OUT_OF_ORDER,
    PROFILE_UNKNOWN,
    RECORD_ALTERED,
    RECORD_FOREIGN,
    RECORD_MISSING,
    SEAL_GAP,
    SEAL_LINK_BROKEN,
    SEQUENCE_GAP,
    UNKNOWN_KEY,
    VALUE_MISMATCH,
    Finding,
    Keyring,
)

BUNDLE_FORMAT = "jcm-mrv-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
SEALS = "seals.jsonl"
GATEWAYS = "gateways.json"
PROJECT = "project.json"
REPORT = "report.json"
PROFILES_DIR = "profiles/"

# Finding kinds of bundles (record-level kinds are in mrv_core.verify).
MANIFEST_MISMATCH = "manifest_mismatch"
UNLISTED_MEMBER = "unlisted_member"
BUNDLE_MALFORMED = "bundle_malformed"
OUT_OF_PERIOD = "out_of_period"
FOREIGN_GATEWAY = "foreign_gateway"
PROFILE_MISMATCH = "profile_mismatch"
REPORT_MISMATCH = "report_mismatch"
REPORT_UNSUPPORTED = "report_unsupported"
KEYRING_MISMATCH = "keyring_mismatch"


def seal_line(
    gateway: str, seq: int, seal: bytes, signature: bytes, records: list[tuple[int, bytes]]
) -> bytes:
    """One line of ``seals.jsonl`` (signed bytes are ASCII, so each JSON string is exactly them)."""
    body = {
        "gateway": gateway,
        "seq": seq,
        "seal": seal.decode("ascii"),
        "sig": base64.b64encode(signature).decode("ascii"),
        "records": [[leaf, data.decode("ascii")] for leaf, data in records],
    }
    return json.dumps(body, separators=(",", ":")).encode("ascii") + b"\n"


@dataclass
class BundleResult:
    manifest: dict[str, Any] = field(default_factory=dict)
    seals: int = 0
    records: int = 0
    verified_records: int = 0
    gateways: set[str] = field(default_factory=set)
    devices: set[tuple[str, str]] = field(default_factory=set)
    report_checked: bool = False
    emission_reductions_tco2: int | None = None
    findings: list[Finding] = field(default_factory=list)
    effects: dict[int, str] = field(default_factory=dict)  # finding index -> effect on the result

    @property
    def ok(self) -> bool:
        return not self.findings and self.records > 0

    def add(self, finding: Finding, effect: str = "") -> None:
        if effect:
            self.effects[len(self.findings)] = effect
        self.findings.append(finding)

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": "verified" if self.ok else "failed",
            "seals": self.seals,
            "records": self.records,
            "verified_records": self.verified_records,
            "gateways": sorted(self.gateways),
            "devices": [f"{g}/{d}" for g, d in sorted(self.devices)],
            "report_recomputed": self.report_checked,
            "emission_reductions_tco2": self.emission_reductions_tco2,
            "findings": [
                {**f.as_dict(), **({"effect": self.effects[i]} if i in self.effects else {})}
                for i, f in enumerate(self.findings)
            ],
            "bundle": {k: v for k, v in self.manifest.items() if k != "members"},
        }


@dataclass
class _Chain:
    seq: int
    hash: str
    time: str


def _read_json(zf: zipfile.ZipFile, name: str) -> Any:
    return json.loads(zf.read(name))


class _HashingReader:
    """Lines of a zip member, hashed as they are read (one pass for the manifest check and the data)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.sha = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for line in self.handle:
            self.sha.update(line)
            self.size += len(line)
            yield line


@dataclass
class BundleVerifier:
    """Checks one bundle; see :func:`verify_bundle`."""

    zf: zipfile.ZipFile
    trusted: Registry | None = None
    all_values: bool = False
    progress: Callable[[int, int], None] | None = None
    result: BundleResult = field(default_factory=BundleResult)
    keyring: Keyring = field(default_factory=lambda: Keyring.of([]))
    profiles: dict[str, Profile] = field(default_factory=dict)
    registers: dict[str, dict[str, RegisterSpec]] = field(default_factory=dict)
    report: StreamingReport | None = None
    period_ms: tuple[int, int] | None = None
    project_gateways: set[str] | None = None
    chains: dict[tuple[str, str], _Chain] = field(default_factory=dict)
    seal_chains: dict[str, tuple[int, str]] = field(default_factory=dict)
    unknown_profiles: set[str] = field(default_factory=set)
    # seals wholly outside a project's period: (gateway, seq, side, record hashes, first time, last time)
    context: list[tuple[str, int, str, set[str], str, str]] = field(default_factory=list)

    # -- members ---------------------------------------------------------------
    def _manifest(self) -> dict[str, Any] | None:
        try:
            manifest = _read_json(self.zf, MANIFEST)
        except (KeyError, ValueError) as exc:
            self.result.add(Finding(BUNDLE_MALFORMED, f"{MANIFEST}: {exc}"))
            return None
        if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
            self.result.add(Finding(BUNDLE_MALFORMED, f"{MANIFEST}: not a {BUNDLE_FORMAT} manifest"))
            return None
        if manifest.get("version") != BUNDLE_VERSION:
            self.result.add(
                Finding(BUNDLE_MALFORMED, f"bundle version {manifest.get('version')!r} is unknown")
            )
            return None
        self.result.manifest = manifest
        return manifest

    def _check_members(self, members: dict[str, Any]) -> None:
        present = {info.filename for info in self.zf.infolist()} - {MANIFEST}
        for name in sorted(present - set(members)):
            self.result.add(Finding(UNLISTED_MEMBER, f"{name} is in the bundle but not in the manifest"))
        for name, entry in sorted(members.items()):
            if name == SEALS:
                continue  # hashed while it is read
            if name not in present:
                self.result.add(Finding(MANIFEST_MISMATCH, f"{name} is listed in the manifest but missing"))
                continue
            data = self.zf.read(name)
            if hashlib.sha256(data).hexdigest() != entry.get("sha256") or len(data) != entry.get("bytes"):
                self.result.add(
                    Finding(MANIFEST_MISMATCH, f"{name} does not match its SHA-256 in the manifest")
                )

    def _load_registry(self) -> None:
        try:
            bundled = parse_registry(self.zf.read(GATEWAYS).decode("utf-8"), GATEWAYS)
        except (KeyError, KeyringError, UnicodeDecodeError) as exc:
            self.result.add(Finding(BUNDLE_MALFORMED, f"{GATEWAYS}: {exc}"))
            bundled = Registry()
        if self.trusted is not None:
            mine = {(g.gateway, k.key_id, k.public_key) for g in self.trusted.gateways for k in g.keys}
            theirs = {(g.gateway, k.key_id, k.public_key) for g in bundled.gateways for k in g.keys}
            for gateway, key, _ in sorted(theirs - mine):
                self.result.add(
                    Finding(
                        KEYRING_MISMATCH,
                        f"the bundle registers key {key} for {gateway}, which your trusted keyring does not",
                        gateway=gateway,
                    )
                )
            self.keyring = self.trusted.keyring()
        else:
            self.keyring = bundled.keyring()

    def _load_profiles(self) -> None:
        for name in self.zf.namelist():
            if not name.startswith(PROFILES_DIR) or name == PROFILES_DIR:
                continue
            claimed = name[len(PROFILES_DIR) :].removesuffix(".json")
            data = self.zf.read(name)
            if hashlib.sha256(data).hexdigest() != claimed:
                self.result.add(
                    Finding(
                        PROFILE_MISMATCH,
                        f"{name} does not hash to {claimed[:12]}...: "
                        "the profile was changed after records named it",
                    )
                )
                continue
            try:
                profile = Profile.from_canonical(data)
            except (CanonicalError, ValueError, KeyError, TypeError) as exc:
                self.result.add(Finding(BUNDLE_MALFORMED, f"{name}: {exc}"))
                continue
            self.profiles[profile.sha256] = profile
            self.registers[profile.sha256] = {spec.quantity: spec for spec in profile.registers}

    def _load_project(self, manifest: dict[str, Any]) -> None:
        names = set(self.zf.namelist())
        period = manifest.get("period") or {}
        if "start_utc" in period and "end_utc" in period:
            self.period_ms = (time_ms(period["start_utc"]), time_ms(period["end_utc"]))
        if PROJECT not in names:
            return
        try:
            project = project_from_dict(_read_json(self.zf, PROJECT))
            report_period = Period(
                date.fromisoformat(period["from"]), date.fromisoformat(period["to"]), project.timezone
            )
        except (KeyError, ValueError, TypeError) as exc:
            self.result.add(Finding(BUNDLE_MALFORMED, f"{PROJECT}: {exc}"))
            return
        self.project_gateways = {p.gateway for p in project.points}
        self.report = StreamingReport(project, report_period)

    # -- the stream of seals -----------------------------------------------------
    def _refusal(self, seal: Any, gateway: str, seal_bytes: bytes) -> tuple[str, str] | None:
        """Why a seal cannot be trusted (kind, detail), or None: key, owner, signature, validity, period."""
        key = self.keyring.keys.get(seal.key)
        if key is None:
            return UNKNOWN_KEY, f"seal {seal.seq} is signed by unregistered key {seal.key}"
        if key.gateway != seal.gateway or gateway != seal.gateway:
            return (
                KEY_GATEWAY_MISMATCH,
                f"seal {seal.seq} claims gateway {seal.gateway}; key {seal.key} belongs to {key.gateway}",
            )
        if not key.verifies(seal_bytes, seal.signature):
            return BAD_SIGNATURE, f"seal {seal.seq}: signature does not verify"
        validity = self.keyring.validity.get(seal.key)
        refusal = validity.refusal(seal) if validity else None
        if refusal is not None:
            return refusal
        if self.report is None and self._outside(seal):
            return OUT_OF_PERIOD, f"seal {seal.seq} holds only records outside the window (replayed?)"
        return None

    def _outside(self, seal: Any) -> str:
        """'before' or 'after' when every record of the seal lies outside the period, else ''."""
        if self.period_ms is None:
            return ""
        if time_ms(seal.last_time) < self.period_ms[0]:
            return "before"
        if time_ms(seal.first_time) >= self.period_ms[1]:
            return "after"
        return ""

    def _seal_findings(self, item: dict[str, Any]) -> tuple[Any, list[tuple[int, str]]] | None:
        """Parse and authenticate one seal line; None when nothing of it can be trusted."""
        gateway = str(item.get("gateway", ""))
        try:
            seal_bytes = item["seal"].encode("ascii")
            signature = base64.b64decode(item["sig"], validate=True)
            records = [(int(leaf), str(data)) for leaf, data in item["records"]]
            seal = parse_seal(seal_bytes, signature)
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            UnicodeEncodeError,
            binascii.Error,
            RecordError,
        ) as exc:
            self.result.add(Finding(MALFORMED, f"seal line: {type(exc).__name__}: {exc}", gateway=gateway))
            return None
        where: dict[str, Any] = {
            "gateway": seal.gateway,
            "time_from": seal.first_time,
            "time_to": seal.last_time,
        }
        refusal = self._refusal(seal, gateway, seal_bytes)
        if refusal is not None:
            self.result.add(
                Finding(refusal[0], refusal[1], **where), effect=f"its {seal.count} record(s) are not counted"
            )
            return None
        if self.project_gateways is not None and seal.gateway not in self.project_gateways:
            self.result.add(
                Finding(
                    FOREIGN_GATEWAY,
                    f"seal {seal.seq} of {seal.gateway}, which no monitoring point of the project reads",
                    **where,
                )
            )
        return seal, records

    def _check_seal_chain(self, seal: Any) -> None:
        head = self.seal_chains.get(seal.gateway)
        where = {"gateway": seal.gateway, "time_from": seal.first_time}
        if head is None:
            if seal.seq == 1 and seal.prev != ZERO_HASH:
                self.result.add(Finding(SEAL_LINK_BROKEN, "seal 1 does not start from genesis", **where))
        elif seal.seq <= head[0]:
            kind = DUPLICATE if seal.seq == head[0] and seal.hash == head[1] else OUT_OF_ORDER
            self.result.add(Finding(kind, f"seal {seal.seq} comes after seal {head[0]}", **where))
            return
        elif seal.seq > head[0] + 1:
            self.result.add(Finding(SEAL_GAP, f"seals {head[0] + 1}..{seal.seq - 1} are missing", **where))
        elif seal.prev != head[1]:
            self.result.add(
                Finding(SEAL_LINK_BROKEN, f"seal {seal.seq} does not link to seal {head[0]}", **where)
            )
        self.seal_chains[seal.gateway] = (seal.seq, seal.hash)

    def _check_merkle(self, seal: Any, records: list[tuple[int, str]]) -> list[tuple[int, str, bytes]] | None:
        ordered = sorted(records)
        where = {"gateway": seal.gateway, "time_from": seal.first_time, "time_to": seal.last_time}
        if [leaf for leaf, _ in ordered] != list(range(len(ordered))) or len(ordered) != seal.count:
            self.result.add(
                Finding(
                    RECORD_MISSING,
                    f"seal {seal.seq} covers {seal.count} records, {len(ordered)} present",
                    **where,
                ),
                effect="its records are not counted",
            )
            return None
        hashed = [(leaf, text, hashlib.sha256(text.encode("ascii")).digest()) for leaf, text in ordered]
        if merkle_root([digest for _, _, digest in hashed]).hex() != seal.root:
            self.result.add(
                Finding(
                    RECORD_ALTERED, f"seal {seal.seq}: records do not hash to the signed Merkle root", **where
                ),
                effect="its records are not counted",
            )
            return None
        if [leaf for leaf, _ in records] != [leaf for leaf, _, _ in hashed]:
            self.result.add(
                Finding(OUT_OF_ORDER, f"seal {seal.seq}: records are not in their signed order", **where)
            )
        return hashed

    def _parse_records(self, hashed: list[tuple[int, str, bytes]]) -> list[dict[str, Any]] | None:
        """One json.loads for a whole seal (about 3x faster than record by record)."""
        try:
            objects = json.loads("[" + ",".join(text for _, text, _ in hashed) + "]")
        except ValueError:
            objects = None
        if isinstance(objects, list) and all(isinstance(o, dict) for o in objects):
            return objects
        out = []
        for _, text, _ in hashed:
            try:
                parse_record(text.encode("ascii"))
                out.append(json.loads(text))
            except (RecordError, ValueError) as exc:
                self.result.add(Finding(MALFORMED, f"record: {exc}"))
                return None
        return out

    def _check_record(self, seal: Any, obj: dict[str, Any], digest: bytes) -> bool:
        gateway, device, seq = obj.get("gateway"), obj.get("device"), obj.get("seq")
        if gateway != seal.gateway or obj.get("site") != seal.site:
            self.result.add(
                Finding(
                    RECORD_FOREIGN,
                    f"seal {seal.seq} holds a record of {obj.get('site')}/{gateway}",
                    gateway=seal.gateway,
                    device=str(device),
                )
            )
            return False
        if (
            obj.get("kind") != "reading"
            or obj.get("v") != 1
            or not isinstance(seq, int)
            or not isinstance(device, str)
        ):
            self.result.add(
                Finding(
                    MALFORMED, f"seal {seal.seq}: a record is not a version 1 reading", gateway=seal.gateway
                )
            )
            return False
        time, prev, record_hash = obj.get("time", ""), obj.get("prev"), digest.hex()
        try:
            parse_time(time)
        except (ValueError, TypeError):
            self.result.add(Finding(MALFORMED, f"{device} seq {seq}: bad time {time!r}", gateway=gateway))
            return False
        key = (gateway, device)
        self.result.devices.add(key)
        where: dict[str, Any] = {"gateway": gateway, "device": device}
        head = self.chains.get(key)
        if head is None:
            if seq == 1 and prev != ZERO_HASH:
                self.result.add(
                    Finding(
                        HASH_LINK_BROKEN,
                        "seq 1 does not start from genesis",
                        seq_from=1,
                        seq_to=1,
                        time_from=time,
                        **where,
                    )
                )
        elif seq <= head.seq:
            kind = DUPLICATE if seq == head.seq and record_hash == head.hash else OUT_OF_ORDER
            self.result.add(
                Finding(
                    kind,
                    f"seq {seq} comes after seq {head.seq}",
                    seq_from=seq,
                    seq_to=seq,
                    time_from=time,
                    **where,
                ),
                effect="not counted again",
            )
            return False
        elif seq > head.seq + 1:
            self.result.add(
                Finding(
                    SEQUENCE_GAP,
                    f"{seq - head.seq - 1} record(s) missing",
                    seq_from=head.seq + 1,
                    seq_to=seq - 1,
                    time_from=head.time,
                    time_to=time,
                    **where,
                ),
                effect="the calculation treats the span as a gap",
            )
        elif prev != head.hash:
            self.result.add(
                Finding(
                    HASH_LINK_BROKEN,
                    f"seq {seq} does not link to the hash of seq {head.seq}",
                    seq_from=head.seq,
                    seq_to=seq,
                    time_from=head.time,
                    time_to=time,
                    **where,
                )
            )
        self.chains[key] = _Chain(seq, record_hash, time)
        self._check_values(obj, where, seq, time)
        if self.report is not None:
            wanted = self.report.wants(gateway, device)
            if wanted:
                self.report.feed(
                    wanted, time=time, seq=seq, record_hash=record_hash, values=obj.get("values") or {}
                )
        return True

    def _used_quantities(self, gateway: str, device: str) -> set[str] | None:
        if self.all_values or self.report is None:
            return None
        return {a.point.quantity for a in self.report.wants(gateway, device)}

    def _check_values(self, obj: dict[str, Any], where: dict[str, Any], seq: int, time: str) -> None:
        profile = obj.get("profile") or {}
        sha = profile.get("sha256") if isinstance(profile, dict) else None
        registers = self.registers.get(str(sha))
        if registers is None:
            if sha not in self.unknown_profiles:
                self.unknown_profiles.add(str(sha))
                self.result.add(
                    Finding(
                        PROFILE_UNKNOWN,
                        f"profile {str(sha)[:12]}... is not in the bundle; values cannot be re-decoded",
                        **where,
                    )
                )
            return
        used = self._used_quantities(where["gateway"], where["device"])
        for name, item in (obj.get("values") or {}).items():
            if used is not None and name not in used:
                continue
            spec = registers.get(name)
            decoded: object
            try:
                decoded = spec.decode_hex(item["raw"]) if spec else "(not in the profile)"
                matches = spec is not None and decoded == (
                    None if item.get("value") is None else Decimal(item["value"])
                )
            except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
                decoded, matches = f"an error ({exc})", False
            if not matches:
                self.result.add(
                    Finding(
                        VALUE_MISMATCH,
                        f"{name}: record says {item.get('value')}, raw "
                        f"{item.get('raw')} decodes to {decoded}",
                        seq_from=seq,
                        seq_to=seq,
                        time_from=time,
                        **where,
                    )
                )

    def _stream(self, members: dict[str, Any]) -> None:
        total = int((self.result.manifest.get("counts") or {}).get("records", 0))
        try:
            handle = self.zf.open(SEALS)
        except KeyError:
            self.result.add(Finding(MANIFEST_MISMATCH, f"{SEALS} is missing"))
            return
        reader = _HashingReader(handle)
        with handle:
            for line in reader:
                self._one_seal(line)
                if self.progress is not None:
                    self.progress(self.result.records, total)
        entry = members.get(SEALS) or {}
        if reader.sha.hexdigest() != entry.get("sha256") or reader.size != entry.get("bytes"):
            self.result.add(Finding(MANIFEST_MISMATCH, f"{SEALS} does not match its SHA-256 in the manifest"))

    def _one_seal(self, line: bytes) -> None:
        try:
            item = json.loads(line)
        except ValueError as exc:
            self.result.add(Finding(MALFORMED, f"{SEALS}: a line is not JSON: {exc}"))
            return
        if not isinstance(item, dict):
            self.result.add(Finding(MALFORMED, f"{SEALS}: a line is not an object"))
            return
        self.result.seals += 1
        self.result.records += len(item.get("records") or [])
        checked = self._seal_findings(item)
        if checked is None:
            return
        seal, records = checked
        self.result.gateways.add(seal.gateway)
        self._check_seal_chain(seal)
        hashed = self._check_merkle(seal, records)
        if hashed is None:
            return
        side = self._outside(seal) if self.report is not None else ""
        if side:
            self.context.append(
                (
                    seal.gateway,
                    seal.seq,
                    side,
                    {d.hex() for _, _, d in hashed},
                    seal.first_time,
                    seal.last_time,
                )
            )
        objects = self._parse_records(hashed)
        if objects is None:
            return
        for obj, (_, _, digest) in zip(objects, hashed, strict=True):
            if self._check_record(seal, obj, digest):
                self.result.verified_records += 1

    def _check_context(self, recomputed: dict[str, Any]) -> None:
        """Seals wholly outside the period are accepted only as the context of a PE boundary reading.

        Such a parameter is measured from the last reading before the period to
        the first after it; the seals from those readings to the period belong
        in the bundle, any other seal outside the period does not (a replay).
        """
        used = {
            reading["record_hash"]
            for parameter in recomputed["monitored"].values()
            if parameter["raises"] == "PE"
            for point in parameter["points"]
            for reading in (point["start"], point["end"])
            if reading
        }
        reach: dict[tuple[str, str], int] = {}
        for gateway, seq, side, hashes, _, _ in self.context:
            if hashes & used:
                key = (gateway, side)
                reach[key] = (
                    min(reach.get(key, seq), seq) if side == "before" else max(reach.get(key, seq), seq)
                )
        for gateway, seq, side, _, first, last in self.context:
            limit = reach.get((gateway, side))
            needed = limit is not None and (seq >= limit if side == "before" else seq <= limit)
            if not needed:
                self.result.add(
                    Finding(
                        OUT_OF_PERIOD,
                        f"seal {seq} holds only records {side} the period and no boundary "
                        "reading the report uses (replayed?)",
                        gateway=gateway,
                        time_from=first,
                        time_to=last,
                    ),
                    effect="its records do not belong in this bundle",
                )

    def _compare_report(self) -> None:
        if self.report is None:
            return
        recomputed = self.report.finish()
        self._check_context(recomputed)
        self.result.report_checked = True
        self.result.emission_reductions_tco2 = recomputed["emission_reductions_tco2"]
        try:
            claimed = _read_json(self.zf, REPORT)
        except (KeyError, ValueError) as exc:
            self.result.add(Finding(BUNDLE_MALFORMED, f"{REPORT}: {exc}"))
            return
        # With every record accepted, a difference means the report is wrong; with records refused,
        # it means the report rests on evidence that did not verify.
        intact = self.result.verified_records == self.result.records
        kind = REPORT_MISMATCH if intact else REPORT_UNSUPPORTED
        for path, expected, actual in compare_reports(recomputed, claimed):
            effect = (
                f"the bundle's report is wrong at {path}"
                if intact
                else f"{path} cannot be reproduced from the evidence that verified"
            )
            self.result.add(
                Finding(kind, f"{path}: recomputed {expected!r}, the bundle says {actual!r}"), effect=effect
            )

    def run(self) -> BundleResult:
        manifest = self._manifest()
        if manifest is None:
            return self.result
        listed = manifest.get("members")
        members: dict[str, Any] = listed if isinstance(listed, dict) else {}
        self._check_members(members)
        self._load_registry()
        self._load_profiles()
        self._load_project(manifest)
        self._stream(members)
        self._compare_report()
        return self.result


def verify_bundle(
    path: Path,
    *,
    trusted: Registry | None = None,
    all_values: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BundleResult:
    """Check every member hash, signature, key validity, chain, period, profile and decoded value of a
    bundle, recompute its report and compare it value by value. ``trusted`` pins the gateway keys."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        result = BundleResult()
        result.add(Finding(BUNDLE_MALFORMED, f"{path}: not a readable zip: {exc}"))
        return result
    with zf:
        return BundleVerifier(zf, trusted=trusted, all_values=all_values, progress=progress).run()
