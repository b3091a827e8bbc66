"""The rules every feed we publish must pass, shared by every test that publishes or serves
feeds (readers reject invalid feeds: FreshRSS#7968).

RSS 2.0 (rssboard.org spec) and Atom 1.0 (RFC 4287): a strict XML parse (no recovery), the
required elements, RFC 822 / RFC 3339 dates, unique ids, absolute URLs, one alternate link per
Atom entry, HTML marked as HTML, a self link equal to the URL the feed is served at; and
feedparser reads it back with no bozo flag. JSON Feed 1.1: version, feed_url, unique ids,
absolute URLs, RFC 3339 dates.

`check_document(body, url)` returns the problems found (empty when valid);
`assert_valid_tree(out, base_url)` checks every feed file under a `publish --out` directory.
"""

from __future__ import annotations

import json
import re
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
RFC822 = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|"
                    r"Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} ([+-]\d{4}|GMT|UT)$")
FEED_SUFFIXES = (".rss", ".atom", ".json")


def strict(body: bytes) -> etree._Element:
    """Parse without recovery: any well-formedness error raises."""
    parser = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)
    return etree.fromstring(body, parser)


def absolute(url: str | None) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _rfc822(value: str | None) -> bool:
    if not value or not RFC822.match(value):
        return False
    return parsedate_to_datetime(value).utcoffset() is not None


def check_rss(body: bytes, url: str, language: str = "id") -> list[str]:
    problems: list[str] = []
    root = strict(body)
    if root.tag != "rss" or root.get("version") != "2.0":
        return [f"root is {root.tag} version {root.get('version')}, not rss 2.0"]
    channels = root.findall("channel")
    if len(channels) != 1:
        return [f"{len(channels)} <channel> elements"]
    channel = channels[0]
    for name in ("title", "link", "description"):
        if not (channel.findtext(name) or "").strip():
            problems.append(f"channel has no <{name}>")
    if not absolute(channel.findtext("link")):
        problems.append(f"channel link {channel.findtext('link')!r} is not absolute")
    if channel.findtext("language") != language:
        problems.append(f"language {channel.findtext('language')!r}")
    selves = [el.get("href") for el in channel.findall(f"{ATOM}link") if el.get("rel") == "self"]
    if selves != [url]:
        problems.append(f"self links {selves} are not [{url}]")
    for el in channel.findall(f"{ATOM}link"):
        if not absolute(el.get("href")):
            problems.append(f"atom:link {el.get('href')!r} is not absolute")
    for name in ("lastBuildDate", "pubDate"):
        value = channel.findtext(name)
        if value is not None and not _rfc822(value):
            problems.append(f"channel {name} {value!r} is not RFC 822")
    guids: list[str] = []
    for item in channel.findall("item"):
        title = item.findtext("title")
        if not (title or item.findtext("description")):
            problems.append("an item has neither title nor description")
        guid = item.findtext("guid")
        if not guid:
            problems.append(f"item {title!r} has no guid")
            continue
        guids.append(guid)
        date = item.findtext("pubDate")
        if not _rfc822(date):
            problems.append(f"item {guid}: pubDate {date!r} is not RFC 822")
        for updated in item.findall(f"{ATOM}updated"):
            if not RFC3339.match(updated.text or ""):
                problems.append(f"item {guid}: atom:updated {updated.text!r}")
        links = item.findall("link")
        if len(links) > 1 or (links and not absolute(links[0].text)):
            problems.append(f"item {guid}: link {[ln.text for ln in links]}")
        for enclosure in item.findall("enclosure"):
            if not absolute(enclosure.get("url")) or not enclosure.get("type") \
                    or not (enclosure.get("length") or "").isdigit():
                problems.append(f"item {guid}: enclosure {dict(enclosure.attrib)}")
        sources = item.findall("source")
        if len(sources) > 1 or any(not absolute(s.get("url")) for s in sources):
            problems.append(f"item {guid}: source {[dict(s.attrib) for s in sources]}")
        for el in item.iter():
            for attr in ("url", "href"):
                if attr in el.attrib and not absolute(el.get(attr)):
                    problems.append(f"item {guid}: <{el.tag} {attr}={el.get(attr)!r}>")
    if len(guids) != len(set(guids)):
        problems.append("duplicate guid")
    return problems


def check_atom(body: bytes, url: str, language: str = "id") -> list[str]:
    problems: list[str] = []
    root = strict(body)
    if root.tag != f"{ATOM}feed":
        return [f"root is {root.tag}, not atom:feed"]
    if root.get(XML_LANG) != language:
        problems.append(f"xml:lang {root.get(XML_LANG)!r}")
    for name in ("id", "title", "updated"):
        if not (root.findtext(f"{ATOM}{name}") or "").strip():
            problems.append(f"feed has no <{name}>")
    if not RFC3339.match(root.findtext(f"{ATOM}updated") or ""):
        problems.append("feed updated is not RFC 3339")
    selves = [el.get("href") for el in root.findall(f"{ATOM}link") if el.get("rel") == "self"]
    if selves != [url]:
        problems.append(f"self links {selves} are not [{url}]")
    ids: list[str] = []
    for entry in root.findall(f"{ATOM}entry"):
        entry_id = entry.findtext(f"{ATOM}id") or ""
        if not entry_id:
            problems.append("an entry has no id")
        ids.append(entry_id)
        if not (entry.findtext(f"{ATOM}title") or "").strip():
            problems.append(f"entry {entry_id}: no title")
        for name in ("updated", "published"):
            value = entry.findtext(f"{ATOM}{name}")
            if (name == "updated" or value is not None) and not RFC3339.match(value or ""):
                problems.append(f"entry {entry_id}: {name} {value!r} is not RFC 3339")
        links = entry.findall(f"{ATOM}link")
        for link in links:
            if not absolute(link.get("href")):
                problems.append(f"entry {entry_id}: link {link.get('href')!r}")
        alternates = [(ln.get("type"), ln.get("hreflang")) for ln in links
                      if ln.get("rel", "alternate") == "alternate"]
        if len(alternates) != len(set(alternates)):
            problems.append(f"entry {entry_id}: two alternate links of one type")
        # RFC 4287 4.1.1: an entry without content needs an alternate link.
        if entry.find(f"{ATOM}content") is None and not alternates:
            problems.append(f"entry {entry_id}: neither content nor alternate link")
        for name in ("content", "summary"):
            for el in entry.findall(f"{ATOM}{name}"):
                if el.get("type", "text") == "text" and \
                        re.search(r"<(p|a|em|img|br)\b", el.text or ""):
                    problems.append(f"entry {entry_id}: {name} holds HTML as type text")
        for source in entry.findall(f"{ATOM}source"):
            for link in source.findall(f"{ATOM}link"):
                if not absolute(link.get("href")):
                    problems.append(f"entry {entry_id}: source link {link.get('href')!r}")
    if len(ids) != len(set(ids)):
        problems.append("duplicate entry id")
    return problems


def check_json(body: bytes, url: str) -> list[str]:
    problems: list[str] = []
    doc = json.loads(body.decode("utf-8"))
    if doc.get("version") != "https://jsonfeed.org/version/1.1":
        problems.append(f"version {doc.get('version')!r}")
    if doc.get("feed_url") != url:
        problems.append(f"feed_url {doc.get('feed_url')!r} is not {url}")
    if not doc.get("title") or not isinstance(doc.get("items"), list):
        return [*problems, "no title or no items list"]
    if not absolute(doc.get("home_page_url")):
        problems.append("home_page_url is not absolute")
    ids = [item.get("id") for item in doc["items"]]
    if not all(isinstance(i, str) and i for i in ids) or len(ids) != len(set(ids)):
        problems.append("item ids missing or not unique")
    for item in doc["items"]:
        for key in ("url", "image"):
            if key in item and not absolute(item[key]):
                problems.append(f"item {item.get('id')}: {key} {item[key]!r}")
        for key in ("date_published", "date_modified"):
            if key in item and not RFC3339.match(item[key]):
                problems.append(f"item {item.get('id')}: {key} {item[key]!r}")
        if "summary" in item and re.search(r"<[a-z]+[ >]", item["summary"]):
            problems.append(f"item {item.get('id')}: summary holds HTML")
    return problems


def check_feedparser(body: bytes) -> list[str]:
    data = feedparser.parse(body)
    problems: list[str] = []
    if data.bozo:
        problems.append(f"feedparser bozo: {data.get('bozo_exception')}")
    if data.version not in ("rss20", "atom10"):
        problems.append(f"feedparser version {data.version!r}")
    for entry in data.entries:
        if not (entry.get("id") and entry.get("title") and entry.get("published_parsed")):
            problems.append(f"feedparser: entry {entry.get('id')!r} lacks id, title or date")
    return problems


def check_document(body: bytes, url: str, language: str = "id") -> list[str]:
    """The problems of one published feed served (or written) at `url`, by its extension."""
    path = urlsplit(url).path
    if path.endswith(".rss"):
        return check_rss(body, url, language) + check_feedparser(body)
    if path.endswith(".atom"):
        return check_atom(body, url, language) + check_feedparser(body)
    if path.endswith(".json"):
        return check_json(body, url)
    raise ValueError(f"not a feed: {url}")


def assert_valid_tree(out: Path, base_url: str, language: str = "id") -> int:
    """Check every feed under a `publish --out` directory (its URL: base_url + the file's
    path); returns how many feeds were checked."""
    checked = 0
    problems: dict[str, list[str]] = {}
    for path in sorted(p for p in out.rglob("*") if p.suffix in FEED_SUFFIXES):
        url = f"{base_url.rstrip('/')}/{path.relative_to(out).as_posix()}"
        found = check_document(path.read_bytes(), url, language)
        checked += 1
        if found:
            problems[url] = found
    assert not problems, problems
    assert checked, f"no feeds under {out}"
    return checked
