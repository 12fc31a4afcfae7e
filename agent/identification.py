"""Reading what a device says about itself (I/O), for the pure check in mrv_core.identity.

Identification registers are read one item per request, so that one item a
meter refuses does not hide the others; Modbus device identification (43/14)
is one request for the basic objects.
"""

from __future__ import annotations

from agent.modbus import Endpoint, ModbusReadError
from agent.plan import ReadPlan, ReadRequest
from mrv_core.identity import IdentityCheck, check_identity, register_text
from mrv_core.profile import Profile

SILENT = ("timeout", "disconnected")


def read_identity(endpoint: Endpoint, profile: Profile, unit_id: int) -> dict[str, str | None]:
    """Each identification item's text, None where the device refuses it. A device that does not
    answer at all raises ModbusReadError (silence is not an identity)."""
    texts: dict[str, str | None] = {}
    device_id: dict[int, str] | None = None
    for item in profile.identification:
        if item.device_id is not None:
            if device_id is None:
                try:
                    device_id = endpoint.read_device_id(unit_id)
                except ModbusReadError as exc:
                    if exc.reason in SILENT:
                        raise
                    device_id = {}
            texts[item.name] = device_id.get(item.device_id)
            continue
        assert item.function is not None and item.address is not None and item.type is not None
        plan = ReadPlan((ReadRequest(item.function, item.address, item.length),), ())
        try:
            words = endpoint.read(plan, unit_id)
        except ModbusReadError as exc:
            if exc.reason in SILENT:
                raise
            texts[item.name] = None
            continue
        texts[item.name] = register_text(
            item.type, [words[(item.function, item.address + i)] for i in range(item.length)]
        )
    return texts


def identify(endpoint: Endpoint, profile: Profile, unit_id: int) -> IdentityCheck:
    """Read the device's identification and compare it with the profile (ModbusReadError if silent)."""
    texts = read_identity(endpoint, profile, unit_id)
    expected = {item.name: item.expect for item in profile.identification}
    return check_identity(expected, profile.firmware, profile.firmware_item, texts)
