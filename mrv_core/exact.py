"""Exact decimal arithmetic for evidence: one context, wide enough never to round."""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Final

# 80 significant digits hold any product of a 64-bit register, a scale factor,
# a unit factor and an emission factor without rounding.
EXACT: Final = Context(prec=80)


def decimal_text(value: Decimal) -> str:
    """Canonical decimal text: no exponent, no trailing zeros, no '-0'."""
    text = str(value)  # already canonical for most values a meter gives: half the cost of formatting
    if (
        "E" not in text
        and "e" not in text
        and ("." not in text or text[-1] != "0")
        and text != "-0"
        and value.is_finite()
    ):
        return text
    if value.is_zero():
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
