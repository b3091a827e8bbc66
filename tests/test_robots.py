"""robots.txt and Crawl-delay for scraped (html) sources, end to end: the real CLI in a
subprocess against the fake portal on 127.0.0.1, whose request log shows what was fetched and
when (RFC 9309: 2xx rules are obeyed, 4xx allows everything, 5xx means do not crawl)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from tests.portal import (
    BJ_SCRAPER,
    Article,
    Portal,
    Route,
    Src,
    bj_article,
    bj_listing,
    database,
    fixture_feed,
    html_route,
    query,
    run_cli,
    toml_str,
    write_config,
    write_sources_config,
)

pytestmark = pytest.mark.slow

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
TEXT = "text/plain; charset=utf-8"
AGENCY = """\
[[agency]]
slug = "pemprov-dki"
name = "Pemerintah Provinsi DKI Jakarta"
region = "dki-jakarta"
"""
# A listing spec without article pages (one request per listing page).
LISTING_ONLY = """\
[source.html]
item = "ul.list-index > li"
title = "h2 a"
link = "h2 a @href"
id = { css = "h2 a", attr = "href", regex = "/read/(\\\\d+)" }
date = "span:has(i:contains('access_time'))"
views = "span:has(i:contains('remove_red_eye'))"
ignore = "i.material-icons"
next_page = "ul.pagination a[rel=next] @href"
max_pages = 3
"""

ARTICLES = [Article(9301 + n, title, NOW - timedelta(hours=2 + 3 * n), 500 - 10 * n, "Nurito")
            for n, title in enumerate([
                "Wali Kota Jakut Tinjau Normalisasi Kali Sunter",
                "Jakut Siagakan 120 Pompa Mobile Antisipasi Banjir Rob",
                "Satpol PP Jakut Tertibkan Bangunan Liar di Bantaran Kali",
                "Pasar Murah Digelar di 44 Kelurahan Jakarta Timur"])]


def robots(portal: Portal, text: str, status: int = 200) -> None:
    portal.routes["/robots.txt"] = Route(text.encode(), TEXT, status=status)


def serve_site(portal: Portal) -> None:
    """Two listing pages (scraper `bj`, with article pages) and their articles."""
    r = portal.routes
    r["/berita/terkini"] = html_route(bj_listing("Berita Terkini", ARTICLES[:2]))
    r["/wilayah/jakarta-utara"] = html_route(bj_listing("Jakarta Utara", ARTICLES[2:]))
    for a in ARTICLES:
        r[a.path] = html_route(bj_article(a))


def bj_config(tmp: Path, portal: Portal, sources: dict[str, str]) -> Path:
    parts = [AGENCY, BJ_SCRAPER]
    for sid, path in sources.items():
        parts.append(f'[[source]]\nid = "{sid}"\nkind = "html"\n'
                     f'url = {toml_str(portal.url(path))}\nagency = "pemprov-dki"\n'
                     f'scraper = "bj"\ninterval = "15m"\n')
    return write_sources_config(tmp, "\n".join(parts))


def poll(config: Path, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                            dict[str, dict[str, Any]]]:
    proc = run_cli("poll", "--json", "--all", *args, config=config)
    assert proc.returncode in (0, 1), proc.stderr
    return proc, {r["source"]: r for r in json.loads(proc.stdout)}


def fetched_under(portal: Portal, prefix: str) -> list[str]:
    return [r.path for r in portal.log if r.path.startswith(prefix)]


def test_robots_txt_is_fetched_once_and_cached_for_24h(portal: Portal, tmp_path: Path) -> None:
    robots(portal, "User-agent: *\nDisallow: /admin/\n")
    serve_site(portal)
    config = bj_config(tmp_path, portal, {"bj-terkini": "/berita/terkini",
                                          "bj-utara": "/wilayah/jakarta-utara"})
    proc, reports = poll(config)
    assert proc.returncode == 0, proc.stdout
    assert sum(r["new"] for r in reports.values()) == 4
    assert len(portal.requests_for("/robots.txt")) == 1, "one host, one robots.txt"
    cached = query(config, "SELECT origin, status FROM robots")
    assert [tuple(r) for r in cached] == [(portal.base, 200)]

    # a new process, within 24 h: robots.txt comes from the database
    proc, reports = poll(config)
    assert proc.returncode == 0, proc.stdout
    assert len(portal.requests_for("/berita/terkini")) == 2, "the listing was polled again"
    assert len(portal.requests_for("/robots.txt")) == 1, "robots.txt was fetched again"

    # once the cached copy is older than 24 h, it is fetched again
    old = (datetime.now(UTC) - timedelta(hours=25)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    conn = sqlite3.connect(database(config))
    with conn:
        conn.execute("UPDATE robots SET fetched_at=?", (old,))
    conn.close()
    proc, _ = poll(config)
    assert proc.returncode == 0, proc.stdout
    assert len(portal.requests_for("/robots.txt")) == 2


@pytest.mark.parametrize("robots_txt", [
    "User-agent: *\nDisallow: /berita/\nDisallow: /read/\n",
    "User-agent: aggregator\nDisallow: /berita/\nDisallow: /read/\n\n"
    "User-agent: *\nAllow: /\n",
], ids=["any-agent", "our-agent"])
def test_disallowed_paths_fail_clearly_and_are_not_fetched(portal: Portal, tmp_path: Path,
                                                           robots_txt: str) -> None:
    robots(portal, robots_txt)
    serve_site(portal)
    config = bj_config(tmp_path, portal, {"bj-terkini": "/berita/terkini",
                                          "bj-utara": "/wilayah/jakarta-utara"})
    proc = run_cli("poll", "--all", config=config)
    assert proc.returncode == 1, "a source refused by robots.txt is a failed source"
    line = next(x for x in proc.stdout.splitlines() if x.startswith("bj-terkini"))
    assert "error" in line and "robots.txt" in line, line
    assert fetched_under(portal, "/berita/") == [], "nothing fetched from the disallowed path"

    # the allowed listing is read; its article pages are under a disallowed path
    assert fetched_under(portal, "/read/") == []
    counts = {r["source_id"]: r["n"] for r in query(
        config, "SELECT source_id, COUNT(*) AS n FROM items GROUP BY source_id")}
    assert counts == {"bj-utara": 2}
    assert "robots.txt" in proc.stdout.split("bj-utara", 1)[1], "article refusals are reported"

    rows = {r["id"]: r for r in json.loads(run_cli("sources", "--json",
                                                   config=config).stdout)}
    assert rows["bj-terkini"]["state"] == "failing"
    assert "robots.txt" in rows["bj-terkini"]["last_error"]
    assert rows["bj-utara"]["state"] == "ok"


def test_crawl_delay_spaces_requests_to_the_host(portal: Portal, tmp_path: Path) -> None:
    robots(portal, "User-agent: *\nCrawl-delay: 1\n")
    r = portal.routes
    r["/kategori/banjir"] = html_route(bj_listing("Banjir", ARTICLES[:1],
                                                  next_href="/kategori/banjir/2"))
    r["/kategori/banjir/2"] = html_route(bj_listing("Banjir", ARTICLES[1:2],
                                                    next_href="/kategori/banjir/3"))
    r["/kategori/banjir/3"] = html_route(bj_listing("Banjir", ARTICLES[2:3]))
    r["/wilayah/jakarta-utara"] = html_route(bj_listing("Jakarta Utara", ARTICLES[3:]))
    parts = [AGENCY]
    for sid, path in (("banjir", "/kategori/banjir"), ("utara", "/wilayah/jakarta-utara")):
        parts.append(f'[[source]]\nid = "{sid}"\nkind = "html"\n'
                     f'url = {toml_str(portal.url(path))}\nagency = "pemprov-dki"\n'
                     f'interval = "15m"\n{LISTING_ONLY}')
    config = write_sources_config(tmp_path, "\n".join(parts))
    proc, reports = poll(config)
    assert proc.returncode == 0, proc.stdout
    assert reports["banjir"]["new"] == 3 and reports["utara"]["new"] == 1
    pages = [q for q in portal.log if q.path != "/robots.txt"]
    assert sorted(q.path for q in pages) == sorted(
        ["/kategori/banjir", "/kategori/banjir/2", "/kategori/banjir/3",
         "/wilayah/jakarta-utara"])
    times = sorted(q.at for q in pages)
    gaps = [round(b - a, 3) for a, b in pairwise(times)]
    assert all(g >= 0.9 for g in gaps), f"gaps between requests to one host: {gaps}"


def test_robots_txt_500_means_do_not_crawl(portal: Portal, tmp_path: Path) -> None:
    robots(portal, "<h1>500 Internal Server Error</h1>", status=500)
    serve_site(portal)
    config = bj_config(tmp_path, portal, {"bj-terkini": "/berita/terkini"})
    proc, reports = poll(config)
    assert proc.returncode == 1
    error = reports["bj-terkini"]["error"] or ""
    assert "robots.txt" in error and "500" in error and "do not crawl" in error, error
    assert [q.path for q in portal.log] == ["/robots.txt"], "nothing else is fetched"
    assert query(config, "SELECT COUNT(*) AS n FROM items")[0]["n"] == 0


def test_robots_txt_404_means_allowed(portal: Portal, tmp_path: Path) -> None:
    serve_site(portal)  # no /robots.txt route: the portal answers 404
    config = bj_config(tmp_path, portal, {"bj-terkini": "/berita/terkini"})
    proc, reports = poll(config)
    assert proc.returncode == 0, proc.stdout
    assert reports["bj-terkini"]["new"] == 2
    assert [q.status for q in portal.requests_for("/robots.txt")] == [404]
    assert len(portal.requests_for("/berita/terkini")) == 1


def test_feed_sources_do_not_fetch_robots_txt(portal: Portal, tmp_path: Path) -> None:
    robots(portal, "User-agent: *\nDisallow: /\n")
    portal.routes["/rss/pemprov-dki.xml"] = Route(fixture_feed("pemprov-dki.rss"))
    config = write_config(tmp_path, portal, [Src("dki-rss", "/rss/pemprov-dki.xml",
                                                 "pemprov-dki")])
    proc, reports = poll(config)
    assert proc.returncode == 0, proc.stdout
    assert reports["dki-rss"]["new"] == 3
    assert portal.requests_for("/robots.txt") == []
