"""Compile a device's registers into the fewest Modbus requests, once, without I/O.

Registers of the same function are merged while the request stays within the
profile's register limit and bridges no more unused registers than the profile
allows (bridging is only safe where the meter answers those addresses). A
register with a scale-factor register (SunSpec ``sunssf``) needs that word too:
it is read like one more register, and shared scale factors are read once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from mrv_core.profile import RegisterSpec

Decoder = Callable[[str], Decimal | None]

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
    def decoding(self) -> tuple[tuple[RegisterSpec, tuple[tuple[str, int], ...], str, Decoder], ...]:
        """Per register, worked out once: the word keys of its raw text (the value's words, then
        the scale factor's), the hex format of that text and its decoder (a gateway decodes every
        register of every poll)."""
        return tuple(
            (
                spec,
                tuple((spec.function, address) for address in spec.word_addresses),
                "%04x" * len(spec.word_addresses),
                spec.decoder(),
            )
            for spec in self.registers
        )


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
