"""Finding the meters on a bus: which unit ids answer, and which profiles read them sensibly.

For a technician on site (``mrv-agent scan``). A unit id is tried with every
profile's read plan; a profile fits when the whole plan reads without a Modbus
exception and every value decodes, within the profile's plausible ranges; where a
fitting profile says how to identify its model (43/14 objects or identification
registers), the device's answers are compared too, which tells apart models
that share a register layout. Every unit id that answers is also asked for a
SunSpec map (agent/sunspec.py), from which a profile can be written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agent.acquisition import Reading, decode_reading
from agent.identification import identify
from agent.modbus import Endpoint, ModbusReadError
from agent.plan import ReadPlan, plan_reads
from agent.sunspec import SunSpecDevice, discover
from mrv_core.identity import IdentityCheck
from mrv_core.profile import Profile

_NONE = IdentityCheck({}, ("no identification in the profile",))
# A TCP-to-RS-485 gateway's way of saying nobody answered behind it: path unavailable, target failed
GATEWAY_NOBODY = (0x0A, 0x0B)


@dataclass
class UnitFinding:
    unit_id: int
    answered: bool = False
    fits: list[tuple[str, Reading]] = field(default_factory=list)  # profile id, its reading
    refusals: list[str] = field(default_factory=list)  # why other profiles do not fit
    # for fitting profiles that say how to identify their model: what the device said against them
    identities: dict[str, IdentityCheck] = field(default_factory=dict)
    sunspec: SunSpecDevice | None = None  # the SunSpec map the device has, if any
    sunspec_error: str | None = None  # why the SunSpec discovery did not finish

    @property
    def identified(self) -> list[str]:
        """Fitting profiles whose identification the device matches."""
        return [profile_id for profile_id, _ in self.fits if self.identities.get(profile_id, _NONE).matches]


def _plan(profile: Profile) -> ReadPlan:
    return plan_reads(profile.registers, profile.max_registers_per_request, profile.max_gap_registers)


def scan(
    endpoint: Endpoint, units: Iterable[int], profiles: Mapping[str, Profile], *, sunspec: bool = True
) -> list[UnitFinding]:
    """The unit ids among ``units`` that answer, each with the profiles that fit it and (``sunspec``)
    the SunSpec map it has."""
    plans = {profile_id: _plan(profile) for profile_id, profile in sorted(profiles.items())}
    found: list[UnitFinding] = []
    for unit in units:
        finding = UnitFinding(unit)
        for profile_id, plan in plans.items():
            try:
                words = endpoint.read(plan, unit)
            except ModbusReadError as exc:
                if exc.reason in ("timeout", "disconnected") or exc.code in GATEWAY_NOBODY:
                    if not finding.answered:
                        break  # silence: nobody at this unit id (or the bus is down)
                    finding.refusals.append(f"{profile_id}: {exc.reason}")
                    continue
                finding.answered = True  # a Modbus exception is an answer
                finding.refusals.append(f"{profile_id}: {exc}")
                continue
            finding.answered = True
            reading = decode_reading(plan, words)
            if reading.quality:
                finding.refusals.append(f"{profile_id}: {', '.join(reading.quality)}")
                continue
            finding.fits.append((profile_id, reading))
            profile = profiles[profile_id]
            if profile.identification:
                try:
                    finding.identities[profile_id] = identify(endpoint, profile, unit)
                except ModbusReadError as exc:
                    finding.identities[profile_id] = IdentityCheck({}, (f"identification not read: {exc}",))
        if sunspec and (finding.answered or not plans):
            _discover(endpoint, finding, tried_profiles=bool(plans))
        if finding.answered:
            found.append(finding)
    return found


def _discover(endpoint: Endpoint, finding: UnitFinding, *, tried_profiles: bool) -> None:
    """Ask a unit id for its SunSpec map. Without profiles to try first, whether it answers at all
    is this discovery's to say."""
    try:
        finding.sunspec = discover(endpoint, finding.unit_id)
    except ModbusReadError as exc:
        if tried_profiles:
            finding.sunspec_error = str(exc)
        return
    finding.answered = True
