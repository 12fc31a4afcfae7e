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
    ],
)
def test_parse_rejects_non_canonical(data: bytes) -> None:
    assert not is_canonical(data)
    with pytest.raises(CanonicalError):
        parse_canonical(data)


def test_parse_round_trip() -> None:
    data = canonical_bytes({"z": [1, {"y": "x"}], "a": -5})
    assert canonical_bytes(parse_canonical(data)) == data
