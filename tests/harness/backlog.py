"""A backlog of signed, sealed readings in an agent's buffer, made by the agent's own code (as after an outage)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.buffer import Buffer
from agent.clock import SystemClock
from agent.keys import load_signer
from agent.service import make_sealer
from mrv_core.profile_schema import load_profile
from mrv_core.record import Value, build_record
from mrv_core.registers import encode_value, words_to_hex

ROOT = Path(__file__).parents[2]
PROFILE = ROOT / "firmware_profiles/eastron/sdm630-modbus-v2.yaml"


def prefill(
    buffer_path: Path,
    key_path: Path,
    *,
    gateway: str,
    site: str,
    records: int,
    devices: int,
    seal_records: int = 1000,
    synchronous: str = "NORMAL",
) -> None:
    """``records`` readings of devices ``m0-1`` .. ``m0-<devices>``, ten seconds apart, sealed
    ``seal_records`` at a time. NORMAL by default: filling is set-up, not what is measured (the
    agent opens the buffer again with its own setting)."""
    profile = load_profile(PROFILE)
    sealer = make_sealer(load_signer(key_path), SystemClock(), site, gateway)
    buffer = Buffer(buffer_path, gateway, synchronous)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(records):
        device = f"m0-{i % devices + 1}"
        moment = start + timedelta(seconds=10 * (i // devices))
        values = {}
        for spec in profile.registers:
            raw = words_to_hex(encode_value(i * 0.5, spec.type, spec.order, spec.scale))
            values[spec.quantity] = Value(spec.decode_hex(raw), spec.unit, raw)

        def build(
            seq: int,
            prev: str,
            device: str = device,
            moment: datetime = moment,
            values: dict[str, Value] = values,
        ) -> tuple[bytes, str]:
            return build_record(
                site=site,
                gateway=gateway,
                device=device,
                profile_id=profile.id,
                profile_sha256=profile.sha256,
                seq=seq,
                prev=prev,
                time=moment,
                clock="synced",
                values=values,
            )

        buffer.append_reading(device, moment, build)
        if i % seal_records == seal_records - 1:
            buffer.seal_pending(sealer, seal_records)
    buffer.seal_pending(sealer, seal_records)
    buffer.close()
