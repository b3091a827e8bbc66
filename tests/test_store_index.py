"""The dedupe index (store/index.py) and grouped commits, in real SQLite files: the recent
days are held in memory, every day in the table; lookups see both; other processes' writes and
rollbacks are noticed; word counts are buffered and survive a close; a group's commits are
visible to other connections only when made, and one failing write in a group loses nothing
else."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aggregator import dedupe
from aggregator.errors import StoreError
from aggregator.normalize.keys import content_hash
from aggregator.store import Store
from aggregator.store import index as key_index
from aggregator.store.grouping import day_number
from aggregator.store.index import RECENT_MARGIN_DAYS, KeyIndex, WordCounts
from aggregator.types import Item

T0 = datetime(2026, 3, 16, 2, 0, tzinfo=UTC)
TODAY = day_number(T0)
TEXT = ("Petugas Suku Dinas Penanggulangan Kebakaran Jakarta Barat memadamkan kebakaran rumah "
        "tinggal di Jalan Angke Indah, Kelurahan Angke, Kecamatan Tambora, Senin (16/3). "
        "Sebanyak 12 unit mobil pemadam dikerahkan dan api padam dalam satu jam. Tidak ada "
        "korban jiwa; kebakaran diduga akibat korsleting listrik di lantai dua rumah itu.")


def rows_in(store: Store) -> set[tuple[int, int, int]]:
    """(key, day, item id) of every key in the table."""
    return {(key, day, item_id) for item_id, day, keys in store.db.conn.execute(
        "SELECT item_id, day, keys FROM dedupe_item_keys")
        for key in key_index.unpack_keys(keys)}


def filed(rows: list[tuple[int, int, int]]) -> list[key_index.Filed]:
    """Key rows (key, day, item id) as items to file (item id, day, keys)."""
    items: dict[int, tuple[int, list[int]]] = {}
    for key, day, item_id in rows:
        items.setdefault(item_id, (day, []))[1].append(key)
    return [(item_id, day, keys) for item_id, (day, keys) in items.items()]


def test_days_leave_memory_and_are_still_found(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db")
    index = KeyIndex(store.db.conn)
    rows = [(7, TODAY - d, 100 + d) for d in range(15)] + [(8, TODAY, 1)]
    with store.transaction():
        index.file(filed(rows))
    assert rows_in(store) == set(rows)  # every row is in the table
    assert index.held() == {r[2]: r[1] for r in rows}  # no horizon yet: all held in memory
    with store.transaction():
        index.advance(TODAY, window_hours=96)
    keep = 96 // 24 + 1 + RECENT_MARGIN_DAYS
    assert index.horizon() == TODAY - keep
    assert rows_in(store) == set(rows)  # nothing moves in the table
    assert index.held() == {r[2]: r[1] for r in rows if r[1] >= TODAY - keep}
    # a lookup across the horizon sees memory and the table, only within its days, each
    # part by (day, item)
    found = index.lookup([7, 8, 9], TODAY - 12, TODAY - 2)
    assert found[7] == [(TODAY - d, 100 + d) for d in range(keep, 1, -1)] + \
        [(TODAY - d, 100 + d) for d in range(12, keep, -1)]
    assert 8 not in found and 9 not in found
    # an item dated before the horizon is filed in the table only; removed from both
    with store.transaction():
        index.file([(5, TODAY - 30, [9]), (6, TODAY, [9])])
        assert index.lookup([9], TODAY - 31, TODAY) == {9: [(TODAY, 6), (TODAY - 30, 5)]}
        index.remove(5)
        index.remove(6)
    assert index.lookup([9], TODAY - 31, TODAY) == {}
    assert 5 not in index.held() and 6 not in index.held()
    # advancing to the same day again changes nothing
    before = index.held()
    with store.transaction():
        index.advance(TODAY, window_hours=96)
    assert rows_in(store) == set(rows) and index.held() == before
    store.close()


def test_older_days_are_looked_up_in_one_row_per_day(tmp_path: Path) -> None:
    """A day before the recent ones is made into one `dedupe_days` row (keys sorted, with
    their items) the first time a lookup needs it, and other processes use that row. Items
    filed into the day later are found by their larger ids; removing an item the row holds
    deletes the row, and the next lookup makes it again. `older` limits which days are read."""
    path = tmp_path / "a.db"
    store, other = Store(path), Store(path)
    index = store.grouper.index
    old = TODAY - 40

    def rows_of_days() -> dict[int, int]:
        return dict(store.db.conn.execute("SELECT day, last_item FROM dedupe_days"))

    def item_reads(seen: list[str]) -> list[str]:  # an older day's item rows
        return [q for q in seen if "FROM dedupe_item_keys WHERE day=" in q]
    with store.transaction():
        index.file([(1, old, [7, 8]), (2, old, [7]), (3, old + 1, [7]), (4, TODAY, [7])])
        index.advance(TODAY, window_hours=96)
    seen = statements_of(store)
    with store.transaction():
        assert index.lookup([7, 8], old - 2, TODAY, older={old: [7]}) == \
            {7: [(TODAY, 4), (old, 1), (old, 2)]}
    assert len(item_reads(seen)) == 1  # the day and key asked for, not the days around it
    assert rows_of_days() == {old: 2}
    with store.transaction():
        index.file([(5, old, [7, 9])])  # a new item: a larger id than the row holds
    seen.clear()
    assert index.lookup([7, 9], old, old) == {7: [(old, 1), (old, 2), (old, 5)], 9: [(old, 5)]}
    assert item_reads(seen) == []  # the day is held, with the item filed since
    fresh = table_reader(sqlite3.connect(path))  # another process: the row and the late item
    fresh_seen: list[str] = []
    fresh.conn.set_trace_callback(fresh_seen.append)
    assert fresh.lookup([7, 9], old, old) == index.lookup([7, 9], old, old)
    assert [q for q in item_reads(fresh_seen) if "item_id>2" not in q] == []
    with store.transaction():
        index.remove(2)  # an item the row holds: the row goes
    assert rows_of_days() == {}
    with store.transaction():
        assert index.lookup([7, 8], old, old) == {7: [(old, 1), (old, 5)], 8: [(old, 1)]}
    assert rows_of_days() == {old: 5}  # made again
    with other.transaction():  # another process files into the day: seen here
        other.grouper.index.file([(6, old, [7])])
    assert index.lookup([7], old, old) == {7: [(old, 1), (old, 5), (old, 6)]}
    with store.transaction():  # an item of the row filed again (an edit): the row goes
        index.file([(1, old, [8])])
    assert rows_of_days() == {}
    assert index.lookup([7, 8], old, old) == {7: [(old, 5), (old, 6)], 8: [(old, 1)]}
    for day in range(old - key_index.OLD_DAYS_HELD - 5, old):
        index.lookup([7], day, day)
    assert len(index._old) == key_index.OLD_DAYS_HELD and old not in index._old
    store.close()
    other.close()


def test_key_rows_of_an_older_database_become_one_row_per_item(tmp_path: Path) -> None:
    """Migration 10: a database from before it (a row per key and item in `dedupe_keys`)
    keeps every key of every item, the memory a closing process left is not read, and
    copies still group with what was stored before."""
    path = tmp_path / "a.db"
    store = Store(path)
    titles = ["Kebakaran Rumah di Tambora", "Banjir di Kemang", "Rapat Paripurna DPRD DKI"]
    store.ingest("s1", [(item("s1", f"https://a/{n}", title, TEXT, T0 + timedelta(hours=n)),
                         "x", 1) for n, title in enumerate(titles)], T0)
    before = rows_in(store)
    assert len({i for _, _, i in before}) == 3
    conn = store.db.conn
    with store.transaction():  # as migration 9 left it
        conn.execute("CREATE TABLE dedupe_keys (day INTEGER NOT NULL, key INTEGER NOT NULL, "
                     "item_id INTEGER NOT NULL, PRIMARY KEY (day, key, item_id)) "
                     "WITHOUT ROWID")
        conn.execute("CREATE INDEX dedupe_keys_old_item ON dedupe_keys (item_id)")
        conn.executemany("INSERT INTO dedupe_keys (key, day, item_id) VALUES (?, ?, ?)",
                         sorted(before))
        conn.execute("DROP TABLE dedupe_item_keys")
        conn.execute("DELETE FROM schema_migrations WHERE version=10")
    store.close()  # leaves a snapshot
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM dedupe_snapshot").fetchone() \
        == (1,)
    store = Store(path)
    assert rows_in(store) == before
    tables = {n for (n,) in store.db.conn.execute("SELECT name FROM sqlite_master")}
    assert "dedupe_keys" not in tables and "dedupe_keys_old_item" not in tables
    assert store.db.conn.execute("SELECT COUNT(*) FROM dedupe_snapshot").fetchone() == (0,)
    assert holders_of(store.grouper.index) == holders_of(table_reader(store.db.conn))
    store.ingest("s2", [(item("s2", "https://b/0", "Rumah Terbakar di Tambora", TEXT,
                              T0 + timedelta(hours=5)), "y", 1)], T0 + timedelta(hours=5))
    assert story(store, "https://a/0") == story(store, "https://b/0")
    store.close()


def test_memory_follows_other_processes_and_rollbacks(tmp_path: Path) -> None:
    """Two stores on one file (serve and a cron run, or an admin's command): each sees what
    the other filed, removed or moved, and a rolled-back write leaves nothing in memory."""
    path = tmp_path / "a.db"
    a, b = Store(path), Store(path)
    ia, ib = a.grouper.index, b.grouper.index
    with a.transaction():
        ia.file([(1, TODAY, [7, 8])])
    assert ib.lookup([7, 8], TODAY - 1, TODAY) == {7: [(TODAY, 1)], 8: [(TODAY, 1)]}
    with b.transaction():
        ib.file([(2, TODAY, [7])])
        ib.remove(1)
    assert ia.lookup([7, 8], TODAY - 1, TODAY) == {7: [(TODAY, 2)]}
    with pytest.raises(StoreError, match="no such table"), a.transaction():
        ia.file([(3, TODAY, [7])])
        assert ia.lookup([7], TODAY, TODAY) == {7: [(TODAY, 2), (TODAY, 3)]}
        a.db.conn.execute("INSERT INTO no_such_table VALUES (1)")
    assert ia.lookup([7], TODAY, TODAY) == {7: [(TODAY, 2)]}  # read again after the rollback
    later = TODAY + 20
    with b.transaction():
        ib.advance(later, window_hours=96)
    assert ia.horizon() == ib.horizon() > TODAY and ia.held() == {}
    assert ia.lookup([7], TODAY, TODAY) == {7: [(TODAY, 2)]}  # from the table
    a.close()
    b.close()


def item(source: str, link: str, title: str, text: str, when: datetime) -> Item:
    content = f"<p>{text}</p>"
    return Item(source_id=source, key=f"link:{link}", link=link, title=title, summary="",
                content=content, author=None, published=when, updated=None,
                dated_by="source", views=None, categories=(), image=None,
                content_hash=content_hash(title, content))


def story(store: Store, link: str) -> str:
    return str(store._rows("SELECT story_id FROM items WHERE link=?", (link,))[0]["story_id"])


def test_copies_group_on_both_sides_of_the_horizon(tmp_path: Path) -> None:
    """Through the real ingest: a copy a day later groups with its original whether both
    are recent or both are old (a new source's back catalogue, after the days moved)."""
    store = Store(tmp_path / "a.db")
    old = T0 - timedelta(days=40)
    store.ingest("s1", [(item("s1", "https://a/old", "Kebakaran Rumah di Tambora", TEXT, old),
                         "x", 1)], old)
    store.ingest("s1", [(item("s1", "https://a/new", "Kebakaran Rumah di Tambora", TEXT, T0),
                         "x", 1)], T0)  # moves the old days out of the recent table
    index = store.grouper.index
    assert index.horizon() > day_number(old)
    held = index.held()
    assert held and all(day >= index.horizon() for day in held.values())
    assert {day for _, day, _ in rows_in(store)} == {day_number(old), TODAY}
    store.ingest("s2", [(item("s2", "https://b/old", "Rumah Terbakar di Tambora", TEXT,
                              old + timedelta(hours=20)), "y", 1)], T0)
    store.ingest("s2", [(item("s2", "https://b/new", "Rumah Terbakar di Tambora", TEXT,
                              T0 + timedelta(hours=20)), "y", 1)], T0 + timedelta(hours=21))
    assert story(store, "https://a/old") == story(store, "https://b/old")
    assert story(store, "https://a/new") == story(store, "https://b/new")
    assert story(store, "https://a/old") != story(store, "https://a/new")
    store.close()


def test_word_counts_are_buffered_and_written_on_close(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = Store(path)
    fp = dedupe.fingerprint("Kebakaran Rumah di Tambora", TEXT)
    word = sorted(fp.key_words)[0]
    counts = store.grouper.words
    counts.add([fp, fp])
    assert counts.get([word])[word] == 2 and counts.get([])[dedupe.TOTAL] == 2
    assert store.db.conn.execute("SELECT COUNT(*) FROM dedupe_words").fetchone()[0] == 0
    store.close()
    store = Store(path)
    assert store.grouper.words.get([word]) == {word: 2, dedupe.TOTAL: 2}
    store.close()


def test_word_counts_flush_every_so_many_items(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db")
    counts = WordCounts(store.db.conn)
    counts.FLUSH_ITEMS = 3
    fp = dedupe.fingerprint("Kebakaran Rumah di Tambora", TEXT)
    with store.transaction():
        counts.add([fp, fp])
        assert not store.db.conn.execute("SELECT * FROM dedupe_words").fetchall()
        counts.add([fp])
    assert dict(store.db.conn.execute("SELECT word, n FROM dedupe_words"))[dedupe.TOTAL] == 3
    assert not counts.pending
    store.close()


def test_a_group_commits_in_steps_and_a_failed_write_loses_only_itself(tmp_path: Path
                                                                         ) -> None:
    path = tmp_path / "a.db"
    store = Store(path)
    store.GROUP_ITEMS = 3
    other = sqlite3.connect(path)

    def visible() -> int:
        return int(other.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    store.begin_group()
    for n in range(2):
        store.ingest("s1", [(item("s1", f"https://a/{n}", f"Judul {n}", "", T0), "x", 1)], T0)
    assert visible() == 0  # not committed yet
    store.ingest("s1", [(item("s1", "https://a/2", "Judul 2", "", T0), "x", 1)], T0)
    assert visible() == 3  # the third item reached GROUP_ITEMS
    store.ingest("s1", [(item("s1", "https://a/3", "Judul 3", "", T0), "x", 1)], T0)
    store.db.conn.execute("CREATE TEMP TRIGGER boom BEFORE INSERT ON items "
                          "WHEN NEW.title = 'boom' BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    with pytest.raises(StoreError, match="disk says no"):
        store.ingest("s1", [(item("s1", "https://a/4", "boom", "", T0), "x", 1)], T0)
    store.ingest("s1", [(item("s1", "https://a/5", "Judul 5", "", T0), "x", 1)], T0)
    store.end_group()
    assert visible() == 5
    assert other.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    other.close()
    store.close()


@pytest.mark.parametrize("largest_id", [None, 2**63 - 1])
def test_new_items_get_their_own_ids_in_every_table(tmp_path: Path,
                                                    largest_id: int | None) -> None:
    """A batch's rows get consecutive ids, read from the last insert; when SQLite picks ids
    at random (the largest possible id is taken) they are looked up by key instead."""
    store = Store(tmp_path / "a.db")
    store.ingest("s1", [(item("s1", "https://a/0", "Rapat Paripurna DPRD DKI", TEXT, T0),
                         "x", 1)], T0)
    if largest_id is not None:
        with store.transaction():
            store.db.conn.execute("PRAGMA defer_foreign_keys=ON")  # checked at commit
            store.db.conn.execute("UPDATE items SET id=? WHERE link='https://a/0'",
                                  (largest_id,))
            store.db.conn.execute("UPDATE story_links SET item_id=?", (largest_id,))
            store.db.conn.execute("UPDATE stories SET lead_item=?", (largest_id,))
            store.db.conn.execute("DELETE FROM dedupe_item_keys")
    titles = ["Kebakaran Rumah di Tambora", "Banjir di Kemang", "Jadwal SIM Keliling Hari Ini"]
    store.ingest("s2", [(item("s2", f"https://b/{n}", title, TEXT if n == 0 else "", T0),
                         "y", 1) for n, title in enumerate(titles)], T0)
    conn = store.db.conn
    ids = dict(conn.execute("SELECT link, id FROM items WHERE link LIKE 'https://b/%'"))
    assert len(set(ids.values())) == 3
    linked = dict(conn.execute("SELECT i.link, l.item_id FROM story_links l "
                               "JOIN items i ON i.id = l.item_id"))
    assert {link: linked[link] for link in ids} == ids  # each item's own link row
    keyed = {i for (i,) in conn.execute("SELECT item_id FROM dedupe_item_keys")}
    stored = {i for (i,) in conn.execute("SELECT id FROM items")}
    assert set(ids.values()) <= keyed <= stored
    leads = {i for (i,) in conn.execute("SELECT lead_item FROM stories")}
    assert {ids["https://b/1"], ids["https://b/2"]} <= leads  # the stories they started
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    store.close()


def test_rows_left_under_a_new_item_s_id_are_replaced(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Key and fingerprint rows are written with a plain INSERT (half the cost of OR
    REPLACE): should rows be left under the id a new item gets, they are its own after."""
    store = Store(tmp_path / "a.db")
    store.ingest("s1", [(item("s1", "https://a/0", "Rapat Paripurna DPRD DKI", TEXT, T0),
                         "x", 1)], T0)
    conn = store.db.conn
    next_id = conn.execute("SELECT MAX(id) + 1 FROM items").fetchone()[0]
    with store.transaction():
        conn.execute("INSERT INTO dedupe_item_keys (item_id, day, keys) VALUES (?, ?, ?)",
                     (next_id, TODAY, key_index.pack_keys([1, 2, 3])))
        conn.execute("INSERT INTO dedupe_fingerprints (item_id, day, data) VALUES (?, ?, ?)",
                     (next_id, TODAY, b"stale"))
    new = [(item("s2", f"https://b/{n}", title, TEXT, T0), "y", 1)
           for n, title in enumerate(["Kebakaran Rumah di Tambora", "Banjir di Kemang"])]
    with caplog.at_level("WARNING", logger="aggregator.store"):
        store.ingest("s2", new, T0)
    assert "left under new item ids (dedupe_item_keys)" in caplog.text
    assert "left under new item ids (dedupe_fingerprints)" in caplog.text
    ids = dict(conn.execute("SELECT link, id FROM items WHERE link LIKE 'https://b/%'"))
    assert ids["https://b/0"] == next_id
    for link, item_id in ids.items():
        (keys,) = conn.execute("SELECT keys FROM dedupe_item_keys WHERE item_id=?",
                               (item_id,)).fetchone()
        (data,) = conn.execute("SELECT data FROM dedupe_fingerprints WHERE item_id=?",
                               (item_id,)).fetchone()
        entry = next(i for i, _, _ in new if i.link == link)
        made = dedupe.item_fingerprint(entry.title, entry.summary, entry.content)
        assert dedupe.unpack(data) == made
        assert made.strong_keys <= set(key_index.unpack_keys(keys)) != {1, 2, 3}
    store.close()


def test_an_edited_item_moves_its_keys_to_its_new_day(tmp_path: Path) -> None:
    """An edit that changes an item's text and date files it again under its new day: its
    rows under the old day go, in the table and in memory, also once that day left memory."""
    store = Store(tmp_path / "a.db")
    first = item("s1", "https://a/1", "Kebakaran Rumah di Tambora", TEXT, T0)
    store.ingest("s1", [(first, "x", 1)], T0)
    item_id = store.db.conn.execute("SELECT id FROM items").fetchone()[0]

    def days_of(item_id: int) -> set[int]:
        return {day for (day,) in store.db.conn.execute(
            "SELECT day FROM dedupe_item_keys WHERE item_id=?", (item_id,))}
    assert days_of(item_id) == {TODAY}
    edited = item("s1", "https://a/1", "Rapat Paripurna DPRD DKI", TEXT[:150],
                  T0 + timedelta(days=2))
    store.ingest("s1", [(edited, "x", 1)], T0 + timedelta(days=2))
    assert days_of(item_id) == {TODAY + 2}
    table = table_reader(store.db.conn)
    keys = [k for k, _, _ in rows_in(store)]
    old_keys = dedupe.index_keys(dedupe.item_fingerprint(first.title, "", first.content),
                                 {}).filing
    everything = [*keys, *old_keys]
    assert store.grouper.index.lookup(everything, TODAY - 1, TODAY + 3) == \
        table.lookup(everything, TODAY - 1, TODAY + 3)
    assert store.grouper.index.held() == {item_id: TODAY + 2}
    later = T0 + timedelta(days=20)  # its day leaves memory; edited again, dated back
    store.ingest("s2", [(item("s2", "https://b/1", "Banjir di Kemang", TEXT[:90], later),
                         "y", 1)], later)
    assert item_id not in store.grouper.index.held()
    again = item("s1", "https://a/1", "Banjir Rob di Muara Angke", TEXT[:120],
                 T0 + timedelta(days=1))
    store.ingest("s1", [(again, "x", 1)], later)
    assert days_of(item_id) == {TODAY + 1}  # none left under the day it had
    store.close()


def test_nested_transactions_undo_only_what_failed(tmp_path: Path) -> None:
    """`Store.transaction` inside a transaction is a savepoint of one name, nested: a failing
    inner block undoes only itself, a failing outer one undoes both, and the transaction
    goes on."""
    store = Store(tmp_path / "a.db")
    conn = store.db.conn

    def put(name: str) -> None:
        conn.execute("INSERT INTO store_meta (name, value) VALUES (?, 'x')", (name,))

    store.begin_group()
    with store.transaction():
        put("outer")
        with pytest.raises(RuntimeError), store.transaction():
            put("inner")
            raise RuntimeError
        with store.transaction():
            put("kept")
    with pytest.raises(RuntimeError), store.transaction():
        put("outer2")
        with store.transaction():
            put("inner2")
        raise RuntimeError
    assert conn.in_transaction  # the group's transaction is still open
    store.end_group()
    names = {n for (n,) in conn.execute("SELECT name FROM store_meta WHERE value='x'")}
    assert names == {"outer", "kept"}
    store.close()


def test_a_group_is_checkpointed_off_the_writing_thread(tmp_path: Path) -> None:
    """While a group is open the writer's automatic checkpoint is high and a background
    thread copies the WAL after each commit; afterwards SQLite's default is back."""
    path = tmp_path / "a.db"
    store = Store(path)
    store.GROUP_ITEMS = 2
    store.begin_group()
    assert store.db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == \
        store.GROUP_AUTOCHECKPOINT
    for n in range(5):
        store.ingest("s1", [(item("s1", f"https://a/{n}", f"Judul {n}", TEXT, T0), "x", 1)],
                     T0)
    store.end_group()
    assert store.db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    checkpointer = store._checkpointer
    assert checkpointer is not None
    deadline = time.monotonic() + 10
    while checkpointer.done < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert checkpointer.done >= 1
    store.close()  # a last checkpoint: the database file alone holds everything
    assert store._checkpointer is None
    other = sqlite3.connect(path)
    busy, log_frames, done_frames = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and log_frames == done_frames
    assert other.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 5
    other.close()


def count_fingerprinting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The titles of the items fingerprinted from their text from now on, in order."""
    computed: list[str] = []
    real = dedupe.item_fingerprint

    def counting(title: str, summary: str, content: str) -> dedupe.Fingerprint:
        computed.append(title)
        return real(title, summary, content)

    monkeypatch.setattr(dedupe, "item_fingerprint", counting)
    return computed


def test_a_new_process_reads_kept_fingerprints_instead_of_computing_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recent items' fingerprints are kept in the database: a fresh store (a cron run)
    compares a new item with a stored one without fingerprinting its text again, and decides
    as before. When a day leaves the recent table its fingerprints go too, and an item of that
    day is then fingerprinted from its text."""
    path = tmp_path / "a.db"
    store = Store(path)
    store.ingest("s1", [(item("s1", "https://a/1", "Kebakaran Rumah di Tambora", TEXT, T0),
                         "x", 1)], T0)
    kept = store.db.conn.execute("SELECT item_id, day FROM dedupe_fingerprints").fetchall()
    assert [day for _, day in kept] == [TODAY]
    store.close()

    computed = count_fingerprinting(monkeypatch)
    store = Store(path)
    store.ingest("s2", [(item("s2", "https://b/1", "Rumah Terbakar di Tambora", TEXT,
                              T0 + timedelta(hours=3)), "y", 1)], T0 + timedelta(hours=3))
    assert computed == ["Rumah Terbakar di Tambora"]  # its own only, not the stored one's
    assert story(store, "https://a/1") == story(store, "https://b/1")

    later = T0 + timedelta(days=20)  # the first day leaves the recent table
    store.ingest("s3", [(item("s3", "https://c/1", "Rapat Paripurna DPRD", TEXT[:80], later),
                         "z", 1)], later)
    days = {day for (day,) in store.db.conn.execute("SELECT day FROM dedupe_fingerprints")}
    assert TODAY not in days and day_number(later) in days
    store.close()

    computed.clear()
    store = Store(path)  # a back-catalogue copy of the first item: fingerprinted from text
    store.ingest("s4", [(item("s4", "https://d/1", "Kebakaran Rumah di Tambora", TEXT,
                              T0 + timedelta(hours=5)), "w", 1)], later)
    assert computed.count("Kebakaran Rumah di Tambora") == 2  # its own; a/1 from its text
    assert story(store, "https://a/1") == story(store, "https://d/1")
    store.close()


def test_kept_fingerprints_of_another_version_are_dropped(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """A new release (or Python) that packs fingerprints differently does not read the old
    ones: opening the store drops them, and an unreadable row is fingerprinted from text."""
    path = tmp_path / "a.db"
    store = Store(path)
    store.ingest("s1", [(item("s1", "https://a/1", "Kebakaran Rumah di Tambora", TEXT, T0),
                         "x", 1)], T0)
    store.close()
    monkeypatch.setattr(dedupe, "PACK_VERSION", "2/py3.99")
    store = Store(path)
    assert store.db.conn.execute("SELECT COUNT(*) FROM dedupe_fingerprints").fetchone()[0] == 0
    store.ingest("s2", [(item("s2", "https://b/1", "Rumah Terbakar di Tambora", TEXT,
                              T0 + timedelta(hours=3)), "y", 1)], T0 + timedelta(hours=3))
    assert story(store, "https://a/1") == story(store, "https://b/1")  # from a/1's text
    with store.transaction():  # a row that cannot be read back
        store.db.conn.execute("UPDATE dedupe_fingerprints SET data=x'00'")
    store.close()
    store = Store(path)
    store.ingest("s3", [(item("s3", "https://c/1", "Kebakaran di Tambora, Rumah Terbakar",
                              TEXT, T0 + timedelta(hours=4)), "z", 1)], T0 + timedelta(hours=4))
    assert story(store, "https://c/1") == story(store, "https://a/1")
    store.close()


def test_a_fingerprint_made_from_text_is_kept_for_the_next_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After an upgrade dropped the kept fingerprints, a recent item is fingerprinted from its
    text once, by the first process that compares with it, not by every cron run after it;
    `fill_fingerprints` makes them all at once."""
    path = tmp_path / "a.db"
    store = Store(path)
    store.ingest("s1", [(item("s1", "https://a/0", "Kebakaran Rumah di Tambora", TEXT, T0),
                         "x", 1),
                        (item("s1", "https://a/1", "Rapat Paripurna DPRD DKI", "", T0), "x", 1)],
                 T0)
    store.close()
    monkeypatch.setattr(dedupe, "PACK_VERSION", "2/py3.99")
    computed = count_fingerprinting(monkeypatch)
    for n in range(2):  # two cron runs, each with a copy of the first item
        store = Store(path)
        when = T0 + timedelta(hours=n + 1)
        store.ingest(f"s{n + 2}", [(item(f"s{n + 2}", f"https://b/{n}",
                                         "Rumah Terbakar di Tambora", TEXT, when), "y", 1)], when)
        assert story(store, "https://a/0") == story(store, f"https://b/{n}")
        store.close()
    assert computed == ["Rumah Terbakar di Tambora", "Kebakaran Rumah di Tambora",
                        "Rumah Terbakar di Tambora"]  # a/0 from its text the first time only
    store = Store(path)
    assert store.grouper.index.without_fingerprint() == [2]  # a/1: never a candidate
    computed.clear()
    assert store.fill_fingerprints() == 1 and computed == ["Rapat Paripurna DPRD DKI"]
    assert store.grouper.index.without_fingerprint() == []
    store.close()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 4), st.integers(1, 30)),
                min_size=1, max_size=60), st.lists(st.integers(1, 30), max_size=5))
def test_memory_read_from_the_table_is_memory_built_by_filing(
        tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[int, int, int]],
        removed: list[int]) -> None:
    """What a new process reads (`KeyIndex._sync`) is what the process that filed and
    removed the rows holds: each key's items (one, or several, shared), each item's day."""
    store = Store(tmp_path_factory.mktemp("sync") / "a.db")
    writer = store.grouper.index
    day_of: dict[int, int] = {}
    with store.transaction():
        writer.file(filed([(key, TODAY - day_of.setdefault(item, day), item)
                           for key, day, item in rows]))  # an item has one day
        for item in removed:
            writer.remove(item)
    reader = KeyIndex(store.db.conn)
    assert reader.held() == writer.held()

    assert holders(reader) == holders(writer)
    assert all(isinstance(held, int) or len(held) > 1 for held in reader._by_key.values())
    with store.transaction():  # what a closing process leaves: the same again
        assert writer.save_snapshot()
    from_snapshot = KeyIndex(store.db.conn)
    assert from_snapshot.held() == writer.held()
    assert holders(from_snapshot) == holders(writer)
    assert from_snapshot._saved == writer._generation  # read from the snapshot indeed
    store.close()


def statements_of(store: Store) -> list[str]:
    seen: list[str] = []
    store.db.conn.set_trace_callback(seen.append)
    return seen


def holders(index: KeyIndex) -> dict[int, set[int]]:
    """Key -> the items memory holds under it."""
    return {key: {held} if isinstance(held, int) else set(held)
            for key, held in index._by_key.items()}


def holders_of(index: KeyIndex) -> tuple[dict[int, int], dict[int, set[int]]]:
    return index.held(), holders(index)


def table_reader(conn: sqlite3.Connection) -> KeyIndex:
    """A new process's memory as read from the key rows (never from a snapshot)."""
    index = KeyIndex(conn)
    index._read_snapshot = lambda generation: False  # type: ignore[method-assign]
    return index


def test_a_new_process_reads_the_index_the_last_one_left(tmp_path: Path) -> None:
    """A closing store leaves its memory of the recent keys in one row; the next process (a
    cron run) reads that instead of every key row, holds the same, and groups as before."""
    path = tmp_path / "a.db"
    store = Store(path)
    store.ingest("s1", [(item("s1", "https://a/1", "Kebakaran Rumah di Tambora", TEXT, T0),
                         "x", 1)], T0)
    store.ingest("s2", [(item("s2", "https://b/1", "Rapat Paripurna DPRD DKI", TEXT[:90],
                              T0 + timedelta(days=2)), "y", 1)], T0 + timedelta(days=2))
    left = holders_of(store.grouper.index)
    store.close()

    store = Store(path)
    seen = statements_of(store)
    assert holders_of(store.grouper.index) == left
    assert not [s for s in seen if "FROM dedupe_item_keys" in s]  # not one key row read
    store.ingest("s3", [(item("s3", "https://c/1", "Rumah Terbakar di Tambora", TEXT,
                              T0 + timedelta(hours=3)), "z", 1)], T0 + timedelta(days=2))
    assert story(store, "https://c/1") == story(store, "https://a/1")
    store.close()
    table = table_reader(sqlite3.connect(path))
    store = Store(path)
    assert holders_of(store.grouper.index) == holders_of(table)  # the new item's keys too
    store.close()

    with sqlite3.connect(path) as conn:  # a database no process has written keys to since
        conn.execute("DELETE FROM store_meta WHERE name='dedupe_generation'")  # generation 0
        conn.execute("DELETE FROM dedupe_snapshot")
    for _ in range(2):  # the first reads the rows and leaves a snapshot, the second reads it
        store = Store(path)
        seen = statements_of(store)
        assert holders_of(store.grouper.index) == holders_of(table)
        store.close()
    assert not [s for s in seen if "FROM dedupe_item_keys" in s]


def test_a_snapshot_that_cannot_be_written_loses_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A close that fails to leave the snapshot (a full disk) says so in the log and still
    closes; the next process reads the key rows and finds everything."""
    path = tmp_path / "a.db"
    store = Store(path)
    store.ingest("s1", [(item("s1", "https://a/1", "Kebakaran Rumah di Tambora", TEXT, T0),
                         "x", 1)], T0)
    held = store.grouper.index.held()
    store.db.conn.execute("CREATE TEMP TRIGGER full BEFORE INSERT ON dedupe_snapshot "
                          "BEGIN SELECT RAISE(ABORT, 'disk is full'); END")
    with caplog.at_level("WARNING", logger="aggregator.store"):
        store.close()
    assert "dedupe index snapshot not written" in caplog.text and "disk is full" in caplog.text
    store = Store(path)
    seen = statements_of(store)
    assert store.grouper.index.held() == held
    assert [s for s in seen if "FROM dedupe_item_keys" in s]  # read from the rows
    assert store.db.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 1
    store.close()


def test_a_snapshot_another_process_has_outdated_is_not_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot counts only while the index is as it was at its generation: after another
    process filed keys (and was killed before it could leave its own), after a prune, or when
    written by another Python, the next process reads the key rows."""
    path = tmp_path / "a.db"
    store = Store(path)
    store.ingest("s1", [(item("s1", "https://a/1", "Kebakaran Rumah di Tambora", TEXT, T0),
                         "x", 1)], T0)
    store.close()
    killed = Store(path)  # files a key, commits, and never closes (SIGKILL)
    killed.ingest("s2", [(item("s2", "https://b/1", "Rapat Paripurna DPRD DKI", TEXT[:90],
                               T0), "y", 1)], T0)
    b1 = killed.db.conn.execute("SELECT id FROM items WHERE link='https://b/1'").fetchone()[0]
    killed.db.conn.close()

    store = Store(path)
    seen = statements_of(store)
    assert b1 in store.grouper.index.held()
    assert [s for s in seen if "FROM dedupe_item_keys" in s]  # the rows were read
    store.close()  # and a snapshot of this generation left

    monkeypatch.setattr(key_index, "SNAPSHOT_FORMAT", "1/py3.99")
    store = Store(path)
    seen = statements_of(store)
    assert b1 in store.grouper.index.held()
    assert [s for s in seen if "FROM dedupe_item_keys" in s]
    store.close()
    monkeypatch.undo()

    with sqlite3.connect(path) as conn:  # unreadable, at the right generation
        conn.execute("UPDATE dedupe_snapshot SET data=x'00', format=?",
                     (key_index.SNAPSHOT_FORMAT,))
    store = Store(path)
    seen = statements_of(store)
    assert b1 in store.grouper.index.held()
    assert [s for s in seen if "FROM dedupe_item_keys" in s]
    store.close()


def test_deleting_a_large_row_does_not_write_its_freed_pages(tmp_path: Path) -> None:
    """A kept fingerprint takes an overflow page; when its day leaves, deleting it must not
    write the freed pages out again (SQLite's secure_delete, on in Debian's builds, zeroes
    and writes each one)."""
    path = tmp_path / "a.db"
    store = Store(path)
    with store.transaction():
        store.db.conn.execute("INSERT INTO dedupe_fingerprints (item_id, day, data) "
                              "VALUES (1, 1, ?)", (bytes(100_000),))  # 25 overflow pages
    store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with store.transaction():
        store.db.conn.execute("DELETE FROM dedupe_fingerprints WHERE item_id=1")
    _, frames, _ = store.db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert 0 < frames < 10  # the table's leaf and the freelist, not 25 freed pages
    store.close()


_DAYS = 2 * (1 + 1 + RECENT_MARGIN_DAYS)  # twice the days held for a window of 24 hours
_step = st.one_of(
    st.tuples(st.just("file"), st.integers(0, 3), st.integers(0, _DAYS), st.integers(1, 6)),
    st.tuples(st.just("advance"), st.just(0), st.integers(0, _DAYS), st.just(0)),
    st.tuples(st.just("remove"), st.just(0), st.just(0), st.integers(1, 6)),
    st.tuples(st.just("lookup"), st.just(0), st.just(0), st.just(0)))  # makes older days' rows


def _ids_in(index: KeyIndex) -> set[int]:
    return set().union(*holders(index).values())


@settings(max_examples=150, deadline=None)
@given(st.lists(_step, max_size=80))
@example([("file", 0, 0, 1), ("file", 1, 9, 2), ("file", 1, 9, 3), ("advance", 0, 9, 0),
          ("remove", 0, 0, 1), ("file", 2, 9, 1)])  # gone, not swept yet, removed, back
@example([("file", 0, 0, 1), ("file", 0, 0, 2), ("advance", 0, 9, 0), ("lookup", 0, 0, 0),
          ("file", 1, 0, 1), ("file", 0, 0, 3)])  # an older day's row, an item of it again
def test_lookups_are_the_same_from_memory_the_table_and_the_snapshot(
        tmp_path_factory: pytest.TempPathFactory,
        steps: list[tuple[str, int, int, int]]) -> None:
    """Days leave memory lazily (`advance` sweeps their ids out of the key map only now and
    then): whatever was filed, removed, filed again and advanced, the writing process finds
    what a new process reading the table finds, and what one reading the snapshot finds."""
    store = Store(tmp_path_factory.mktemp("lazy") / "a.db")
    writer = KeyIndex(store.db.conn)
    start = TODAY - _DAYS
    day_of: dict[int, int] = {}
    keys_of: dict[int, set[int]] = {}
    for action, key, day, item_id in steps:
        with store.transaction():
            if action == "file":  # filed again with one more key, as an edit does
                if item_id in keys_of:
                    writer.remove(item_id)
                keys_of.setdefault(item_id, set()).add(key)
                writer.file([(item_id, start + day_of.setdefault(item_id, day),
                              sorted(keys_of[item_id]))])
            elif action == "advance":
                writer.advance(max(start + day, writer.horizon()), window_hours=24)
            elif action == "lookup":
                writer.lookup(range(4), start - 1, TODAY + 1)
            else:
                writer.remove(item_id)
                day_of.pop(item_id, None)
                keys_of.pop(item_id, None)
    table = table_reader(store.db.conn)
    writer.horizon()  # in step (an empty run never read the index)
    assert len(_ids_in(writer) - set(writer.held())) <= writer._gone  # counted for a sweep
    with store.transaction():
        writer.save_snapshot()
    assert _ids_in(writer) == set(writer.held())  # swept before it was left
    snapshot = KeyIndex(store.db.conn)
    keys = range(4)
    found = [index.lookup(keys, start - 1, TODAY + 1) for index in (writer, table, snapshot)]
    assert found[0] == found[1] == found[2]
    horizon = writer.horizon()  # what was filed and not removed: recent days, then older
    filed_on = {i: start + day for i, day in day_of.items()}
    expected = {key: sorted((filed_on[i], i) for i in keys_of if key in keys_of[i]
                            and filed_on[i] >= horizon)
                + sorted((filed_on[i], i) for i in keys_of if key in keys_of[i]
                         and filed_on[i] < horizon) for key in keys}
    assert found[0] == {key: rows for key, rows in expected.items() if rows}
    assert writer.held() == table.held() == snapshot.held()
    assert snapshot._saved == writer._generation  # it did read the snapshot
    store.close()
