"""Compile a device's registers into the fewest Modbus requests, once, without I/O.

Registers of the same function are merged while the request stays within the
profile's register limit and bridges no more unused registers than the profile
allows (bridging is only safe where the meter answers those addresses). A
register with a scale-factor register (SunSpec ``sunssf``) needs that word too:
it is read like one more register, and shared scale factors are read once.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from mrv_core.profile import RegisterSpec
from mrv_core.registers import DecodeError, wire_decoder

Decoder = Callable[[str], Decimal | None]
WireDecoder = Callable[[bytes], Decimal | None]
Slice = tuple[int, int, int]  # (request, first byte, end byte) in the bytes a request returned

MODBUS_MAX_REGISTERS = 125


@dataclass(frozen=True)
class ReadRequest:
    function: str  # "holding" | "input"
    address: int
    count: int

    @functools.cached_property
    def keys(self) -> tuple[tuple[str, int], ...]:
        """(function, address) of each word the request returns, in order (made once: a gateway
        files every word of every poll by them)."""
        return tuple((self.function, self.address + offset) for offset in range(self.count))


@dataclass(frozen=True)
class ReadPlan:
    requests: tuple[ReadRequest, ...]
    registers: tuple[RegisterSpec, ...]

    def words_for(self, spec: RegisterSpec, words: Mapping[tuple[str, int], int]) -> list[int]:
        """The words of the register's raw text: the value's, then its scale factor's (if any)."""
        return [words[(spec.function, address)] for address in spec.word_addresses]

    @functools.cached_property
    def wire_decoding(
        self,
    ) -> tuple[tuple[RegisterSpec, tuple[Slice, ...], WireDecoder | None, Decoder], ...]:
        """Per register, worked out once: where its raw words lie in the bytes the requests return
        (the value's words, then the scale factor's), the decoder of the value's bytes (None where
        a scale factor or a "not implemented" pattern needs the raw text's decoder) and that one."""
        where = {
            key: (index, 2 * offset)
            for index, request in enumerate(self.requests)
            for offset, key in enumerate(request.keys)
        }
        out = []
        for spec in self.registers:
            value = where[(spec.function, spec.address)]
            slices: tuple[Slice, ...] = ((value[0], value[1], value[1] + 2 * spec.width),)
            if spec.scale_factor is not None:
                factor = where[(spec.function, spec.scale_factor)]
                slices = (*slices, (factor[0], factor[1], factor[1] + 2))
            plain = spec.scale_factor is None and spec.not_implemented is None
            out.append(
                (
                    spec,
                    slices,
                    wire_decoder(spec.type, spec.order, spec.scale) if plain else None,
                    spec.decoder(),
                )
            )
        return tuple(out)

    def blocks(self, words: Mapping[tuple[str, int], int]) -> list[bytes]:
        """The bytes each request returns, from words by (function, address): what a meter that
        gave these words sent (for fakes and decoding words read elsewhere). Every register's words
        must be there (KeyError); unused words a request bridges read as 0."""
        for spec in self.registers:
            self.words_for(spec, words)  # KeyError if one of its words is missing
        try:
            return [
                struct.pack(f">{request.count}H", *(words.get(key, 0) for key in request.keys))
                for request in self.requests
            ]
        except struct.error as exc:
            raise DecodeError(f"register words must be 0..65535: {exc}") from None


def _spans(registers: Sequence[RegisterSpec]) -> list[tuple[str, int, int, str]]:
    """(function, address, count, quantity) of every block of words the registers need: each value,
    and each scale-factor register once."""
    spans = [(spec.function, spec.address, spec.width, spec.quantity) for spec in registers]
    seen: set[tuple[str, int]] = set()
    for spec in registers:
        if spec.scale_factor is not None and (spec.function, spec.scale_factor) not in seen:
            seen.add((spec.function, spec.scale_factor))
            spans.append((spec.function, spec.scale_factor, 1, f"{spec.quantity} (scale factor)"))
    return spans


def plan_reads(
    registers: Sequence[RegisterSpec], max_registers: int = MODBUS_MAX_REGISTERS, max_gap: int = 0
) -> ReadPlan:
    if not 1 <= max_registers <= MODBUS_MAX_REGISTERS:
        raise ValueError(f"max_registers must be 1..{MODBUS_MAX_REGISTERS}")
    requests: list[ReadRequest] = []
    ordered = sorted(_spans(registers), key=lambda span: (span[0], span[1]))
    current: ReadRequest | None = None
    for function, address, width, quantity in ordered:
        end = address + width
        if width > max_registers:
            raise ValueError(f"{quantity} needs {width} registers, limit is {max_registers}")
        if current is not None and current.function == function:
            current_end = current.address + current.count
            gap = address - current_end
            new_count = max(end, current_end) - current.address
            if gap <= max_gap and new_count <= max_registers:
                current = ReadRequest(current.function, current.address, new_count)
                continue
        if current is not None:
            requests.append(current)
        current = ReadRequest(function, address, width)
    if current is not None:
        requests.append(current)
    return ReadPlan(tuple(requests), tuple(registers))
