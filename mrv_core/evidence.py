"""Record exports (JSON Lines) and their independent verification.

An export holds whole seals: every record of every seal that has at least one
record in the requested window, so every Merkle root can be recomputed. Lines::

    {"type":"header","format":"jcm-mrv-export","version":1,"from":T,"to":T,...}
    {"type":"profile","sha256":H,"canonical":"<canonical profile JSON>"}
    {"type":"seal","gateway":G,"seq":N,"seal":"<signed bytes>","sig":"<base64>"}
    {"type":"record","gateway":G,"seal_seq":N,"leaf":I,"record":"<signed bytes>"}

Signed bytes are ASCII, so each JSON string is exactly the signed bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mrv_core.profile import Profile
from mrv_core.record import Record, RecordError, parse_record
from mrv_core.verify import (
    MALFORMED,
    OUT_OF_ORDER,
    PROFILE_UNKNOWN,
    RECORD_MISSING,
    VALUE_MISMATCH,
    ChainChecker,
    Finding,
    Keyring,
    check_sealed_batch,
)

EXPORT_FORMAT = "jcm-mrv-export"
EXPORT_VERSION = 1


def header_line(**fields: Any) -> str:
    return json.dumps({"type": "header", "format": EXPORT_FORMAT, "version": EXPORT_VERSION, **fields})


def profile_line(profile: Profile) -> str:
    return json.dumps(
        {"type": "profile", "sha256": profile.sha256, "canonical": profile.canonical_json.decode("ascii")}
    )


def seal_line(gateway: str, seq: int, seal: bytes, signature: bytes) -> str:
    return json.dumps(
        {
            "type": "seal",
            "gateway": gateway,
            "seq": seq,
            "seal": seal.decode("ascii"),
            "sig": base64.b64encode(signature).decode("ascii"),
        }
    )


def record_line(gateway: str, seal_seq: int, leaf: int, record: bytes) -> str:
    return json.dumps(
        {
            "type": "record",
            "gateway": gateway,
            "seal_seq": seal_seq,
            "leaf": leaf,
            "record": record.decode("ascii"),
        }
    )


@dataclass
class VerificationResult:
    header: dict[str, Any] = field(default_factory=dict)
    seals: int = 0
    records: int = 0
    verified_records: int = 0
    gateways: set[str] = field(default_factory=set)
    devices: set[tuple[str, str]] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings and self.records > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": "verified" if self.ok else "failed",
            "seals": self.seals,
            "records": self.records,
            "verified_records": self.verified_records,
            "gateways": sorted(self.gateways),
            "devices": [f"{g}/{d}" for g, d in sorted(self.devices)],
            "findings": [f.as_dict() for f in self.findings],
            "export": self.header,
        }


@dataclass
class _Seal:
    gateway: str
    seq: int
    data: bytes
    signature: bytes
    records: list[tuple[int, bytes]] = field(default_factory=list)


@dataclass
class _Export:
    """An export as read: profiles, seals with their records, and the order lines came in."""

    profiles: dict[str, Profile]
    seals: dict[tuple[str, int], _Seal] = field(default_factory=dict)
    seal_order: list[tuple[str, int]] = field(default_factory=list)
    record_order: dict[tuple[str, int, int], int] = field(default_factory=dict)  # (gw, seal, leaf) -> index


def _items(lines: Iterable[str], result: VerificationResult) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            result.findings.append(Finding(MALFORMED, f"line {number}: {exc}"))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            result.findings.append(Finding(MALFORMED, f"line {number}: not an object with a type"))
            continue
        yield number, item


def _read_item(number: int, item: dict[str, Any], export: _Export, result: VerificationResult) -> None:
    kind = item["type"]
    if kind == "header":
        result.header = {k: v for k, v in item.items() if k != "type"}
    elif kind == "profile":
        profile = Profile.from_canonical(item["canonical"].encode("ascii"))
        if profile.sha256 != item["sha256"]:
            detail = f"line {number}: profile {profile.id} does not hash to the sha256 it claims"
            result.findings.append(Finding(MALFORMED, detail))
        export.profiles[profile.sha256] = profile
    elif kind == "seal":
        key = (item["gateway"], int(item["seq"]))
        export.seals[key] = _Seal(key[0], key[1], item["seal"].encode("ascii"), base64.b64decode(item["sig"]))
        export.seal_order.append(key)
    elif kind == "record":
        key = (item["gateway"], int(item["seal_seq"]))
        if key not in export.seals:
            detail = f"line {number}: record of seal {key[1]} comes without (or before) its seal"
            result.findings.append(Finding(RECORD_MISSING, detail, gateway=key[0]))
            return
        leaf = int(item["leaf"])
        export.seals[key].records.append((leaf, item["record"].encode("ascii")))
        export.record_order[(key[0], key[1], leaf)] = len(export.record_order)
    else:
        result.findings.append(Finding(MALFORMED, f"line {number}: unknown line type {kind!r}"))


def _read(lines: Iterable[str], profiles: Mapping[str, Profile], result: VerificationResult) -> _Export:
    export = _Export(dict(profiles))
    for number, item in _items(lines, result):
        try:
            _read_item(number, item, export, result)
        except (KeyError, TypeError, ValueError, UnicodeEncodeError, binascii.Error, RecordError) as exc:
            result.findings.append(Finding(MALFORMED, f"line {number}: {type(exc).__name__}: {exc}"))
    return export


def _check_order(records: list[tuple[int, Record]], result: VerificationResult) -> None:
    """Order as delivered: a record after a higher seq of its device was moved."""
    highest: dict[tuple[str, str], int] = {}
    for _, record in sorted(records, key=lambda pair: pair[0]):
        key = (record.gateway, record.device)
        if record.seq < highest.get(key, 0):
            result.findings.append(
                Finding(
                    OUT_OF_ORDER,
                    f"seq {record.seq} comes after seq {highest[key]} in the export",
                    gateway=record.gateway,
                    device=record.device,
                    seq_from=record.seq,
                    seq_to=record.seq,
                    time_from=record.time,
                )
            )
        highest[key] = max(highest.get(key, 0), record.seq)


def verify_export(
    lines: Iterable[str], keyring: Keyring, extra_profiles: Mapping[str, Profile] | None = None
) -> VerificationResult:
    """Check every signature, Merkle root, chain link, order and decoded value of an export."""
    result = VerificationResult()
    export = _read(lines, extra_profiles or {}, result)
    chains = ChainChecker()
    records: list[tuple[int, Record]] = []  # (position in the file, record)
    unknown_profiles: set[str] = set()
    for key in export.seal_order:
        seal = export.seals[key]
        members = sorted(seal.records)
        check = check_sealed_batch(seal.data, seal.signature, [data for _, data in members], keyring)
        result.seals += 1
        result.records += len(members)
        result.findings.extend(check.findings)
        if check.seal is not None:
            result.gateways.add(check.seal.gateway)
            chains.add_seal(check.seal)
        if check.ok:
            result.verified_records += len(check.records)
        for leaf, data in members:
            try:
                record = parse_record(data, strict=False)
            except RecordError:
                continue  # already reported by the seal check
            records.append((export.record_order[(key[0], key[1], leaf)], record))
            result.devices.add((record.gateway, record.device))
            _check_values(record, export.profiles, unknown_profiles, result)
    _check_order(records, result)
    # Continuity and links in sequence order, so a moved record is not also a gap.
    for record in sorted((r for _, r in records), key=lambda r: (r.gateway, r.device, r.seq)):
        chains.add_record(record)
    result.findings.extend(chains.findings)
    return result


def _check_values(
    record: Any, profiles: Mapping[str, Profile], unknown: set[str], result: VerificationResult
) -> None:
    profile = profiles.get(record.profile_sha256)
    if profile is None:
        if record.profile_sha256 not in unknown:
            unknown.add(record.profile_sha256)
            result.findings.append(
                Finding(
                    PROFILE_UNKNOWN,
                    f"profile {record.profile_id} ({record.profile_sha256[:12]}...) is not in "
                    "the export; values cannot be re-decoded",
                    gateway=record.gateway,
                    device=record.device,
                )
            )
        return
    for name, value in record.values.items():
        try:
            decoded = profile.register(name).decode_hex(value.raw)
        except (KeyError, ValueError) as exc:
            decoded, problem = None, str(exc)
        else:
            problem = ""
        if problem or decoded != value.value:
            result.findings.append(
                Finding(
                    VALUE_MISMATCH,
                    f"{name}: record says {value.value}, raw {value.raw} decodes to {decoded} "
                    f"{problem}".rstrip(),
                    gateway=record.gateway,
                    device=record.device,
                    seq_from=record.seq,
                    seq_to=record.seq,
                    time_from=record.time,
                )
            )
