"""SQLite storage (the sqlite-utils adapter: the only module importing sqlite-utils/sqlite3).

One `Store` per process and thread. WAL mode, a busy timeout so that a cron run and a
daemon can share the file, and every ingest of one source in one transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from aggregator import dedupe
from aggregator.errors import StoreError
from aggregator.normalize.keys import item_uid
from aggregator.store.schema import MIGRATIONS
from aggregator.types import (
    Config,
    FetchRecord,
    Item,
    SourceState,
    StoredItem,
    Story,
    Validators,
)


def ts(value: datetime) -> str:
    """An aware datetime -> sortable UTC text."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self.db = sqlite_utils.Database(conn)
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc

    def close(self) -> None:
        self.db.conn.close()

    # --- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self.db.atomic():
                yield
        except sqlite3.Error as exc:
            raise StoreError(f"database error: {exc}") from exc

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            return list(self.db.query(sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"database error: {exc}") from exc

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                        "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        done = {r["version"] for r in self.db.query("SELECT version FROM schema_migrations")}
        for version, sql in MIGRATIONS:
            if version in done:
                continue
            with self.db.atomic():
                for statement in sql.split(";\n"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute("INSERT INTO schema_migrations VALUES (?, ?)",
                                (version, ts(datetime.now(UTC))))

    def integrity_quick(self) -> str:
        """A cheap liveness check: the database answers and its file is writable."""
        self._rows("SELECT COUNT(*) AS n FROM schema_migrations")
        if self.path != ":memory:" and not os.access(self.path, os.W_OK):
            raise StoreError(f"database file {self.path} is not writable")
        return "ok"

    # --- sources ----------------------------------------------------------------------------

    def sync_sources(self, config: Config) -> None:
        """Mirror the config's sources into the sources table; fetch state is kept."""
        with self.transaction():
            for s in config.sources:
                self.db.execute(
                    "INSERT INTO sources (id, kind, url, agency, name, interval, enabled) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                    "kind=excluded.kind, url=excluded.url, agency=excluded.agency, "
                    "name=excluded.name, interval=excluded.interval, enabled=excluded.enabled",
                    (s.id, s.kind, s.url, s.agency, s.name, s.interval, int(s.enabled)),
                )
                # A changed URL must not be asked with the old URL's validators.
                self.db.execute(
                    "UPDATE sources SET etag=NULL, last_modified=NULL, body_hash=NULL "
                    "WHERE id=? AND final_url IS NOT NULL AND url != ? AND final_url != ?",
                    (s.id, s.url, s.url),
                )

    def source_states(self, source_ids: Sequence[str]) -> dict[str, SourceState]:
        """Every named source's fetch state, read at once at the start of a poll."""
        wanted = set(source_ids)
        return {
            r["id"]: SourceState(Validators(r["etag"], r["last_modified"], r["body_hash"]),
                                 r["failures"], tuple(json.loads(r["warnings"] or "[]")))
            for r in self._rows("SELECT id, etag, last_modified, body_hash, failures, warnings "
                                "FROM sources")
            if r["id"] in wanted
        }

    def due_source_ids(self, now: datetime) -> list[str]:
        rows = self._rows("SELECT id FROM sources WHERE enabled=1 AND "
                          "(next_due_at IS NULL OR next_due_at <= ?) ORDER BY next_due_at",
                          (ts(now),))
        return [r["id"] for r in rows]

    def source_rows(self) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM sources ORDER BY id")
        for r in rows:
            r["warnings"] = json.loads(r["warnings"] or "[]")
        return rows

    def recent_fetches(self, source_id: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM fetches WHERE source_id=? ORDER BY id DESC LIMIT ?",
                          (source_id, limit))
        for r in rows:
            r["warnings"] = json.loads(r["warnings"] or "[]")
        return rows

    def record_fetches(self, records: Sequence[FetchRecord]) -> None:
        """Write the fetch log rows and the sources' state after their attempts, in one
        transaction (a poll of many unchanged sources writes in a few batches, not 500)."""
        with self.transaction():
            for record in records:
                self._record_fetch(record)

    def _record_fetch(self, record: FetchRecord) -> None:
        report = record.report
        now = ts(record.started)
        due = ts(record.next_due)
        warnings = json.dumps(list(report.warnings), ensure_ascii=False)
        self.db.execute(
            "INSERT INTO fetches (source_id, started_at, duration, outcome, status, bytes, "
            "new, updated, unchanged, error, warnings) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (report.source_id, now, report.duration, report.outcome, report.status,
             report.bytes, report.new, report.updated, report.unchanged, report.error,
             warnings),
        )
        if report.outcome == "error":
            self.db.execute(
                "UPDATE sources SET last_fetch_at=?, last_status=?, last_error=?, "
                "last_error_at=?, failures=failures+1, next_due_at=?, last_duration=? "
                "WHERE id=?",
                (now, report.status, report.error, now, due, report.duration, report.source_id),
            )
            return
        self.db.execute(
            "UPDATE sources SET last_fetch_at=?, last_success_at=?, last_status=?, "
            "failures=0, next_due_at=?, warnings=?, last_duration=? WHERE id=?",
            (now, now, report.status, due, warnings, report.duration, report.source_id),
        )
        if report.new:  # items first stored from this source
            self.db.execute("UPDATE sources SET item_count=item_count+? WHERE id=?",
                            (report.new, report.source_id))
        v = record.validators
        if v is not None:
            self.db.execute(
                "UPDATE sources SET etag=?, last_modified=?, body_hash=?, final_url=? "
                "WHERE id=?",
                (v.etag, v.last_modified, v.body_hash, record.final_url, report.source_id),
            )

    def slowest_first(self, source_ids: Sequence[str]) -> list[str]:
        """Source ids ordered by their last fetch's duration, longest first (a poll starts the
        sources that may time out first, so their wait overlaps everything else)."""
        durations = {r["id"]: r["last_duration"] or 0.0
                     for r in self._rows("SELECT id, last_duration FROM sources")}
        return sorted(source_ids, key=lambda i: -durations.get(i, 0.0))

    def known_keys(self, scope: str, keys: Sequence[str]) -> set[str]:
        return set(self._existing(scope, list(keys)))

    def keys_wanting_article(self, scope: str, keys: Sequence[str], max_tries: int
                             ) -> set[str]:
        """Stored items whose article page has not given their text yet (tried < max)."""
        wanted: set[str] = set()
        for chunk in _chunks(list(keys), 500):
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(
                f"SELECT key FROM items WHERE scope=? AND key IN ({marks}) AND content='' "
                f"AND article_tries < ?", (scope, *chunk, max_tries)):
                wanted.add(row["key"])
        return wanted

    def article_tried(self, scope: str, keys: Sequence[str]) -> None:
        with self.transaction():
            for key in keys:
                self.db.execute("UPDATE items SET article_tries=article_tries+1 "
                                "WHERE scope=? AND key=?", (scope, key))

    # --- robots.txt cache ---------------------------------------------------------------------

    def robots_get(self, origin: str) -> tuple[int, str, datetime] | None:
        rows = self._rows("SELECT status, body, fetched_at FROM robots WHERE origin=?",
                          (origin,))
        if not rows:
            return None
        return rows[0]["status"], rows[0]["body"], parse_ts(rows[0]["fetched_at"])

    def robots_put(self, origin: str, status: int, body: str, at: datetime) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO robots (origin, status, body, fetched_at) "
                            "VALUES (?, ?, ?, ?)", (origin, status, body, ts(at)))

    # --- items ------------------------------------------------------------------------------

    def ingest(self, scope: str, entries: Sequence[tuple[Item, str, int]],
               now: datetime, sampled: datetime | None = None) -> tuple[int, int, int]:
        """Store one fetch's items (each with its agency) in one transaction.

        Items are unique on (scope, key): the scope is the source id, or a name shared by the
        sources of one portal whose item-id rule makes the same article one item everywhere.
        Each entry carries the agency and the priority of that assignment: a stored item changes
        agency only for a higher priority (a rule beats a source default), so an article seen
        on several pages of one portal keeps one agency.
        Views are sampled for every item that has them, at `sampled` (the poll's start): a
        poll that sees an article on several pages of a portal stores one sample.
        Returns (new, updated, unchanged)."""
        new = updated = unchanged = 0
        at = ts(now)
        sample_at = ts(sampled or now)
        execute = self.db.conn.execute  # the hot path skips sqlite-utils' statement checks
        with self.transaction():
            existing = self._existing(scope, [item.key for item, _, _ in entries])
            fresh: list[tuple[Item, str, int]] = []
            fresh_keys: set[str] = set()
            for entry in entries:  # new keys, the first entry of each
                if entry[0].key not in existing and entry[0].key not in fresh_keys:
                    fresh_keys.add(entry[0].key)
                    fresh.append(entry)
            if fresh:
                self._insert_many(scope, fresh, at, sample_at)
                new = len(fresh)
            for item, agency, priority in entries:
                row = existing.get(item.key)
                if row is None:
                    continue
                item_id = row["id"]
                if priority <= row["agency_priority"]:
                    agency, priority = row["agency"], row["agency_priority"]
                fills_gap = item.content != "" and row["no_content"]
                if row["content_hash"] != item.content_hash or row["agency"] != agency \
                        or fills_gap:
                    self._update(row, item, agency, priority, at)
                    updated += 1
                else:
                    unchanged += 1
                if item.views is not None:
                    execute("INSERT OR REPLACE INTO view_samples (item_id, at, views) "
                            "VALUES (?, ?, ?)", (item_id, sample_at, item.views))
                    execute("UPDATE items SET views=?, views_at=?, "
                            "views_max=MAX(COALESCE(views_max, 0), ?) WHERE id=?",
                            (item.views, at, item.views, item_id))
            seen = [row["id"] for key, row in existing.items()]
            for chunk in _chunks(seen, 500):
                self.db.execute(
                    f"UPDATE items SET last_seen=? WHERE id IN ({','.join('?' * len(chunk))})",
                    (at, *chunk))
        return new, updated, unchanged

    def _existing(self, scope: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(keys, 500):
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(
                f"SELECT id, key, content_hash, agency, agency_priority, story_id, published, "
                f"dated_by, content = '' AS no_content "
                f"FROM items WHERE scope=? AND key IN ({marks})", (scope, *chunk)):
                found[row["key"]] = row
        return found

    def _stories_by_link(self, links: Sequence[str]) -> dict[str, list[dedupe.Candidate]]:
        """Stored items sharing a link with the new items, read in one query per 500 links."""
        found: dict[str, list[dedupe.Candidate]] = {}
        for chunk in _chunks(sorted(set(links)), 500):
            marks = ",".join("?" * len(chunk))
            for link, story, source, when in self.db.conn.execute(
                    f"SELECT link, story_id, source_id, published FROM items "
                    f"WHERE link IN ({marks})", chunk):
                found.setdefault(link, []).append(
                    dedupe.Candidate(story, source, parse_ts(when)))
        return found

    def _insert_many(self, scope: str, entries: Sequence[tuple[Item, str, int]], at: str,
                     sample_at: str) -> None:
        """Insert new items, their stories and first view samples, a statement per table.

        A new item joins the story of an item that has its canonical link (stored before, or
        earlier in this batch); otherwise it starts a story whose lead it is."""
        conn = self.db.conn
        by_link = self._stories_by_link([e[0].link for e in entries if e[0].link])
        rows: list[tuple[Any, ...]] = []
        stories: dict[str, tuple[str, str, str]] = {}  # new story -> (first key, dates)
        joined: set[str] = set()
        for item, agency, priority in entries:
            uid = item_uid(scope, item.key)
            candidates = by_link.get(item.link, []) if item.link else []
            story_id = dedupe.choose_story(uid, item, candidates)
            published = ts(item.published)
            updated = ts(item.updated or item.published)
            if candidates:
                joined.add(story_id)
            else:
                stories.setdefault(story_id, (item.key, published, updated))
            if item.link:  # a later item of this batch with this link joins this story
                by_link.setdefault(item.link, []).append(
                    dedupe.Candidate(story_id, item.source_id, item.published))
            rows.append((
                uid, scope, item.source_id, item.key, agency, priority, item.link, item.title,
                item.summary, item.content, item.author,
                json.dumps(list(item.categories), ensure_ascii=False), item.image, published,
                updated, item.dated_by, at, at, item.content_hash, story_id, item.views,
                item.views, at if item.views is not None else None))
        conn.executemany(
            "INSERT INTO items (uid, scope, source_id, key, agency, agency_priority, link, title, "
            "summary, content, author, categories, image, published, updated, dated_by, "
            "first_seen, last_seen, content_hash, story_id, views, views_max, views_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        ids: dict[str, int] = {}
        for chunk in _chunks([row[3] for row in rows], 500):
            marks = ",".join("?" * len(chunk))
            ids.update((key, item_id) for item_id, key in conn.execute(
                f"SELECT id, key FROM items WHERE scope=? AND key IN ({marks})",
                (scope, *chunk)))
        # the story rows follow their first items (the foreign key is checked at commit)
        conn.executemany(
            "INSERT OR IGNORE INTO stories (id, lead_item, published, updated, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(sid, ids[key], pub, upd, at) for sid, (key, pub, upd) in stories.items()])
        for story_id in sorted(joined):
            self._refresh_story(story_id)
        conn.executemany(
            "INSERT OR REPLACE INTO view_samples (item_id, at, views) VALUES (?, ?, ?)",
            [(ids[item.key], sample_at, item.views) for item, _, _ in entries
             if item.views is not None])

    def _update(self, row: dict[str, Any], item: Item, agency: str, priority: int,
                at: str) -> None:
        published = ts(item.published) if item.dated_by == "source" else row["published"]
        updated = ts(item.updated) if item.updated else at
        # A field the source no longer gives (an HTML listing without the article's text,
        # a feed that stopped sending content) keeps its stored value: nothing stored is lost.
        self.db.execute(
            "UPDATE items SET agency=?, agency_priority=?, link=COALESCE(?, link), title=?, "
            "summary=COALESCE(NULLIF(?, ''), summary), content=COALESCE(NULLIF(?, ''), content), "
            "author=COALESCE(?, author), categories=COALESCE(NULLIF(?, '[]'), categories), "
            "image=COALESCE(?, image), published=?, updated=?, content_hash=? WHERE id=?",
            (agency, priority, item.link, item.title, item.summary, item.content, item.author,
             json.dumps(list(item.categories), ensure_ascii=False), item.image, published,
             updated, item.content_hash, row["id"]),
        )
        self._refresh_story(row["story_id"])

    def _refresh_story(self, story_id: str) -> None:
        """The lead item is the earliest published; the story's dates follow its items."""
        self.db.execute(
            "UPDATE stories SET "
            "lead_item=(SELECT id FROM items WHERE story_id=?1 ORDER BY published, id LIMIT 1), "
            "published=(SELECT MIN(published) FROM items WHERE story_id=?1), "
            "updated=(SELECT MAX(updated) FROM items WHERE story_id=?1) WHERE id=?1",
            (story_id,))

    # --- reading for publish and rank ---------------------------------------------------------

    _ITEM_COLUMNS = ("id, uid, source_id, agency, link, title, summary, content, author, "
                     "published, updated, views, categories, image, story_id")

    def agency_items(self, agency: str, limit: int) -> list[StoredItem]:
        rows = self._rows(
            f"SELECT {self._ITEM_COLUMNS} FROM items WHERE agency=? "
            "ORDER BY published DESC, id DESC LIMIT ?", (agency, limit))
        return [_stored_item(r) for r in rows]

    def recent_stories(self, limit: int, agencies: Iterable[str] | None = None) -> list[Story]:
        """Newest stories first; with `agencies`, only stories one of them published."""
        if agencies is None:
            rows = self._rows("SELECT id FROM stories ORDER BY published DESC, id DESC "
                              "LIMIT ?", (limit,))
        else:
            wanted = sorted(set(agencies))
            if not wanted:
                return []
            marks = ",".join("?" * len(wanted))
            rows = self._rows(
                f"SELECT s.id FROM stories s WHERE EXISTS (SELECT 1 FROM items i WHERE "
                f"i.story_id=s.id AND i.agency IN ({marks})) "
                f"ORDER BY s.published DESC, s.id DESC LIMIT ?", (*wanted, limit))
        return self.stories_by_id([r["id"] for r in rows])

    def stories_by_id(self, story_ids: Sequence[str]) -> list[Story]:
        items: dict[str, list[StoredItem]] = {sid: [] for sid in story_ids}
        for chunk in _chunks(list(story_ids), 500):
            marks = ",".join("?" * len(chunk))
            for r in self._rows(
                f"SELECT {self._ITEM_COLUMNS} FROM items WHERE story_id IN ({marks}) "
                "ORDER BY published, id", chunk):
                items[r["story_id"]].append(_stored_item(r))
        return [Story(sid, tuple(its)) for sid, its in items.items() if its]


def _stored_item(r: dict[str, Any]) -> StoredItem:
    return StoredItem(
        id=r["id"], uid=r["uid"], source_id=r["source_id"], agency=r["agency"], link=r["link"],
        title=r["title"], summary=r["summary"], content=r["content"], author=r["author"],
        published=parse_ts(r["published"]), updated=parse_ts(r["updated"]), views=r["views"],
        categories=tuple(json.loads(r["categories"] or "[]")), image=r["image"],
        story_id=r["story_id"],
    )


def _chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
