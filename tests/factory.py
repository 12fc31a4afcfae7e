"""Build real signed records and seals in-process for tests (same core code as the agent)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mrv_core.config_errors import load_yaml_text
from mrv_core.envelope import SealedBatch, build_envelope
from mrv_core.profile import Profile
from mrv_core.profile_schema import parse_profile
from mrv_core.record import GENESIS, Value, build_gap_record, build_record, build_seal, parse_record
from mrv_core.registers import encode_value, words_to_hex
from mrv_core.report import FixedSpec, PointSpec, ProjectSpec
from mrv_core.signing import PublicKey, Signer
from mrv_core.timefmt import format_time
from mrv_core.verify import Keyring

SEED = bytes(range(32))

# A small real profile: the factory's energy values decode with it exactly.
TEST_PROFILE_YAML = """
schema: 1
id: test-energy-meter
manufacturer: Test
model: Energy counters (u32, 0.01 kWh)
source: {document: test register map, version: "1"}
registers:
  - {quantity: energy_active_export_total, function: input, address: 0, type: u32, scale: 0.01, unit: kWh}
  - {quantity: energy_active_import_total, function: input, address: 2, type: u32, scale: 0.01, unit: kWh}
"""


def test_profile() -> Profile:
    return parse_profile(load_yaml_text(TEST_PROFILE_YAML, "test-profile"), "test-profile")


PROFILE_SHA = test_profile().sha256


def energy_value(kwh: Decimal | float) -> Value:
    words = encode_value(Decimal(str(kwh)), "u32", "ABCD", Decimal("0.01"))
    return Value(Decimal(str(kwh)).quantize(Decimal("0.01")), "kWh", words_to_hex(words))


@dataclass
class Gateway:
    """A fake gateway that numbers, links, signs and seals records like the agent does."""

    gateway: str = "gw-test"
    site: str = "site-test"
    signer: Signer = field(default_factory=lambda: Signer.from_seed(SEED))
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    seal_head: tuple[int, str] = (0, GENESIS)
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(self.gateway, self.signer.public_key_raw)

    def keyring(self) -> Keyring:
        return Keyring.of([self.public_key])

    def record(
        self,
        device: str,
        minute: int,
        kwh: Decimal | float,
        quantity: str = "energy_active_export_total",
        extra: dict[str, Value] | None = None,
        *,
        profile: Profile | None = None,
        values: dict[str, Value] | None = None,
    ) -> bytes:
        """A reading decoded with ``profile`` (the test profile by default); ``values`` replaces the
        test profile's energy value and ``extra``."""
        seq, prev = self.heads.get(device, (0, GENESIS))
        data, digest = build_record(
            site=self.site,
            gateway=self.gateway,
            device=device,
            profile_id="test-energy-meter" if profile is None else profile.id,
            profile_sha256=PROFILE_SHA if profile is None else profile.sha256,
            seq=seq + 1,
            prev=prev,
            time=self.start + timedelta(minutes=minute),
            clock="synced",
            values=values if values is not None else {quantity: energy_value(kwh), **(extra or {})},
        )
        self.heads[device] = (seq + 1, digest)
        return data

    def gap(self, device: str, first: int, last: int, polls: int, reason: str = "timeout") -> bytes:
        """A gap record written at minute ``last``: ``polls`` polls from minute ``first`` read nothing."""
        seq, prev = self.heads.get(device, (0, GENESIS))
        data, digest = build_gap_record(
            site=self.site,
            gateway=self.gateway,
            device=device,
            profile_id="test-energy-meter",
            profile_sha256=PROFILE_SHA,
            seq=seq + 1,
            prev=prev,
            time=self.start + timedelta(minutes=last),
            clock="synced",
            start=self.start + timedelta(minutes=first),
            end=self.start + timedelta(minutes=last),
            polls=polls,
            reason=reason,
        )
        self.heads[device] = (seq + 1, digest)
        return data

    def seal(self, records: list[bytes]) -> SealedBatch:
        times = sorted(parse_record(r).time for r in records)
        seq, prev = self.seal_head
        data, digest = build_seal(
            site=self.site,
            gateway=self.gateway,
            key_id=self.signer.key_id,
            seq=seq + 1,
            prev=prev,
            created=self.start,
            record_hashes=[hashlib.sha256(r).hexdigest() for r in records],
            first_time=times[0],
            last_time=times[-1],
        )
        self.seal_head = (seq + 1, digest)
        return SealedBatch(data, self.signer.sign(data), tuple(records))

    def message(self, *batches: SealedBatch) -> bytes:
        return build_envelope(self.gateway, list(batches))

    @property
    def topic(self) -> str:
        return f"mrv/v1/{self.site}/{self.gateway}/records"


def at(gw: Gateway, minute: int) -> str:
    return format_time(gw.start + timedelta(minutes=minute))


def pv_grid_project(*points: PointSpec, ef: str = "0.8") -> ProjectSpec:
    """A pv-grid project "P" in UTC reading ``points``, grid emission factor ``ef`` tCO2/MWh."""
    return ProjectSpec(
        "P", "p", "UTC", "pv-grid", "1", "ref", points, {"EF_grid": FixedSpec(Decimal(ef), "tCO2/MWh", "doc")}
    )
