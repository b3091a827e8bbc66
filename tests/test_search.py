"""Full-text search in the store (store/search.py, migrations 3 and 8): the query a visitor's
words become, and the FTS5 index kept in step with the items by triggers and a bulk insert
before each commit, in real SQLite files."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.errors import StoreError
from aggregator.normalize.keys import content_hash
from aggregator.store import Store
from aggregator.store.search import fts_query
from aggregator.types import Item

T0 = datetime(2026, 3, 16, 2, 0, tzinfo=UTC)


def test_words_become_a_query_of_word_starts_never_fts_syntax() -> None:
    assert fts_query("Banjir  Jakarta banjir") == '"banjir"* "jakarta"*'
    assert fts_query('banjir" OR NEAR(x') == '"banjir"* "or"* "near"* "x"*'
    assert fts_query("Pemeriksaan Kesehatan Gratis") == \
        '"pemeriksaan"* "kesehatan"* "gratis"*'
    assert fts_query('  " * - ') is None and fts_query("") is None
    assert fts_query(" ".join(f"w{n}" for n in range(30))).count("*") == 12


def item(source: str, link: str, title: str, summary: str, hours: float = 0) -> Item:
    return Item(source_id=source, key=f"link:{link}", link=link, title=title, summary=summary,
                content="", author=None, published=T0 + timedelta(hours=hours), updated=None,
                dated_by="source", views=None, categories=(), image=None,
                content_hash=content_hash(title, summary))


def found(store: Store, words: str, agencies: list[str] | None = None,
          since: datetime | None = None) -> list[str]:
    return [st.lead.link or "" for st in store.search_stories(words, agencies, since, 50)]


def test_search_follows_inserts_edits_and_filters(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db")
    store.ingest("s1", [(item("s1", "https://a/1", "Banjir Rob di Muara Angke",
                              "<p>Air laut pasang merendam permukiman nelayan.</p>"), "dki", 1),
                        (item("s1", "https://a/2", "Vaksinasi Lansia di Cempaka Putih",
                              "<p>Puskesmas membuka layanan.</p>", 3), "dki", 1)], T0)
    store.ingest("s2", [(item("s2", "https://b/1", "Pengerukan Kali Ciliwung",
                              "<p>Mencegah banjir musim hujan.</p>", 5), "dsda", 1)], T0)
    assert found(store, "banjir") == ["https://b/1", "https://a/1"]  # newest first
    assert found(store, "BANJIR rob") == ["https://a/1"]  # every word, any case
    assert found(store, "nelayan") == ["https://a/1"]  # summaries too
    assert found(store, "vaksin") == ["https://a/2"]  # a word's start
    assert found(store, "banjir", agencies=["dsda"]) == ["https://b/1"]
    assert found(store, "banjir", agencies=[]) == []
    assert found(store, "banjir", since=T0 + timedelta(hours=4)) == ["https://b/1"]
    assert found(store, '" OR') == []  # syntax is text: no error, nothing matches
    # an edited title is searched under its new words only (the update trigger)
    store.ingest("s1", [(item("s1", "https://a/2", "Imunisasi Lansia di Cempaka Putih",
                              "<p>Puskesmas membuka layanan.</p>", 3), "dki", 1)], T0)
    assert found(store, "vaksinasi") == [] and found(store, "imunisasi") == ["https://a/2"]
    store.db.conn.execute("INSERT INTO items_fts (items_fts) VALUES ('integrity-check')")
    store.close()


def test_items_stored_before_the_search_index_are_found(tmp_path: Path) -> None:
    """Migration 3 indexes what is already stored (a database from before it)."""
    path = tmp_path / "a.db"
    store = Store(path)
    store.ingest("s1", [(item("s1", "https://a/1", "Banjir Rob di Muara Angke", ""), "dki",
                         1)], T0)
    conn = store.db.conn
    for name in ("items_search_pending", "items_search_pending_delete", "items_fts_delete",
                 "items_fts_update"):
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DROP TABLE items_fts")
    conn.execute("DROP TABLE search_pending")
    conn.execute("DELETE FROM schema_migrations WHERE version IN (3, 8)")
    store.close()
    store = Store(path)
    assert found(store, "angke") == ["https://a/1"]
    # raises (SQLITE_CORRUPT_VTAB) when the index and the items disagree
    store.db.conn.execute("INSERT INTO items_fts (items_fts) VALUES ('integrity-check')")
    store.close()


def test_a_group_indexes_its_items_when_it_commits(tmp_path: Path) -> None:
    """Within a group (a poll) new items enter the search index in bulk just before each
    commit (migration 8). An item edited before that, or rolled back, leaves the index
    consistent with the items, and other connections never see an item unsearchable."""
    path = tmp_path / "a.db"
    store = Store(path)
    other = sqlite3.connect(path)

    def pending() -> int:
        return int(store.db.conn.execute("SELECT COUNT(*) FROM search_pending").fetchone()[0])

    store.begin_group()
    store.ingest("s1", [(item("s1", "https://a/1", "Banjir Rob di Muara Angke", ""), "dki",
                         1)], T0)
    store.ingest("s1", [(item("s1", "https://a/1", "Banjir Rob di Kamal Muara", ""), "dki",
                         1)], T0)  # edited while it waits: indexed as it is at the commit
    store.db.conn.execute("CREATE TEMP TRIGGER boom BEFORE INSERT ON items "
                          "WHEN NEW.title = 'boom' BEGIN SELECT RAISE(ABORT, 'no'); END")
    with pytest.raises(StoreError):
        store.ingest("s1", [(item("s1", "https://a/2", "boom", "banjir"), "dki", 1)], T0)
    assert pending() == 1
    store.end_group()
    assert pending() == 0
    rows = other.execute("SELECT rowid FROM items_fts WHERE items_fts MATCH 'kamal'").fetchall()
    assert rows == other.execute("SELECT id FROM items").fetchall()
    assert found(store, "angke") == [] and found(store, "banjir") == ["https://a/1"]
    # an edit once indexed goes through the update trigger, a delete through the delete one
    store.ingest("s1", [(item("s1", "https://a/1", "Rob di Muara Angke", ""), "dki", 1)], T0)
    assert found(store, "kamal") == [] and found(store, "angke") == ["https://a/1"]
    with store.transaction():
        store.db.conn.execute("DELETE FROM story_links")
        store.db.conn.execute("DELETE FROM view_samples")
        store.db.conn.execute("DELETE FROM items")
    assert found(store, "angke") == []
    store.db.conn.execute("INSERT INTO items_fts (items_fts) VALUES ('integrity-check')")
    other.close()
    store.close()
