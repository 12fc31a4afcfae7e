"""Checks shared by the collector (at ingest) and the verifier (offline).

Every check returns findings instead of raising, so one bad record never hides
the next, and each kind of damage has its own name (docs/record-format.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from mrv_core.hashing import merkle_root
from mrv_core.record import GENESIS, Record, RecordError, Seal, parse_record, parse_seal
from mrv_core.signing import PublicKey

# Finding kinds. Stable names: tools and tests match on them.
UNKNOWN_KEY: Final = "unknown_key"
KEY_REVOKED: Final = "key_revoked"
KEY_RETIRED: Final = "key_retired"
KEY_GATEWAY_MISMATCH: Final = "key_gateway_mismatch"
BAD_SIGNATURE: Final = "bad_signature"
MALFORMED: Final = "malformed"
RECORD_MISSING: Final = "record_missing"
RECORD_ALTERED: Final = "record_altered"
RECORD_FOREIGN: Final = "record_foreign"
HASH_LINK_BROKEN: Final = "hash_link_broken"
SEQUENCE_GAP: Final = "sequence_gap"
DUPLICATE: Final = "duplicate"
OUT_OF_ORDER: Final = "out_of_order"
SEAL_GAP: Final = "seal_gap"
SEAL_LINK_BROKEN: Final = "seal_link_broken"
VALUE_MISMATCH: Final = "value_mismatch"
PROFILE_UNKNOWN: Final = "profile_unknown"


@dataclass(frozen=True)
class Finding:
    kind: str
    detail: str
    gateway: str = ""
    device: str = ""
    seq_from: int | None = None
    seq_to: int | None = None
    time_from: str = ""
    time_to: str = ""

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v not in ("", None)}


@dataclass(frozen=True)
class KeyValidity:
    """When a registered key may sign (docs/record-format.md section 3).

    ``retired`` (rotation): seals created after this time are refused; the key
    was not compromised, so its creation times are trusted.
    ``revoked`` (compromise): only seals up to ``valid_through_seal`` stay
    valid. Seal numbers are chained, so a thief cannot backdate a seal into
    the range the collector had already stored; a time would not protect.
    """

    enrolled: str = ""
    retired: str | None = None
    revoked: str | None = None
    valid_through_seal: int | None = None
    reason: str = ""

    def refusal(self, seal: Seal) -> tuple[str, str] | None:
        if self.revoked is not None and (
            self.valid_through_seal is None or seal.seq > self.valid_through_seal
        ):
            last = "no seal" if self.valid_through_seal is None else f"seals up to {self.valid_through_seal}"
            return KEY_REVOKED, (
                f"seal {seal.seq} is signed by key {seal.key}, revoked at {self.revoked} "
                f"({self.reason or 'no reason given'}); {last} of it stay valid"
            )
        if self.retired is not None and seal.created > self.retired:
            return KEY_RETIRED, (
                f"seal {seal.seq} was created at {seal.created} with key {seal.key}, "
                f"retired at {self.retired}"
            )
        return None


@dataclass(frozen=True)
class Keyring:
    """Registered gateway public keys by key id, with when each may sign."""

    keys: Mapping[str, PublicKey]
    validity: Mapping[str, KeyValidity] = field(default_factory=dict)

    @classmethod
    def of(cls, keys: Iterable[PublicKey], validity: Mapping[str, KeyValidity] | None = None) -> Keyring:
        return cls({k.key_id: k for k in keys}, dict(validity or {}))


@dataclass(frozen=True)
class SealCheck:
    """Outcome of checking one sealed batch: the parsed parts and what was wrong."""

    seal: Seal | None
    records: tuple[Record, ...]
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings


def check_sealed_batch(
    seal_bytes: bytes,
    signature: bytes,
    record_bytes: Sequence[bytes],
    keyring: Keyring,
    *,
    expected_gateway: str | None = None,
    strict: bool = True,
) -> SealCheck:
    """Signature, key ownership, Merkle root and record membership of one batch."""
    try:
        seal = parse_seal(seal_bytes, signature, strict=strict)
    except RecordError as exc:
        return SealCheck(None, (), (Finding(MALFORMED, f"seal: {exc}", gateway=expected_gateway or ""),))
    where: dict[str, Any] = {"gateway": seal.gateway, "time_from": seal.first_time, "time_to": seal.last_time}
    key = keyring.keys.get(seal.key)
    if key is None:
        return SealCheck(
            seal,
            (),
            (Finding(UNKNOWN_KEY, f"seal {seal.seq} is signed by unregistered key {seal.key}", **where),),
        )
    if key.gateway != seal.gateway or (expected_gateway and expected_gateway != seal.gateway):
        detail = f"seal {seal.seq} claims gateway {seal.gateway}, key {seal.key} belongs to {key.gateway}" + (
            f", delivered for {expected_gateway}" if expected_gateway else ""
        )
        return SealCheck(seal, (), (Finding(KEY_GATEWAY_MISMATCH, detail, **where),))
    if not key.verifies(seal_bytes, signature):
        return SealCheck(
            seal, (), (Finding(BAD_SIGNATURE, f"seal {seal.seq}: signature does not verify", **where),)
        )
    validity = keyring.validity.get(seal.key)
    refusal = validity.refusal(seal) if validity is not None else None
    if refusal is not None:
        return SealCheck(seal, (), (Finding(refusal[0], refusal[1], **where),))

    findings: list[Finding] = []
    hashes = [hashlib.sha256(r).digest() for r in record_bytes]
    if len(record_bytes) != seal.count:
        findings.append(
            Finding(
                RECORD_MISSING,
                f"seal {seal.seq} covers {seal.count} records, {len(record_bytes)} present",
                **where,
            )
        )
    elif merkle_root(hashes).hex() != seal.root:
        findings.append(
            Finding(
                RECORD_ALTERED,
                f"seal {seal.seq}: records do not hash to the signed Merkle root",
                **where,
            )
        )
    records: list[Record] = []
    for index, (data, digest) in enumerate(zip(record_bytes, hashes, strict=True)):
        try:
            record = parse_record(data, strict=strict, digest=digest)
        except RecordError as exc:
            findings.append(Finding(MALFORMED, f"seal {seal.seq} leaf {index}: {exc}", **where))
            continue
        if record.gateway != seal.gateway or record.site != seal.site:
            findings.append(
                Finding(
                    RECORD_FOREIGN,
                    f"seal {seal.seq} leaf {index} belongs to {record.site}/{record.gateway}",
                    gateway=seal.gateway,
                    device=record.device,
                    seq_from=record.seq,
                    seq_to=record.seq,
                )
            )
            continue
        records.append(record)
    return SealCheck(seal, tuple(records), tuple(findings))


NOT_COUNTED: Final = frozenset({DUPLICATE, OUT_OF_ORDER})  # chain findings whose record adds nothing


def chain_finding(
    head: tuple[int, str, str] | None,
    *,
    gateway: str,
    device: str,
    seq: int,
    prev: str,
    record_hash: str,
    time: str,
) -> Finding | None:
    """How a record relates to its device's chain head (seq, hash, time): None when it simply
    continues it, or starts it from genesis. Shared by ingest and bundle verification."""
    where: dict[str, Any] = {"gateway": gateway, "device": device}
    if head is None:
        if seq == 1 and prev != GENESIS:
            return Finding(
                HASH_LINK_BROKEN,
                "seq 1 does not start from genesis",
                seq_from=1,
                seq_to=1,
                time_from=time,
                **where,
            )
        return None
    head_seq, head_hash, head_time = head
    if seq <= head_seq:
        return Finding(
            DUPLICATE if seq == head_seq and record_hash == head_hash else OUT_OF_ORDER,
            f"seq {seq} comes after seq {head_seq}",
            seq_from=seq,
            seq_to=seq,
            time_from=time,
            **where,
        )
    if seq > head_seq + 1:
        return Finding(
            SEQUENCE_GAP,
            f"{seq - head_seq - 1} record(s) missing",
            seq_from=head_seq + 1,
            seq_to=seq - 1,
            time_from=head_time,
            time_to=time,
            **where,
        )
    if prev != head_hash:
        return Finding(
            HASH_LINK_BROKEN,
            f"seq {seq} does not link to the hash of seq {head_seq}",
            seq_from=head_seq,
            seq_to=seq,
            time_from=head_time,
            time_to=time,
            **where,
        )
    return None


def seal_chain_finding(head: tuple[int, str] | None, seal: Any) -> Finding | None:
    """How a seal relates to its gateway's seal-chain head (seq, hash): None when it continues it, or
    starts it from genesis. Shared by ingest and bundle verification; ``seal`` is a parsed Seal."""
    where: dict[str, Any] = {"gateway": seal.gateway, "time_from": seal.first_time}
    if head is None:
        if seal.seq == 1 and seal.prev != GENESIS:
            return Finding(SEAL_LINK_BROKEN, "seal 1 does not start from genesis", **where)
        return None
    head_seq, head_hash = head
    if seal.seq <= head_seq:
        kind = DUPLICATE if seal.seq == head_seq and seal.hash == head_hash else OUT_OF_ORDER
        return Finding(kind, f"seal {seal.seq} comes after seal {head_seq}", **where)
    if seal.seq > head_seq + 1:
        return Finding(SEAL_GAP, f"seals {head_seq + 1}..{seal.seq - 1} are missing", **where)
    if seal.prev != head_hash:
        return Finding(SEAL_LINK_BROKEN, f"seal {seal.seq} does not link to seal {head_seq}", **where)
    return None


@dataclass
class ChainChecker:
    """Walks records (and seals) in the order given and reports broken continuity.

    Device chains: ``seq`` rises by exactly one and ``prev`` is the hash of the
    previous record. Seal chains: the same per gateway. The first element seen
    of a chain is accepted as a starting point unless it is seq 1 with a wrong
    genesis link (an export may start mid-chain).
    """

    heads: dict[tuple[str, str], tuple[int, str, str]] = field(default_factory=dict)
    seal_heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def add_seal(self, seal: Seal) -> None:
        finding = seal_chain_finding(self.seal_heads.get(seal.gateway), seal)
        if finding is not None:
            self.findings.append(finding)
            if finding.kind in NOT_COUNTED:
                return
        self.seal_heads[seal.gateway] = (seal.seq, seal.hash)

    def add_record(self, record: Record) -> None:
        key = (record.gateway, record.device)
        finding = chain_finding(
            self.heads.get(key),
            gateway=record.gateway,
            device=record.device,
            seq=record.seq,
            prev=record.prev,
            record_hash=record.hash,
            time=record.time,
        )
        if finding is not None:
            self.findings.append(finding)
            if finding.kind in NOT_COUNTED:
                return
        self.heads[key] = (record.seq, record.hash, record.time)
