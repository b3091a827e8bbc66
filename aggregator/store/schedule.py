"""The schedule's tables: each source's adaptive interval, parse failures, broken reason and
permanent redirect (columns of `sources`), and per-host politeness (`hosts`). The decisions
are aggregator/policy.py's; this only reads and writes them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from aggregator.store.sql import parse_ts, ts
from aggregator.types import HostState, SourceSchedule

SCHEDULE_COLUMNS = ("effective_interval, activity, last_success_at, parse_failures, "
                    "broken_reason, moved_to")


def schedule_from_row(row: Mapping[str, Any]) -> SourceSchedule:
    return SourceSchedule(
        interval=row["effective_interval"], activity=row["activity"] or 0.0,
        last_success=parse_ts(row["last_success_at"]) if row["last_success_at"] else None,
        parse_failures=row["parse_failures"] or 0, broken_reason=row["broken_reason"],
        moved_to=row["moved_to"])


def write_schedule(conn: sqlite3.Connection, source_id: str, schedule: SourceSchedule) -> None:
    conn.execute(
        "UPDATE sources SET effective_interval=?, activity=?, parse_failures=?, "
        "broken_reason=?, moved_to=? WHERE id=?",
        (schedule.interval, schedule.activity, schedule.parse_failures,
         schedule.broken_reason, schedule.moved_to, source_id))


def defer(conn: sqlite3.Connection, source_id: str, due: datetime) -> None:
    """A source not fetched because its host asked us to wait: only its next poll moves."""
    conn.execute("UPDATE sources SET next_due_at=? WHERE id=?", (ts(due), source_id))


def host_states(conn: sqlite3.Connection) -> dict[str, HostState]:
    out: dict[str, HostState] = {}
    for host, level, until, reason in conn.execute(
            "SELECT host, level, slow_until, reason FROM hosts"):
        out[host] = HostState(host, level, parse_ts(until) if until else None, reason)
    return out


def save_hosts(conn: sqlite3.Connection, states: Iterable[HostState], now: datetime) -> None:
    """Hosts back to normal are deleted; the others are kept for the next poll (or process)."""
    for s in states:
        if s.level <= 0 and (s.slow_until is None or s.slow_until <= now):
            conn.execute("DELETE FROM hosts WHERE host=?", (s.host,))
        else:
            conn.execute(
                "INSERT OR REPLACE INTO hosts (host, level, slow_until, reason, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (s.host, s.level, ts(s.slow_until) if s.slow_until else None, s.reason,
                 ts(now)))
