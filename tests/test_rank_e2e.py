"""Ranking end to end: feeds with view counts on the local portal, polled twice through the
real pipeline into a real SQLite file (a few hours apart, by the aggregator's clock), then
the real CLI: `aggregator top --explain` (text and JSON). Views are measured against each
source's own traffic, growth comes from the stored samples, a story without views is
neutral, and one source cannot fill the top."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from aggregator.core import Aggregator, read_config
from aggregator.rank import item_views
from aggregator.store.views import ViewReader
from aggregator.types import RankSettings, ViewSamples
from tests.portal import Portal, Route, Src, invoke, query, write_config

SOURCES = (Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki"),
           Src("bandung-mysql", "/feed/bandung.rss", "pemkot-bandung"),
           Src("jateng-atom", "/rss/jateng.xml", "diskominfo-jateng"))
NOW = datetime.now(UTC).replace(microsecond=0)
PUBLISHED = NOW - timedelta(hours=6)

# (guid, title, views at the first poll, views at the second); None: no count in the feed
BIG = [("dki-1", "Banjir Rob Surut di Pesisir Utara", 5000, 5200),
       ("dki-2", "Jadwal Uji Emisi Kendaraan Pekan Ini", 3000, 3100),
       ("dki-3", "Lelang Jabatan Kepala Dinas Dibuka", 4000, 4050),
       ("dki-4", "Posyandu Remaja Hadir di Kelurahan", 2000, 2020)]
SMALL = [("bdg-1", "Wali Kota Resmikan Taman Tematik Baru", 40, 400),
         ("bdg-2", "Pendaftaran Beasiswa Mahasiswa Berprestasi", 10, 12),
         ("bdg-3", "Perbaikan Jalan Soekarno Hatta Rampung", 12, 13)]
NONE = [("jtg-1", "Festival Budaya Lereng Merapi Digelar", None, None)]


def rss(items: list[tuple[str, str, int | None, int | None]], second: bool) -> bytes:
    entries = []
    for n, (guid, title, first, later) in enumerate(items):
        views = later if second else first
        stats = f'<media:statistics views="{views}"/>' if views is not None else ""
        entries.append(
            f"<item><title>{title}</title><link>https://contoh.go.id/{guid}</link>"
            f"<guid isPermaLink=\"false\">{guid}</guid>"
            f"<pubDate>{format_datetime(PUBLISHED - timedelta(minutes=n))}</pubDate>"
            f"{stats}<description>{title}.</description></item>")
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            'xmlns:media="http://search.yahoo.com/mrss/"><channel><title>T</title>'
            f'<link>https://contoh.go.id/</link><description>D</description>{"".join(entries)}'
            '</channel></rss>').encode()


def serve(portal: Portal, second: bool) -> None:
    portal.routes["/rss/pemprov-dki.xml"] = Route(rss(BIG, second))
    portal.routes["/feed/bandung.rss"] = Route(rss(SMALL, second))
    portal.routes["/rss/jateng.xml"] = Route(rss(NONE, second))


def poll_at(config: Path, at: datetime) -> None:
    agg = Aggregator(read_config(str(config)), clock=lambda: at)
    try:
        reports = agg.poll(agg.select_sources(everything=True))
        ok = ("new", "updated", "unchanged", "not_modified")
        assert all(r.outcome in ok for r in reports), reports
    finally:
        agg.close()


@pytest.fixture
def polled(tmp_path: Path, portal: Portal) -> Path:
    config = write_config(tmp_path, portal, SOURCES, settings="[settings.rank]\n"
                          "max_per_source = 2\n")
    serve(portal, second=False)
    poll_at(config, NOW - timedelta(hours=4))
    serve(portal, second=True)
    poll_at(config, NOW - timedelta(hours=1))
    return config


def test_the_store_gives_ranking_each_item_s_latest_count_and_growth(polled: Path) -> None:
    settings = RankSettings()
    rows = {r["key"]: r["id"] for r in query(polled, "SELECT key, id FROM items")}
    samples = query(polled, "SELECT item_id, COUNT(*) AS n FROM view_samples GROUP BY item_id")
    assert {r["n"] for r in samples} == {2}  # two polls, two samples each
    agg = Aggregator.open(str(polled))
    try:
        reader = ViewReader(agg.store.db.conn)
        stored = reader.samples(rows.values(), NOW, settings.growth_hours)
        base = reader.baseline_items(NOW, settings.baseline_days)
    finally:
        agg.close()
    viral = item_views(stored[rows["guid:bdg-1"]], NOW, settings)
    assert viral.views == 400 and viral.per_hour == pytest.approx(360 / 3)
    assert item_views(stored[rows["guid:jtg-1"]], NOW, settings).views is None
    # as of an earlier time, the later sample is not seen yet
    early = reader_at(polled, rows["guid:bdg-1"], NOW - timedelta(hours=2))
    assert early.latest == 40 and len(early.window) == 1
    assert sorted(base) == ["bandung-mysql", "dki-rss"]  # the source without counts has none
    assert len(base["dki-rss"]) == 4


def reader_at(config: Path, item_id: int, at: datetime) -> ViewSamples:
    agg = Aggregator.open(str(config))
    try:
        return ViewReader(agg.store.db.conn).samples([item_id], at, 24)[item_id]
    finally:
        agg.close()


def test_top_explain_shows_the_parts_and_ranks_by_each_source_s_traffic(polled: Path) -> None:
    result = invoke("top", "--explain", "--json", config=polled)
    assert result.exit_code == 0, result.output
    ranked = json.loads(result.stdout)
    assert len(ranked) == 8
    titles = [r["title"] for r in ranked]
    # 400 views on a portal whose stories get ~12 outrank 5,200 where they get ~3,500
    assert titles[0] == "Wali Kota Resmikan Taman Tematik Baru"
    first = ranked[0]["parts"]
    [src] = first["sources"]
    assert src["views"] == 400 and src["typical"] == 13.0
    assert src["per_hour"] == pytest.approx(120.0)
    assert first["views_neutral"] is False and first["growth_neutral"] is False
    for part in (ranked[:5], ranked[5:]):  # score order within the uncapped and the capped
        scores = [r["score"] for r in part]
        assert scores == sorted(scores, reverse=True)
    # no counts: neutral, the source's typical (rel_views 1)
    [none] = [r for r in ranked if r["source"] == "jateng-atom"]
    assert none["parts"]["views_neutral"] and none["parts"]["sources"][0]["rel_views"] == 1.0
    # max_per_source = 2: each source's 3rd and 4th stories come after all the others
    assert [r["parts"]["capped"] for r in ranked] == [False] * 5 + [True] * 3
    assert sorted(r["source"] for r in ranked[5:]) == ["bandung-mysql", "dki-rss", "dki-rss"]
    assert sorted(r["source"] for r in ranked[:5]) == ["bandung-mysql"] * 2 + \
        ["dki-rss"] * 2 + ["jateng-atom"]

    text = invoke("top", "--explain", config=polled)
    assert text.exit_code == 0, text.output
    out = text.stdout
    assert "Wali Kota Resmikan Taman Tematik Baru" in out.splitlines()[0]
    assert "bandung-mysql: 400 views, typical 13 -> x28.64" in out
    assert "+120.0 views/h in the last 24 h" in out
    assert "jateng-atom: no view data: neutral x1 (the source's typical)" in out
    assert "placed after the others" in out and "decay" in out and "half-life 36 h" in out


def test_top_without_explain_has_no_parts(polled: Path) -> None:
    result = invoke("top", "--json", "--limit", "3", config=polled)
    ranked = json.loads(result.stdout)
    assert len(ranked) == 3 and all("parts" not in r for r in ranked)
    assert [r["rank"] for r in ranked] == [1, 2, 3]
