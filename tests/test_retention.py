"""Retention: the pure policy (which view samples compaction keeps, with Hypothesis
properties), compaction on a real database (ranking reads the same before and after; the
database grows with items, not polls), the feed age limit, and pruning through real polls
(everything hanging off a pruned item goes; a pruned item never comes back as new)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import feedparser
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.core import Aggregator
from aggregator.retention import (
    SampleHorizons,
    feed_horizon,
    keep_new,
    maintenance_due,
    sample_horizons,
    samples_to_drop,
)
from aggregator.store import Store
from aggregator.store.views import ViewReader
from aggregator.types import Item, RankSettings, RetentionSettings
from tests.portal import Portal, Route, Src, database, invoke, query, write_config

NOW = datetime(2026, 11, 27, 1, 38, 12, tzinfo=UTC)
POLICY = RetentionSettings(samples_raw_hours=48, samples_hourly_days=14)
RANK = RankSettings()

# --- the pure policy ------------------------------------------------------------------------


def test_horizons_are_aligned_and_cover_what_ranking_reads() -> None:
    h = sample_horizons(NOW, POLICY, RANK)
    assert h.raw == datetime(2026, 11, 25, 1, tzinfo=UTC)  # 48 h before, to the whole hour
    assert h.hourly == datetime(2026, 11, 13, tzinfo=UTC)  # 14 days before, to the whole day
    # a raw window shorter than rank.growth_hours is widened to it
    wide = sample_horizons(NOW, RetentionSettings(samples_raw_hours=1),
                           RankSettings(growth_hours=72))
    assert wide.raw <= NOW - timedelta(hours=72)


def test_samples_to_drop_keeps_the_last_of_each_bucket() -> None:
    h = SampleHorizons(raw=datetime(2026, 11, 25, tzinfo=UTC),
                       hourly=datetime(2026, 11, 20, tzinfo=UTC))
    day_old = [datetime(2026, 11, 10, hour, 15, tzinfo=UTC) for hour in (1, 5, 23)]
    hour_old = [datetime(2026, 11, 22, 7, minute, tzinfo=UTC) for minute in (0, 15, 45)]
    recent = [datetime(2026, 11, 26, 3, minute, tzinfo=UTC) for minute in (0, 15, 30)]
    dropped = samples_to_drop(day_old + hour_old + recent, h)
    assert dropped == day_old[:2] + hour_old[:2]  # the raw window is untouched
    assert samples_to_drop([], h) == []


_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
sample_times = st.lists(st.integers(min_value=0, max_value=60 * 24 * 90), min_size=1,
                        max_size=60, unique=True).map(
    lambda minutes: [_EPOCH + timedelta(minutes=m) for m in minutes])
nows = st.integers(min_value=60 * 24 * 30, max_value=60 * 24 * 120).map(
    lambda m: _EPOCH + timedelta(minutes=m))
policies = st.builds(RetentionSettings, samples_raw_hours=st.floats(1, 96),
                     samples_hourly_days=st.floats(1, 30))


@settings(max_examples=300, deadline=None)
@given(sample_times, nows, policies)
def test_compaction_properties(times: list[datetime], now: datetime,
                               policy: RetentionSettings) -> None:
    times = [t for t in times if t <= now] or [now]
    h = sample_horizons(now, policy, RANK)
    dropped = samples_to_drop(times, h)
    kept = sorted(set(times) - set(dropped))
    assert max(times) in kept  # the latest sample is never dropped
    assert all(t < h.raw for t in dropped)  # nothing in the raw window (ranking's) is dropped
    assert all(t >= h.raw for t in kept if t >= now - timedelta(hours=RANK.growth_hours))
    buckets = Counter(b for t in kept if (b := h.bucket(t)) is not None)
    assert all(n == 1 for n in buckets.values())  # at most one per hour / day bucket
    for t in kept:  # the one kept is the last of its bucket
        b = h.bucket(t)
        assert b is None or t == max(u for u in times if h.bucket(u) == b)
    assert samples_to_drop(kept, h) == []  # idempotent
    later = sample_horizons(now + timedelta(days=3), policy, RANK)  # compacting later
    assert set(samples_to_drop(times, later)) >= set(dropped)  # only ever drops more
    # compacting now and again later keeps what compacting once later keeps
    assert set(kept) - set(samples_to_drop(kept, later)) \
        == set(times) - set(samples_to_drop(times, later))


def test_feed_horizon_and_prune_refusal() -> None:
    assert feed_horizon(NOW, RetentionSettings()) is None
    assert feed_horizon(NOW, RetentionSettings(feed_max_age=86400)) == NOW - timedelta(days=1)
    old = _item("old", NOW - timedelta(days=40))
    undated = _item("undated", NOW - timedelta(days=40), dated_by="first_seen")
    fresh = _item("fresh", NOW - timedelta(days=1))
    horizon = NOW - timedelta(days=30)
    assert keep_new([old, undated, fresh], horizon) == [undated, fresh]
    assert keep_new([old], None) == [old]


def test_maintenance_runs_at_most_hourly() -> None:
    assert maintenance_due(None, NOW)
    assert not maintenance_due(NOW - timedelta(minutes=59), NOW)
    assert maintenance_due(NOW - timedelta(minutes=60), NOW)
    assert maintenance_due(NOW + timedelta(days=1), NOW)  # a clock set back: run anyway


def _item(key: str, published: datetime, views: int | None = None,
          dated_by: str = "source", source: str = "src") -> Item:
    return Item(source_id=source, key=key, link=f"https://example.go.id/{key}",
                title=f"Berita {key}", summary="", content="", author=None,
                published=published, updated=None, dated_by=dated_by,  # type: ignore[arg-type]
                views=views, categories=(), image=None, content_hash=f"h-{key}")


# --- compaction on a real database ----------------------------------------------------------


def test_compaction_keeps_what_ranking_reads_and_bounds_growth(tmp_path: Path) -> None:
    """Ten items sampled every 15 minutes for 20 days: after compaction each keeps all of
    its last 48 hours, one per hour of the 14 days before, one per day before that; what
    ranking reads (latest count, growth window edges) is the same before and after; a second
    compaction deletes nothing."""
    store = Store(tmp_path / "a.db")
    start = NOW - timedelta(days=20)
    polls = 20 * 24 * 4
    for n in range(polls):
        at = start + timedelta(minutes=15 * n)
        entries = [(_item(f"k{i}", start, views=10 * n + i), "agency", 1) for i in range(10)]
        store.ingest("src", entries, at, at)
    ids = [r["id"] for r in store._rows("SELECT id FROM items ORDER BY id")]
    reader = ViewReader(store.db.conn)
    before = reader.samples(ids, NOW, RANK.growth_hours)
    total = store._rows("SELECT COUNT(*) AS n FROM view_samples")[0]["n"]
    assert total == polls * 10

    h = sample_horizons(NOW, POLICY, RANK)
    assert store.compact_view_samples(h, stop=lambda: True) == 0  # SIGTERM: nothing done,
    assert store.meta_get("samples_compacted_hourly") is None  # and the next run does it all
    dropped = store.compact_view_samples(h)
    assert reader.samples(ids, NOW, RANK.growth_hours) == before
    per_item = store._rows("SELECT item_id, COUNT(*) AS n FROM view_samples GROUP BY item_id")
    last = start + timedelta(minutes=15 * (polls - 1))
    raw = sum(1 for n in range(polls) if start + timedelta(minutes=15 * n) >= h.raw)
    hours = int((h.raw - h.hourly).total_seconds() // 3600)
    days = (h.hourly - start.replace(hour=0, minute=0, second=0, microsecond=0)).days
    assert {r["n"] for r in per_item} == {raw + hours + days}, (raw, hours, days)
    assert dropped == total - 10 * (raw + hours + days)
    latest = store._rows("SELECT item_id, MAX(at) AS at FROM view_samples GROUP BY item_id")
    assert {r["at"] for r in latest} == {last.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    assert store.compact_view_samples(h) == 0  # idempotent
    store.close()


def test_fetch_log_is_bounded_per_source(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db")
    with store.transaction():
        for source in ("a", "b"):
            for n in range(250):
                store.db.execute("INSERT INTO fetches (source_id, started_at, duration, "
                                 "outcome) VALUES (?, ?, 0.1, 'unchanged')",
                                 (source, f"2026-11-{1 + n // 24:02d}T{n % 24:02d}"))
    assert store.trim_fetches(200) == 100
    rows = store._rows("SELECT source_id, COUNT(*) AS n, MIN(id) AS first FROM fetches "
                       "GROUP BY source_id ORDER BY source_id")
    assert [(r["source_id"], r["n"]) for r in rows] == [("a", 200), ("b", 200)]
    assert store.recent_fetches("a", 20)[0]["id"] == 250  # the newest stay
    assert store.trim_fetches(200) == 0
    store.close()


# --- through real polls ---------------------------------------------------------------------


TITLES = {  # distinct news, so that dedupe keeps them apart (except the shared link)
    "lama": "Kabar lama: pembangunan jembatan Cikapundung dimulai",
    "bersama-a": "Gubernur meresmikan pasar rakyat di Tanah Abang",
    "bersama-b": "Peresmian pasar rakyat Tanah Abang oleh gubernur",
    "baru-a": "Kabar baru-a: vaksinasi anak sekolah di Menteng",
    "baru-b": "Kabar baru-b: banjir rob surut di pesisir Semarang",
    "baru-c": "Kabar baru-c: festival budaya Betawi digelar akhir pekan",
    "tua": "Kabar tua: lomba perahu naga di Waduk Pluit",
}


def _rss(items: list[tuple[str, str, datetime | None, int]]) -> bytes:
    """An RSS feed: (guid, link, pubDate or None, views) per item, titled by TITLES."""
    parts = []
    for guid, link, published, views in items:
        date = f"<pubDate>{format_datetime(published)}</pubDate>" if published else ""
        parts.append(f"<item><guid isPermaLink='false'>{escape(guid)}</guid>"
                     f"<title>{escape(TITLES[guid])}</title><link>{escape(link)}</link>"
                     f"{date}<description>{escape(TITLES[guid])}.</description>"
                     f"<views>{views}</views></item>")
    return ("<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel>"
            "<title>t</title><link>https://example.go.id/</link><description>d</description>"
            + "".join(parts) + "</channel></rss>").encode()


SOURCES = [Src("dki-rss", "/a.xml", "pemprov-dki"), Src("jateng-rss", "/b.xml",
                                                         "diskominfo-jateng")]


def _config(tmp: Path, portal: Portal, retention: str = "") -> Path:
    config = write_config(tmp, portal, SOURCES, settings=retention)
    text = (config.parent / "sources" / "portal.toml").read_text()
    text = text.replace('interval = "15m"\n', 'interval = "15m"\nviews_field = "views"\n')
    (config.parent / "sources" / "portal.toml").write_text(text)
    return config


def test_prune_deletes_everything_hanging_off_and_items_never_come_back(
        portal: Portal, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    shared = "https://example.go.id/berita/bersama"
    a_items = [("lama", "https://example.go.id/lama", now - timedelta(days=400), 5),
               ("bersama-a", shared, now - timedelta(days=40), 7),
               ("baru-a", "https://example.go.id/baru-a", now - timedelta(days=2), 9)]
    b_items = [("bersama-b", shared, now - timedelta(days=10), 3),
               ("baru-b", "https://example.go.id/baru-b", now - timedelta(days=1), 4)]
    portal.routes["/a.xml"] = Route(_rss(a_items))
    portal.routes["/b.xml"] = Route(_rss(b_items))
    config = _config(tmp_path, portal)
    assert invoke("poll", "--all", config=config).exit_code == 0
    items = {r["key"]: r for r in query(config, "SELECT * FROM items")}
    assert len(items) == 5
    story = items["guid:bersama-a"]["story_id"]
    assert items["guid:bersama-b"]["story_id"] == story  # one story (same link)
    assert query(config, "SELECT lead_item FROM stories WHERE id=?",
                 (story,))[0][0] == items["guid:bersama-a"]["id"]
    pruned_ids = [items["guid:lama"]["id"], items["guid:bersama-a"]["id"]]
    lone_story = items["guid:lama"]["story_id"]
    # the older days' key rows (made when the first poll looked the old items' days up)
    pruned_days = {d for (d,) in query(
        config, "SELECT day FROM dedupe_item_keys WHERE item_id IN (?, ?)", pruned_ids)}
    assert pruned_days <= {d for (d,) in query(config, "SELECT day FROM dedupe_days")}

    # now keep 30 days: the next run prunes (retention runs on its own in `run`)
    config = _config(tmp_path, portal, '[settings.retention]\nprune_after = "30d"\n')
    result = invoke("run", config=config)
    assert result.exit_code == 0, result.output
    left = {r["key"]: r for r in query(config, "SELECT * FROM items")}
    assert set(left) == {"guid:baru-a", "guid:bersama-b", "guid:baru-b"}
    marks = ",".join("?" * len(pruned_ids))
    for table in ("view_samples", "story_links", "dedupe_item_keys", "dedupe_fingerprints"):
        assert query(config, f"SELECT COUNT(*) FROM {table} WHERE item_id IN ({marks})",
                     pruned_ids)[0][0] == 0, table
    assert query(config, "SELECT COUNT(*) FROM view_samples")[0][0] == 3
    assert not pruned_days & {d for (d,) in query(config, "SELECT day FROM dedupe_days")}
    # the story that lost its lead has a new one; the one left empty is gone
    assert query(config, "SELECT lead_item FROM stories WHERE id=?",
                 (story,))[0][0] == left["guid:bersama-b"]["id"]
    assert query(config, "SELECT COUNT(*) FROM stories WHERE id=?", (lone_story,))[0][0] == 0
    assert query(config, "SELECT COUNT(*) FROM story_merges WHERE into_id NOT IN "
                 "(SELECT id FROM stories)")[0][0] == 0
    assert query(config, "SELECT item_count FROM sources WHERE id='dki-rss'")[0][0] == 1
    assert {(r[0], r[1]) for r in query(config, "SELECT scope, key FROM pruned_items")} == {
        ("dki-rss", "guid:lama"), ("dki-rss", "guid:bersama-a")}
    conn = sqlite3.connect(database(config))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("INSERT INTO items_fts (items_fts) VALUES ('integrity-check')")
        assert conn.execute("SELECT COUNT(*) FROM items_fts WHERE items_fts MATCH 'lama'"
                            ).fetchone()[0] == 0
    finally:
        conn.close()
    # the source still lists them: one now undated (it would be dated "now"), one as
    # before, next to a new item; only the new one is stored
    portal.routes["/a.xml"] = Route(_rss([("lama", "https://example.go.id/lama", None, 6),
                                          a_items[1], a_items[2],
                                          ("baru-c", "https://example.go.id/baru-c", now, 1)]))
    result = invoke("poll", "--all", "--json", config=config)
    assert result.exit_code == 0, result.output
    after = {r["key"] for r in query(config, "SELECT key FROM items")}
    assert after == set(left) | {"guid:baru-c"}
    fetch = query(config, "SELECT new FROM fetches WHERE source_id='dki-rss' "
                  "ORDER BY id DESC LIMIT 1")[0]
    assert fetch["new"] == 1


def test_feed_max_age_leaves_old_items_out_of_every_feed(portal: Portal,
                                                         tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    portal.routes["/a.xml"] = Route(_rss([
        ("lama", "https://example.go.id/lama", now - timedelta(days=40), 5),
        ("baru-a", "https://example.go.id/baru-a", now - timedelta(days=2), 9)]))
    portal.routes["/b.xml"] = Route(_rss([
        ("tua", "https://example.go.id/tua", now - timedelta(days=9), 3),
        ("baru-b", "https://example.go.id/baru-b", now - timedelta(hours=3), 4)]))
    config = _config(tmp_path, portal, '[settings.retention]\nfeed_max_age = "7d"\n')
    out = tmp_path / "out"
    assert invoke("poll", "--all", config=config).exit_code == 0
    assert invoke("publish", "--out", str(out), config=config).exit_code == 0

    def titles(path: str) -> set[str]:
        return {e.title for e in feedparser.parse((out / path).read_bytes()).entries}

    fresh = {TITLES["baru-a"], TITLES["baru-b"]}
    assert titles("feeds/all.rss") == fresh
    assert titles("feeds/top.rss") == fresh
    assert titles("feeds/agency/pemprov-dki.rss") == {TITLES["baru-a"]}
    assert titles("feeds/region/jawa-tengah.atom") == {TITLES["baru-b"]}
    assert "lama" not in (out / "index.html").read_text()
    assert len(query(config, "SELECT id FROM items")) == 4  # all kept in the database
    agg = Aggregator.open(str(config))
    try:
        found = agg.search_from(agg.store, "json", {"q": "kabar"}, "q=kabar")
        assert b"baru-a" in found.body and b"baru-b" in found.body
        assert b"Kabar lama" not in found.body and b"Kabar tua" not in found.body
    finally:
        agg.close()


def test_maintenance_is_hourly_and_shared_through_the_database(tmp_path: Path,
                                                               portal: Portal) -> None:
    portal.routes["/a.xml"] = Route(_rss([]))
    portal.routes["/b.xml"] = Route(_rss([]))
    config = _config(tmp_path, portal)
    clock: list[datetime] = [NOW]
    now: Callable[[], datetime] = lambda: clock[0]  # noqa: E731
    agg = Aggregator.open(str(config), clock=now)
    try:
        assert agg.maintain() is not None
        clock[0] = NOW + timedelta(minutes=30)
        assert agg.maintain() is None
    finally:
        agg.close()
    again = Aggregator.open(str(config), clock=now)  # another process: same record
    try:
        assert again.maintain() is None
        clock[0] = NOW + timedelta(minutes=61)
        assert again.maintain() is not None
    finally:
        again.close()


def test_serve_scheduler_applies_retention_and_renders_again(tmp_path: Path,
                                                             portal: Portal) -> None:
    """The daemon's tick runs maintenance on its own; with a feed age limit the site is
    rendered again even when the poll stored nothing (items age out of the feeds)."""
    from aggregator.scheduler import Scheduler

    now = datetime.now(UTC)
    portal.routes["/a.xml"] = Route(_rss([("baru-a", "https://example.go.id/baru-a",
                                           now - timedelta(days=2), 9)]))
    portal.routes["/b.xml"] = Route(_rss([]))
    config = _config(tmp_path, portal, '[settings.retention]\nfeed_max_age = "1d"\n')
    assert invoke("poll", "--all", config=config).exit_code == 0  # nothing due at the tick
    agg = Aggregator.open(str(config))
    published: list[set[str]] = []
    try:
        scheduler = Scheduler(agg, lambda site: published.append(set(site)))
        scheduler.poll_due()
        assert agg.store.meta_get("maintenance_at") is not None
        assert len(published) == 1 and "/feeds/all.rss" in published[0]
        scheduler.poll_due()  # within the hour: no maintenance, nothing stored, no render
        assert len(published) == 1
        assert scheduler.tick_ended is not None and scheduler.tick_started is not None
    finally:
        agg.close()
