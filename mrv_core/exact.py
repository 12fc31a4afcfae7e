"""Exact decimal arithmetic for evidence: one context, wide enough never to round."""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Final

# 80 significant digits hold any product of a 64-bit register, a scale factor,
# a unit factor and an emission factor without rounding.
EXACT: Final = Context(prec=80)


def decimal_text(value: Decimal) -> str:
    """Canonical decimal text: no exponent, no trailing zeros, no '-0'."""
    if value.is_zero():
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
