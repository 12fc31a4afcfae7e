"""The store writes each record's two points as line protocol itself (Point is too slow for ingest's
rate); influxdb-client's Point is the oracle: same series keys, fields and timestamps (field order
and the spelling of a float may differ; the value InfluxDB stores may not)."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from collector.store.influx import reading_lines, reading_ns
from mrv_core.canonical import canonical_bytes
from mrv_core.record import Record, Value, parse_record, values_text
from tests.factory import Gateway

EXTRA = {
    "power_active_total": Value(Decimal("-3.25"), "W", "c050"),
    "frequency": Value(None, "Hz", ""),
    "voltage_l1": Value(Decimal("230"), "V", "4366"),
}


def _oracle(record: Record, seal_seq: int, leaf: int) -> bytes:
    """What the store wrote with Point before (collector/store/influx.py history)."""
    at = reading_ns(record.time, record.seq)
    tags = {"site": record.site, "gateway": record.gateway, "device": record.device}
    reading = Point("mrv_reading")
    chain = Point("mrv_chain")
    for name, value in tags.items():
        reading.tag(name, value)
        chain.tag(name, value)
    reading.field("seq", record.seq).field("hash", record.hash).field("record", record.data.decode("ascii"))
    reading.field("seal_seq", seal_seq).field("leaf", leaf).time(at, WritePrecision.NS)
    for name, value in record.values.items():
        if value.value is not None:
            reading.field(name, float(value.value))
    chain.field("hash", record.hash).field("prev", record.prev).field("reading_ns", at)
    chain.field("seal_seq", seal_seq).time(record.seq, WritePrecision.NS)
    return f"{reading.to_line_protocol()}\n{chain.to_line_protocol()}".encode()


_LINE = re.compile(rb"((?:[^ \\]|\\.)+) (.*) (\d+)")
_FIELD = re.compile(rb'((?:[^=,\\]|\\.)+)=("(?:[^"\\]|\\.)*"|[^,]*)')


def _points(lines: bytes) -> list[tuple[bytes, dict[bytes, object], int]]:
    """Series key, fields and time of each line; a float field as a float, anything else as written."""
    points = []
    for line in lines.split(b"\n"):
        match = _LINE.fullmatch(line)
        assert match is not None, line
        key, body, at = match.groups()
        pairs = _FIELD.findall(body)
        assert b",".join(b"=".join(pair) for pair in pairs) == body, "every field parsed"
        fields = {
            name: value if value.startswith(b'"') or value.endswith(b"i") else float(value)
            for name, value in pairs
        }
        assert len(fields) == len(pairs), "no field twice"
        points.append((key, fields, int(at)))
    return points


def _same(ours: bytes, oracle: bytes) -> None:
    assert _points(ours) == _points(oracle)


@pytest.mark.parametrize(
    ("gateway", "site", "device"),
    [
        ("gw-1", "site-1", "m1"),
        ("gw 1", "site,a", "m=1"),  # tag characters that need escaping
        ("gw\\", "s\\", 'dev "x"'),  # a trailing backslash and quotes
    ],
)
def test_lines_are_what_point_writes(gateway: str, site: str, device: str) -> None:
    gw = Gateway(gateway=gateway, site=site)
    data = gw.record(device, 3, 1234.5, extra=EXTRA)
    record = parse_record(data)
    _same(reading_lines(record, 12, 4), _oracle(record, 12, 4))


def test_a_record_with_quotes_and_backslashes_in_its_bytes() -> None:
    gw = Gateway()
    body = json.loads(gw.record("m1", 0, 1, extra=EXTRA))
    body["values"]["note_q"] = {"raw": "", "unit": 'a "b" \\ c', "value": "7"}
    record = parse_record(canonical_bytes(body))  # full parse: escaped strings
    _same(reading_lines(record, 1, 0), _oracle(record, 1, 0))


def test_long_decimals_and_non_finite_values() -> None:
    gw = Gateway()
    long_text = "0.1000000000000000055511151231257827021181583404541015625"
    body = json.loads(gw.record("m1", 0, 1))
    body["values"]["a_long"] = {"raw": "", "unit": "", "value": long_text}
    body["values"]["b_huge"] = {"raw": "", "unit": "", "value": "1" + "0" * 400}  # overflows float64
    body["values"]["c_exp"] = {"raw": "", "unit": "", "value": "1E+3"}
    record = parse_record(canonical_bytes(body))
    ours = reading_lines(record, 1, 0).split(b"\n")[0]
    assert b"a_long=" + long_text.encode() + b"," in ours  # InfluxDB rounds it as float() does
    assert b"b_huge=" not in ours, "a value beyond float64 is left out, as Point leaves it out"
    _same(reading_lines(record, 1, 0), _oracle(record, 1, 0))


def test_the_common_layout_takes_the_one_scan_path() -> None:
    record = parse_record(Gateway().record("m1", 0, 7.25, extra=EXTRA))
    assert values_text(record.values) is not None, "a common-layout record"
    ours = reading_lines(record, 1, 0)
    assert ours.startswith(
        b"mrv_reading,device=m1,gateway=gw-test,site=site-test energy_active_export_total=7.25,"
    )
    assert b"frequency=" not in ours.split(b'record="')[0], "a value without a number is left out"
    _same(ours, _oracle(record, 1, 0))
