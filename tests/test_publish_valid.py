"""What `publish --out` writes is valid: strict XML, the elements RSS 2.0 and Atom 1.0 require,
RFC 822 / RFC 3339 dates, unique ids, absolute URLs, language `id`, and feedparser reads every
feed without complaint (bozo == 0). Readers reject invalid feeds (FreshRSS#7968)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from lxml import etree

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
ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
RFC822 = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|"
                    r"Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} ([+-]\d{4}|GMT|UT)$")
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


def strict(path: Path) -> etree._Element:
    """Parse without recovery: any well-formedness error raises."""
    parser = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)
    return etree.fromstring(path.read_bytes(), parser)


def absolute(url: str | None) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def test_every_feed_was_written(published: Published) -> None:
    rss, atom = published.files(".rss"), published.files(".atom")
    assert len(rss) == len(atom) >= 2 + 7  # all, top, one per agency (and regions)
    assert {p.stem for p in rss} == {p.stem for p in atom}
    assert published.files(".json")


def test_rss_is_strict_xml_with_required_elements(published: Published) -> None:
    for path in published.files(".rss"):
        root = strict(path)
        assert root.tag == "rss" and root.get("version") == "2.0", path
        [channel] = root.findall("channel")
        for name in ("title", "link", "description"):
            el = channel.find(name)
            assert el is not None and (el.text or "").strip(), (path, name)
        assert absolute(channel.findtext("link")), path
        assert channel.findtext("language") == "id", path
        self_links = [el for el in channel.findall(f"{ATOM}link") if el.get("rel") == "self"]
        assert [el.get("href") for el in self_links] == [published.url_of(path)], path
        for name in ("lastBuildDate", "pubDate"):
            value = channel.findtext(name)
            if value is not None:
                assert RFC822.match(value), (path, name, value)
                parsedate_to_datetime(value)
        guids: list[str] = []
        for item in channel.findall("item"):
            assert item.findtext("title") or item.findtext("description"), path
            guid = item.findtext("guid")
            assert guid, (path, "item without guid")
            guids.append(guid)
            date = item.findtext("pubDate")
            assert date and RFC822.match(date), (path, date)
            assert parsedate_to_datetime(date).utcoffset() is not None
            assert absolute(item.findtext("link")), (path, item.findtext("link"))
            for enclosure in item.findall("enclosure"):
                assert absolute(enclosure.get("url")), path
            for source in item.findall("source"):
                assert absolute(source.get("url")), path
        assert len(guids) == len(set(guids)), (path, "duplicate guid")


def test_atom_is_strict_xml_with_required_elements(published: Published) -> None:
    for path in published.files(".atom"):
        root = strict(path)
        assert root.tag == f"{ATOM}feed", path
        assert root.get(XML_LANG) == "id", path
        for name in ("id", "title", "updated"):
            assert (root.findtext(f"{ATOM}{name}") or "").strip(), (path, name)
        assert RFC3339.match(root.findtext(f"{ATOM}updated") or ""), path
        self_links = [el.get("href") for el in root.findall(f"{ATOM}link")
                      if el.get("rel") == "self"]
        assert self_links == [published.url_of(path)], (path, self_links)
        ids: list[str] = []
        for entry in root.findall(f"{ATOM}entry"):
            entry_id = entry.findtext(f"{ATOM}id")
            assert entry_id, path
            ids.append(entry_id)
            assert (entry.findtext(f"{ATOM}title") or "").strip(), (path, entry_id)
            for name in ("updated", "published"):
                value = entry.findtext(f"{ATOM}{name}")
                if name == "updated" or value is not None:
                    assert value and RFC3339.match(value), (path, entry_id, name, value)
            for link in entry.findall(f"{ATOM}link"):
                assert absolute(link.get("href")), (path, link.get("href"))
            # RFC 4287 4.1.1: an entry without content needs an alternate link.
            if entry.find(f"{ATOM}content") is None:
                assert any(link.get("rel", "alternate") == "alternate"
                           for link in entry.findall(f"{ATOM}link")), (path, entry_id)
        assert len(ids) == len(set(ids)), (path, "duplicate entry id")


def test_atom_entries_have_one_alternate_link(published: Published) -> None:
    """RFC 4287 4.1.1: no two alternate links with the same type and hreflang; a link without
    rel IS an alternate link. An image enclosure must be rel="enclosure", not the article."""
    problems = []
    for path in published.files(".atom"):
        for entry in strict(path).findall(f"{ATOM}entry"):
            alternates = [(link.get("type"), link.get("hreflang"), link.get("href"))
                          for link in entry.findall(f"{ATOM}link")
                          if link.get("rel", "alternate") == "alternate"]
            kinds = [(t, h) for t, h, _ in alternates]
            if len(kinds) != len(set(kinds)):
                problems.append((path.name, entry.findtext(f"{ATOM}title"), alternates))
    assert not problems, problems


def test_atom_html_text_is_marked_as_html(published: Published) -> None:
    """A content or summary holding markup must say type="html" (or xhtml); as type text a
    reader shows the tags literally."""
    problems = []
    for path in published.files(".atom"):
        for entry in strict(path).findall(f"{ATOM}entry"):
            for name in ("content", "summary"):
                for el in entry.findall(f"{ATOM}{name}"):
                    kind = el.get("type", "text")
                    if kind == "text" and re.search(r"<(p|a|em|img|br)\b", el.text or ""):
                        problems.append((path.name, entry.findtext(f"{ATOM}title"), name))
    assert not problems, problems


def test_feedparser_reads_every_feed_cleanly(published: Published) -> None:
    for path in published.files(".rss", ".atom"):
        data = feedparser.parse(path.read_bytes())
        assert data.bozo == 0, (path, data.get("bozo_exception"))
        assert data.version in ("rss20", "atom10"), (path, data.version)
        assert data.feed.get("language", "id") == "id"
        for entry in data.entries:
            assert entry.get("id") and entry.get("title") and entry.get("published_parsed")


def test_json_feeds_are_valid(published: Published) -> None:
    for path in published.files(".json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["version"] == "https://jsonfeed.org/version/1.1"
        assert doc["feed_url"] == published.url_of(path)
        assert doc["title"] and isinstance(doc["items"], list)
        ids = [item["id"] for item in doc["items"]]
        assert len(ids) == len(set(ids)) and all(ids), path
        for item in doc["items"]:
            assert absolute(item.get("url")), (path, item.get("url"))
            assert RFC3339.match(item["date_published"]), item["date_published"]


def test_opml_lists_every_published_feed(published: Published) -> None:
    root = strict(published.out / "opml")
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
