"""What the status page, `/healthz` and `/metrics` read of the database: new items per day
per source, the sources' last successes, and a real write. Part of the store adapter."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from aggregator.store.sql import parse_ts, ts

NEW_PER_DAY_DAYS = 30  # the window of the "new items per day" average


def new_per_day(conn: sqlite3.Connection, now: datetime,
                days: float = NEW_PER_DAY_DAYS) -> dict[str, float]:
    """Each source's average of new items per day over the last `days` (or since its first
    item, when younger, but at least one day): the items it stored first."""
    start = now - timedelta(days=days)
    out: dict[str, float] = {}
    for source_id, n, first in conn.execute(
            "SELECT source_id, COUNT(*), MIN(first_seen) FROM items WHERE first_seen >= ? "
            "GROUP BY source_id", (ts(start),)):
        span = (now - max(parse_ts(first), start)).total_seconds() / 86400
        out[source_id] = round(n / max(span, 1.0), 2)
    return out


def touch(conn: sqlite3.Connection, now: datetime) -> None:
    """A real write (a row of store_meta), for `/healthz`: the database is writable."""
    conn.execute("INSERT OR REPLACE INTO store_meta (name, value) VALUES ('healthz_at', ?)",
                 (ts(now),))
