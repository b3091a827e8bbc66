"""Copying the write-ahead log into the database file, off the writing thread. Part of the
store adapter.

With SQLite's automatic checkpoint, the commit that passes 1,000 WAL pages also copies them
into the database file and waits for two fsyncs; at a million items a commit group's pages
land all over a 3 GB file and that took about 0.3 ms per ingested item. While a poll writes in
commit groups (`Store.begin_group`), this thread does it instead, after each commit, with its
own connection and a PASSIVE checkpoint, which never blocks the writer or readers; SQLite
releases the GIL while it copies. The writer keeps a high automatic checkpoint
(`Store.GROUP_AUTOCHECKPOINT`, 160 MB) as a safety net; the WAL file is cut back to
`Store.WAL_SIZE_LIMIT` when it starts over.

The WAL file is reused from its start only when a write transaction begins after a complete
checkpoint, and in a group the next transaction begins right after a commit, before this thread
is done. So during a long poll the WAL grows to the safety net's size (plus a group), where the
writer's own checkpoint, by then with little left to copy, lets it start over; between polls it
starts over at the first write.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("aggregator.store")


class Checkpointer:
    def __init__(self, path: str) -> None:
        self.path = path
        self._wake = threading.Event()
        self._stopping = False
        self.done = 0  # checkpoints run (for tests)
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wake.set()

    def close(self) -> None:
        """Run a last checkpoint and stop."""
        self._stopping = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                               check_same_thread=False)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.done += 1
                except sqlite3.Error as exc:  # the writer's own checkpoint takes over
                    log.warning("background checkpoint failed: %s", exc)
                if self._stopping:
                    return
        finally:
            conn.close()
