"""What the publishers render: feeds of entries, and rendered documents with their validators."""

from __future__ import annotations

import functools
import gzip
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aggregator.publish.labels import labels

NAMESPACE = "urn:x-aggregator:ns:1.0"  # our own elements (views, agency, ...); see README
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Entry:
    id: str  # urn:uuid:..., never changes for an item or story
    title: str
    link: str | None
    published: datetime
    updated: datetime
    author: str | None
    summary: str  # sanitized HTML
    content: str  # sanitized HTML
    categories: tuple[str, ...]
    agency_slug: str
    agency_name: str
    region_name: str
    source_id: str
    source_name: str
    source_url: str
    views: int | None
    image: str | None
    also_published_by: tuple[str, ...] = ()  # other agencies' names (stories)
    also_links: tuple[str | None, ...] = ()  # their copy's link, parallel to the names
    score: float | None = None
    summary_text: str = ""  # the summary as plain text (JSON Feed `summary`)
    source_is_feed: bool = True  # source_url is a feed (else an HTML listing page)
    region_slug: str = ""


def also_html(e: Entry, ui_language: str) -> str:
    """The "also published by" line appended to a story's summary (RSS, Atom) or content
    (JSON Feed), with links to the copies."""
    if not e.also_published_by:
        return ""
    also = ", ".join(
        f'<a href="{escape_html(link)}">{escape_html(name)}</a>' if link else escape_html(name)
        for name, link in zip(e.also_published_by, e.also_links, strict=True))
    return f"<p><em>{labels(ui_language).also_published_by}: {also}</em></p>"


def escape_html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def categories(e: Entry) -> list[str]:
    """The agency, the region and the item's own categories: each once, none empty."""
    terms: list[str] = []
    folded: set[str] = set()
    for raw in (e.agency_name, e.region_name, *e.categories):
        term = raw.strip()
        if term and term.casefold() not in folded:
            folded.add(term.casefold())
            terms.append(term)
    return terms


@dataclass(frozen=True)
class FeedDoc:
    path: str  # "feeds/all" - the extension is added per format
    title: str
    description: str
    home: str  # absolute URL of the HTML page
    base_url: str
    language: str
    entries: tuple[Entry, ...]
    ui_language: str = "id"  # our own labels ("Juga dipublikasikan oleh"), see labels.py
    hub: str | None = None  # WebSub hub the feed declares
    query: str = ""  # a search feed's query string: part of its URL (and self link)

    @property
    def updated(self) -> datetime:
        """Derived from the entries, never the build time, so unchanged feeds stay identical."""
        return max((e.updated for e in self.entries), default=EPOCH)

    def url(self, ext: str) -> str:
        return f"{self.base_url}/{self.path}.{ext}" + (f"?{self.query}" if self.query else "")


@dataclass(frozen=True)
class Rendered:
    path: str  # URL path, "/feeds/all.rss"
    body: bytes
    content_type: str
    last_modified: datetime
    etag: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(self.body).hexdigest()[:32]
        object.__setattr__(self, "etag", f'"{digest}"')

    @functools.cached_property
    def gzipped(self) -> bytes:
        """The gzip-coded body, made when first asked for (the HTTP server asks when it
        takes a render; static export never needs it)."""
        return gzip.compress(self.body, 6, mtime=0)

    @property
    def gzip_etag(self) -> str:
        """The gzip-coded body is another representation, so another strong ETag
        (RFC 9110 8.8.3), derived from the same content."""
        return self.etag[:-1] + '-gzip"'


def changed_paths(old: Mapping[str, Rendered], new: Mapping[str, Rendered]) -> list[str]:
    """The documents of `new` whose bytes differ from (or are missing in) `old`."""
    return sorted(path for path, doc in new.items()
                  if path not in old or old[path].etag != doc.etag)
