"""The gateway's record encoder (cut from canonical JSON once per device) against build_record: the
same bytes for any names, values, flags and heads, and build_record's own answer, errors included,
for whatever its pieces do not cover."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mrv_core.canonical import CanonicalError
from mrv_core.record import CLOCK_STATES, GENESIS, ReadingEncoder, RecordError, Value, build_record

TEXTS = [
    "a",
    "energy_active_import_total",
    "Ünïcode",
    'quo"te',
    "back\\slash",
    "tab\there",
    "\u2028",
    "z" * 40,
]


def _text(rnd: random.Random) -> str:
    return "".join(rnd.choice(TEXTS) for _ in range(rnd.randrange(1, 3)))


def _decimal(rnd: random.Random) -> Decimal | None:
    if rnd.random() < 0.1:
        return None
    digits = str(rnd.randrange(10 ** rnd.randrange(1, 10)))
    return Decimal(f"{rnd.choice('+-')}{digits}E{rnd.randrange(-9, 4)}")


def _case(rnd: random.Random) -> tuple[dict[str, str], list[tuple[str, str]]]:
    head = {
        "site": _text(rnd),
        "gateway": _text(rnd),
        "device": _text(rnd),
        "profile_id": _text(rnd),
        "profile_sha256": f"{rnd.getrandbits(256):064x}",
    }
    names = list(dict.fromkeys(_text(rnd) for _ in range(rnd.randrange(0, 9))))
    return head, [(name, rnd.choice(["kWh", "V", "Hz", "µ"])) for name in names]


def test_same_bytes_as_build_record() -> None:
    rnd = random.Random(3)
    for _ in range(400):
        head, quantities = _case(rnd)
        encoder = ReadingEncoder(**head, quantities=quantities)
        for _ in range(5):
            values = {
                name: Value(_decimal(rnd), unit, f"{rnd.getrandbits(32):08x}") for name, unit in quantities
            }
            quality = [
                rnd.choice(["frozen", "out_of_range:" + _text(rnd), "counter_reset:x"]) for _ in range(3)
            ]
            quality = quality[: rnd.randrange(4)]
            time = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=rnd.randrange(10**12))
            args = {
                "seq": rnd.choice([1, rnd.randrange(1, 2**53)]),
                "prev": rnd.choice([GENESIS, f"{rnd.getrandbits(256):064x}"]),
                "time": time,
                "clock": rnd.choice(CLOCK_STATES),
            }
            expected = build_record(**head, **args, values=values, quality=quality)
            assert encoder.encode(**args, values=values, quality=quality) == expected


def test_what_the_pieces_do_not_cover_is_build_records_answer() -> None:
    head = {"site": "s", "gateway": "g", "device": "d", "profile_id": "p", "profile_sha256": "0" * 64}
    encoder = ReadingEncoder(**head, quantities=[("voltage_l1", "V"), ("frequency", "Hz")])
    moment = datetime(2026, 11, 30, tzinfo=UTC)
    volts, hertz = Value(Decimal("230.1"), "V", "43661999"), Value(Decimal(50), "Hz", "42480000")
    others = [
        {"voltage_l1": volts},  # a quantity missing
        {"voltage_l1": volts, "frequency": hertz, "current_l1": Value(None, "A", "7fc00000")},
        {"voltage_l1": volts, "power": hertz},  # another quantity
        {"voltage_l1": volts, "frequency": Value(Decimal(50), "kHz", "42480000")},  # another unit
    ]
    for values in others:
        got = encoder.encode(1, GENESIS, moment, "synced", values=values)
        assert got == build_record(**head, seq=1, prev=GENESIS, time=moment, clock="synced", values=values)
    values = {"voltage_l1": volts, "frequency": hertz}
    for seq, clock, error in [
        (0, "synced", RecordError),
        (2**53, "synced", CanonicalError),
        (1, "late", RecordError),
    ]:
        with pytest.raises(error) as ours:
            encoder.encode(seq, GENESIS, moment, clock, values=values)
        with pytest.raises(error) as theirs:
            build_record(**head, seq=seq, prev=GENESIS, time=moment, clock=clock, values=values)
        assert str(ours.value) == str(theirs.value)


def test_names_holding_a_marker_are_encoded_the_long_way() -> None:
    head = {"site": "\0seq\0", "gateway": "g", "device": "d", "profile_id": "p", "profile_sha256": "0" * 64}
    encoder = ReadingEncoder(**head, quantities=[("\0raw0\0", "V")])
    values = {"\0raw0\0": Value(Decimal("1.5"), "V", "3fc00000")}
    moment = datetime(2026, 11, 30, tzinfo=UTC)
    expected = build_record(**head, seq=7, prev=GENESIS, time=moment, clock="unknown", values=values)
    assert encoder.encode(7, GENESIS, moment, "unknown", values=values) == expected
