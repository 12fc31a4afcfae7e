"""A PV plant at a grid connection point, in closed form. Pure: time is passed in.

Export energy is the integral of the generation curve, computed exactly, so
counters only rise and power is always the derivative of energy:
P(t) = c(d) * Pmax * sin(pi * x) during daylight (x: fraction of the day's
daylight elapsed, c(d): the day's clearness, 0.55..1.0, fixed by a seed), and
E(t) = E0 + Pmax * L * 2/pi * (sum of earlier days' c + c(d) * (1 - cos(pi * x)) / 2).
At night the plant's auxiliaries draw ``night_load_kw`` from the grid, which
the import counter integrates the same way.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache

# Units of the values :func:`state` returns, by dimension.
MODEL_UNITS = {
    "energy": "kWh",
    "power": "W",
    "voltage": "V",
    "current": "A",
    "frequency": "Hz",
    "ratio": "1",
}


@dataclass(frozen=True)
class PvPlant:
    capacity_kw: float = 50.0
    utc_offset_h: float = 8.0  # site's solar time, e.g. Ulaanbaatar
    sunrise_h: float = 6.0
    sunset_h: float = 18.0
    export_start_kwh: float = 12_345.6
    import_start_kwh: float = 321.0
    night_load_kw: float = 0.4
    seed: int = 1
    commissioned: date = date(2026, 1, 1)  # counters start from their initial values here

    @property
    def daylight_h(self) -> float:
        return self.sunset_h - self.sunrise_h


def clearness(seed: int, day: int) -> float:
    digest = hashlib.sha256(f"{seed}:{day}".encode()).digest()
    return 0.55 + 0.45 * int.from_bytes(digest[:4], "big") / 0xFFFFFFFF


def _day_number(moment: date) -> int:
    return (moment - date(1970, 1, 1)).days


@lru_cache(maxsize=64)
def _clearness_before(plant: PvPlant, day: int) -> float:
    """Sum of the clearness of the days since commissioning before ``day``.

    Accumulated one day at a time, so that the value at the end of day d and at
    the start of day d + 1 are the same float and counters never step back.
    """
    total = 0.0
    for d in range(_day_number(plant.commissioned), day):
        total += clearness(plant.seed, d)
    return total


def _local(plant: PvPlant, moment: datetime) -> tuple[int, float]:
    seconds = moment.astimezone(UTC).timestamp() + plant.utc_offset_h * 3600
    day = math.floor(seconds / 86400)
    return day, (seconds - day * 86400) / 3600


def state(plant: PvPlant, moment: datetime) -> dict[str, float]:
    """Every quantity the simulator serves, in the profile vocabulary's base units."""
    day, hour = _local(plant, moment)
    if day < _day_number(plant.commissioned):
        day, hour = _day_number(plant.commissioned), 0.0
    c = clearness(plant.seed, day)
    x = min(max((hour - plant.sunrise_h) / plant.daylight_h, 0.0), 1.0)
    generating = 0.0 < x < 1.0
    export_kw = c * plant.capacity_kw * math.sin(math.pi * x) if generating else 0.0
    day_fraction = (1 - math.cos(math.pi * x)) / 2  # exactly 1.0 at sunset
    clear_days = _clearness_before(plant, day) + c * day_fraction
    export_kwh = plant.export_start_kwh + plant.capacity_kw * plant.daylight_h * 2 / math.pi * clear_days
    night_h = 24 - plant.daylight_h
    tonight = min(hour, plant.sunrise_h) + max(0.0, hour - plant.sunset_h)
    nights = (day - _day_number(plant.commissioned)) * night_h + tonight
    import_kwh = plant.import_start_kwh + plant.night_load_kw * nights
    import_kw = 0.0 if generating else plant.night_load_kw

    t = moment.timestamp()
    voltage = 230.0 + 3.0 * math.sin(2 * math.pi * t / 600) + 0.5 * math.sin(2 * math.pi * t / 37)
    power_factor = 0.99 if generating else 0.9
    net_w = (import_kw - export_kw) * 1000  # import positive, as SDM meters report it
    phase_w = net_w / 3
    current = abs(phase_w) / (voltage * power_factor)
    values = {
        "energy_active_export_total": export_kwh,
        "energy_active_import_total": import_kwh,
        "power_active_total": net_w,
        "frequency": 50.0 + 0.05 * math.sin(2 * math.pi * t / 97),
        "power_factor": power_factor,
    }
    for phase in ("l1", "l2", "l3"):
        values[f"voltage_{phase}"] = voltage
        values[f"current_{phase}"] = current
        values[f"power_active_{phase}"] = phase_w
    return values
