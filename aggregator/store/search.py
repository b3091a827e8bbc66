"""Full-text search over stored items (`items_fts`, SQLite FTS5), for the search feeds. Part of
the store adapter; `fts_query` is pure."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence

MAX_TERMS = 12
_TERM = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str | None:
    """A visitor's words -> an FTS5 query that finds items having all of them, each also as
    the start of a longer word ("banjir" finds "banjirnya"). Operators and punctuation are
    taken as plain text, never as FTS5 syntax. None when nothing is left to search for."""
    terms = list(dict.fromkeys(t.casefold() for t in _TERM.findall(text)))[:MAX_TERMS]
    if not terms:
        return None
    return " ".join(f'"{t}"*' for t in terms)


def search_story_ids(conn: sqlite3.Connection, query: str, agencies: Sequence[str] | None,
                     since: str | None, limit: int) -> list[str]:
    """Stories with an item that matches `query` (an `fts_query`), newest first; only items
    of `agencies` when given, published at or after `since` (stored UTC text) when given."""
    where = ["items_fts MATCH ?"]
    params: list[object] = [query]
    if agencies is not None:
        if not agencies:
            return []
        where.append(f"i.agency IN ({','.join('?' * len(agencies))})")
        params.extend(agencies)
    if since is not None:
        where.append("i.published >= ?")
        params.append(since)
    params.append(limit)
    rows = conn.execute(
        f"SELECT i.story_id, MAX(i.published) AS newest FROM items_fts "
        f"JOIN items i ON i.id = items_fts.rowid WHERE {' AND '.join(where)} "
        f"GROUP BY i.story_id ORDER BY newest DESC, i.story_id DESC LIMIT ?", params)
    return [story_id for story_id, _ in rows]


def index_pending(conn: sqlite3.Connection) -> None:
    """Put the items stored since the last call into the search index, in one statement (call
    in the transaction that stored them, before it commits)."""
    if conn.execute("SELECT 1 FROM search_pending LIMIT 1").fetchone() is None:
        return
    # CROSS JOIN: the few pending rows drive, not a scan of every item (SQLite's choice with
    # a plain join and this order)
    conn.execute("INSERT INTO items_fts (rowid, title, summary) SELECT i.id, i.title, i.summary "
                 "FROM search_pending p CROSS JOIN items i ON i.id = p.item_id "
                 "ORDER BY p.item_id")
    conn.execute("DELETE FROM search_pending")
