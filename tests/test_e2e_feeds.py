"""End to end, as a user runs it: the real CLI in a subprocess polls the fake government portal
on 127.0.0.1 into a real SQLite file, publishes static feeds, and the feeds are read back with
feedparser."""

from __future__ import annotations

import calendar
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import feedparser
import pytest

from tests.feedcheck import assert_valid_tree
from tests.portal import (
    BASE_URL,
    ETAG_V1,
    FAILING,
    JATENG_LAST_MODIFIED,
    LAST_MODIFIED,
    PORTAL_SOURCES,
    Portal,
    Route,
    Src,
    fixture_feed,
    invoke,
    item_counts,
    query,
    run_cli,
    serve_standard_feeds,
    write_config,
)
from tests.portal import (
    Request as PortalRequest,
)

pytestmark = pytest.mark.slow

# Canonical link -> the UTC time the source meant.
EXPECTED_UTC = {
    # RSS 2.0, RFC 822 with +0700
    "https://www.jakarta.go.id/berita/pemprov-dki-gelar-pelatihan-kehumasan": "2024-06-25T07:30",
    # "Senin, 24 Juni 2024 09:00 WIB"
    "https://www.jakarta.go.id/berita/detail?id=10219": "2024-06-24T02:00",
    "https://www.jakarta.go.id/berita/petugas-kebersihan-malam-takbiran": "2024-06-16T13:00",
    # Atom
    "https://diskominfo.jatengprov.go.id/berita/gubernur-resmikan-jembatan": "2024-06-24T02:15",
    "https://diskominfo.jatengprov.go.id/berita/aplikasi-layanan-publik-terpadu":
        "2024-06-23T16:00",
    # MySQL-style "2024-06-25 10:00:00", no zone: read in Asia/Jakarta (UTC+7)
    "https://www.bandung.go.id/news/read/8812/pemkot-bandung-gelar-operasi-pasar-murah":
        "2024-06-25T03:00",
    "https://www.bandung.go.id/news/read/8807/tinjau-perbaikan-jalan-gedebage":
        "2024-06-24T08:30",
    # ill-formed feed, "Rabu, 19 Juni 2024 08:00 WIB"
    "https://bogorkab.go.id/berita/bupati-tinjau-banjir-longsor-sukajaya": "2024-06-19T01:00",
    "https://bogorkab.go.id/berita/pendaftaran-beasiswa-mahasiswa?ref=home": "2024-06-18T06:15",
    # ETag source, GMT
    "https://www.baliprov.go.id/berita/festival-seni-budaya-desa": "2024-06-12T02:00",
    "https://www.baliprov.go.id/berita/bantuan-bibit-kopi-kintamani": "2024-06-10T06:30",
    "https://www.baliprov.go.id/berita/delegasi-asean-pariwisata": "2024-06-14T03:00",
}
ETAG_V2 = '"bali-v2-90ad"'
BALI, JATENG = "/rss/bali.xml", "/atom/diskominfo-jateng.xml"
MYSQL_LINK = "https://www.bandung.go.id/news/read/8812/pemkot-bandung-gelar-operasi-pasar-murah"
FIRST_COUNTS = {"dki-rss": 3, "jateng-atom": 2, "bandung-mysql": 2, "bogor-rusak": 2,
                "bali-etag": 2}
REPORT_LINE = re.compile(r"^(?P<id>\S+)\s+(?P<outcome>\S+)\s+new=(?P<new>\d+) "
                         r"updated=(?P<updated>\d+) unchanged=(?P<unchanged>\d+) "
                         r"status=(?P<status>\S+)(?P<rest>.*)$")


def report(stdout: str) -> dict[str, dict[str, str]]:
    """The per-source lines of `poll` output, by source id."""
    out = {}
    for line in stdout.splitlines():
        m = REPORT_LINE.match(line)
        if m:
            out[m["id"]] = m.groupdict()
    return out


def requests(log: list[PortalRequest], path: str) -> list[PortalRequest]:
    return [r for r in log if r.path == path]


def warnings_for(stdout: str, source_id: str) -> list[str]:
    """The `warning:` lines printed under one source's line of `poll` output."""
    found: list[str] = []
    current = None
    for line in stdout.splitlines():
        m = REPORT_LINE.match(line)
        if m:
            current = m["id"]
        elif current == source_id and line.strip().startswith("warning:"):
            found.append(line.strip())
    return found


def read_feed(path: Path) -> feedparser.FeedParserDict:
    """feedparser without its own cleanup, so that it cannot hide what we published."""
    return feedparser.parse(path.read_bytes(), sanitize_html=False,
                            resolve_relative_uris=False)


def feed_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.suffix in (".rss", ".atom"))


def ids_by_link(out: Path) -> dict[tuple[str, str], str]:
    ids = {}
    for path in feed_files(out):
        for e in read_feed(path).entries:
            ids[(str(path.relative_to(out)), e.link)] = e.id
    return ids


def utc(parsed: object) -> str:
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC).strftime(  # type: ignore
        "%Y-%m-%dT%H:%M")


def check_published_feed(path: Path) -> list[str]:
    """Every entry of one published feed: absolute clean link, unique id, right UTC date,
    sanitized content. Returns the links."""
    raw = path.read_text(encoding="utf-8").lower()
    for bad in ("<script", "&lt;script", "onclick", "onmouseover", "javascript:"):
        assert bad not in raw, f"{path}: published feed contains {bad!r}"
    data = read_feed(path)
    assert data.bozo == 0, f"{path}: {data.get('bozo_exception')}"
    seen_ids: set[str] = set()
    links = []
    for e in data.entries:
        link = e.get("link", "")
        parts = urlsplit(link)
        assert parts.scheme in ("http", "https") and parts.hostname, f"{path}: link {link!r}"
        params = [k.lower() for k, _ in parse_qsl(parts.query, keep_blank_values=True)]
        assert not [k for k in params if k.startswith("utm_") or k == "fbclid"], link
        assert not parts.fragment, link
        assert e.get("id"), f"{path}: entry without id ({link})"
        assert e.id not in seen_ids, f"{path}: id {e.id} twice"
        seen_ids.add(e.id)
        assert e.get("published_parsed"), f"{path}: {link} has no parseable date"
        if link in EXPECTED_UTC:
            assert utc(e.published_parsed) == EXPECTED_UTC[link], (path.name, link)
        html = " ".join([e.get("summary", "")] + [c.value for c in e.get("content", [])])
        for attr, value in re.findall(r'\b(href|src)\s*=\s*["\']([^"\']*)', html):
            assert value.startswith(("http://", "https://")), \
                f"{path}: {attr}={value!r} is not absolute ({link})"
        links.append(link)
    return links


def mtimes(out: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(out)): (p.stat().st_mtime_ns, p.stat().st_ino)
            for p in out.rglob("*") if p.is_file()}


@dataclass
class Scenario:
    """What one run of the whole CLI story produced, step by step."""

    config: Path
    out: Path
    portal: Portal
    first: subprocess.CompletedProcess[str]
    counts_first: dict[str, int]
    log_first: list[PortalRequest]  # what the portal saw during each poll
    second: subprocess.CompletedProcess[str]
    counts_second: dict[str, int]
    log_second: list[PortalRequest]
    third: subprocess.CompletedProcess[str]
    counts_third: dict[str, int]
    log_third: list[PortalRequest]
    uid_before: dict[str, str]
    ids_before: dict[tuple[str, str], str]
    ids_after: dict[tuple[str, str], str]
    publishes: list[subprocess.CompletedProcess[str]]
    files_before_last: dict[str, tuple[int, int]]
    files_after_last: dict[str, tuple[int, int]]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """poll --all; publish; poll --all; the portal edits a title and adds an item; poll that
    source (and one unchanged one); publish; publish again. Assertions live in the tests
    below, one aspect each."""
    tmp = tmp_path_factory.mktemp("e2e")
    with Portal() as portal:
        serve_standard_feeds(portal)
        config = write_config(tmp, portal, PORTAL_SOURCES, timeout=2.0)
        out = tmp / "public"
        bali = "/rss/bali.xml"

        first = run_cli("poll", "--all", config=config)
        counts_first, log_first = item_counts(config), list(portal.log)
        publishes = [run_cli("publish", "--out", str(out), config=config)]
        ids_before = ids_by_link(out)
        uid_before = {r["key"]: r["uid"] for r in query(
            config, "SELECT key, uid FROM items WHERE source_id='bali-etag'")}

        portal.clear_log()
        second = run_cli("poll", "--all", config=config)
        counts_second, log_second = item_counts(config), list(portal.log)

        portal.routes[bali] = Route(fixture_feed("pemprov-bali-etag-v2.rss"),
                                    etag=ETAG_V2, last_modified="Fri, 14 Jun 2024 03:05:00 GMT")
        portal.clear_log()
        third = run_cli("poll", "--source", "bali-etag", "--source", "dki-rss", config=config)
        counts_third, log_third = item_counts(config), list(portal.log)

        publishes.append(run_cli("publish", "--out", str(out), config=config))
        ids_after = ids_by_link(out)
        files_before_last = mtimes(out)
        publishes.append(run_cli("publish", "--out", str(out), config=config))
        files_after_last = mtimes(out)
        yield Scenario(config, out, portal, first, counts_first, log_first, second,
                       counts_second, log_second, third, counts_third, log_third, uid_before,
                       ids_before, ids_after, publishes, files_before_last, files_after_last)


def test_first_poll_reports_every_source_and_exits_1(scenario: Scenario) -> None:
    first = scenario.first
    assert first.returncode == 1, first.stdout + first.stderr
    lines = report(first.stdout)
    assert set(lines) == {s.id for s in PORTAL_SOURCES}, first.stdout
    for sid, line in lines.items():
        assert (line["outcome"] == "error") == (sid in FAILING), line
    assert lines["jatim-500"]["status"] == "500"
    assert "500" in lines["jatim-500"]["rest"]
    assert re.search(r"time|within", lines["surabaya-timeout"]["rest"], re.I), lines
    assert re.search(r"^7 sources: 11 new, 0 updated, 2 failed$", first.stdout, re.M), \
        first.stdout
    assert scenario.counts_first == FIRST_COUNTS
    # The first request of the ETag source is unconditional.
    [request] = requests(scenario.log_first, BALI)
    assert "if-none-match" not in request.headers
    assert "if-modified-since" not in request.headers


def test_failing_sources_are_recorded(scenario: Scenario) -> None:
    rows = json.loads(invoke("sources", "list", "--json", config=scenario.config).stdout)
    states = {r["id"]: r for r in rows}
    assert states["jatim-500"]["state"] == states["surabaya-timeout"]["state"] == "failing"
    assert states["jatim-500"]["failures"] == 2  # one per poll --all; still polled, not dropped
    assert states["jatim-500"]["last_status"] == 500
    assert states["dki-rss"]["state"] == "ok"


def test_ill_formed_feed_yields_items_and_a_warning(scenario: Scenario) -> None:
    shown = run_cli("sources", "show", "bogor-rusak", "--json", config=scenario.config)
    bogor = json.loads(shown.stdout)
    assert bogor["warnings"], bogor
    assert bogor["item_count"] == 2
    dki = json.loads(invoke("sources", "show", "dki-rss", "--json",
                            config=scenario.config).stdout)
    assert dki["warnings"] == []
    titles = {r["title"] for r in query(scenario.config, "SELECT title FROM items "
                                                         "WHERE source_id='bogor-rusak'")}
    assert "Bupati Bogor Tinjau Banjir & Longsor di Sukajaya" in titles
    # The poll's summary shows it under the source's line.
    assert warnings_for(scenario.first.stdout, "bogor-rusak"), scenario.first.stdout
    assert warnings_for(scenario.first.stdout, "dki-rss") == []


def test_mysql_date_is_stored_as_utc_read_in_jakarta(scenario: Scenario) -> None:
    [row] = query(scenario.config, "SELECT published FROM items WHERE link=?", (MYSQL_LINK,))
    assert row["published"].startswith("2024-06-25T03:00:00")


def test_views_are_stored_from_media_statistics(scenario: Scenario) -> None:
    [row] = query(scenario.config, "SELECT id, views FROM items "
                                   "WHERE key='guid:jakarta-berita-10231'")
    assert row["views"] == 1476
    samples = query(scenario.config, "SELECT views FROM view_samples WHERE item_id=?",
                    (row["id"],))
    assert samples and all(s["views"] == 1476 for s in samples)


def test_second_poll_stores_no_duplicates(scenario: Scenario) -> None:
    second = scenario.second
    assert second.returncode == 1, second.stdout + second.stderr
    lines = report(second.stdout)
    assert set(lines) == {s.id for s in PORTAL_SOURCES}
    assert scenario.counts_second == FIRST_COUNTS
    for _sid, line in lines.items():
        assert (line["new"], line["updated"]) == ("0", "0"), line


def test_etag_source_is_asked_conditionally_and_gets_304(scenario: Scenario) -> None:
    assert len(requests(scenario.log_second, BALI)) == 1, scenario.second.stdout
    [request] = requests(scenario.log_second, BALI)
    assert request.headers.get("if-none-match") == ETAG_V1
    assert request.headers.get("if-modified-since") == LAST_MODIFIED
    assert request.status == 304
    line = report(scenario.second.stdout)["bali-etag"]
    assert line["status"] == "304"
    assert line["outcome"] == "not_modified"


def test_last_modified_only_source_gets_if_modified_since(scenario: Scenario) -> None:
    """The Atom source sends Last-Modified but no ETag: asked with If-Modified-Since."""
    [first] = requests(scenario.log_first, JATENG)
    assert "if-modified-since" not in first.headers
    [request] = requests(scenario.log_second, JATENG)
    assert request.headers.get("if-modified-since") == JATENG_LAST_MODIFIED
    assert "if-none-match" not in request.headers
    assert request.status == 304
    assert report(scenario.second.stdout)["jateng-atom"]["status"] == "304"


def test_every_source_was_asked_once_per_poll(scenario: Scenario) -> None:
    for log in (scenario.log_first, scenario.log_second):
        paths = sorted(r.path for r in log)
        assert paths == sorted(s.path for s in PORTAL_SOURCES), paths
    assert all(r.method == "GET" for r in scenario.log_first)
    status = {r.path: r.status for r in scenario.log_first}
    assert status["/rss/bpbd-jatim.xml"] == 500
    assert status["/rss/surabaya.xml"] is None  # the aggregator gave up before any answer


def test_changed_feed_is_updated_in_place(scenario: Scenario) -> None:
    third = scenario.third
    assert third.returncode == 0, third.stdout + third.stderr
    lines = report(third.stdout)
    assert set(lines) == {"bali-etag", "dki-rss"}
    assert (lines["dki-rss"]["new"], lines["dki-rss"]["updated"]) == ("0", "0")
    line = lines["bali-etag"]
    assert (line["new"], line["updated"]) == ("1", "1"), third.stdout
    assert line["status"] == "200"
    [request] = requests(scenario.log_third, BALI)
    assert request.headers.get("if-none-match") == ETAG_V1 and request.status == 200
    assert scenario.counts_third == {**FIRST_COUNTS, "bali-etag": 3}
    rows = query(scenario.config, "SELECT key, uid, title FROM items "
                                  "WHERE source_id='bali-etag'")
    festival = {r["key"]: r for r in rows}["guid:baliprov-2024-0612"]
    assert festival["title"] == "Pemprov Bali Gelar Festival Seni Budaya Desa 2024 Secara Meriah"
    assert festival["uid"] == scenario.uid_before["guid:baliprov-2024-0612"]
    assert len(query(scenario.config,
                     "SELECT 1 FROM items WHERE title LIKE 'Pemprov Bali Gelar%'")) == 1
    # The new validators are remembered.
    [source] = query(scenario.config, "SELECT etag FROM sources WHERE id='bali-etag'")
    assert source["etag"] == ETAG_V2


def test_every_published_file_exists(scenario: Scenario) -> None:
    out = scenario.out
    assert all(p.returncode == 0 for p in scenario.publishes), scenario.publishes
    for slug in {s.agency for s in PORTAL_SOURCES}:
        for ext in ("rss", "atom", "json"):
            assert (out / "feeds" / "agency" / f"{slug}.{ext}").is_file(), (slug, ext)
    for name in ("all", "top"):
        for ext in ("rss", "atom", "json"):
            assert (out / "feeds" / f"{name}.{ext}").is_file()
    assert (out / "opml").is_file() and (out / "index.html").is_file()


def test_published_items_are_clean_and_correctly_dated(scenario: Scenario) -> None:
    files = feed_files(scenario.out)
    assert len(files) >= 2 * (2 + 7)
    assert assert_valid_tree(scenario.out, BASE_URL) == len(files) * 3 // 2  # and .json
    checked = 0
    for path in files:
        checked += len(check_published_feed(path))
    assert checked > 0


@pytest.mark.parametrize("ext", ["rss", "atom"])
def test_published_links_are_the_stored_articles(scenario: Scenario, ext: str) -> None:
    out = scenario.out
    stored = {r["link"] for r in query(scenario.config, "SELECT link FROM items")}
    assert len(stored) == 12
    for name in ("all", "top"):
        links = [e.link for e in read_feed(out / "feeds" / f"{name}.{ext}").entries]
        assert len(links) == 12 and set(links) == stored, (name, ext)
    bali = [e.link for e in read_feed(out / "feeds/agency" / f"pemprov-bali.{ext}").entries]
    assert sorted(bali) == sorted(link for link in EXPECTED_UTC if "baliprov" in link)
    assert read_feed(out / "feeds/agency" / f"bpbd-jatim.{ext}").entries == []
    # Newest first in the combined feed.
    dates = [e.published_parsed for e in read_feed(out / "feeds" / f"all.{ext}").entries]
    assert dates == sorted(dates, reverse=True)


def test_mysql_dated_item_is_published_in_utc(scenario: Scenario) -> None:
    for name in ("feeds/agency/pemkot-bandung.rss", "feeds/agency/pemkot-bandung.atom",
                 "feeds/all.rss", "feeds/all.atom"):
        [entry] = [e for e in read_feed(scenario.out / name).entries
                   if e.get("title") == "Pemkot Bandung Gelar Operasi Pasar Murah Jelang "
                                        "Iduladha"]
        assert utc(entry.published_parsed) == "2024-06-25T03:00", name


def test_content_is_sanitized_and_absolutized(scenario: Scenario) -> None:
    for ext in ("rss", "atom"):
        [entry] = [e for e in read_feed(scenario.out / f"feeds/agency/pemprov-dki.{ext}").entries
                   if e.title == "Pemprov DKI Gelar Pelatihan Kehumasan"]
        body = " ".join(c.value for c in entry.content)
        assert 'href="https://www.jakarta.go.id/galeri/pelatihan-kehumasan-2024"' in body
        assert 'src="https://www.jakarta.go.id/uploads/2024/06/kehumasan-2.jpg"' in body
        assert "Lihat galeri foto kegiatan" in body and "bagikan berita ini" in body
        assert "document.write" not in body and "trackClick" not in body


def test_ids_are_stable_across_publishes(scenario: Scenario) -> None:
    before, after = scenario.ids_before, scenario.ids_after
    assert scenario.publishes[0].returncode == 0, scenario.publishes[0].stderr
    common = set(before) & set(after)
    assert ("feeds/agency/pemprov-bali.rss",
            "https://www.baliprov.go.id/berita/festival-seni-budaya-desa") in common
    assert len(common) >= 11 * 4  # every first-poll item in all, top and an agency feed (x2)
    changed = {key: (before[key], after[key]) for key in common if before[key] != after[key]}
    assert not changed


def test_publishing_again_leaves_files_untouched(scenario: Scenario) -> None:
    last = scenario.publishes[-1]
    assert last.returncode == 0, last.stderr
    assert re.search(r"^0 written, \d+ unchanged$", last.stdout, re.M), last.stdout
    assert scenario.files_after_last == scenario.files_before_last
    # ...while the publish after the change did rewrite the Bali feed.
    assert "pemprov-bali.rss" in scenario.publishes[1].stdout


def test_cross_agency_duplicate_is_one_story(tmp_path: Path, portal: Portal) -> None:
    """The same article (same canonical link) from two agencies' sources: one story in the
    combined feeds, one item in each agency's feed."""
    portal.routes["/siaran-pers/rss"] = Route(fixture_feed("kominfo-siaran-pers.rss"))
    portal.routes["/jabar/atom"] = Route(fixture_feed("diskominfo-jabar-siaran.atom"),
                                         "application/atom+xml")
    sources = (Src("kominfo-siaran", "/siaran-pers/rss", "kominfo"),
               Src("jabar-siaran", "/jabar/atom", "diskominfo-jabar"))
    config = write_config(tmp_path, portal, sources)
    shared = ("https://www.komdigi.go.id/berita/siaran-pers/detail/"
              "kominfo-ajak-pemda-perkuat-keamanan-siber")

    # One source first, the other joins in a later poll; then everything once more.
    assert invoke("poll", "--source", "kominfo-siaran", config=config).exit_code == 0
    assert invoke("poll", "--all", config=config).exit_code == 0
    assert invoke("poll", "--all", config=config).exit_code == 0
    rows = query(config, "SELECT source_id, story_id FROM items WHERE link=?", (shared,))
    assert sorted(r["source_id"] for r in rows) == ["jabar-siaran", "kominfo-siaran"]
    assert len({r["story_id"] for r in rows}) == 1

    out = tmp_path / "public"
    result = invoke("publish", "--out", str(out), config=config)
    assert result.exit_code == 0, result.output
    assert_valid_tree(out, BASE_URL)
    for name in ("all", "top"):
        for ext in ("rss", "atom"):
            path = out / "feeds" / f"{name}.{ext}"
            links = check_published_feed(path)
            assert links.count(shared) == 1, (path, links)
            assert len(links) == 3, (path, links)
    # The combined entry says who else published it.
    [entry] = [e for e in read_feed(out / "feeds" / "all.atom").entries if e.link == shared]
    entry_text = " ".join([entry.get("summary", ""), str(entry.get("agg_alsopublishedby", "")),
                           *(t.term for t in entry.get("tags", []))])
    assert ("Diskominfo Provinsi Jawa Barat" in entry_text
            and "Kementerian Komunikasi dan Informatika" in entry_text), entry_text
    for slug in ("kominfo", "diskominfo-jabar"):
        for ext in ("rss", "atom"):
            links = check_published_feed(out / "feeds" / "agency" / f"{slug}.{ext}")
            assert links.count(shared) == 1, (slug, links)
            assert len(links) == 2
