"""Timestamps as evidence writes them: UTC, millisecond precision, 'Z' suffix."""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime

# ASCII digits only: evidence is ASCII, and Unicode digits would read as numbers.
_PATTERN = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z\Z", re.ASCII)
_EPOCH = date(1970, 1, 1)


def format_time(moment: datetime) -> str:
    """A moment as a record timestamp (milliseconds, truncated). A gateway stamps every reading:
    one C call (isoformat) rather than strftime and a format (3.9 -> 2.1 us)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    if utc.year < 1000:  # isoformat pads the year to four digits, strftime on Linux does not
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    return utc.isoformat(timespec="milliseconds")[:-6] + "Z"  # without "+00:00"


def parse_time(text: str) -> datetime:
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"timestamp {text!r} is not YYYY-MM-DDTHH:MM:SS.mmmZ")
    year, month, day, hour, minute, second, milli = (int(part) for part in match.groups())
    # datetime() validates the ranges (month 13, second 61...) and raises ValueError.
    return datetime(year, month, day, hour, minute, second, milli * 1000, tzinfo=UTC)


def time_ms(text: str) -> int:
    """Milliseconds since the Unix epoch of a record timestamp, as strict as :func:`parse_time`.
    Ingest reads every record's time: the day is worked out once per day (2.4 -> 1.2 us)."""
    if _PATTERN.match(text) is None:
        raise ValueError(f"timestamp {text!r} is not YYYY-MM-DDTHH:MM:SS.mmmZ")
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"timestamp {text!r} is not a time of day")
    return _day_ms(text[:10]) + ((hour * 60 + minute) * 60 + second) * 1000 + int(text[20:23])


@functools.lru_cache(maxsize=4096)
def _day_ms(day: str) -> int:
    """Milliseconds since the epoch of a day's start (ValueError if no such day: 2026-02-30)."""
    return (date.fromisoformat(day) - _EPOCH).days * 86_400_000


def format_ms(ms: int) -> str:
    """Record timestamp text of milliseconds since the epoch (exact: no float rounding)."""
    return format_time(datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=(ms % 1000) * 1000))
