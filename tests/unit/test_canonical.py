import pytest

from mrv_core.canonical import CanonicalError, canonical_bytes, is_canonical, parse_canonical


def test_sorted_compact_ascii() -> None:
    assert canonical_bytes({"b": 1, "a": [True, None, "é"]}) == b'{"a":[true,null,"\\u00e9"],"b":1}'


@pytest.mark.parametrize("value", [1.5, {"x": 0.1}, [float("nan")], {1: "x"}, 2**53, {"s": {1, 2}}])
def test_refuses_what_has_no_single_encoding(value: object) -> None:
    with pytest.raises(CanonicalError):
        canonical_bytes(value)


@pytest.mark.parametrize(
    "data",
    [
        b'{"b":1,"a":2}',  # key order
        b'{"a": 1}',  # whitespace
        b'{"a":1,"a":2}',  # duplicate key
        b'{"a":1.0}',  # float
        b'{"a":"\\u00E9"}',  # upper-case escape
        '{"a":"é"}'.encode(),  # raw non-ASCII
        b"[1,2",
        b'{"a":9007199254740993}',  # beyond 2**53 - 1
        b'{"a":NaN}',
    ],
)
def test_parse_rejects_non_canonical(data: bytes) -> None:
    assert not is_canonical(data)
    with pytest.raises(CanonicalError):
        parse_canonical(data)


def test_parse_round_trip() -> None:
    data = canonical_bytes({"z": [1, {"y": "x"}], "a": -5})
    assert canonical_bytes(parse_canonical(data)) == data


def test_timestamps_are_strict() -> None:
    from mrv_core.timefmt import format_time, parse_time, time_ms

    moment = parse_time("2026-02-28T23:59:59.123Z")
    assert format_time(moment) == "2026-02-28T23:59:59.123Z"
    assert time_ms("1970-01-01T00:00:01.500Z") == 1500
    for bad in (
        "2026-02-30T00:00:00.000Z",
        "2026-01-01T00:00:00Z",
        "2026-01-01 00:00:00.000Z",
        "2026-01-01T24:00:00.000Z",
        "2026-01-01T23:60:00.000Z",
        "2026-01-01T23:59:60.000Z",
        "2026-13-01T00:00:00.000Z",
        "2026-01-01T00:00:00.000Z\n",  # '$' would let a trailing newline through
        "\u0662\u0660\u0662\u0666-01-01T00:00:00.000Z",  # digits, but not ASCII ones
    ):
        with pytest.raises(ValueError):
            parse_time(bad)
        with pytest.raises(ValueError):
            time_ms(bad)


def test_time_ms_is_exact_on_both_sides_of_the_epoch() -> None:
    from datetime import UTC, datetime, timedelta

    from mrv_core.timefmt import format_time, time_ms

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for ms in (0, 1, -1, 999, -1001, 1_798_761_599_999, -631_152_000_001, 4_102_444_800_000):
        assert time_ms(format_time(epoch + timedelta(milliseconds=ms))) == ms


def test_the_fast_check_agrees_with_the_rules() -> None:
    """canonical_bytes checks by a fast pass and names the failing path only on failure: both
    must accept and refuse the same values (random nested JSON-ish values, bad ones included)."""
    import random
    from collections import OrderedDict

    from mrv_core.canonical import CanonicalError, _check, _fits

    class Text(str):
        pass

    rnd = random.Random(5)
    leaves = [None, True, False, 0, -7, 2**53 - 1, 2**53, -(2**53), 1.5, float("nan"), "x", Text("y"), b"z"]

    def value(depth: int) -> object:
        roll = rnd.random()
        if depth > 3 or roll < 0.4:
            return rnd.choice(leaves)
        if roll < 0.6:
            return [value(depth + 1) for _ in range(rnd.randrange(4))]
        if roll < 0.7:
            return tuple(value(depth + 1) for _ in range(rnd.randrange(3)))
        keys = ["a", "b", Text("c"), 1, True, None]
        items = {rnd.choice(keys): value(depth + 1) for _ in range(rnd.randrange(4))}
        return OrderedDict(items) if roll < 0.75 else items

    refused = 0
    for _ in range(5000):
        v = value(0)
        try:
            _check(v, "$")
            ok = True
        except CanonicalError:
            ok, refused = False, refused + 1
        if _fits(v):
            assert ok, v
        try:
            canonical_bytes(v)
            encoded = True
        except CanonicalError:
            encoded = False
        except TypeError:  # bytes: no JSON value, as before
            encoded = True
        assert encoded == ok, v
    assert 1000 < refused < 4000


def test_format_time_is_the_strftime_rule_in_any_zone() -> None:
    import random
    from datetime import UTC, datetime, timedelta, timezone

    from mrv_core.timefmt import format_time

    def by_strftime(moment: datetime) -> str:
        utc = moment.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"

    rnd = random.Random(3)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for i in range(20_000):
        moment = epoch + timedelta(microseconds=rnd.randrange(-30 * 10**15, 200 * 10**15))
        if i % 3:
            offset = timedelta(hours=rnd.randrange(-12, 14), minutes=rnd.choice([0, 30, 45]))
            moment = moment.astimezone(timezone(offset))
        assert format_time(moment) == by_strftime(moment), moment
    assert format_time(datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == "999-12-31T23:59:59.999Z"


def test_decimal_text_is_the_formatting_rule_for_any_decimal() -> None:
    """decimal_text returns str(value) where that is already canonical: it must give what the rule
    (fixed notation, no trailing zeros, no '-0') gives for every decimal, whatever its exponent,
    sign, trailing zeros or special value."""
    import random
    from decimal import Decimal

    from mrv_core.exact import decimal_text

    def by_the_rule(value: Decimal) -> str:
        if value.is_zero():
            return "0"
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text

    rnd = random.Random(11)
    specials = ["0", "-0", "0.00", "-0E+3", "0E-9", "10", "100E-2", "1.50", "NaN", "-Infinity", "sNaN"]
    values = [Decimal(text) for text in specials]
    for _ in range(20000):
        digits = str(rnd.randrange(10 ** rnd.randrange(1, 12)))
        values.append(Decimal(f"{rnd.choice('+-')}{digits}E{rnd.randrange(-12, 6)}"))
    for value in values:
        assert decimal_text(value) == by_the_rule(value), value
