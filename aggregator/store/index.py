"""The dedupe index in SQLite: the items filed under each key (`dedupe.index_keys`), and how
many items have each word (`dedupe.index_keys` ranks words by it). Part of the store adapter.

Keys live in two tables, so that filing a new item writes few database pages:
- `dedupe_keys`, ordered by key, holds the recent days: those a new item is compared with.
  It stays small (a few days of items), so it stays in the page cache and a batch's keys
  share its pages.
- `dedupe_keys_old`, ordered by day, takes each day as it leaves the recent table: rows are
  appended at its end. Only an item dated that far back (the back catalogue of a newly added
  source) looks there, one seek per day and key.
One key-ordered table of every day would put each new key on a page of its own: about 17 page
writes per item at a million items, which made the commit the largest cost of ingesting.

The recent days' fingerprints (`dedupe.pack`, about 3 KB each) are kept in
`dedupe_fingerprints` and leave with their day: a new process (each cron run) holds none in
memory, and computing a stored candidate's fingerprint again from its text cost about a
quarter of ingesting (instructions under valgrind, 100k stored items).

Word counts are added up in memory and written every `WordCounts.FLUSH_ITEMS` items (and when
the store closes): each update would dirty a page of the vocabulary per word. Counts once read
are remembered. Both make the counts approximate, which is all ranking words needs: a count
lost with a killed process, or added by another process since, changes a word's rarity little.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence

from aggregator import dedupe
from aggregator.store.sql import chunks

RECENT_MARGIN_DAYS = 3  # the recent table keeps this many days beyond the dedupe window
Row = tuple[int, int, int]  # (key, day, item id)


class KeyIndex:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def horizon(self) -> int:
        """The first day the recent table holds (read each time: another process may have
        moved it)."""
        row = self.conn.execute(
            "SELECT value FROM store_meta WHERE name='dedupe_horizon'").fetchone()
        return int(row[0]) if row else 0

    def advance(self, today: int, window_hours: float) -> None:
        """Move the days a new item of `today` is no longer compared with to the old table."""
        keep = int(window_hours // 24) + 1 + RECENT_MARGIN_DAYS
        new = today - keep
        if new <= self.horizon():
            return
        self.conn.execute(
            "INSERT OR IGNORE INTO dedupe_keys_old (day, key, item_id) SELECT day, key, item_id "
            "FROM dedupe_keys WHERE day < ? ORDER BY day, key, item_id", (new,))
        self.conn.execute("DELETE FROM dedupe_keys WHERE day < ?", (new,))
        self.conn.execute("DELETE FROM dedupe_fingerprints WHERE day < ?", (new,))
        self.conn.execute("INSERT OR REPLACE INTO store_meta (name, value) "
                          "VALUES ('dedupe_horizon', ?)", (str(new),))

    def file(self, rows: Sequence[Row],
             fingerprints: Sequence[tuple[int, int, bytes]] = ()) -> None:
        """File index rows, and keep the fingerprints ((item id, day, `dedupe.pack`)) of the
        recent days' items (an older item is rarely a candidate, and is fingerprinted from its
        text when it is)."""
        horizon = self.horizon()
        kept = [f for f in fingerprints if f[1] >= horizon]
        if kept:
            self.conn.executemany("INSERT OR REPLACE INTO dedupe_fingerprints (item_id, day, "
                                  "data) VALUES (?, ?, ?)", kept)
        recent = sorted(r for r in rows if r[1] >= horizon)
        old = sorted((day, key, item) for key, day, item in rows if day < horizon)
        if recent:
            self.conn.executemany(
                "INSERT OR IGNORE INTO dedupe_keys (key, day, item_id) VALUES (?, ?, ?)", recent)
        if old:
            self.conn.executemany(
                "INSERT OR IGNORE INTO dedupe_keys_old (day, key, item_id) VALUES (?, ?, ?)",
                old)

    def remove(self, item_id: int) -> None:
        self.conn.execute("DELETE FROM dedupe_keys WHERE item_id=?", (item_id,))
        self.conn.execute("DELETE FROM dedupe_keys_old WHERE item_id=?", (item_id,))
        self.conn.execute("DELETE FROM dedupe_fingerprints WHERE item_id=?", (item_id,))

    def check_fingerprints(self) -> None:
        """Drop kept fingerprints made by another `dedupe.PACK_VERSION` (a new release, or
        another Python): they would be read as the wrong thing. Call in a transaction."""
        row = self.conn.execute(
            "SELECT value FROM store_meta WHERE name='fingerprint_version'").fetchone()
        if row is None or row[0] != dedupe.PACK_VERSION:
            self.conn.execute("DELETE FROM dedupe_fingerprints")
            self.conn.execute("INSERT OR REPLACE INTO store_meta (name, value) "
                              "VALUES ('fingerprint_version', ?)", (dedupe.PACK_VERSION,))

    def fingerprints(self, ids: Sequence[int]) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        for chunk in chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            found.update(self.conn.execute(
                f"SELECT item_id, data FROM dedupe_fingerprints WHERE item_id IN ({marks})",
                chunk))
        return found

    def lookup(self, keys: Iterable[int], first: int, last: int
               ) -> dict[int, list[tuple[int, int]]]:
        """key -> [(day, item id)] of the items filed under it from day `first` to `last`."""
        wanted = sorted(set(keys))
        found: dict[int, list[tuple[int, int]]] = {}
        horizon = self.horizon()
        if last >= horizon:
            low = max(first, horizon)
            for chunk in chunks(wanted):
                marks = ",".join("?" * len(chunk))
                for key, day, item_id in self.conn.execute(
                        f"SELECT key, day, item_id FROM dedupe_keys WHERE key IN ({marks}) "
                        f"AND day BETWEEN ? AND ?", (*chunk, low, last)):
                    found.setdefault(key, []).append((day, item_id))
        if first < horizon:
            days = ",".join(str(d) for d in range(first, min(last, horizon - 1) + 1))
            for chunk in chunks(wanted):
                marks = ",".join("?" * len(chunk))
                for day, key, item_id in self.conn.execute(
                        f"SELECT day, key, item_id FROM dedupe_keys_old WHERE day IN ({days}) "
                        f"AND key IN ({marks})", chunk):
                    found.setdefault(key, []).append((day, item_id))
        return found


class WordCounts:
    """How many items have each title or lede word (`Fingerprint.key_words`); the count of
    `dedupe.TOTAL` is the number of items counted."""

    FLUSH_ITEMS = 2_000
    KNOWN_LIMIT = 300_000  # stored counts remembered (a count seen a while ago is near enough)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.pending: Counter[str] = Counter()  # counted here, not yet written
        self.known: dict[str, int] = {}  # written counts as last read (ours included)

    def get(self, words: Iterable[str]) -> dict[str, int]:
        wanted = {*words, dedupe.TOTAL}
        known = self.known
        missing = sorted(w for w in wanted if w not in known)
        if len(known) + len(missing) > self.KNOWN_LIMIT:
            known.clear()
            missing = sorted(wanted)
        for chunk in chunks(missing):
            marks = ",".join("?" * len(chunk))
            known.update(dict.fromkeys(chunk, 0))
            known.update(self.conn.execute(
                f"SELECT word, n FROM dedupe_words WHERE word IN ({marks})", chunk))
        pending = self.pending
        return {w: known[w] + pending.get(w, 0) for w in wanted}

    def add(self, fps: Iterable[dedupe.Fingerprint]) -> None:
        """Count items' words; written out with the caller's transaction now and then."""
        pending = self.pending
        for fp in fps:
            pending[dedupe.TOTAL] += 1
            pending.update(fp.key_words)
        if pending[dedupe.TOTAL] >= self.FLUSH_ITEMS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        self.conn.executemany(
            "INSERT INTO dedupe_words (word, n) VALUES (?, ?) "
            "ON CONFLICT (word) DO UPDATE SET n = n + excluded.n", sorted(self.pending.items()))
        for word, n in self.pending.items():
            if word in self.known:
                self.known[word] += n
        self.pending.clear()
