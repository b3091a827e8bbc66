"""Retention in the database: compacting view samples, bounding the fetch log, pruning old
items with everything that hangs off them, and the tombstones that keep a pruned item from
coming back as new. Part of the store adapter; `Store` delegates here, the decisions are in
`aggregator.retention`. Work is done in batches, each its own transaction, so a daemon's
readers and a cron run's writer are never blocked for long.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.retention import SampleHorizons, samples_to_drop
from aggregator.store.index import new_generation
from aggregator.store.sql import chunks, parse_ts, ts

if TYPE_CHECKING:
    from aggregator.store import Store

BATCH = 500
Stop = Callable[[], bool]
META_COMPACTED = "samples_compacted_hourly"  # the hourly horizon of the last compaction


@dataclass(frozen=True)
class PruneReport:
    items: int = 0
    stories: int = 0


def compact_samples(store: Store, horizons: SampleHorizons, batch: int = BATCH,
                    stop: Stop | None = None) -> int:
    """Delete the view samples `samples_to_drop` names. Only items sampled since the last
    compaction's hourly horizon are read (the older ones are compacted already and stay so).
    Returns the number of samples deleted. `stop()` true ends it between batches (the
    next run does the rest)."""
    since = store.meta_get(META_COMPACTED)
    if since is None:
        rows = store._rows("SELECT id FROM items WHERE views_at IS NOT NULL ORDER BY id")
    else:
        rows = store._rows("SELECT id FROM items WHERE views_at >= ? ORDER BY id", (since,))
    ids = [r["id"] for r in rows]
    raw = ts(horizons.raw)
    dropped = 0
    for chunk in chunks(ids, batch):
        if stop is not None and stop():
            return dropped
        marks = ",".join("?" * len(chunk))
        times: dict[int, list[datetime]] = defaultdict(list)
        for r in store._rows(f"SELECT item_id, at FROM view_samples WHERE item_id IN ({marks}) "
                             f"AND at < ?", (*chunk, raw)):
            times[r["item_id"]].append(parse_ts(r["at"]))
        doomed = [(item_id, ts(at)) for item_id, series in times.items()
                  for at in samples_to_drop(series, horizons)]
        if doomed:
            with store.transaction():
                store.db.conn.executemany(
                    "DELETE FROM view_samples WHERE item_id=? AND at=?", doomed)
            dropped += len(doomed)
    store.meta_set(META_COMPACTED, ts(horizons.hourly))
    return dropped


def trim_fetches(store: Store, per_source: int) -> int:
    """Keep the newest `per_source` fetch log rows of each source."""
    with store.transaction():
        cursor = store.db.conn.execute(
            "DELETE FROM fetches WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER "
            "(PARTITION BY source_id ORDER BY id DESC) AS n FROM fetches) WHERE n > ?)",
            (per_source,))
    return max(cursor.rowcount, 0)


def prune_items(store: Store, horizon: datetime, now: datetime,
                batch: int = BATCH, stop: Stop | None = None) -> PruneReport:
    """Delete the items published before `horizon`, with their view samples, story links and
    dedupe keys (the search index follows by trigger), each remembered in `pruned_items`.
    A story left without items is deleted with the merge records pointing to it; a story
    that lost its lead gets a new one."""
    items = stories = 0
    at = ts(now)
    conn = store.db.conn
    while stop is None or not stop():
        rows = store._rows("SELECT id, scope, key, source_id, story_id FROM items "
                           "WHERE published < ? ORDER BY id LIMIT ?", (ts(horizon), batch))
        if not rows:
            return PruneReport(items, stories)
        ids = [r["id"] for r in rows]
        marks = ",".join("?" * len(ids))
        per_source: dict[str, int] = defaultdict(int)
        for r in rows:
            per_source[r["source_id"]] += 1
        touched = sorted({r["story_id"] for r in rows})
        with store.transaction():
            conn.executemany("INSERT OR IGNORE INTO pruned_items (scope, key, pruned_at) "
                             "VALUES (?, ?, ?)", [(r["scope"], r["key"], at) for r in rows])
            conn.execute("DELETE FROM dedupe_days WHERE day IN (SELECT day FROM "
                         f"dedupe_item_keys WHERE item_id IN ({marks}))", ids)
            for table in ("view_samples", "story_links", "dedupe_item_keys", "dedupe_fingerprints"):
                conn.execute(f"DELETE FROM {table} WHERE item_id IN ({marks})", ids)
            new_generation(conn)  # every process's memory of the recent keys is stale
            conn.execute(f"DELETE FROM items WHERE id IN ({marks})", ids)
            conn.executemany("UPDATE sources SET item_count=MAX(item_count-?, 0) WHERE id=?",
                             [(n, source) for source, n in per_source.items()])
            for story_id in touched:
                left = conn.execute("SELECT 1 FROM items WHERE story_id=? LIMIT 1",
                                    (story_id,)).fetchone()
                if left is None:
                    conn.execute("DELETE FROM stories WHERE id=?", (story_id,))
                    conn.execute("DELETE FROM story_merges WHERE into_id=?", (story_id,))
                    stories += 1
                else:
                    store._refresh_story(story_id)
        store.forget_items(ids)
        items += len(ids)
    return PruneReport(items, stories)


def pruned_keys(conn: sqlite3.Connection, scope: str, keys: Sequence[str]) -> set[str]:
    """Of these item keys of `scope`, those of pruned items."""
    found: set[str] = set()
    for chunk in chunks(list(keys)):
        marks = ",".join("?" * len(chunk))
        found.update(key for (key,) in conn.execute(
            f"SELECT key FROM pruned_items WHERE scope=? AND key IN ({marks})",
            (scope, *chunk)))
    return found
