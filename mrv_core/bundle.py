"""Evidence bundles and their independent verification (docs/evidence-bundle.md).

A bundle is one zip file. Members, in the order they are written:

- ``evidence.txt``: each gateway's seals in seq order, each as a header line
  ``{"gateway": G, "seq": N, "seal": "<signed bytes>", "sig": "<base64>"}``
  followed by one line per record, ``<leaf> <signed bytes>`` (the leaf index,
  a space, the record's canonical bytes verbatim: they contain no newline).
  Whole seals: every record of every seal with a record in the bundle's
  window, so every Merkle root can be recomputed.
- ``gateways.json``: the gateway registry (keys with enrollment, retirement
  and revocation), as in :mod:`mrv_core.keyring`.
- ``profiles/<sha256>.json``: the canonical bytes of each firmware profile used.
- ``project.json`` and ``report.json`` when the bundle is for a project: the
  project (methodology, monitoring points, fixed values) and the report the
  collector computed.
- ``manifest.json`` last: format, version, project, period and the SHA-256
  and size of every other member.

The verifier streams ``evidence.txt`` once: memory does not grow with the
number of records. It needs nothing but this core and ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import itertools
import json
import operator
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Final, overload

from mrv_core.canonical import CanonicalError
from mrv_core.hashing import merkle_root
from mrv_core.keyring import KeyringError, Registry, parse_registry
from mrv_core.profile import Profile, RegisterSpec
from mrv_core.record import CLOCK_STATES, RECORD_KINDS, Gap, RecordError, gap_of, parse_record, parse_seal
from mrv_core.registers import DecodeError, column_confirmer, register_confirmer
from mrv_core.report import Period, StreamingReport, compare_reports, project_from_dict
from mrv_core.timefmt import parse_time, time_ms
from mrv_core.verify import (
    BAD_SIGNATURE,
    DUPLICATE,
    KEY_GATEWAY_MISMATCH,
    MALFORMED,
    NOT_COUNTED,
    OUT_OF_ORDER,
    PROFILE_UNKNOWN,
    RECORD_ALTERED,
    RECORD_FOREIGN,
    RECORD_MISSING,
    SEQUENCE_GAP,
    UNKNOWN_KEY,
    VALUE_MISMATCH,
    Finding,
    Keyring,
    chain_finding,
    seal_chain_finding,
)

BUNDLE_FORMAT = "jcm-mrv-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
SEALS = "evidence.txt"
READ_CHUNK = 4 * 1024 * 1024
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
    """A seal's lines in ``evidence.txt``: its header, then ``<leaf> <record bytes>`` per record."""
    header = {
        "gateway": gateway,
        "seq": seq,
        "seal": seal.decode("ascii"),
        "sig": base64.b64encode(signature).decode("ascii"),
    }
    lines = [json.dumps(header, separators=(",", ":")).encode("ascii")]
    lines += [b"%d %s" % (leaf, data) for leaf, data in records]
    return b"\n".join(lines) + b"\n"


@dataclass
class BundleResult:
    manifest: dict[str, Any] = field(default_factory=dict)
    seals: int = 0
    records: int = 0
    verified_records: int = 0
    decoded_values: int = 0  # values re-decoded from their raw words with the profile and found equal
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
            "decoded_values": self.decoded_values,
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


# What a chain finding does to the result, for the verifier's table.
_CHAIN_EFFECTS: Final = {
    DUPLICATE: "not counted again",
    OUT_OF_ORDER: "not counted again",
    SEQUENCE_GAP: "the calculation treats the span as a gap",
}


@dataclass(slots=True)
class _Chain:
    """The head of one device's hash chain as the stream has verified it so far."""

    seq: int
    hash: str
    time: str


def _read_json(zf: zipfile.ZipFile, name: str) -> Any:
    return json.loads(zf.read(name))


HEADER_START = b'{"gateway":'  # how every seal header line begins (seal_line writes the gateway first)
_NEXT_HEADER = b"\n" + HEADER_START  # a long needle: bytes.find skips ahead faster than with "\n{"


class _SealBlocks:
    """``evidence.txt`` as (header line, record lines) per seal, read in large chunks and hashed as it goes.

    A line that starts with ``{"gateway":`` is a seal header; the lines up to the next
    header are its records, handed over as one block so that one regex call
    can read them all. Lines before the first header come with header None.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.sha = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[tuple[bytes | None, bytes]]:
        rest = b""
        while True:
            chunk = self.handle.read(READ_CHUNK)
            self.sha.update(chunk)
            self.size += len(chunk)
            buffer = rest + chunk if rest else chunk
            start = 0
            while (following := buffer.find(_NEXT_HEADER, start)) >= 0:
                yield self._split(buffer[start : following + 1])
                start = following + 1
            rest = buffer[start:]
            if not chunk:
                if rest:
                    yield self._split(rest)
                return

    @staticmethod
    def _split(segment: bytes) -> tuple[bytes | None, bytes]:
        """(header, records without the final newline); header None for lines before any header."""
        if segment.startswith(HEADER_START):
            header, _, body = segment.partition(b"\n")
        else:
            header, body = None, segment
        return header, body.removesuffix(b"\n")


def _valid_time(text: str) -> bool:
    """A record time as the record format defines it, a real date and time included."""
    try:
        parse_time(text)
    except ValueError:
        return False
    return True


_DAY: Final = operator.itemgetter(slice(0, 10))  # YYYY-MM-DD of a record time


def _valid_dates(times: Iterable[bytes]) -> bool:
    """Whether the dates of these record times exist (the layout regex has checked the rest)."""
    try:
        for day in set(map(_DAY, times)):
            date.fromisoformat(day.decode("ascii"))
    except ValueError:
        return False
    return True


# The fast path. Nearly every seal holds canonical readings of one gateway and site, with the same
# clock state and no quality flag: the record lines of such a seal differ only in leaf, device, prev,
# profile (a site has meters of several models), seq, time and values. One regex made for that
# layout reads a whole seal's block in one call, about three times faster than a JSON parse per
# record (the records are hashed and the Merkle root checked before anything read here is used).
# Any other seal takes the full path.
_FIRST_LINE = re.compile(
    rb'(?:\d+) \{"clock":"([a-z]+)","device":"[^"\\\n]*","gateway":"([^"\\\n]*)",'
    rb'"kind":"reading","prev":"[0-9a-f]{64}","profile":\{"id":"[^"\\\n]*","sha256":"[0-9a-f]{64}"\},'
    rb'"quality":\[\],"seq":[0-9]+,"site":"([^"\\\n]*)",'
)


DECODE_CACHE = 65536  # decoded raw words kept per register layout (counters repeat at night)


@dataclass(frozen=True, slots=True)
class _Use:
    """One quantity a device's records feed into the report: how to check it and whom to feed."""

    quantity: str
    confirm: Callable[[str, Decimal], bool]  # registers.register_confirmer: is this what the raw says?
    # the same, a run at once: the run's floats when every claim holds
    confirm_column: Callable[[Sequence[bytes], Sequence[str]], tuple[float, ...] | None] | None
    cache: dict[str, Decimal]  # raw words already confirmed, and their value
    confirmed: dict[bytes, str]  # the same for columns: raw words -> the claim confirmed for them
    accumulators: list[Any]

    def _confirmed(self, raw: str, value: Decimal) -> bool:
        """Whether ``value`` is what ``raw`` decodes to; remembered per raw text (counters repeat)."""
        known = self.cache.get(raw)
        if known is not None:
            return known == value
        try:
            if not self.confirm(raw, value):
                return False
        except DecodeError:
            return False
        if len(self.cache) >= DECODE_CACHE:
            self.cache.clear()
        self.cache[raw] = value
        return True

    def check_column(
        self, raws: Sequence[bytes], units: Sequence[bytes], texts: Sequence[bytes]
    ) -> tuple[Sequence[Decimal], str, bool | None] | None:
        """A run's values of this quantity (strings as the record has them), all in one unit and each
        what its raw words decode to, and whether they never fall (None: not known here); None if
        anything is irregular (then each record is checked alone, with findings)."""
        if len(set(units)) != 1:
            return None
        try:
            unit = units[0].decode()
            claims = b"\n".join(texts).decode("ascii").split("\n")
        except UnicodeDecodeError:
            return None
        floats = (
            None if self.confirm_column is None else self._confirm_column(self.confirm_column, raws, claims)
        )
        if floats is not None:  # confirmed: only the Decimals a counter run reads are made
            return _Decimals(claims), unit, list(floats) == sorted(floats)
        try:
            decimals = list(map(Decimal, claims))
            raw_texts = b"\n".join(raws).decode("ascii").split("\n")
        except (UnicodeDecodeError, ArithmeticError):
            return None
        if list(map(self.cache.get, raw_texts)) != decimals and not all(
            map(self._confirmed, raw_texts, decimals)
        ):
            return None
        return decimals, unit, None

    def _confirm_column(
        self,
        confirm: Callable[[Sequence[bytes], Sequence[str]], tuple[float, ...] | None],
        raws: Sequence[bytes],
        claims: list[str],
    ) -> Sequence[float] | None:
        """The values of a column (in an order-preserving form: the claims' or their raw floats') if
        every claim is what its raw words decode to, else None; a column whose every pair was
        confirmed before (a counter that stopped) is not confirmed again. A raw with two claims is
        confirmed only if both are its value."""
        known = self.confirmed
        if known.get(raws[0]) == claims[0] and list(map(known.get, raws)) == claims:
            return list(map(float, claims))
        floats = confirm(raws, claims)
        if floats is None:
            return None
        # A moving counter never repeats: only where a column ends is kept, which is where a counter
        # that stops (a PV plant's at night) goes on reading.
        if len(known) >= DECODE_CACHE:
            known.clear()
        known[raws[-1]] = claims[-1]
        return floats


class _Decimals(Sequence[Decimal]):
    """Confirmed decimal texts, made Decimals only when read (a plain counter run reads two)."""

    __slots__ = ("_texts",)

    def __init__(self, texts: list[str]) -> None:
        self._texts = texts

    def __len__(self) -> int:
        return len(self._texts)

    @overload
    def __getitem__(self, index: int) -> Decimal: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Decimal]: ...
    def __getitem__(self, index: int | slice) -> Decimal | Sequence[Decimal]:
        if isinstance(index, slice):
            return [Decimal(text) for text in self._texts[index]]
        return Decimal(self._texts[index])


@dataclass(frozen=True, slots=True)
class _Columns:
    """A fast seal's record fields, one tuple or list per field, indexed by row."""

    datas: tuple[bytes, ...]
    digests: list[bytes]
    hexes: list[bytes]
    prevs: tuple[bytes, ...]
    seqs: tuple[bytes, ...]
    times: tuple[bytes, ...]
    texts: tuple[bytes, ...]


@functools.lru_cache(maxsize=64)
def _layout(clock: bytes, gateway: bytes, site: bytes) -> re.Pattern[bytes]:
    """The record lines of a seal of one layout; groups: leaf, record, device, prev, profile sha256,
    seq, time, values."""
    return re.compile(
        rb"^(\d+) ("
        + re.escape(b'{"clock":"' + clock + b'","device":"')
        + rb'([^"\\\n]*)'
        + re.escape(b'","gateway":"' + gateway + b'","kind":"reading","prev":"')
        + rb"([0-9a-f]{64})"
        + re.escape(b'","profile":{"id":"')
        + rb'[^"\\\n]*'
        + re.escape(b'","sha256":"')
        + rb"([0-9a-f]{64})"
        + re.escape(b'"},"quality":[],"seq":')
        + rb"([1-9][0-9]{0,17})"
        + re.escape(b',"site":"' + site + b'","time":"')
        + rb"(\d{4}-\d\d-\d\dT(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z)"  # dates: _valid_dates
        + re.escape(b'","v":1,"values":')
        + rb"(\{.*)\})$",
        re.MULTILINE,
    )


_VALUE_ENTRY: Final = rb'\{"raw":"([0-9a-f]*)","unit":"([^"\\\x00-\x1f]*)","value":"([^"\\\x00-\x1f]*)"\}'


@functools.lru_cache(maxsize=256)
def _value_pattern(names: tuple[str, ...]) -> re.Pattern[bytes]:
    """The values objects of records that hold exactly ``names``, in that order, each as
    {"raw","unit","value"} strings without escapes: one line each; groups raw, unit, value per name.
    What it matches, a JSON parse reads the same way (distinct keys, no escapes to interpret)."""
    entries = [re.escape(json.dumps(name).encode()) + b":" + _VALUE_ENTRY for name in names]
    return re.compile(rb"^\{" + b",".join(entries) + rb"\}$", re.MULTILINE)


def _value_names(text: bytes) -> tuple[str, ...] | None:
    """The quantity names of one values object if it has the usual shape, else None."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not all(
        isinstance(item, dict) and sorted(item) == ["raw", "unit", "value"] for item in parsed.values()
    ):
        return None
    return tuple(parsed)


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
    chains: dict[str, dict[str, _Chain]] = field(default_factory=dict)  # gateway -> device -> head
    seal_chains: dict[str, tuple[int, str]] = field(default_factory=dict)
    unknown_profiles: set[str] = field(default_factory=set)
    point_quantities: dict[tuple[str, str], tuple[set[str], list[Any]]] = field(default_factory=dict)
    plans: dict[tuple[str, str, str], list[_Use] | None] = field(default_factory=dict)
    value_layouts: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # per device
    # per register layout (RegisterSpec.layout: type, order, scale, and scale factor and "not
    # implemented" where given): raw words already decoded, and the claims confirmed for them
    decoded: dict[tuple[Any, ...], dict[str, Decimal]] = field(default_factory=dict)
    confirmed: dict[tuple[Any, ...], dict[bytes, str]] = field(default_factory=dict)
    leaf_tuples: dict[int, tuple[bytes, ...]] = field(default_factory=dict)  # per seal size: b"0", b"1", ...
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
            self.all_values = True  # no report to recompute: the values themselves are the evidence
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

    def _open_seal(self, header: bytes) -> Any | None:
        """Parse and authenticate a seal header line; None when nothing of it can be trusted."""
        try:
            item = json.loads(header)
            gateway = str(item["gateway"])
            seal_bytes = item["seal"].encode("ascii")
            seal = parse_seal(seal_bytes, base64.b64decode(item["sig"], validate=True))
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            UnicodeEncodeError,
            binascii.Error,
            RecordError,
        ) as exc:
            self.result.add(Finding(MALFORMED, f"seal header: {type(exc).__name__}: {exc}"))
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
        return seal

    def _check_seal_chain(self, seal: Any) -> None:
        finding = seal_chain_finding(self.seal_chains.get(seal.gateway), seal)
        if finding is not None:
            self.result.add(finding)
            if finding.kind in NOT_COUNTED:
                return
        self.seal_chains[seal.gateway] = (seal.seq, seal.hash)

    def _check_merkle(self, seal: Any, records: list[tuple[int, bytes]]) -> list[tuple[bytes, bytes]] | None:
        """(record bytes, SHA-256) in leaf order; None when the seal does not cover exactly these records."""
        ordered = sorted(records, key=lambda pair: pair[0])
        where = {"gateway": seal.gateway, "time_from": seal.first_time, "time_to": seal.last_time}
        if len(ordered) != seal.count or [leaf for leaf, _ in ordered] != list(range(len(ordered))):
            self.result.add(
                Finding(
                    RECORD_MISSING,
                    f"seal {seal.seq} covers {seal.count} records, {len(ordered)} present",
                    **where,
                ),
                effect="its records are not counted",
            )
            return None
        sha256 = hashlib.sha256
        hashed = [(data, sha256(data).digest()) for _, data in ordered]
        if merkle_root([digest for _, digest in hashed]).hex() != seal.root:
            self._altered(seal)
            return None
        if ordered != records:
            self.result.add(
                Finding(OUT_OF_ORDER, f"seal {seal.seq}: records are not in their signed order", **where)
            )
        return hashed

    def _parse_records(self, hashed: list[tuple[bytes, bytes]]) -> list[dict[str, Any]] | None:
        """One json.loads for a whole seal (about 3x faster than record by record)."""
        try:
            objects = json.loads(b"[" + b",".join(data for data, _ in hashed) + b"]")
        except ValueError:
            objects = None
        if isinstance(objects, list) and all(isinstance(o, dict) for o in objects):
            return objects
        for data, _ in hashed:
            try:
                parse_record(data)
            except RecordError as exc:
                self.result.add(Finding(MALFORMED, f"record: {exc}"))
        return None

    def _check_record(self, seal: Any, obj: dict[str, Any], digest: bytes) -> bool:
        """Chain, values and report of one authenticated record; False if it cannot be counted."""
        gateway, device, seq, time = obj.get("gateway"), obj.get("device"), obj.get("seq"), obj.get("time")
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
        gap, well_formed = None, obj.get("kind") in RECORD_KINDS
        if obj.get("kind") == "gap":
            try:
                gap = gap_of(obj)
            except RecordError:
                well_formed = False
        if (
            not well_formed
            or obj.get("v") != 1
            or type(seq) is not int
            or type(device) is not str
            or type(time) is not str
            or not _valid_time(time)
        ):
            self.result.add(
                Finding(
                    MALFORMED,
                    f"seal {seal.seq}: a record is not a well-formed version 1 reading or gap record",
                    gateway=seal.gateway,
                    device=str(device),
                )
            )
            return False
        key = (gateway, device)
        record_hash = digest.hex()
        self._check_profile(obj.get("profile"), gateway, device)
        heads = self.chains.setdefault(gateway, {})
        head = heads.get(device)
        if head is None:
            self.result.devices.add(key)
        finding = chain_finding(
            None if head is None else (head.seq, head.hash, head.time),
            gateway=gateway,
            device=device,
            seq=seq,
            prev=str(obj.get("prev")),
            record_hash=record_hash,
            time=time,
        )
        if finding is not None:
            self.result.add(finding, effect=_CHAIN_EFFECTS.get(finding.kind, ""))
            if finding.kind in NOT_COUNTED:
                return False
        heads[device] = _Chain(seq, record_hash, time)
        profile = obj.get("profile")
        self._use_values(
            gateway,
            device,
            seq=seq,
            time=time,
            record_hash=record_hash,
            profile_sha=profile.get("sha256") if isinstance(profile, dict) else None,
            values=obj.get("values"),
            gap=gap,
        )
        return True

    def _use_values(
        self,
        gateway: str,
        device: str,
        *,
        seq: int,
        time: str,
        record_hash: str,
        profile_sha: object,
        values: object,
        gap: Gap | None = None,
    ) -> None:
        """Re-decode the values the report uses (all with ``all_values``) and feed the report."""
        points = self.point_quantities.get((gateway, device))
        if points is None:
            points = self._points_of(gateway, device)
        if not isinstance(values, dict):
            values = {}
        if self.all_values or points[0]:
            self._check_values(
                values,
                profile_sha,
                gateway=gateway,
                device=device,
                seq=seq,
                time=time,
                used=None if self.all_values else points[0],
            )
        if points[1] and self.report is not None:
            self.report.feed(points[1], time=time, seq=seq, record_hash=record_hash, values=values, gap=gap)

    def _check_profile(self, profile: object, gateway: str, device: str) -> None:
        """Every record names the profile its values were decoded with; the bundle must carry it."""
        sha = str(profile.get("sha256")) if isinstance(profile, dict) else "(none)"
        if sha in self.registers or sha in self.unknown_profiles:
            return
        self.unknown_profiles.add(sha)
        self.result.add(
            Finding(
                PROFILE_UNKNOWN,
                f"profile {sha[:12]}... is not in the bundle; values cannot be re-decoded",
                gateway=gateway,
                device=device,
            )
        )

    def _points_of(self, gateway: str, device: str) -> tuple[set[str], list[Any]]:
        """(quantities the report uses, its accumulators) for a device, computed once."""
        accumulators = self.report.wants(gateway, device) if self.report is not None else []
        entry = ({a.point.quantity for a in accumulators}, accumulators)
        self.point_quantities[(gateway, device)] = entry
        return entry

    def _check_values(
        self,
        values: dict[str, Any],
        profile_sha: object,
        *,
        gateway: str,
        device: str,
        seq: int,
        time: str,
        used: set[str] | None,
    ) -> None:
        """Re-decode the raw words with the profile; ``used`` limits it to the report's quantities.
        ``RegisterSpec.decode_hex`` decodes a register with a scale-factor register from its raw
        alone (the value's words, then the scale factor's) and a "not implemented" pattern as null."""
        registers = self.registers.get(str(profile_sha))
        if registers is None:
            return  # reported once by _check_profile
        for name, item in values.items():
            if used is not None and name not in used:
                continue
            spec = registers.get(name)
            decoded: object
            try:
                decoded = spec.decode_hex(item["raw"]) if spec else "(not in the profile)"
                matches = spec is not None and decoded == (
                    None if item.get("value") is None else Decimal(item["value"])
                )
            except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
                decoded, matches = f"an error ({exc})", False
            if matches:
                self.result.decoded_values += 1
            else:
                self.result.add(
                    Finding(
                        VALUE_MISMATCH,
                        f"{name}: record says {item.get('value') if isinstance(item, dict) else item}, "
                        f"raw {item.get('raw') if isinstance(item, dict) else None} decodes to {decoded}",
                        gateway=gateway,
                        device=device,
                        seq_from=seq,
                        seq_to=seq,
                        time_from=time,
                    )
                )

    def _stream(self, members: dict[str, Any]) -> None:
        total = int((self.result.manifest.get("counts") or {}).get("records", 0))
        try:
            handle = self.zf.open(SEALS)
            # The zip CRC-32 is redundant here: the stream's SHA-256 is checked against the manifest,
            # which any altered byte fails. CPython's reader skips the CRC when none is expected.
            if hasattr(handle, "_expected_crc"):
                handle._expected_crc = None
        except KeyError:
            self.result.add(Finding(MANIFEST_MISMATCH, f"{SEALS} is missing"))
            return
        reader = _SealBlocks(handle)
        with handle:
            for header, block in reader:
                if header is None:
                    self.result.add(Finding(MALFORMED, f"{SEALS}: record lines come before any seal"))
                    continue
                self._one_seal(header, block)
                if self.progress is not None:
                    self.progress(self.result.records, total)
        entry = members.get(SEALS) or {}
        if reader.sha.hexdigest() != entry.get("sha256") or reader.size != entry.get("bytes"):
            self.result.add(Finding(MANIFEST_MISMATCH, f"{SEALS} does not match its SHA-256 in the manifest"))

    def _one_seal(self, header: bytes, block: bytes) -> None:
        self.result.seals += 1
        seal = self._open_seal(header)
        fields = None if seal is None else self._layout_fields(seal, block)
        # Lines are counted only where the layout did not account for them all (a count is a pass
        # over the block byte by byte).
        if fields is not None:
            self.result.records += len(fields[0])
        else:
            self.result.records += block.count(b"\n") + 1 if block else 0
        if seal is None:
            return
        self.result.gateways.add(seal.gateway)
        self._check_seal_chain(seal)
        if fields is not None:
            self._fast_seal(seal, fields)
        else:
            self._full_seal(seal, block.split(b"\n") if block else [])

    def _layout_fields(self, seal: Any, block: bytes) -> list[tuple[bytes, ...]] | None:
        """The fields of a seal's records a column each (leaf, record, device, prev, profile sha256,
        seq, time, values) when every line is a record of one layout (see _layout) in leaf order and
        their number is the seal's; else None."""
        first = _FIRST_LINE.match(block)
        if first is None:
            return None
        clock, gateway, site = first.groups()
        if clock.decode() not in CLOCK_STATES or (gateway, site) != (
            seal.gateway.encode(),
            seal.site.encode(),
        ):
            return None
        rows = _layout(clock, gateway, site).findall(block)
        if len(rows) != seal.count or not rows:
            return None
        fields = list(zip(*rows, strict=False))  # rows of one regex: all of one length
        leaves, datas = fields[0], fields[1]
        # Whole lines each (the regex is anchored at both ends), so covering the block's length
        # means no line was left out: leaf, space, record, and a newline between lines.
        if sum(map(len, leaves)) + sum(map(len, datas)) + 2 * len(rows) - 1 != len(block):
            return None
        if leaves != self._leaves(len(rows)) or not _valid_dates(fields[6]):
            return None
        return fields

    def _leaves(self, count: int) -> tuple[bytes, ...]:
        """(b"0", b"1", ...): the leaf numbers of a seal of ``count`` records as written."""
        leaves = self.leaf_tuples.get(count)
        if leaves is None:
            leaves = self.leaf_tuples[count] = tuple(b"%d" % leaf for leaf in range(count))
        return leaves

    def _fast_seal(self, seal: Any, fields: list[tuple[bytes, ...]]) -> None:
        """A seal of one layout (see _layout) in leaf order: the same checks as _full_seal, kept lean.

        Work is done a column at a time and a device at a time, so that the
        common case (each device's records continue its chain) costs a few list
        comparisons instead of Python statements per record. A device whose run
        does not simply continue goes record by record through _check_record,
        which says what is wrong. Values are parsed only where the report reads
        them (everywhere with ``all_values``).
        """
        _, datas, devices, prevs, profiles, seqs, times, texts = fields
        sha256 = hashlib.sha256
        digests = [sha256(data).digest() for data in datas]
        if merkle_root(digests).hex() != seal.root:
            self._altered(seal)
            return
        self._remember_context(seal, digests)
        hexes = list(map(binascii.hexlify, digests))
        columns = _Columns(datas, digests, hexes, prevs, seqs, times, texts)
        by_device = sorted(range(len(datas)), key=devices.__getitem__)  # stable: leaf order per device
        verified = 0
        seal_shas = set(profiles)
        one_profile = seal_shas.pop().decode() if len(seal_shas) == 1 else None
        for device, run in itertools.groupby(by_device, key=devices.__getitem__):
            rows_of_device = list(run)
            profile_sha = one_profile
            if profile_sha is None:
                shas = set(map(profiles.__getitem__, rows_of_device))
                # A device whose records name two profiles in one seal goes record by record ("" is
                # no profile).
                profile_sha = shas.pop().decode() if len(shas) == 1 else ""
            verified += self._fast_run(seal, device.decode(), rows_of_device, columns, profile_sha)
        self.result.verified_records += verified

    def _fast_run(self, seal: Any, device: str, run: list[int], c: _Columns, profile_sha: str) -> int:
        """One device's records of a seal (row indexes in leaf order); returns how many verified."""
        gateway = seal.gateway
        head = self.chains.setdefault(gateway, {}).get(device)
        seqs = list(map(int, map(c.seqs.__getitem__, run)))
        if (
            head is None
            or profile_sha not in self.registers
            or seqs != list(range(head.seq + 1, head.seq + 1 + len(run)))
            or c.prevs[run[0]] != head.hash.encode("ascii")
            or list(map(c.prevs.__getitem__, run[1:])) != list(map(c.hexes.__getitem__, run[:-1]))
        ):
            return sum(self._record_slowly(seal, c.datas[i], c.digests[i]) for i in run)
        points = self.point_quantities.get((gateway, device)) or self._points_of(gateway, device)
        if self.all_values or points[0]:
            texts = [c.texts[i] for i in run]
            plan = None if self.all_values else self._plan(gateway, device, profile_sha, points[1])
            if plan and self._lean_run(plan, (gateway, device), texts, run=run, seqs=seqs, c=c):
                self.result.decoded_values += len(run) * len(plan)
            else:  # something irregular, or every value wanted: record by record, with findings
                values = self._parse_values(texts)
                if not all(isinstance(parsed, dict) for parsed in values):
                    # A values text that is not one JSON object: the full checks say what it is.
                    return sum(self._record_slowly(seal, c.datas[i], c.digests[i]) for i in run)
                times = [c.times[i].decode("ascii") for i in run]
                hashes = [c.digests[i].hex() for i in run]
                for time, seq, record_hash, parsed in zip(times, seqs, hashes, values, strict=True):
                    self._use_values(
                        gateway,
                        device,
                        seq=seq,
                        time=time,
                        record_hash=record_hash,
                        profile_sha=profile_sha,
                        values=parsed,
                    )
        last = run[-1]
        head.seq, head.hash, head.time = seqs[-1], c.digests[last].hex(), c.times[last].decode("ascii")
        return len(run)

    def _plan(
        self, gateway: str, device: str, profile_sha: str, accumulators: list[Any]
    ) -> list[_Use] | None:
        """How a device's used values are checked and fed, worked out once; None if the profile lacks one."""
        key = (gateway, device, profile_sha)
        if key in self.plans:
            return self.plans[key]
        registers = self.registers.get(profile_sha, {})
        quantities = sorted({a.point.quantity for a in accumulators})
        specs = [registers.get(quantity) for quantity in quantities]
        plan = [
            _Use(
                quantity,
                # registers.hex_confirmer, or for a register with a scale-factor register (raw: the
                # value's words, then the scale factor's) or a "not implemented" pattern, a check
                # by decoding; those have no column fast path
                register_confirmer(
                    spec.type, spec.order, spec.scale, spec.scale_factor is not None, spec.not_implemented
                ),
                column_confirmer(spec.type, spec.order, spec.scale)
                if spec.scale_factor is None and spec.not_implemented is None
                else None,
                self.decoded.setdefault(spec.layout, {}),
                self.confirmed.setdefault(spec.layout, {}),
                [a for a in accumulators if a.point.quantity == quantity],
            )
            for quantity, spec in zip(quantities, specs, strict=True)
            if spec is not None
        ]
        self.plans[key] = plan if len(plan) == len(quantities) else None
        return self.plans[key]

    def _lean_run(
        self,
        plan: list[_Use],
        device: tuple[str, str],
        texts: list[bytes],
        *,
        run: list[int],
        seqs: list[int],
        c: _Columns,
    ) -> bool:
        """Check and feed a whole run's used values a column at a time when all is regular; False
        (nothing fed) otherwise, and then each record goes its own way."""
        columns = self._value_columns(device, texts)
        if columns is None:
            return False
        checked = []
        for use in plan:
            column = columns.get(use.quantity)
            checked_column = None if column is None else use.check_column(*column)
            if checked_column is None:
                return False
            checked.append((use.accumulators, checked_column))
        times = b"\n".join([c.times[i] for i in run]).decode("ascii").split("\n")
        hashes = b"\n".join([c.hexes[i] for i in run]).decode("ascii").split("\n")
        for accumulators, (decimals, unit, ascending) in checked:
            for accumulator in accumulators:
                accumulator.feed_run(times, seqs, decimals, unit, hashes, ascending=ascending)
        return True

    def _value_columns(
        self, device: tuple[str, str], texts: list[bytes]
    ) -> dict[str, tuple[tuple[bytes, ...], tuple[bytes, ...], tuple[bytes, ...]]] | None:
        """Each quantity's (raws, units, values) in a run of a device's records, read by one regex made
        for the device's usual values layout; None if a record does not have it."""
        names = self.value_layouts.get(device)
        block = b"\n".join(texts)
        for _ in range(2):  # the device's last layout, then the layout of this run's first record
            if names is None:
                names = _value_names(texts[0])
                if names is None:
                    return None
                self.value_layouts[device] = names
            rows = _value_pattern(names).findall(block)
            if len(rows) == len(texts):
                cols = list(zip(*rows, strict=True))
                return {name: (cols[3 * i], cols[3 * i + 1], cols[3 * i + 2]) for i, name in enumerate(names)}
            names = None
        return None

    @staticmethod
    def _parse_values(texts: list[bytes]) -> list[object]:
        """The values objects of a run of records: one json.loads for all (a call per record costs more
        than parsing). If the batch fails or changes length, each text is parsed alone; one that is not
        JSON comes back as None."""
        try:
            batch = json.loads(b"[" + b",".join(texts) + b"]")
        except ValueError:
            batch = None
        if isinstance(batch, list) and len(batch) == len(texts):
            return batch
        parsed: list[object] = []
        for text in texts:
            try:
                parsed.append(json.loads(text))
            except ValueError:
                parsed.append(None)
        return parsed

    def _record_slowly(self, seal: Any, data: bytes, digest: bytes) -> bool:
        """One record through the full checks: parse it whole and say exactly what is wrong."""
        try:
            obj = json.loads(data)
        except ValueError as exc:
            self.result.add(Finding(MALFORMED, f"seal {seal.seq}: a record is not JSON: {exc}"))
            return False
        if not isinstance(obj, dict):
            self.result.add(Finding(MALFORMED, f"seal {seal.seq}: a record is not a JSON object"))
            return False
        return self._check_record(seal, obj, digest)

    def _full_seal(self, seal: Any, lines: list[bytes]) -> None:
        """Any seal, whatever its lines hold: each problem gets its own finding."""
        records: list[tuple[int, bytes]] = []
        for line in lines:
            leaf, _, data = line.partition(b" ")
            if not leaf.isdigit() or not data:
                self.result.add(Finding(MALFORMED, f"{SEALS}: a line is neither a seal header nor a record"))
                continue
            records.append((int(leaf), data))
        hashed = self._check_merkle(seal, records)
        if hashed is None:
            return
        self._remember_context(seal, [digest for _, digest in hashed])
        objects = self._parse_records(hashed)
        if objects is None:
            return
        verified = 0
        for obj, (_, digest) in zip(objects, hashed, strict=True):
            if self._check_record(seal, obj, digest):
                verified += 1
        self.result.verified_records += verified

    def _altered(self, seal: Any) -> None:
        self.result.add(
            Finding(
                RECORD_ALTERED,
                f"seal {seal.seq}: records do not hash to the signed Merkle root",
                gateway=seal.gateway,
                time_from=seal.first_time,
                time_to=seal.last_time,
            ),
            effect="its records are not counted",
        )

    def _remember_context(self, seal: Any, digests: list[bytes]) -> None:
        """A project's seal wholly outside the period is kept aside until the report says if it is needed."""
        side = self._outside(seal) if self.report is not None else ""
        if side:
            self.context.append(
                (seal.gateway, seal.seq, side, {d.hex() for d in digests}, seal.first_time, seal.last_time)
            )

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
