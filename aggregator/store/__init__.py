"""SQLite storage (the sqlite-utils adapter: the only module importing sqlite-utils/sqlite3).

One `Store` per process and thread. WAL mode, a busy timeout so that a cron run and a
daemon can share the file, and every ingest of one source in one transaction.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from aggregator import dedupe
from aggregator.errors import StoreError
from aggregator.normalize.keys import item_uid
from aggregator.retention import SampleHorizons
from aggregator.store import grouping, health, index, retention, schedule, search, stories
from aggregator.store.checkpoint import Checkpointer
from aggregator.store.schema import MIGRATIONS
from aggregator.store.sql import chunks, parse_ts, ts
from aggregator.types import (
    Config,
    DedupeSettings,
    FetchRecord,
    HostState,
    Item,
    SourceState,
    StoredItem,
    Story,
    StoryOverride,
    Validators,
)

log = logging.getLogger(__name__)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Ingesting makes no reference cycles, but many objects: with the cycle collector on,
    its passes over the fingerprint cache and the batch cost about 12% of an ingest."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def statements(script: str) -> Iterator[str]:
    """The statements of a migration, whole (a trigger's body has semicolons of its own)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                yield pending
            pending = ""
    if pending.strip():
        yield pending


def _categories(categories: Sequence[str]) -> str:
    return json.dumps(list(categories), ensure_ascii=False) if categories else "[]"


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
            # 16 MB of hot pages (item and index leaves): the recent dedupe keys are held in
            # memory (store/index.py); 32 MB cost the cold poll 16 MB of its 300 MB budget and
            # saved 2.5 reads from the OS page cache per item at a million items
            conn.execute("PRAGMA cache_size=-16384")
            conn.execute("PRAGMA temp_store=MEMORY")
            # deleted rows are zeroed within their pages, but freed pages are not written out
            # again (Debian builds SQLite with secure_delete ON: each day's kept fingerprints
            # leaving freed 1,500 overflow pages, 12% of the page writes at a million items)
            conn.execute("PRAGMA secure_delete=FAST")
            conn.execute(f"PRAGMA journal_size_limit={self.WAL_SIZE_LIMIT}")
            conn.create_function("dedupe_pack_keys", 1, index.pack_key_list,  # migration 10
                                 deterministic=True)
            self.db = sqlite_utils.Database(conn)
            self._migrate()
            self.grouper = grouping.Grouper(conn)
            with self.db.atomic():
                self.grouper.index.check_fingerprints()
                search.index_pending(conn)  # none, unless written by another program
            self._grouping = False
            self._group_items = 0
            self._checkpointer: Checkpointer | None = None
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc

    def close(self) -> None:
        self.end_group()
        try:
            with self.transaction():
                self.grouper.words.flush()
        except StoreError as exc:  # a count is a statistic: losing some must not stop a close
            log.warning("dedupe word counts not written: %s", exc)
        try:
            with self.transaction():
                self.grouper.index.save_snapshot()
        except StoreError as exc:  # the next process reads the key rows instead
            log.warning("dedupe index snapshot not written: %s", exc)
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        self.db.conn.close()

    # --- plumbing ---------------------------------------------------------------------------

    GROUP_ITEMS = 2_000  # new items per commit while a group is open
    # WAL pages (160 MB): the writer's own checkpoint, a safety net. At a million items one
    # group's commit writes about 9,000 pages (random index leaves), so at 10,000 the writer
    # itself checkpointed after nearly every commit, synchronously, before the background
    # thread could.
    GROUP_AUTOCHECKPOINT = 40_000
    WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes the WAL file is cut back to when it starts over

    def begin_group(self) -> None:
        """Until `end_group`, writes share transactions, committed every `GROUP_ITEMS` new
        items: a commit writes every page it changed, and one per fetch (50 items) rewrote the
        same index pages again and again. Each ingest stays atomic (a savepoint). A crash
        loses the uncommitted part of the group, fetch validators included, so those sources
        are fetched in full again: nothing is lost or stored twice. Call from one thread.
        Meanwhile checkpoints run on their own thread (`checkpoint.Checkpointer`)."""
        if self._checkpointer is None and self.path != ":memory:":
            self._checkpointer = Checkpointer(self.path)
        if not self.db.conn.in_transaction:
            self.db.conn.execute(f"PRAGMA wal_autocheckpoint={self.GROUP_AUTOCHECKPOINT}")
            self.db.conn.execute("BEGIN")
        self._group_items = 0
        self._grouping = True

    def end_group(self) -> None:
        if not self._grouping:
            return
        self._grouping = False
        try:
            if self.db.conn.in_transaction:
                search.index_pending(self.db.conn)
                self.db.conn.execute("COMMIT")
            self.db.conn.execute("PRAGMA wal_autocheckpoint=1000")  # SQLite's default
        except sqlite3.Error as exc:
            self.db.conn.rollback()
            raise StoreError(f"database error: {exc}") from exc
        finally:
            if self._checkpointer is not None:
                self._checkpointer.request()

    def _grouped(self, new: int) -> None:
        """After a write in a group: commit when it holds enough."""
        self._group_items += new
        if self._group_items >= self.GROUP_ITEMS:
            self.end_group()
            self.begin_group()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Atomic: a transaction, or inside one a savepoint. The savepoint has one name
        (nested ones are released in order), so its statements stay prepared; sqlite-utils'
        `atomic` names each anew (a random token), which every ingest paid for."""
        conn = self.db.conn
        try:
            if not conn.in_transaction:
                with self.db.atomic():
                    yield
                return
            conn.execute("SAVEPOINT store")
            try:
                yield
            except BaseException:
                if conn.in_transaction:  # an error may have ended the transaction already
                    conn.execute("ROLLBACK TO store")
                    conn.execute("RELEASE store")
                raise
            conn.execute("RELEASE store")
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
                for statement in statements(sql):
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
                                 r["failures"], tuple(json.loads(r["warnings"] or "[]")),
                                 schedule.schedule_from_row(r))
            for r in self._rows("SELECT id, etag, last_modified, body_hash, failures, warnings, "
                                f"{schedule.SCHEDULE_COLUMNS} FROM sources")
            if r["id"] in wanted
        }

    def host_states(self) -> dict[str, HostState]:
        """Per-host politeness state (429 slow-downs), as the last poll left it."""
        try:
            return schedule.host_states(self.db.conn)
        except sqlite3.Error as exc:
            raise StoreError(f"database error: {exc}") from exc

    def save_hosts(self, states: Sequence[HostState], now: datetime) -> None:
        with self.transaction():
            schedule.save_hosts(self.db.conn, states, now)

    def due_source_ids(self, now: datetime) -> list[str]:
        rows = self._rows("SELECT id FROM sources WHERE enabled=1 AND "
                          "(next_due_at IS NULL OR next_due_at <= ?) ORDER BY next_due_at",
                          (ts(now),))
        return [r["id"] for r in rows]

    def reschedule(self, interval_of: Mapping[str, int], now: datetime,
                   at_once: Sequence[str] = ()) -> None:
        """After a config reload: the sources of `at_once` (just added) are due now; each
        source of `interval_of` (its interval changed) is due one new interval after its last
        fetch (now, if that is past). A failing source keeps its back-off time."""
        with self.transaction():
            for sid in at_once:
                self.db.execute("UPDATE sources SET next_due_at=? WHERE id=?", (ts(now), sid))
            for sid, interval in interval_of.items():
                # an adaptive source learns again, from its new interval
                self.db.execute("UPDATE sources SET effective_interval=NULL WHERE id=?", (sid,))
                rows = self._rows("SELECT last_fetch_at FROM sources WHERE id=? AND failures=0 "
                                  "AND last_fetch_at IS NOT NULL", (sid,))
                if not rows:
                    continue
                due = max(parse_ts(rows[0]["last_fetch_at"]) + timedelta(seconds=interval), now)
                self.db.execute("UPDATE sources SET next_due_at=? WHERE id=?", (ts(due), sid))

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
        if report.outcome == "skipped":  # not fetched (its host asked us to wait)
            schedule.defer(self.db.conn, report.source_id, record.next_due)
            return
        if record.schedule is not None:
            schedule.write_schedule(self.db.conn, report.source_id, record.schedule)
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
        for chunk in chunks(list(keys), 500):
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
               now: datetime, sampled: datetime | None = None,
               fingerprints: Mapping[str, bytes] | None = None) -> tuple[int, int, int]:
        """Store one fetch's items (each with its agency) in one transaction.

        Items are unique on (scope, key): the scope is the source id, or a name shared by the
        sources of one portal whose item-id rule makes the same article one item everywhere.
        Each entry carries the agency and the priority of that assignment: a stored item changes
        agency only for a higher priority (a rule beats a source default), so an article seen
        on several pages of one portal keeps one agency.
        Views are sampled for every item that has them, at `sampled` (the poll's start): a
        poll that sees an article on several pages of a portal stores one sample.
        `fingerprints` (item key -> `dedupe.pack`), when given, were computed elsewhere (a
        parse worker); the others are computed here.
        Returns (new, updated, unchanged)."""
        new = updated = unchanged = 0
        at = ts(now)
        sample_at = ts(sampled or now)
        execute = self.db.conn.execute  # the hot path skips sqlite-utils' statement checks
        with _collector_paused(), self.transaction():
            existing = self._existing(scope, [item.key for item, _, _ in entries])
            fresh: list[tuple[Item, str, int]] = []
            fresh_keys: set[str] = set()
            for entry in entries:  # new keys, the first entry of each
                if entry[0].key not in existing and entry[0].key not in fresh_keys:
                    fresh_keys.add(entry[0].key)
                    fresh.append(entry)
            if fresh:
                self.grouper.index.advance(grouping.day_number(now),
                                           self.grouper.settings.window_hours)
                self._insert_many(scope, fresh, at, sample_at, fingerprints or {})
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
            for chunk in chunks(seen, 500):
                self.db.execute(
                    f"UPDATE items SET last_seen=? WHERE id IN ({','.join('?' * len(chunk))})",
                    (at, *chunk))
            if fresh and not self._grouping:  # a group's are indexed when it commits
                search.index_pending(self.db.conn)
        if self._grouping:
            self._grouped(new)
        return new, updated, unchanged

    def _existing(self, scope: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(keys, 500):
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(
                f"SELECT id, key, content_hash, agency, agency_priority, story_id, published, "
                f"dated_by, content = '' AS no_content "
                f"FROM items WHERE scope=? AND key IN ({marks})", (scope, *chunk)):
                found[row["key"]] = row
        return found

    def _insert_many(self, scope: str, entries: Sequence[tuple[Item, str, int]], at: str,
                     sample_at: str, packed: Mapping[str, bytes]) -> None:
        """Insert new items, their stories, dedupe keys and first view samples, a statement
        per table. Each new item joins a story or starts one (`grouping.Grouper.plan`)."""
        conn = self.db.conn
        items = [e[0] for e in entries]
        uids = [item_uid(scope, item.key) for item in items]
        fps = [dedupe.unpack(data) if (data := packed.get(i.key)) is not None
               else dedupe.item_fingerprint(i.title, i.summary, i.content) for i in items]
        frequency = self.grouper.words.get(set().union(*(fp.key_words for fp in fps)))
        hot = self.grouper.hot
        both = [dedupe.index_keys(fp, frequency) for fp in fps]
        keys = [[k for k in ik.filing if k not in hot] for ik in both]
        plan = self.grouper.plan(scope, items, uids, fps, keys, both, at)
        self.grouper.words.add(fps)
        # (published, updated) as stored: the items' rows, new stories, stories joined
        times = [(p, ts(item.updated) if item.updated else p)
                 for item in items for p in (ts(item.published),)]
        rows: list[tuple[Any, ...]] = []
        for n, (item, agency, priority) in enumerate(entries):
            rows.append((
                uids[n], scope, item.source_id, item.key, agency, priority, item.link,
                item.title, item.summary, item.content, item.author,
                _categories(item.categories), item.image, *times[n], item.dated_by, at, at,
                item.content_hash, plan.items[n].story_id, item.views, item.views,
                at if item.views is not None else None))
        conn.executemany(
            "INSERT INTO items (uid, scope, source_id, key, agency, agency_priority, link, title, "
            "summary, content, author, categories, image, published, updated, dated_by, "
            "first_seen, last_seen, content_hash, story_id, views, views_max, views_at, "
            "indexed) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)", rows)
        item_ids = self._inserted_ids(scope, items)
        # the story rows follow their first items (the foreign key is checked at commit)
        conn.executemany(
            "INSERT OR IGNORE INTO stories (id, lead_item, published, updated, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(sid, item_ids[n], *times[n], at)
             for sid, n in plan.new_stories.items() if plan.final(sid) == sid])
        for src, dst, reason in plan.merges:
            if src not in plan.new_stories:
                self._merge_story(src, dst, reason, at)
        days = [grouping.day_number(item.published) for item in items]
        self.grouper.index.file(
            [(item_ids[n], days[n], keys[n]) for n in range(len(items))],
            [(item_ids[n], days[n], packed.get(item.key) or dedupe.pack(fps[n]))
             for n, item in enumerate(items)])
        # a plain INSERT: the foreign key to items means no row of an earlier item with this
        # id can be left, and OR REPLACE on this table cost seven times as much (at 1M: 27 µs
        # a row against 4)
        conn.executemany(
            "INSERT INTO story_links (item_id, method, matched_item, details, at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(item_ids[n], p.method,
              p.matched if p.matched_index is None else item_ids[p.matched_index], p.details, at)
             for n, p in enumerate(plan.items)])
        for n, fp in enumerate(fps):
            self.grouper.remember(item_ids[n], fp)
        self._stories_joined(plan, item_ids, times)
        conn.executemany(  # a new item's first sample (plain INSERT, as for story links)
            "INSERT INTO view_samples (item_id, at, views) VALUES (?, ?, ?)",
            [(item_ids[n], sample_at, item.views) for n, item in enumerate(items)
             if item.views is not None])

    def _inserted_ids(self, scope: str, items: Sequence[Item]) -> list[int]:
        """The ids the rows of `items` just got, in order. SQLite gives a new row the largest
        id plus one, so one `executemany` makes consecutive ids ending at the last insert's;
        the first and last rows' keys confirm it (else the ids are looked up by key)."""
        conn = self.db.conn
        last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        first = last - len(items) + 1
        # by id only: with the scope in the query, SQLite walks the scope's (scope, key) index
        ends = {i: (s, k) for i, s, k in conn.execute(
            "SELECT id, scope, key FROM items WHERE id IN (?, ?)", (first, last))}
        if ends.get(first) == (scope, items[0].key) and ends.get(last) == (scope, items[-1].key):
            return list(range(first, last + 1))
        stored = self._existing(scope, [item.key for item in items])
        return [stored[item.key]["id"] for item in items]

    def _stories_joined(self, plan: grouping.Plan, item_ids: Sequence[int],
                        times: Sequence[tuple[str, str]]) -> None:
        """Bring the stories new items joined up to date. A merged story, or any when the
        config prefers agencies as leads, is worked out again from all its items
        (`_refresh_story`); otherwise a join can only move the story's dates outwards and
        make the earliest new item its lead, which one update by id does (the three queries
        over the story's items cost 36 µs a story at a million items)."""
        merged = {dst for _, dst, _ in plan.merges}
        firsts = {sid: n for sid, n in plan.new_stories.items() if plan.final(sid) == sid}
        joined: dict[str, tuple[str, int, str]] = {}  # story -> (published, id, updated)
        for n, planned in enumerate(plan.items):
            story = planned.story_id
            if story in merged or firsts.get(story) == n:
                continue
            published, updated = times[n]
            seen = joined.get(story)
            if seen is None:
                joined[story] = (published, item_ids[n], updated)
            else:  # the earliest (and of equal times the first stored) leads
                joined[story] = (*min(seen[:2], (published, item_ids[n])),
                                 max(seen[2], updated))
        full = merged | joined.keys() if self.grouper.settings.prefer_lead else merged
        for story_id in sorted(full):
            self._refresh_story(story_id)
        self.db.conn.executemany(
            "UPDATE stories SET lead_item=CASE WHEN ?1 < published THEN ?2 ELSE lead_item END, "
            "published=MIN(published, ?1), updated=MAX(updated, ?3) WHERE id=?4",
            [(*joined[story], story) for story in sorted(joined.keys() - full)])

    def _merge_story(self, src: str, dst: str, reason: str, at: str) -> None:
        """Move every item of `src` into the older story `dst`; `src` is never shown again."""
        execute = self.db.conn.execute
        execute("UPDATE items SET story_id=? WHERE story_id=?", (dst, src))
        execute("DELETE FROM stories WHERE id=?", (src,))
        execute("UPDATE story_merges SET into_id=? WHERE into_id=?", (dst, src))
        execute("INSERT OR REPLACE INTO story_merges (from_id, into_id, at, reason) "
                "VALUES (?, ?, ?, ?)", (src, dst, at, reason))

    def _reindex(self, item_id: int, title: str, summary: str, content: str,
                 published: str) -> None:
        """File an item under the keys of its current title and text."""
        fp = dedupe.item_fingerprint(title, summary, content)
        self.grouper.remember(item_id, fp)
        day = grouping.day_number(parse_ts(published))
        execute = self.db.conn.execute
        self.grouper.index.remove(item_id)
        frequency = self.grouper.words.get(fp.key_words)
        self.grouper.index.file([(item_id, day, dedupe.index_keys(fp, frequency).filing)],
                                [(item_id, day, dedupe.pack(fp))])
        execute("UPDATE items SET indexed=1 WHERE id=?", (item_id,))

    def fill_fingerprints(self) -> int:
        """Keep the fingerprints of recent items that lack one (`Grouper.fill_fingerprints`);
        returns how many were made."""
        with self.transaction():
            return self.grouper.fill_fingerprints()

    def index_backlog(self, batch: int = 2000) -> int:
        """Index items stored before the dedupe index existed (they keep their stories)."""
        done = 0
        while True:
            rows = self._rows("SELECT id, title, summary, content, published FROM items "
                              "WHERE indexed=0 LIMIT ?", (batch,))
            if not rows:
                return done
            with self.transaction():
                for r in rows:
                    self._reindex(r["id"], r["title"], r["summary"], r["content"],
                                  r["published"])
                    self.db.conn.execute(
                        "INSERT OR IGNORE INTO story_links (item_id, method, at) "
                        "VALUES (?, 'stored before dedupe', ?)", (r["id"], ts(datetime.now(UTC))))
            done += len(rows)

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
             _categories(item.categories), item.image, published,
             updated, item.content_hash, row["id"]),
        )
        if row["content_hash"] != item.content_hash:  # the title or text may have changed
            stored = self._rows("SELECT title, summary, content FROM items WHERE id=?",
                                (row["id"],))[0]
            self._reindex(row["id"], stored["title"], stored["summary"], stored["content"],
                          published)
        story = self._rows("SELECT story_id FROM items WHERE id=?", (row["id"],))[0]
        self._refresh_story(story["story_id"])

    def _refresh_story(self, story_id: str) -> None:
        """The lead item is the earliest published, or the earliest of the first agency in
        `prefer_lead` that published it; the story's dates follow its items."""
        prefer = self.grouper.settings.prefer_lead
        rank = ("CASE agency " + " ".join(f"WHEN ?{n + 2} THEN {n}" for n in range(len(prefer)))
                + f" ELSE {len(prefer)} END, ") if prefer else ""
        self.db.execute(
            "UPDATE stories SET "
            f"lead_item=(SELECT id FROM items WHERE story_id=?1 ORDER BY {rank}published, id "
            "LIMIT 1), "
            "published=(SELECT MIN(published) FROM items WHERE story_id=?1), "
            "updated=(SELECT MAX(updated) FROM items WHERE story_id=?1) WHERE id=?1",
            (story_id, *prefer))

    # --- story overrides and explanations (store/stories.py) ---------------------------------

    def configure_dedupe(self, settings: DedupeSettings,
                         overrides: Sequence[StoryOverride]) -> list[str]:
        """Use these settings and admin decisions from now on, and apply the decisions to what
        is stored (idempotent). Returns what was done, for the log."""
        self.grouper.settings = settings
        self.grouper.overrides = tuple(overrides)
        return self.apply_overrides()

    def apply_overrides(self) -> list[str]:
        with self.transaction():
            return stories.apply_overrides(self, self.grouper.overrides, ts(datetime.now(UTC)))

    def story_id_for(self, ref: str) -> str | None:
        """A story id, a merged-away story id, an item id or a link -> the current story."""
        return stories.story_id_for(self, ref)

    def story_explain(self, story_id: str) -> dict[str, Any]:
        """How a story was formed: each item's reason and figures, and merged-away ids."""
        return stories.story_explain(self, story_id)

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

    def search_stories(self, words: str, agencies: Sequence[str] | None,
                       since: datetime | None, limit: int) -> list[Story]:
        """Stories with an item whose title or summary has all of `words` (store/search.py),
        newest first."""
        query = search.fts_query(words)
        if query is None:
            return []
        try:
            ids = search.search_story_ids(self.db.conn, query, agencies,
                                          ts(since) if since else None, limit)
        except sqlite3.Error as exc:
            raise StoreError(f"database error: {exc}") from exc
        return self.stories_by_id(ids)

    def stories_by_id(self, story_ids: Sequence[str]) -> list[Story]:
        """Stories in the given order, each with its lead item first, then by date."""
        items: dict[str, list[StoredItem]] = {sid: [] for sid in story_ids}
        leads: dict[str, int] = {}
        for chunk in chunks(list(story_ids), 500):
            marks = ",".join("?" * len(chunk))
            for r in self._rows(
                f"SELECT {self._ITEM_COLUMNS} FROM items WHERE story_id IN ({marks}) "
                "ORDER BY published, id", chunk):
                items[r["story_id"]].append(_stored_item(r))
            leads.update((r["id"], r["lead_item"]) for r in self._rows(
                f"SELECT id, lead_item FROM stories WHERE id IN ({marks})", chunk))
        return [Story(sid, tuple(sorted(its, key=lambda it: it.id != leads.get(sid))))
                for sid, its in items.items() if its]

    # --- retention and health (store/retention.py, store/health.py) -----------------------

    def meta_get(self, name: str) -> str | None:
        rows = self._rows("SELECT value FROM store_meta WHERE name=?", (name,))
        return str(rows[0]["value"]) if rows else None

    def meta_set(self, name: str, value: str) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO store_meta (name, value) VALUES (?, ?)",
                            (name, value))

    def forget_items(self, item_ids: Iterable[int]) -> None:
        """Drop deleted items from the in-memory caches."""
        for item_id in item_ids:
            self.grouper._fps.pop(item_id, None)

    def compact_view_samples(self, horizons: SampleHorizons,
                             stop: retention.Stop | None = None) -> int:
        return retention.compact_samples(self, horizons, stop=stop)

    def trim_fetches(self, per_source: int) -> int:
        return retention.trim_fetches(self, per_source)

    def prune_items(self, horizon: datetime, now: datetime,
                    stop: retention.Stop | None = None) -> retention.PruneReport:
        return retention.prune_items(self, horizon, now, stop=stop)

    def pruned_keys(self, scope: str, keys: Sequence[str]) -> set[str]:
        try:
            return retention.pruned_keys(self.db.conn, scope, keys)
        except sqlite3.Error as exc:
            raise StoreError(f"database error: {exc}") from exc

    def new_per_day(self, now: datetime) -> dict[str, float]:
        try:
            return health.new_per_day(self.db.conn, now)
        except sqlite3.Error as exc:
            raise StoreError(f"database error: {exc}") from exc

    def touch(self, now: datetime, wait: float = 2.0) -> None:
        """A real write for `/healthz`, rolled back: it takes the write lock and writes a row
        (so a read-only file, directory or a lock held too long fails it), but commits
        nothing, since a commit from another connection would make a poll's open read
        transaction fail to upgrade ("database is locked") instead of waiting. Waits at most
        `wait` seconds for another writer."""
        conn = self.db.conn
        conn.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                health.touch(conn, now)
            finally:
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StoreError(f"database error: {exc}") from exc
        finally:
            conn.execute("PRAGMA busy_timeout=30000")

def _stored_item(r: dict[str, Any]) -> StoredItem:
    return StoredItem(
        id=r["id"], uid=r["uid"], source_id=r["source_id"], agency=r["agency"], link=r["link"],
        title=r["title"], summary=r["summary"], content=r["content"], author=r["author"],
        published=parse_ts(r["published"]), updated=parse_ts(r["updated"]), views=r["views"],
        categories=tuple(json.loads(r["categories"] or "[]")), image=r["image"],
        story_id=r["story_id"],
    )

