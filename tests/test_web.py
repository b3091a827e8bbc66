"""The HTTP app, served for real: aggregator.web.build_app on uvicorn in a thread, on a port of
127.0.0.1 chosen by the kernel, asked with a plain HTTP client."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from aggregator.core import Aggregator
from aggregator.publish import Rendered
from aggregator.web import PreparedSite, SiteHolder, build_app, max_age
from tests.feedcheck import check_document
from tests.portal import (
    Portal,
    Route,
    Src,
    app_in_thread,
    fixture_feed,
    invoke,
    item_counts,
    serve_standard_feeds,
    write_config,
)

pytestmark = pytest.mark.slow

SOURCES = (
    Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki"),
    Src("jateng-atom", "/atom/diskominfo-jateng.xml", "diskominfo-jateng"),
    Src("bandung-mysql", "/feed/bandung.rss", "pemkot-bandung"),
    Src("kominfo-siaran", "/siaran-pers/rss", "kominfo"),
)


@dataclass
class Served:
    port: int
    holder: SiteHolder
    out: Path  # what `publish --out` wrote from the same database
    config: Path

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            body = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, body
        finally:
            conn.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("web")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    with Portal() as portal:
        serve_standard_feeds(portal)
        portal.routes["/siaran-pers/rss"] = Route(fixture_feed("kominfo-siaran-pers.rss"))
        # base_url is this very server, so the feeds' self links can be followed.
        config = write_config(tmp, portal, SOURCES, base_url=f"http://127.0.0.1:{port}")
        polled = invoke("poll", "--all", config=config)
        assert polled.exit_code == 0, polled.output
    out = tmp / "public"
    assert invoke("publish", "--out", str(out), config=config).exit_code == 0

    agg = Aggregator.open(str(config))
    holder = SiteHolder()
    holder.update(agg.render())
    try:
        with app_in_thread(build_app(agg, holder), sock):
            yield Served(port, holder, out, config)
    finally:
        agg.close()


def feed_paths(served: Served) -> list[str]:
    return sorted(p for p in served.holder.site if p.startswith("/feeds/"))


def test_every_document_is_served_with_validators(served: Served) -> None:
    paths = sorted(served.holder.site)
    assert "/" in paths and "/opml" in paths and "/feeds/all.rss" in paths
    assert len(feed_paths(served)) >= 3 * (2 + 4)
    for path in paths:
        status, headers, body = served.request("GET", path)
        assert status == 200, path
        assert headers.get("etag"), path
        parsedate_to_datetime(headers["last-modified"])  # a valid HTTP date
        assert int(headers["content-length"]) == len(body)
        # The same bytes `publish --out` wrote for the same path.
        file = served.out / ("index.html" if path == "/" else path.lstrip("/"))
        assert body == file.read_bytes(), path


def test_content_types(served: Served) -> None:
    for suffix, kind in ((".rss", "application/rss+xml"), (".atom", "application/atom+xml"),
                         (".json", "json")):
        _, headers, _ = served.request("GET", f"/feeds/all{suffix}")
        assert kind in headers["content-type"], (suffix, headers["content-type"])
    assert "text/html" in served.request("GET", "/")[1]["content-type"]
    assert "opml" in served.request("GET", "/opml")[1]["content-type"]


def test_if_none_match_gets_304(served: Served) -> None:
    for path in [*feed_paths(served)[:12], "/", "/opml"]:
        _, headers, _ = served.request("GET", path)
        etag = headers["etag"]
        status, again, body = served.request("GET", path, {"If-None-Match": etag})
        assert status == 304 and body == b"", path
        assert again["etag"] == etag
        status, _, _ = served.request("GET", path, {"If-None-Match": f'"stale", {etag}'})
        assert status == 304, path
        status, _, body = served.request("GET", path, {"If-None-Match": '"something-else"'})
        assert status == 200 and body, path


def test_if_modified_since_gets_304(served: Served) -> None:
    path = "/feeds/all.atom"
    _, headers, _ = served.request("GET", path)
    last_modified = headers["last-modified"]
    status, _, body = served.request("GET", path, {"If-Modified-Since": last_modified})
    assert status == 304 and body == b""
    earlier = format_datetime(parsedate_to_datetime(last_modified).replace(year=2001),
                              usegmt=True)
    status, _, body = served.request("GET", path, {"If-Modified-Since": earlier})
    assert status == 200 and body


def test_head(served: Served) -> None:
    _, get_headers, get_body = served.request("GET", "/feeds/all.rss")
    status, headers, body = served.request("HEAD", "/feeds/all.rss")
    assert status == 200 and body == b""
    assert headers["etag"] == get_headers["etag"]
    assert int(headers["content-length"]) == len(get_body)
    assert "application/rss+xml" in headers["content-type"]


def test_gzip(served: Served) -> None:
    _, plain_headers, plain = served.request("GET", "/feeds/all.atom")
    assert "content-encoding" not in plain_headers
    status, headers, body = served.request("GET", "/feeds/all.atom",
                                           {"Accept-Encoding": "gzip, deflate"})
    assert status == 200
    assert headers.get("content-encoding") == "gzip"
    assert "accept-encoding" in headers.get("vary", "").lower()
    assert gzip.decompress(body) == plain
    assert len(body) < len(plain)
    # another representation, another strong ETag (RFC 9110 8.8.3); either validates
    assert headers["etag"] != plain_headers["etag"]
    for etag in (headers["etag"], plain_headers["etag"]):
        status, again, _ = served.request("GET", "/feeds/all.atom",
                                          {"Accept-Encoding": "gzip", "If-None-Match": etag})
        assert status == 304 and again["etag"] == headers["etag"]


def test_every_served_feed_is_valid_at_its_own_url(served: Served) -> None:
    """tests/feedcheck.py on what the server answers: the self link is the URL asked."""
    problems = {}
    for path in feed_paths(served):
        status, headers, body = served.request("GET", path)
        assert status == 200 and "charset=utf-8" in headers["content-type"], path
        found = check_document(body, f"http://127.0.0.1:{served.port}{path}")
        if found:
            problems[path] = found
    assert not problems, problems


def test_cache_control_follows_the_poll_interval(served: Served) -> None:
    config = Aggregator.open(str(served.config))
    try:
        seconds = max_age(config.config)
    finally:
        config.close()
    assert seconds == 15 * 60  # every source polls every 15m (tests/portal.py)
    _, headers, _ = served.request("GET", "/feeds/all.rss")
    assert f"max-age={seconds}" in headers["cache-control"]


def test_last_modified_is_when_the_bytes_changed() -> None:
    """The holder keeps a document's Last-Modified while its bytes stay the same, and moves
    it to the render time when they change (a view count, a reordering), even if no entry
    got newer: a client asking If-Modified-Since then gets the new bytes."""
    times = iter([datetime(2024, 6, 25, 8, tzinfo=UTC), datetime(2024, 6, 25, 9, tzinfo=UTC),
                  datetime(2024, 6, 25, 10, tzinfo=UTC)])
    holder = SiteHolder(lambda: next(times))
    entry_date = datetime(2024, 6, 24, tzinfo=UTC)

    def doc(body: bytes) -> Rendered:
        return Rendered("/feeds/all.rss", body, "application/rss+xml", entry_date)

    assert holder.update({"/feeds/all.rss": doc(b"<rss>1</rss>")}) == ["/feeds/all.rss"]
    assert holder.update({"/feeds/all.rss": doc(b"<rss>1</rss>")}) == []
    assert holder.state[1]["/feeds/all.rss"] == datetime(2024, 6, 25, 8, tzinfo=UTC)
    assert holder.update({"/feeds/all.rss": doc(b"<rss>2</rss>")}) == ["/feeds/all.rss"]
    assert holder.state[1]["/feeds/all.rss"] == datetime(2024, 6, 25, 10, tzinfo=UTC)


def test_gzip_refused_by_the_client_is_not_sent(served: Served) -> None:
    """`gzip;q=0` means "not gzip" (RFC 9110 12.5.3)."""
    _, headers, body = served.request("GET", "/feeds/all.atom",
                                      {"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in headers
    assert body.startswith(b"<?xml")


def test_unknown_path_is_a_helpful_404(served: Served) -> None:
    for path in ("/feeds/agency/tidak-ada.rss", "/feeds/all.xml", "/berita"):
        status, headers, body = served.request("GET", path)
        assert status == 404, path
        assert "charset=utf-8" in headers["content-type"]
        text = body.decode()
        assert path in text and "/opml" in text, text
    # a near miss names the feed that exists
    agency = next(p for p in feed_paths(served) if p.startswith("/feeds/agency/"))
    typo = agency.replace(".rss", ".rs").replace(".atom", ".atm").replace("-", "", 1)
    status, _, body = served.request("GET", typo)
    assert status == 404 and agency.rsplit(".", 1)[0] in body.decode(), body


def test_index_html_and_status_offer_autodiscovery(served: Served) -> None:
    status, _, index = served.request("GET", "/index.html")
    assert status == 200 and index == served.request("GET", "/")[2]
    _, _, page = served.request("GET", "/status")
    for body in (index, page):
        html = body.decode()
        assert '<meta name="viewport"' in html and "<script" not in html
        for ext in ("rss", "atom", "json"):
            assert f'href="http://127.0.0.1:{served.port}/feeds/all.{ext}"' in html, ext


def test_self_links_point_at_the_served_documents(served: Served) -> None:
    _, _, body = served.request("GET", "/feeds/all.atom")
    root = etree.fromstring(body)
    [href] = [link.get("href") for link in root.findall("{http://www.w3.org/2005/Atom}link")
              if link.get("rel") == "self"]
    assert href == f"http://127.0.0.1:{served.port}/feeds/all.atom"
    status, _, again = served.request("GET", href.split(str(served.port), 1)[1])
    assert status == 200 and again == body


def test_healthz(served: Served) -> None:
    status, headers, body = served.request("GET", "/healthz")
    assert status == 200
    assert "json" in headers["content-type"]
    assert json.loads(body)["status"] == "ok"


def test_api_sources(served: Served) -> None:
    status, headers, body = served.request("GET", "/api/sources")
    assert status == 200 and "json" in headers["content-type"]
    rows = {r["id"]: r for r in json.loads(body)}
    assert set(rows) == {s.id for s in SOURCES}
    counts = item_counts(served.config)
    for sid, row in rows.items():
        assert row["state"] == "ok", row
        assert row["item_count"] == counts[sid]
        assert row["last_success_at"]
    status, headers, body = served.request("GET", "/status")
    assert status == 200 and "text/html" in headers["content-type"]
    assert all(s.id in body.decode() for s in SOURCES)


def test_api_top_with_and_without_explain(served: Served) -> None:
    status, headers, body = served.request("GET", "/api/top?explain=1&limit=5")
    assert status == 200 and "json" in headers["content-type"]
    ranked = json.loads(body)
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4, 5]
    for r in ranked:
        parts = r["parts"]
        assert {"views_term", "growth_term", "decay", "age_hours", "capped"} <= set(parts)
        assert r["score"] == parts["score"] > 0
        assert parts["sources"] and all("typical" in s and "rel_growth" in s
                                        for s in parts["sources"])
    # the same stories, in the same order, as the CLI's `top --json` on the same database
    cli = invoke("top", "--json", "--limit", "5", config=served.config)
    assert [r["story"] for r in json.loads(cli.stdout)] == [r["story"] for r in ranked]
    _, _, plain = served.request("GET", "/api/top?limit=5")
    assert all("parts" not in r for r in json.loads(plain))
    agency = ranked[0]["agencies"][0]
    _, _, one = served.request("GET", f"/api/top?agency={agency}")
    assert json.loads(one) and all(agency in r["agencies"] for r in json.loads(one))


def test_api_top_rejects_bad_parameters(served: Served) -> None:
    status, _, body = served.request("GET", "/api/top?agency=tidak-ada")
    assert status == 404 and "tidak-ada" in json.loads(body)["error"]
    status, _, body = served.request("GET", "/api/top?limit=lima")
    assert status == 400 and "limit" in json.loads(body)["error"]


def test_fast_path_answers_exactly_as_the_routed_path(served: Served) -> None:
    """A document's exact path is answered before routing (web.DocumentsFirst); the same
    document under another spelling ("/feeds/all.rss/") goes through Starlette. Both give
    the same status, headers and body for every kind of request."""
    _, plain, _ = served.request("GET", "/feeds/all.rss")
    _, zipped, _ = served.request("GET", "/feeds/all.rss", {"Accept-Encoding": "gzip"})
    asks: list[tuple[str, dict[str, str]]] = [
        ("GET", {}), ("HEAD", {}), ("GET", {"Accept-Encoding": "gzip"}),
        ("HEAD", {"Accept-Encoding": "gzip, br"}), ("GET", {"Accept-Encoding": "gzip;q=0"}),
        ("GET", {"If-None-Match": plain["etag"]}),
        ("GET", {"If-None-Match": f'W/{zipped["etag"]}', "Accept-Encoding": "gzip"}),
        ("GET", {"If-None-Match": '"other", ' + plain["etag"]}),
        ("GET", {"If-None-Match": '"other"', "If-Modified-Since": plain["last-modified"]}),
        ("GET", {"If-Modified-Since": plain["last-modified"]}),
        ("GET", {"If-Modified-Since": "not a date"}), ("GET", {"If-None-Match": "*"})]
    statuses = set()
    for method, headers in asks:
        fast = served.request(method, "/feeds/all.rss", headers)
        routed = served.request(method, "/feeds/all.rss/", headers)
        fast[1].pop("date", None)
        routed[1].pop("date", None)
        assert fast == routed, (method, headers)
        statuses.add(fast[0])
    assert statuses == {200, 304}
    index = served.request("GET", "/index.html")
    assert index[0] == 200 and index[2] == served.request("GET", "/")[2]


def test_a_new_render_is_served_at_once() -> None:
    """The prepared responses follow the holder: a swapped site is what the next request
    gets, with its new ETag; a document that left the site is a 404."""
    when = datetime(2024, 6, 24, tzinfo=UTC)
    holder = SiteHolder(lambda: when)
    holder.update({"/feeds/a.rss": Rendered("/feeds/a.rss", b"<rss>1</rss>",
                                            "application/rss+xml; charset=utf-8", when)})
    documents = PreparedSite(holder, 60)
    first = documents.lookup("/feeds/a.rss")
    assert first is not None and first.answer("GET", None, None, "")[2] == b"<rss>1</rss>"
    assert documents.lookup("/feeds/a.rss") is first  # made once per render
    holder.update({"/feeds/b.rss": Rendered("/feeds/b.rss", b"<rss>2</rss>",
                                            "application/rss+xml; charset=utf-8", when)})
    assert documents.lookup("/feeds/a.rss") is None
    second = documents.lookup("/feeds/b.rss")
    assert second is not None
    status, headers, body = second.answer("GET", first.doc.etag, None, "gzip")
    assert status == 200 and gzip.decompress(body) == b"<rss>2</rss>"
    assert (b"cache-control", b"public, max-age=60") in headers


def _stored(served: Served, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    agg = Aggregator.open(str(served.config))
    try:
        return list(agg.store.db.conn.execute(sql, params))
    finally:
        agg.close()


def test_search_feeds_find_every_story_with_the_words(served: Served) -> None:
    """/feeds/search.*?q=: FTS5 over titles and summaries, through the real server, in
    every format, valid at its own URL (query string included), with validators."""
    [(title, agency)] = _stored(served, "SELECT title, agency FROM items ORDER BY length(title)"
                                        " DESC LIMIT 1")
    word = max((w for w in title.split() if w.isalpha()), key=len)
    with_word = {story for (story,) in _stored(
        served, "SELECT DISTINCT story_id FROM items WHERE title LIKE ? OR summary LIKE ?",
        (f"%{word}%", f"%{word}%"))}
    for ext in ("rss", "atom", "json"):
        path = f"/feeds/search.{ext}?q={word}&limit=200"
        status, headers, body = served.request("GET", path)
        assert status == 200 and "charset=utf-8" in headers["content-type"], body[:200]
        assert check_document(body, f"http://127.0.0.1:{served.port}{path}") == []
        status, _, _ = served.request("GET", path, {"If-None-Match": headers["etag"]})
        assert status == 304
    _, _, body = served.request("GET", f"/feeds/search.json?q={word}&limit=200")
    found = {item["id"].removeprefix("urn:uuid:") for item in json.loads(body)["items"]}
    # every story with the word (as a whole word or a word's start, case-insensitive)...
    assert found and found <= with_word
    assert any(word.casefold() in item["title"].casefold()
               for item in json.loads(body)["items"])
    # ...narrowed by agency and limit; a word no item has finds nothing
    _, _, one = served.request("GET", f"/feeds/search.json?q={word}&agency={agency}&limit=1")
    assert len(json.loads(one)["items"]) == 1
    _, _, none = served.request("GET", "/feeds/search.json?q=zzqxw")
    assert json.loads(none)["items"] == []
    _, _, recent = served.request("GET", f"/feeds/search.json?q={word}&hours=1")
    assert json.loads(recent)["items"] == []  # the fixture feeds are older than an hour


def test_search_feeds_reject_bad_parameters(served: Served) -> None:
    cases = [("/feeds/search.rss", 400, "q"), ("/feeds/search.rss?q=%22%20%2A%20-", 400, "q"),
             ("/feeds/search.rss?q=%22%20OR%20NEAR(", 200, "<rss"),  # FTS5 syntax is text
             ("/feeds/search.rss?q=banjir&limit=0", 400, "limit"),
             ("/feeds/search.rss?q=banjir&hours=satu", 400, "hours"),
             ("/feeds/search.rss?q=banjir&agency=tidak-ada", 404, "tidak-ada"),
             ("/feeds/search.rss?q=banjir&region=tidak-ada", 404, "tidak-ada"),
             ("/feeds/search.xml?q=banjir", 404, ".rss")]
    for path, want, says in cases:
        status, _, body = served.request("GET", path)
        assert status == want and says in body.decode(), (path, status, body)
