"""What `publish --out` writes is valid (the rules are in tests/feedcheck.py: strict XML, the
elements RSS 2.0 and Atom 1.0 require, RFC 822 / RFC 3339 dates, unique ids, absolute URLs,
self links, feedparser without bozo), and every entry carries the fields readers use."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from tests.feedcheck import ATOM, assert_valid_tree, check_document, strict
from tests.portal import (
    Portal,
    Route,
    Src,
    fixture_feed,
    invoke,
    serve_standard_feeds,
    write_config,
)

pytestmark = pytest.mark.slow

BASE = "https://berita.example.test/agregator"  # a base_url with a path, as deployed behind a proxy
GOOD_SOURCES = (
    Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki"),
    Src("jateng-atom", "/atom/diskominfo-jateng.xml", "diskominfo-jateng"),
    Src("bandung-mysql", "/feed/bandung.rss", "pemkot-bandung"),
    Src("bogor-rusak", "/rss/bogor.xml", "pemkab-bogor"),
    Src("bali-etag", "/rss/bali.xml", "pemprov-bali"),
    Src("kominfo-siaran", "/siaran-pers/rss", "kominfo"),
    Src("jabar-siaran", "/jabar/atom", "diskominfo-jabar"),
)


@dataclass(frozen=True)
class Published:
    out: Path

    def files(self, *suffixes: str) -> list[Path]:
        return sorted(p for p in self.out.rglob("*") if p.is_file() and p.suffix in suffixes)

    def url_of(self, path: Path) -> str:
        return f"{BASE}/{path.relative_to(self.out).as_posix()}"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    tmp = tmp_path_factory.mktemp("valid")
    with Portal() as portal:
        serve_standard_feeds(portal)
        portal.routes["/rss/bali.xml"] = Route(fixture_feed("pemprov-bali-etag-v2.rss"))
        portal.routes["/siaran-pers/rss"] = Route(fixture_feed("kominfo-siaran-pers.rss"))
        portal.routes["/jabar/atom"] = Route(fixture_feed("diskominfo-jabar-siaran.atom"),
                                             "application/atom+xml")
        config = write_config(tmp, portal, GOOD_SOURCES, base_url=BASE + "/")
        polled = invoke("poll", "--all", config=config)
        assert polled.exit_code == 0, polled.output
        out = tmp / "public"
        result = invoke("publish", "--out", str(out), config=config)
        assert result.exit_code == 0, result.output
        yield Published(out)


def test_every_feed_was_written(published: Published) -> None:
    rss, atom = published.files(".rss"), published.files(".atom")
    assert len(rss) == len(atom) >= 2 + 7  # all, top, one per agency (and regions)
    assert {p.stem for p in rss} == {p.stem for p in atom}
    assert {p.stem for p in published.files(".json")} == {p.stem for p in rss}


def test_every_feed_passes_the_rss_atom_and_json_feed_rules(published: Published) -> None:
    checked = assert_valid_tree(published.out, BASE)
    assert checked == len(published.files(".rss", ".atom", ".json"))


def test_the_rules_catch_what_readers_reject(published: Published) -> None:
    """The checker itself: each kind of breakage of a valid feed is reported."""
    rss = (published.out / "feeds/all.rss").read_bytes()
    atom = (published.out / "feeds/all.atom").read_bytes()
    rss_url, atom_url = f"{BASE}/feeds/all.rss", f"{BASE}/feeds/all.atom"
    assert check_document(rss, rss_url) == [] and check_document(atom, atom_url) == []
    date = re.search(rb"<pubDate>([^<]+)</pubDate>", rss)
    assert date
    twice = strict(rss)
    channel = twice.find("channel")
    assert channel is not None
    channel.append(copy.deepcopy(channel.find("item")))
    broken = {
        "self link": (rss, f"{BASE}/feeds/top.rss"),
        "not RFC 822": (rss.replace(date[1], b"2024-06-25 07:30:00", 1), rss_url),
        "duplicate guid": (etree.tostring(twice), rss_url),
        "relative entry link": (atom.replace(b'<link href="https://www.',
                                             b'<link href="/www.', 1), atom_url),
        "ill-formed": (rss.replace(b"</channel>", b"", 1), rss_url),
    }
    for what, (body, url) in broken.items():
        try:
            problems = check_document(body, url)
        except etree.XMLSyntaxError:
            problems = ["strict parse failed"]
        assert problems, what


def test_entries_carry_every_field(published: Published) -> None:
    """Issue point 6, read back with feedparser: id, title, absolute link, both dates,
    author, agency and region as categories, summary or content, the lead image, the source,
    our view count, and on stories the other agencies that published them."""
    for ext in ("rss", "atom"):
        data = feedparser.parse((published.out / f"feeds/all.{ext}").read_bytes())
        entries = {e.link: e for e in data.entries}
        dki = entries["https://www.jakarta.go.id/berita/pemprov-dki-gelar-pelatihan-kehumasan"]
        assert dki.id.startswith("urn:uuid:") and dki.title
        assert dki.published_parsed and dki.updated_parsed
        assert dki.author == "Humas Pemprov DKI Jakarta"
        terms = [t.term for t in dki.tags]
        assert terms[:2] == ["Pemerintah Provinsi DKI Jakarta", "Dki Jakarta"], terms
        assert len(terms) == len(set(terms))
        assert dki.get("summary") or dki.get("content")
        image = "https://www.jakarta.go.id/uploads/2024/06/kehumasan.jpg"
        assert [ln.href for ln in dki.links if ln.rel == "enclosure"] == [image]
        assert dki.media_thumbnail[0]["url"] == image
        assert dki.media_content[0]["url"] == image
        assert dki.source.get("href") or dki.source.get("links")
        assert dki.agg_views == "1476"
        also = [e for e in data.entries if "agg_alsopublishedby" in e]
        assert also, f"no story in feeds/all.{ext} names the other agencies"
    root = etree.fromstring((published.out / "feeds/all.atom").read_bytes())
    for source in root.iter(f"{ATOM}source"):
        assert source.findtext(f"{ATOM}id") and source.findtext(f"{ATOM}title")
        assert [ln.get("rel") for ln in source.findall(f"{ATOM}link")] == ["self"]


def test_json_summary_is_plain_text_and_tags_are_unique(published: Published) -> None:
    doc = json.loads((published.out / "feeds/all.json").read_text(encoding="utf-8"))
    for item in doc["items"]:
        assert "<" not in item.get("summary", ""), item["summary"]
        assert len(item["tags"]) == len(set(item["tags"])) and all(item["tags"])
        assert item["_aggregator"]["agency"]["slug"] and "views" in item["_aggregator"]


def test_opml_lists_every_published_feed(published: Published) -> None:
    root = strict((published.out / "opml").read_bytes())
    assert root.tag == "opml"
    urls = {o.get("xmlUrl") for o in root.iter("outline") if o.get("xmlUrl")}
    rss_urls = {published.url_of(p) for p in published.files(".rss")}
    assert urls == rss_urls


def test_index_page_offers_autodiscovery(published: Published) -> None:
    html = (published.out / "index.html").read_text(encoding="utf-8")
    assert '<html lang="id">' in html
    for name in ("all", "top"):
        for ext, kind in (("rss", "application/rss+xml"), ("atom", "application/atom+xml")):
            assert re.search(rf'<link rel="alternate" type="{re.escape(kind)}"[^>]*'
                             rf'href="{re.escape(BASE)}/feeds/{name}\.{ext}"', html), (name, ext)
    assert "Pemprov DKI Gelar Pelatihan Kehumasan" in html
