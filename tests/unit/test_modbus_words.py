"""The agent's read-registers responses decode exactly as pymodbus's own (agent/modbus.py)."""

from __future__ import annotations

import random
import struct

import pytest
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse

from agent.modbus import HoldingWords, InputWords


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(HoldingWords, ReadHoldingRegistersResponse), (InputWords, ReadInputRegistersResponse)],
)
def test_words_are_pymodbus_words(ours: type[ModbusPDU], theirs: type[ModbusPDU]) -> None:
    assert ours.function_code == theirs.function_code
    assert ours.rtu_byte_count_pos == theirs.rtu_byte_count_pos  # RTU frames are cut the same way
    rnd = random.Random(7)
    for _ in range(2000):
        byte_count = rnd.randrange(0, 252)
        data = bytes([byte_count]) + rnd.randbytes(rnd.randrange(0, byte_count + 4))
        expected, got = theirs(), ours()
        try:
            expected.decode(data)
        except ModbusIOException:
            with pytest.raises(ModbusIOException):
                got.decode(data)
            continue
        got.decode(data)
        assert got.registers == expected.registers, data.hex()
        assert list(struct.unpack(f">{len(got.registers)}H", got.raw)) == expected.registers  # type: ignore[attr-defined]
        assert f"{len(got.registers)} registers" in str(got)


def test_an_endpoints_client_decodes_with_them() -> None:
    from agent.modbus import TcpEndpoint

    client = TcpEndpoint("127.0.0.1", 1, 1.0)._make_client()
    assert client.transaction.framer is client.framer  # what decodes the responses
    table = client.framer.decoder.pdu_table
    assert table[3][1] is HoldingWords and table[4][1] is InputWords
