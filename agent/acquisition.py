"""From register words to the values and quality flags of one record. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from agent.plan import ReadPlan
from mrv_core.record import Value
from mrv_core.registers import decode_words, words_to_hex


@dataclass(frozen=True)
class Reading:
    values: dict[str, Value]
    quality: tuple[str, ...]


def decode_reading(plan: ReadPlan, words: Mapping[tuple[str, int], int]) -> Reading:
    """Decode every planned register; a non-finite float is flagged, never dropped or fixed."""
    values: dict[str, Value] = {}
    quality: list[str] = []
    for spec in plan.registers:
        raw = plan.words_for(spec, words)
        value = decode_words(raw, spec.type, spec.order, spec.scale)
        if value is None:
            quality.append(f"invalid_value:{spec.quantity}")
        values[spec.quantity] = Value(value, spec.unit, words_to_hex(raw))
    return Reading(values, tuple(quality))
