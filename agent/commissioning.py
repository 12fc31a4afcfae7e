"""Finding the meters on a bus: which unit ids answer, and which profiles read them sensibly.

For a technician on site (``mrv-agent scan``). A unit id is tried with every
profile's read plan; a profile fits when the whole plan reads without a Modbus
exception and every value decodes, within the profile's plausible ranges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agent.acquisition import Reading, decode_reading
from agent.modbus import Endpoint, ModbusReadError
from agent.plan import ReadPlan, plan_reads
from mrv_core.profile import Profile

# A TCP-to-RS-485 gateway's way of saying nobody answered behind it: path unavailable, target failed
GATEWAY_NOBODY = (0x0A, 0x0B)


@dataclass
class UnitFinding:
    unit_id: int
    answered: bool = False
    fits: list[tuple[str, Reading]] = field(default_factory=list)  # profile id, its reading
    refusals: list[str] = field(default_factory=list)  # why other profiles do not fit


def _plan(profile: Profile) -> ReadPlan:
    return plan_reads(profile.registers, profile.max_registers_per_request, profile.max_gap_registers)


def scan(endpoint: Endpoint, units: Iterable[int], profiles: Mapping[str, Profile]) -> list[UnitFinding]:
    """The unit ids among ``units`` that answer, each with the profiles that fit it."""
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
            else:
                finding.fits.append((profile_id, reading))
        if finding.answered:
            found.append(finding)
    return found
