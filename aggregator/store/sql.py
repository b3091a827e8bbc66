"""What every part of the store adapter writes SQL with: the stored form of times, and
statements cut to a bounded number of `?` parameters."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

MAX_PARAMS = 500  # `?` per statement (SQLite limits them)


def ts(value: datetime) -> str:
    """An aware datetime -> sortable UTC text ("2026-11-27T06:04:42.123456Z")."""
    utc = value.astimezone(UTC)
    if utc.year < 1000:  # strftime's year is not padded to four digits everywhere
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # isoformat is about three times faster than strftime (two per stored item)
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_ts(value: str) -> datetime:
    """`ts` text -> an aware UTC datetime (fromisoformat reads the "Z": 40 times faster than
    strptime, which was a tenth of rendering every feed)."""
    return datetime.fromisoformat(value)


def chunks(values: Sequence[Any], size: int = MAX_PARAMS) -> Iterator[Sequence[Any]]:
    """Slices of at most `size`: SQLite takes a bounded number of `?` per statement."""
    for start in range(0, len(values), size):
        yield values[start:start + size]
