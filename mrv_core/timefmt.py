"""Timestamps as evidence writes them: UTC, millisecond precision, 'Z' suffix."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_PATTERN = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z$")


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"timestamp {text!r} is not YYYY-MM-DDTHH:MM:SS.mmmZ")
    year, month, day, hour, minute, second, milli = (int(part) for part in match.groups())
    # datetime() validates the ranges (month 13, second 61...) and raises ValueError.
    return datetime(year, month, day, hour, minute, second, milli * 1000, tzinfo=UTC)


def time_ms(text: str) -> int:
    """Milliseconds since the Unix epoch of a record timestamp."""
    moment = parse_time(text)
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def format_ms(ms: int) -> str:
    """Record timestamp text of milliseconds since the epoch (exact: no float rounding)."""
    return format_time(datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=(ms % 1000) * 1000))
