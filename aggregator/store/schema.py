"""Numbered migrations, applied in order when the database is opened. Never edit a released
migration: add the next number. All times are UTC text, `YYYY-MM-DDTHH:MM:SS.ffffffZ`."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
CREATE TABLE sources (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    agency TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    interval INTEGER NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    etag TEXT,
    last_modified TEXT,
    body_hash TEXT,
    final_url TEXT,
    last_fetch_at TEXT,
    last_success_at TEXT,
    last_status INTEGER,
    last_error TEXT,
    last_error_at TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    warnings TEXT NOT NULL DEFAULT '[]',
    next_due_at TEXT,
    last_duration REAL,
    item_count INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE stories (
    id TEXT PRIMARY KEY,
    lead_item INTEGER,
    published TEXT NOT NULL,
    updated TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX stories_published ON stories (published);

CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL,  -- derived from (scope, key), which is unique
    scope TEXT NOT NULL,
    source_id TEXT NOT NULL,
    key TEXT NOT NULL,
    agency TEXT NOT NULL,
    agency_priority INTEGER NOT NULL DEFAULT 1,
    link TEXT,
    title TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT '',
    author TEXT,
    categories TEXT NOT NULL DEFAULT '[]',
    image TEXT,
    published TEXT NOT NULL,
    updated TEXT NOT NULL,
    dated_by TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    views INTEGER,
    views_max INTEGER,
    views_at TEXT,
    story_id TEXT NOT NULL REFERENCES stories (id) DEFERRABLE INITIALLY DEFERRED,
    article_tries INTEGER NOT NULL DEFAULT 0,
    UNIQUE (scope, key)
);
CREATE INDEX items_link ON items (link);
CREATE INDEX items_story ON items (story_id);
CREATE INDEX items_agency_published ON items (agency, published);

CREATE TABLE view_samples (
    item_id INTEGER NOT NULL REFERENCES items (id),
    at TEXT NOT NULL,
    views INTEGER NOT NULL,
    PRIMARY KEY (item_id, at)
) WITHOUT ROWID;

CREATE TABLE fetches (
    id INTEGER PRIMARY KEY,
    source_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    duration REAL NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER,
    bytes INTEGER NOT NULL DEFAULT 0,
    new INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    warnings TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX fetches_source ON fetches (source_id, started_at);

CREATE TABLE robots (
    origin TEXT PRIMARY KEY,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    fetched_at TEXT NOT NULL
);
"""),
    (2, """
-- dedupe.index_keys of the recent days, by key (store/index.py)
CREATE TABLE dedupe_keys (
    key INTEGER NOT NULL,  -- the title, MinHash bands, rare words
    day INTEGER NOT NULL,  -- the item's published day (days since 1970-01-01 UTC)
    item_id INTEGER NOT NULL,
    PRIMARY KEY (key, day, item_id)
) WITHOUT ROWID;
CREATE INDEX dedupe_keys_item ON dedupe_keys (item_id);

-- the days before store_meta.dedupe_horizon, by day
CREATE TABLE dedupe_keys_old (
    day INTEGER NOT NULL,
    key INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    PRIMARY KEY (day, key, item_id)
) WITHOUT ROWID;
CREATE INDEX dedupe_keys_old_item ON dedupe_keys_old (item_id);

CREATE TABLE store_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- how many items have each title or lede word (dedupe.index_keys ranks words by it)
CREATE TABLE dedupe_words (
    word TEXT PRIMARY KEY,
    n INTEGER NOT NULL
) WITHOUT ROWID;

-- why each item is in its story: first, link, title, near, merge, split
CREATE TABLE story_links (
    item_id INTEGER PRIMARY KEY REFERENCES items (id),
    method TEXT NOT NULL,
    matched_item INTEGER,
    details TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL
);

-- story ids merged into an older story; they are never published again
CREATE TABLE story_merges (
    from_id TEXT PRIMARY KEY,
    into_id TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX story_merges_into ON story_merges (into_id);

ALTER TABLE items ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX items_unindexed ON items (id) WHERE indexed = 0;
"""),
    (3, """
-- full-text search of titles and summaries (/feeds/search), kept by triggers; the text
-- lives in items only (external content)
CREATE VIRTUAL TABLE items_fts USING fts5 (
    title, summary, content='items', content_rowid='id', detail='none',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
    INSERT INTO items_fts (rowid, title, summary) VALUES (new.id, new.title, new.summary);
END;
CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
    INSERT INTO items_fts (items_fts, rowid, title, summary)
    VALUES ('delete', old.id, old.title, old.summary);
END;
CREATE TRIGGER items_fts_update AFTER UPDATE OF title, summary ON items BEGIN
    INSERT INTO items_fts (items_fts, rowid, title, summary)
    VALUES ('delete', old.id, old.title, old.summary);
    INSERT INTO items_fts (rowid, title, summary) VALUES (new.id, new.title, new.summary);
END;
INSERT INTO items_fts (items_fts) VALUES ('rebuild');
"""),
    (4, """
-- the schedule (aggregator/policy.py): the adaptive interval in use, the decayed count of new
-- items it is learnt from, consecutive parse failures, why a source is broken, and where a
-- 301/308 says it moved
ALTER TABLE sources ADD COLUMN effective_interval INTEGER;
ALTER TABLE sources ADD COLUMN activity REAL NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN parse_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN broken_reason TEXT;
ALTER TABLE sources ADD COLUMN moved_to TEXT;

-- per-host politeness kept across polls and restarts: the slow-down level 429s earned and
-- until when the host is left alone
CREATE TABLE hosts (
    host TEXT PRIMARY KEY,
    level INTEGER NOT NULL DEFAULT 0,
    slow_until TEXT,
    reason TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL
);
"""),
    (5, """
-- items deleted by retention (`[settings.retention] prune_after`), by (scope, key): a source
-- that still lists one does not store it again as new (store/retention.py)
CREATE TABLE pruned_items (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    pruned_at TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
"""),
    (6, """
-- the fingerprints (dedupe.pack) of the recent days' items (store/index.py), so that a new
-- process compares new items with stored ones without computing theirs again from the text
CREATE TABLE dedupe_fingerprints (
    item_id INTEGER PRIMARY KEY,
    day INTEGER NOT NULL,  -- as in dedupe_keys: the item's published day
    data BLOB NOT NULL
);
CREATE INDEX dedupe_fingerprints_day ON dedupe_fingerprints (day);
"""),
    (7, """
-- the recent days' keys are held in memory (store/index.py): every key row is in one
-- day-ordered table, and the key-ordered table of the recent days is gone
INSERT OR IGNORE INTO dedupe_keys_old (day, key, item_id)
    SELECT day, key, item_id FROM dedupe_keys ORDER BY day, key, item_id;
DROP TABLE dedupe_keys;
ALTER TABLE dedupe_keys_old RENAME TO dedupe_keys;
-- its index keeps the name dedupe_keys_old_item: renaming an index means building it again
"""),
    (8, """
-- new items enter the search index in bulk, just before their transaction commits
-- (Store._index_search): FTS5 writes a segment at each savepoint, and one per ingest made
-- the search index a large part of the cost of storing an item. Until then they wait here.
CREATE TABLE search_pending (item_id INTEGER PRIMARY KEY);
DROP TRIGGER items_fts_insert;
CREATE TRIGGER items_search_pending AFTER INSERT ON items BEGIN
    INSERT INTO search_pending (item_id) VALUES (new.id);
END;
DROP TRIGGER items_fts_delete;
CREATE TRIGGER items_fts_delete AFTER DELETE ON items
WHEN NOT EXISTS (SELECT 1 FROM search_pending WHERE item_id = old.id) BEGIN
    INSERT INTO items_fts (items_fts, rowid, title, summary)
    VALUES ('delete', old.id, old.title, old.summary);
END;
CREATE TRIGGER items_search_pending_delete AFTER DELETE ON items BEGIN
    DELETE FROM search_pending WHERE item_id = old.id;
END;
DROP TRIGGER items_fts_update;
CREATE TRIGGER items_fts_update AFTER UPDATE OF title, summary ON items
WHEN NOT EXISTS (SELECT 1 FROM search_pending WHERE item_id = old.id) BEGIN
    INSERT INTO items_fts (items_fts, rowid, title, summary)
    VALUES ('delete', old.id, old.title, old.summary);
    INSERT INTO items_fts (rowid, title, summary) VALUES (new.id, new.title, new.summary);
END;
"""),
    (9, """
-- the recent days' keys as the process that closed last held them in memory (store/index.py,
-- KeyIndex.save_snapshot): a new process whose database is still at that generation reads
-- this one row instead of every key row of the recent days (a later migration that changes
-- dedupe_keys must delete it, or set a new generation)
CREATE TABLE dedupe_snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL,  -- store_meta.dedupe_generation when it was written
    format TEXT NOT NULL,  -- index.SNAPSHOT_FORMAT (marshal's format is Python's own)
    data BLOB NOT NULL
);
"""),
    (10, """
-- one row per item in place of one per key and item (store/index.py): its day and its keys
-- packed in a blob (index.pack_keys; dedupe_pack_keys, registered by the store, packs a
-- comma-separated list). The memory a closing process left is of the old rows: dropped.
CREATE TABLE dedupe_item_keys (
    item_id INTEGER PRIMARY KEY,
    day INTEGER NOT NULL,  -- the item's published day (days since 1970-01-01 UTC)
    keys BLOB NOT NULL  -- signed 64-bit little-endian: the title, MinHash bands, rare words
);
INSERT INTO dedupe_item_keys (item_id, day, keys)
    SELECT item_id, MIN(day), dedupe_pack_keys(group_concat(key)) FROM dedupe_keys
    GROUP BY item_id;
CREATE INDEX dedupe_item_keys_day ON dedupe_item_keys (day);
DROP TABLE dedupe_keys;
DELETE FROM dedupe_snapshot;
"""),
    (11, """
-- the days before the recent ones by key (store/index.py, KeyIndex._old_day): one row a day,
-- made from its dedupe_item_keys rows when a lookup (a back-catalogue item) first needs it;
-- items filed into the day later have ids above last_item; filing again or removing an item
-- it holds deletes the row
CREATE TABLE dedupe_days (
    day INTEGER PRIMARY KEY,
    last_item INTEGER NOT NULL,  -- the largest item id it holds
    keys BLOB NOT NULL,  -- the day's keys, sorted (index.pack_keys)
    items BLOB NOT NULL  -- the item id of each key, likewise
);
"""),
]
