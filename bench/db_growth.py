"""Database growth per 1,000 polls, without and with view-sample compaction.

    python bench/db_growth.py [--items 300] [--polls 3000] [--every 15]

A fixed set of `--items` items (a source's listing with view counts) is polled every
`--every` minutes of simulated time (each poll stores one view sample per item, as a real
poll of a page with counts does). Two databases receive the same polls: one never compacted,
one compacted as `serve`/`run` do it (retention maintenance at most once an hour, default
`[settings.retention]`). Printed: after every 1,000 polls, the view samples and the bytes the
database uses (pages in use x page size, after a checkpoint).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.retention import MAINTENANCE_EVERY, sample_horizons
from aggregator.store import Store
from aggregator.types import Item, RankSettings, RetentionSettings

START = datetime(2026, 11, 1, tzinfo=UTC)


def items(n: int, poll: int) -> list[tuple[Item, str, int]]:
    return [(Item(source_id="src", key=f"guid:{k}", link=f"https://example.go.id/berita/{k}",
                  title=f"Berita nomor {k} tentang pelayanan publik kabupaten {k % 37}",
                  summary="", content="", author=None,
                  published=START - timedelta(hours=k), updated=None, dated_by="source",
                  views=100 + 3 * poll + k, categories=(), image=None,
                  content_hash=f"h{k}"), "agency", 1) for k in range(n)]


def used_bytes(store: Store) -> int:
    conn = store.db.conn
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def samples(store: Store) -> int:
    return int(store.db.conn.execute("SELECT COUNT(*) FROM view_samples").fetchone()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--polls", type=int, default=3000)
    ap.add_argument("--every", type=int, default=15, help="minutes between polls")
    args = ap.parse_args()
    retention, rank = RetentionSettings(), RankSettings()
    with tempfile.TemporaryDirectory() as tmp:
        plain, compacted = Store(Path(tmp) / "plain.db"), Store(Path(tmp) / "compacted.db")
        last_maintenance: datetime | None = None
        rows = [(0, 0.0, 0, 0, 0, 0)]
        for poll in range(1, args.polls + 1):
            now = START + timedelta(minutes=args.every * poll)
            batch = items(args.items, poll)
            for store in (plain, compacted):
                store.ingest("src", batch, now, now)
            if last_maintenance is None or now - last_maintenance >= MAINTENANCE_EVERY:
                compacted.compact_view_samples(sample_horizons(now, retention, rank))
                last_maintenance = now
            if poll % 1000 == 0 or poll == args.polls:
                rows.append((poll, (now - START).total_seconds() / 86400, samples(plain),
                             used_bytes(plain), samples(compacted), used_bytes(compacted)))
        plain.close()
        compacted.close()
    print(f"{args.items} items polled every {args.every} min; retention defaults "
          f"(raw {retention.samples_raw_hours:g} h, hourly {retention.samples_hourly_days:g} d, "
          "then daily)")
    print(f"{'polls':>6} {'days':>5} | {'samples':>9} {'MB':>7} | {'samples':>9} {'MB':>7}"
          f" | {'growth/1000 polls MB':>22}")
    print(f"{'':>6} {'':>5} | {'not compacted':>17} | {'compacted':>17} |"
          f" {'plain':>10} {'compacted':>11}")
    for n, (poll, days, s1, b1, s2, b2) in enumerate(rows):
        growth = ""
        if n:
            prev = rows[n - 1]
            per = 1000 / (poll - prev[0])
            growth = f"{(b1 - prev[3]) * per / 1e6:>10.2f} {(b2 - prev[5]) * per / 1e6:>11.2f}"
        print(f"{poll:>6} {days:>5.1f} | {s1:>9} {b1 / 1e6:>7.2f} | {s2:>9} {b2 / 1e6:>7.2f}"
              f" | {growth:>22}")


if __name__ == "__main__":
    main()
