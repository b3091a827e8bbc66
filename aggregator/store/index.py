"""The dedupe index in SQLite: the keys each item is filed under (`dedupe.index_keys`), and
how many items have each word (`dedupe.index_keys` ranks words by it). Part of the store
adapter.

`dedupe_item_keys` holds one row per item: its day and its keys packed in a blob
(`pack_keys`). One row per key and item, with an index by item to take an edited item's keys
out, was 12 rows and 24 B-tree entries per item: 8% of ingesting at a million items, and 380
of the database's 3,400 MB.

The recent days, those a new item is compared with, are held in memory by key (`KeyIndex`),
made once per process from those days' rows. Only an item dated before the recent days (the
back catalogue of a newly added source) needs older days, and only the days within its own
window, for its own keys. Those are looked up by key in `dedupe_days`: one row per day, its
keys sorted and the item of each, made from the day's item rows the first time a lookup needs
the day (about 15 ms at a million items, 1,500 items a day) and kept. An item filed into that
day later has a larger id than the row's `last_item` and is read from `dedupe_item_keys` by
(day, id); filing again or removing an item the row holds deletes the row, to be made again
when next needed. The `OLD_DAYS_HELD` days used last stay in memory. (Measured at a million
items: 500 back-catalogue items spread over two years took 13 s the first time, when every
day's row was made, and 1.2 s once the rows existed; with a row per key and item, 5.7 s and
3.3 s.)
Another process (a cron run beside `serve`, an admin's command) may write the index too: each
write sets a new `store_meta.dedupe_generation`, and a process whose memory was made from
another generation reads the recent days again (and forgets the older days it held).
A process that closes the store leaves its memory in `dedupe_snapshot`, marked with the
generation: the next process (the next cron run) reads that one row when the generation is
still the same, instead of the recent days' rows.

The recent days' fingerprints (`dedupe.pack`, about 2.3 KB each) are kept in
`dedupe_fingerprints` and leave with their day: a new process (each cron run) holds none in
memory, and computing a stored candidate's fingerprint again from its text cost about a
quarter of ingesting (instructions under valgrind, 100k stored items).

Word counts are added up in memory and written every `WordCounts.FLUSH_ITEMS` items (and when
the store closes): each update would dirty a page of the vocabulary per word. Counts once read
are remembered. Both make the counts approximate, which is all ranking words needs: a count
lost with a killed process, or added by another process since, changes a word's rarity little.
"""

from __future__ import annotations

import itertools
import logging
import marshal
import os
import sqlite3
import sys
from array import array
from bisect import bisect_left
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from aggregator import dedupe
from aggregator.store.sql import chunks

log = logging.getLogger("aggregator.store")

RECENT_MARGIN_DAYS = 3  # the recent days: the dedupe window and this many more
OLD_DAYS_HELD = 32  # older days held in memory after a lookup (about 0.25 MB each)
Filed = tuple[int, int, Sequence[int]]  # (item id, day, keys)
SNAPSHOT_FORMAT = f"1/{dedupe.PY_FORMAT}"  # what `dedupe_snapshot.data` holds (marshal)
Held = dict[int, "int | tuple[int, ...]"]  # key -> the item id filed under it, or a tuple


def pack_keys(keys: Iterable[int]) -> bytes:
    """An item's keys as `dedupe_item_keys.keys` holds them: signed 64-bit, little-endian."""
    packed = array("q", keys)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def unpack_keys(data: bytes) -> array[int]:
    keys = array("q")
    keys.frombytes(data)
    if sys.byteorder == "big":
        keys.byteswap()
    return keys


def pack_key_list(text: str) -> bytes:
    """`dedupe_pack_keys(group_concat(key))` in SQL, for migration 10 (registered by the
    store): an item's key rows as one `pack_keys` blob."""
    return pack_keys(int(k) for k in text.split(","))


_LOW = (1 << 64) - 1


class _OldDay(NamedTuple):
    """An older day as `dedupe_days` holds it, and the items filed into it since."""

    keys: array[int]  # sorted
    items: array[int]  # the item id of each key
    last: int  # the row's last_item
    late: Held  # key -> items with ids above it


def _hold(by_key: Held, key: int, item_id: int) -> None:
    held = by_key.get(key)
    if held is None:
        by_key[key] = item_id
    elif type(held) is int:
        if held != item_id:
            by_key[key] = (held, item_id)
    elif item_id not in held:  # type: ignore[operator]
        by_key[key] = (*held, item_id)  # type: ignore[misc]


def _let_go(by_key: Held, key: int, item_id: int) -> None:
    held = by_key.get(key)
    if held is None:
        return
    rest = () if held == item_id else (held,) if isinstance(held, int) else \
        tuple(i for i in held if i != item_id)
    if not rest:
        del by_key[key]
    else:
        by_key[key] = rest[0] if len(rest) == 1 else rest


def _insert(conn: sqlite3.Connection, table: str, blob: str,
            rows: list[tuple[int, int, bytes]]) -> None:
    """(item id, day, `blob`) rows of items that have none (new items; a re-filed item's were
    removed): a plain INSERT, which costs about half of INSERT OR REPLACE here (5-10 µs a row
    at a million items). Should a row be there after all, the batch replaces."""
    into = f"{table} (item_id, day, {blob}) VALUES (?, ?, ?)"
    try:
        conn.executemany(f"INSERT INTO {into}", rows)
    except sqlite3.IntegrityError:  # the rows before the clash went in: replaced alike
        log.warning("dedupe rows were left under new item ids (%s): replaced", table)
        conn.executemany(f"INSERT OR REPLACE INTO {into}", rows)


def new_generation(conn: sqlite3.Connection) -> int:
    """Say that the index changed (call in the writing transaction): every process reads the
    recent days again before it next uses them. A generation is random, not a count: after a
    rollback the database's is the one before, which matches no memory made since."""
    generation = int.from_bytes(os.urandom(8)) >> 2
    conn.execute("INSERT OR REPLACE INTO store_meta (name, value) "
                 "VALUES ('dedupe_generation', ?)", (str(generation),))
    return generation


class KeyIndex:
    """The key rows in SQLite, and the recent days by key in memory. Use it inside the store's
    transactions: a rollback is noticed by the generation."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._generation: int | None = None  # what the memory was made from; None: unread
        self._horizon = 0  # the first recent day
        # key -> the item id filed under it (most keys have one), or a tuple of them: about
        # 1 KB per item held. Ints and tuples of ints are not tracked by the garbage collector,
        # so its passes do not walk the index.
        self._by_key: Held = {}
        self._day: dict[int, int] = {}  # item id -> day, of the items held
        # items of days that left memory (`advance`) whose ids `_by_key` may still hold: they
        # are skipped there (no day), and swept out once there are as many as items held
        self._gone = 0
        self._saved: int | None = None  # the generation of `dedupe_snapshot`, if known
        self._old: OrderedDict[int, _OldDay] = OrderedDict()  # older days read by `lookup`

    def _sync(self) -> None:
        """Read the recent days again if another process (or a rollback) changed them."""
        meta = dict(self.conn.execute(
            "SELECT name, value FROM store_meta "
            "WHERE name IN ('dedupe_horizon', 'dedupe_generation')"))
        generation = int(meta.get("dedupe_generation", 0))
        if generation == self._generation:
            return
        self._horizon = int(meta.get("dedupe_horizon", 0))
        if not self._read_snapshot(generation):
            self._read_table()
        self._old.clear()
        self._gone = 0
        self._generation = generation

    def _read_table(self) -> None:
        by_key: Held = {}
        day_of: dict[int, int] = {}
        self._by_key, self._day = by_key, day_of
        get = by_key.get  # `_hold` inlined, without its check for a repeat: keys are unique
        for item_id, day, data in self.conn.execute(
                "SELECT item_id, day, keys FROM dedupe_item_keys WHERE day >= ?",
                (self._horizon,)):
            day_of[item_id] = day
            for key in unpack_keys(data):
                held = get(key)
                if held is None:
                    by_key[key] = item_id
                elif type(held) is int:
                    by_key[key] = (held, item_id)
                else:
                    by_key[key] = (*held, item_id)  # type: ignore[misc]

    def _read_snapshot(self, generation: int) -> bool:
        """The memory the last process to close left, if the index is still as it was then."""
        row = self.conn.execute(
            "SELECT data FROM dedupe_snapshot WHERE generation=? AND format=?",
            (generation, SNAPSHOT_FORMAT)).fetchone()
        if row is None:
            return False
        try:
            by_key, day_of = marshal.loads(row[0])
        except (EOFError, ValueError, TypeError):  # not what save_snapshot wrote
            return False
        if not isinstance(by_key, dict) or not isinstance(day_of, dict):
            return False
        self._by_key, self._day = by_key, day_of
        self._saved = generation
        return True

    def save_snapshot(self) -> bool:
        """Leave the memory for the next process (call in a transaction, when closing): only
        if it is in step with the table, and not already left at this generation."""
        if self._generation is None or self._generation == self._saved:
            return False
        row = self.conn.execute("SELECT value FROM store_meta "
                                "WHERE name='dedupe_generation'").fetchone()
        if int(row[0] if row else 0) != self._generation:  # another process wrote since
            return False
        if self._gone:
            self._sweep()
        self.conn.execute(
            "INSERT OR REPLACE INTO dedupe_snapshot (id, generation, format, data) "
            "VALUES (1, ?, ?, ?)",
            (self._generation, SNAPSHOT_FORMAT, marshal.dumps((self._by_key, self._day))))
        self._saved = self._generation
        return True

    def _changed(self) -> None:
        """After a write (the memory was in step, and is changed likewise)."""
        self._generation = new_generation(self.conn)

    def held(self) -> dict[int, int]:
        """Item id -> day of the items held in memory (the recent days)."""
        self._sync()
        return dict(self._day)

    def horizon(self) -> int:
        """The first day held in memory (moved by `advance`)."""
        self._sync()
        return self._horizon

    def advance(self, today: int, window_hours: float) -> None:
        """Drop the days a new item of `today` is no longer compared with from memory (their
        rows stay in the table) and their kept fingerprints."""
        self._sync()
        keep = int(window_hours // 24) + 1 + RECENT_MARGIN_DAYS
        new = today - keep
        old = self._horizon
        if new <= old:
            return
        self.conn.execute("DELETE FROM dedupe_fingerprints WHERE day < ?", (new,))
        self.conn.execute("INSERT OR REPLACE INTO store_meta (name, value) "
                          "VALUES ('dedupe_horizon', ?)", (str(new),))
        self._changed()
        # the items leave `_day` only: reading their keys back to take each out of `_by_key`
        # was 6% of ingesting at a million items; sweeping costs less, and only now and then
        gone = [i for i, day in self._day.items() if day < new]
        for item_id in gone:
            del self._day[item_id]
        self._gone += len(gone)
        if self._gone > len(self._day):
            self._sweep()
        self._horizon = new

    def _sweep(self) -> None:
        """Take the ids of items no longer held out of `_by_key`."""
        day_of = self._day
        by_key: Held = {}
        for key, held in self._by_key.items():
            if type(held) is int:
                if held in day_of:
                    by_key[key] = held
                continue
            rest = tuple(i for i in held if i in day_of)  # type: ignore[union-attr]
            if rest:
                by_key[key] = rest[0] if len(rest) == 1 else rest
        self._by_key = by_key
        self._gone = 0

    def file(self, filed: Sequence[Filed],
             fingerprints: Sequence[tuple[int, int, bytes]] = ()) -> None:
        """File items ((item id, day, keys); an item once: `remove` it to file it again), and
        keep the fingerprints ((item id, day, `dedupe.pack`)) of the recent days' items (an
        older item is rarely a candidate, and is fingerprinted from its text when it is)."""
        self.keep(fingerprints)
        if not filed:
            return
        self._sync()
        _insert(self.conn, "dedupe_item_keys", "keys",
                [(item_id, day, pack_keys(keys)) for item_id, day, keys in filed])
        self._changed()
        horizon = self._horizon
        older = sorted({day for _, day, _ in filed if day < horizon})
        last_of: dict[int, int] = {}
        for chunk in chunks(older):
            last_of.update(self.conn.execute(
                f"SELECT day, last_item FROM dedupe_days WHERE day IN "
                f"({','.join('?' * len(chunk))})", chunk))
        for item_id, day, keys in filed:
            old = self._old.get(day)
            if day >= horizon:
                self._day[item_id] = day
                for key in keys:
                    _hold(self._by_key, key, item_id)
            elif item_id <= max(last_of.get(day, -1), -1 if old is None else old.last):
                self._forget_day(day)  # an item the day's row holds, filed again
            elif old is not None:
                for key in keys:
                    _hold(old.late, key, item_id)

    def _forget_day(self, day: int) -> None:
        """An older day's row no longer holds its items: it is made again when next needed."""
        self.conn.execute("DELETE FROM dedupe_days WHERE day=?", (day,))
        self._old.pop(day, None)

    def keep(self, fingerprints: Sequence[tuple[int, int, bytes]]) -> None:
        """Keep the fingerprints ((item id, day, `dedupe.pack`)) of the recent days' items."""
        if not fingerprints:
            return
        self._sync()
        kept = [f for f in fingerprints if f[1] >= self._horizon]
        if kept:
            _insert(self.conn, "dedupe_fingerprints", "data", kept)

    def without_fingerprint(self) -> list[int]:
        """The items held in memory whose fingerprint is not kept (stored by a version that
        kept none, or dropped by `check_fingerprints`)."""
        self._sync()
        kept = {i for (i,) in self.conn.execute(
            "SELECT item_id FROM dedupe_fingerprints WHERE day >= ?", (self._horizon,))}
        return sorted(set(self._day) - kept)

    def remove(self, item_id: int) -> None:
        self._sync()
        self._day.pop(item_id, None)
        row = self.conn.execute("SELECT day, keys FROM dedupe_item_keys WHERE item_id=?",
                                (item_id,)).fetchone()
        if row is not None:
            # from `_by_key` even when not held: an id left there by `advance` would count
            # again if the item were filed anew in the recent days
            for key in unpack_keys(row[1]):
                _let_go(self._by_key, key, item_id)
            self._forget_day(row[0])
        self.conn.execute("DELETE FROM dedupe_item_keys WHERE item_id=?", (item_id,))
        self.conn.execute("DELETE FROM dedupe_fingerprints WHERE item_id=?", (item_id,))
        self._changed()

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

    def _old_day(self, day: int) -> _OldDay:
        """An older day by key: held if used lately, else its `dedupe_days` row (made now
        if it has none) and the items filed into it since."""
        held = self._old.get(day)
        if held is not None:
            self._old.move_to_end(day)
            return held
        row = self.conn.execute("SELECT last_item, keys, items FROM dedupe_days WHERE day=?",
                                (day,)).fetchone()
        late: Held = {}
        if row is None:
            filed = self.conn.execute("SELECT item_id, keys FROM dedupe_item_keys WHERE day=?",
                                      (day,)).fetchall()
            flat = unpack_keys(b"".join(data for _, data in filed))
            owners = [item_id for item_id, data in filed for _ in range(len(data) // 8)]
            # (key, item) pairs as one int each: sorted in C, a key's items by id
            pairs = sorted([(key << 64) | item_id
                            for key, item_id in zip(flat, owners, strict=True)])
            keys = array("q", [pair >> 64 for pair in pairs])
            items = array("q", [pair & _LOW for pair in pairs])
            last = max(owners, default=0)
            self.conn.execute(
                "INSERT OR REPLACE INTO dedupe_days (day, last_item, keys, items) "
                "VALUES (?, ?, ?, ?)", (day, last, pack_keys(keys), pack_keys(items)))
        else:
            last, keys, items = row[0], unpack_keys(row[1]), unpack_keys(row[2])
            for item_id, data in self.conn.execute(
                    "SELECT item_id, keys FROM dedupe_item_keys WHERE day=? AND item_id>? "
                    "ORDER BY item_id", (day, last)):
                for key in unpack_keys(data):
                    _hold(late, key, item_id)
        held = self._old[day] = _OldDay(keys, items, last, late)
        if len(self._old) > OLD_DAYS_HELD:
            self._old.popitem(last=False)
        return held

    def lookup(self, keys: Iterable[int], first: int, last: int,
               older: Mapping[int, Iterable[int]] | None = None
               ) -> dict[int, list[tuple[int, int]]]:
        """key -> [(day, item id)] of the items filed under it from day `first` to `last`:
        the recent days' by (day, item id), then older days' likewise. Of the days before
        the recent ones, if `older` (day -> keys) is given, only its days and their keys
        are looked up (a back catalogue spans months: each item needs a few days)."""
        self._sync()
        wanted = sorted(set(keys))
        found: dict[int, list[tuple[int, int]]] = {}
        horizon = self._horizon
        if last >= horizon:
            low = max(first, horizon)
            day_of = self._day
            get_day = day_of.get  # None: an item whose day left memory (`advance`)
            for key in wanted:
                held = self._by_key.get(key)
                if held is None:
                    continue
                if isinstance(held, int):  # most keys: one item
                    if (day := get_day(held)) is not None and low <= day <= last:
                        found[key] = [(day, held)]
                    continue
                rows = sorted((day, i) for i in held
                              if (day := get_day(i)) is not None and low <= day <= last)
                if rows:
                    found[key] = rows
        days = range(first, min(last, horizon - 1) + 1)
        asked = {day: wanted for day in days} if older is None else \
            {day: sorted(set(older[day])) for day in sorted(older) if day in days}
        for day, day_keys in asked.items():
            then = self._old_day(day)
            size = len(then.keys)
            for key in day_keys:
                at = bisect_left(then.keys, key)
                rows = []
                while at < size and then.keys[at] == key:
                    rows.append((day, then.items[at]))
                    at += 1
                if (ids := then.late.get(key)) is not None:  # larger ids: after the row's
                    rows.extend([(day, ids)] if isinstance(ids, int) else
                                [(day, i) for i in sorted(ids)])
                if rows:
                    found.setdefault(key, []).extend(rows)
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

    def add(self, fps: Sequence[dedupe.Fingerprint]) -> None:
        """Count items' words; written out with the caller's transaction now and then."""
        pending = self.pending
        pending[dedupe.TOTAL] += len(fps)
        pending.update(itertools.chain.from_iterable(fp.key_words for fp in fps))
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
