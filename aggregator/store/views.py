"""What ranking reads of the view samples: each item's latest count and the edges of its
growth window, and each source's baseline items. Part of the store adapter; the decisions
are in `aggregator.rank`.

An item's growth window is read as two rows (its first and last sample in it, SQLite's bare
columns of a MIN/MAX aggregate over the `view_samples` primary key), never the whole series;
the baseline's items come through the `stories_published` index, not a scan of `items`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from aggregator.errors import StoreError
from aggregator.store.sql import chunks, parse_ts, ts
from aggregator.types import ViewSamples


class ViewReader:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _rows(self, sql: str, params: Sequence[object]) -> list[Any]:
        try:
            return list(self.conn.execute(sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"database error: {exc}") from exc

    def samples(self, item_ids: Iterable[int], now: datetime,
                window_hours: float) -> dict[int, ViewSamples]:
        """Each item's latest count as of `now`, and its first and last sample of the
        `window_hours` before `now` (one when it has one, none when it has none)."""
        ids = sorted(set(item_ids))
        start, end = ts(now - timedelta(hours=window_hours)), ts(now)
        latest: dict[int, int] = {}
        edges: dict[int, dict[str, int]] = {}
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            for item_id, _, views in self._rows(
                    f"SELECT item_id, MAX(at), views FROM view_samples WHERE item_id IN "
                    f"({marks}) AND at <= ? GROUP BY item_id", (*chunk, end)):
                latest[item_id] = views
            for edge in ("MIN", "MAX"):
                for item_id, at, views in self._rows(
                        f"SELECT item_id, {edge}(at), views FROM view_samples "
                        f"WHERE item_id IN ({marks}) AND at >= ? AND at <= ? GROUP BY item_id",
                        (*chunk, start, end)):
                    edges.setdefault(item_id, {})[at] = views
        return {i: ViewSamples(latest.get(i), tuple(
                    (parse_ts(at), v) for at, v in sorted(edges.get(i, {}).items())))
                for i in ids}

    def baseline_items(self, now: datetime, days: float) -> dict[str, list[int]]:
        """The items each source published in the `days` before `now` that have a count
        (source id -> item ids), found through the stories of those days."""
        start = ts(now - timedelta(days=days))
        out: dict[str, list[int]] = {}
        for item_id, source_id in self._rows(
                "SELECT i.id, i.source_id FROM stories s JOIN items i ON i.story_id = s.id "
                "WHERE s.published >= ? AND i.published >= ? AND i.published <= ? "
                "AND i.views IS NOT NULL ORDER BY i.id", (start, start, ts(now))):
            out.setdefault(source_id, []).append(item_id)
        return out
