"""Compile a device's registers into the fewest Modbus requests, once, without I/O.

Registers of the same function are merged while the request stays within the
profile's register limit and bridges no more unused registers than the profile
allows (bridging is only safe where the meter answers those addresses).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from mrv_core.profile import RegisterSpec
from mrv_core.registers import hex_decoder

Decoder = Callable[[str], Decimal | None]

MODBUS_MAX_REGISTERS = 125


@dataclass(frozen=True)
class ReadRequest:
    function: str  # "holding" | "input"
    address: int
    count: int


@dataclass(frozen=True)
class ReadPlan:
    requests: tuple[ReadRequest, ...]
    registers: tuple[RegisterSpec, ...]

    def words_for(self, spec: RegisterSpec, words: Mapping[tuple[str, int], int]) -> list[int]:
        return [words[(spec.function, spec.address + i)] for i in range(spec.width)]

    @functools.cached_property
    def decoding(self) -> tuple[tuple[RegisterSpec, tuple[tuple[str, int], ...], str, Decoder], ...]:
        """Per register, worked out once: the word keys, the hex format of its raw text and its
        decoder (a gateway decodes every register of every poll)."""
        return tuple(
            (
                spec,
                tuple((spec.function, spec.address + i) for i in range(spec.width)),
                "%04x" * spec.width,
                hex_decoder(spec.type, spec.order, spec.scale),
            )
            for spec in self.registers
        )


def plan_reads(
    registers: Sequence[RegisterSpec], max_registers: int = MODBUS_MAX_REGISTERS, max_gap: int = 0
) -> ReadPlan:
    if not 1 <= max_registers <= MODBUS_MAX_REGISTERS:
        raise ValueError(f"max_registers must be 1..{MODBUS_MAX_REGISTERS}")
    requests: list[ReadRequest] = []
    ordered = sorted(registers, key=lambda r: (r.function, r.address))
    current: ReadRequest | None = None
    for spec in ordered:
        end = spec.address + spec.width
        if spec.width > max_registers:
            raise ValueError(f"{spec.quantity} needs {spec.width} registers, limit is {max_registers}")
        if current is not None and current.function == spec.function:
            current_end = current.address + current.count
            gap = spec.address - current_end
            new_count = max(end, current_end) - current.address
            if gap <= max_gap and new_count <= max_registers:
                current = ReadRequest(current.function, current.address, new_count)
                continue
        if current is not None:
            requests.append(current)
        current = ReadRequest(spec.function, spec.address, spec.width)
    if current is not None:
        requests.append(current)
    return ReadPlan(tuple(requests), tuple(registers))
