"""RSS and Atom bodies -> raw items (the feedparser adapter: the only module importing it).

feedparser never fetches here: it gets the bytes and headers our fetcher received. The work
feedparser would do that `normalize` redoes better is turned off, because it is most of
feedparser's cost on real feeds (bench/README.md):
- HTML sanitizing and relative-URI rewriting (normalize sanitizes with nh3 and resolves links);
- resolving every element's links against the document URL: feedparser is given no
  Content-Location, so its base URI is empty and links stay as written (normalize makes them
  absolute against the page URL);
- date parsing: feedparser's date handlers are removed, because normalize parses the raw date
  strings itself (zones, MySQL-style and Indonesian dates, which feedparser gets wrong);
- elements nobody reads (comment links and counts of WordPress and Blogger feeds, Blogger's
  edit links and avatar) are cut from the bytes before feedparser walks them: a fifth of its
  time on WordPress feeds, which carry three such elements per item.
Also, during our calls, feedparser's dictionary answers lookups of plain keys directly: its own
`get`/`__getitem__`/`__contains__` raise and catch a KeyError for every missing key, about a
fifth of its time. Keys feedparser maps or treats specially still go through its own code, so
every answer is the same (tested against the unpatched parser).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import feedparser
import feedparser.datetimes
import feedparser.util

from aggregator.errors import ParseError
from aggregator.types import ParsedPage, RawItem

_HTML_TYPES = ("text/html", "application/xhtml+xml")
# Only childless elements whose content is plain text (or that have none) are cut.
_UNREAD = re.compile(
    rb"<(comments|wfw:commentRss|wfw:comment|slash:comments|thr:total)(?:\s[^<>]*)?>[^<]*</\1>"
    rb"\s*"
    rb"|<link\s[^<>]*rel=[\"'](?:replies|edit|edit-media)[\"'][^<>]*/>\s*"
    rb"|<gd:image\s[^<>]*/>\s*"
)
_HANDLERS_LOCK = threading.Lock()


_FPD = feedparser.util.FeedParserDict
_SPECIAL = frozenset({"category", "enclosures", "license", "updated", "updated_parsed"})
_KEYMAP = _FPD.keymap
_ORIGINAL = (_FPD.__getitem__, _FPD.get, _FPD.__contains__)


def _getitem(self: dict[str, Any], key: str) -> Any:
    if key in _SPECIAL or key in _KEYMAP:
        return _ORIGINAL[0](self, key)
    return dict.__getitem__(self, key)


def _get(self: dict[str, Any], key: str, default: Any = None) -> Any:
    if key in _SPECIAL or key in _KEYMAP:
        return _ORIGINAL[1](self, key, default)
    return dict.get(self, key, default)


def _contains(self: dict[str, Any], key: object) -> bool:
    if key in _SPECIAL or key in _KEYMAP:
        return bool(_ORIGINAL[2](self, key))
    return dict.__contains__(self, key)


@contextmanager
def _lean_feedparser() -> Iterator[None]:
    """For the duration of one parse: no date handlers (feedparser's *_parsed dates are never
    read here; `published`/`updated` keep the raw strings) and direct lookups of plain keys.
    Both are given back afterwards, so other users of feedparser in the process see it as
    installed."""
    with _HANDLERS_LOCK:  # two threads must not both save an emptied list
        handlers = feedparser.datetimes._date_handlers
        saved = list(handlers)
        handlers.clear()
        _FPD.__getitem__, _FPD.get, _FPD.__contains__ = _getitem, _get, _contains
        try:
            yield
        finally:
            handlers[:] = saved
            _FPD.__getitem__, _FPD.get, _FPD.__contains__ = _ORIGINAL


def parse_feed(body: bytes, headers: dict[str, str], url: str,
               views_field: str | None = None) -> ParsedPage:
    """Parse an RSS/Atom body. Ill-formed XML still yields what it can (with a warning);
    a body that is not a feed at all raises ParseError."""
    response_headers = {k: v for k, v in headers.items() if k in ("content-type",
                                                                     "content-language")}
    response_headers.setdefault("content-type", "application/xml")
    try:
        with _lean_feedparser():
            data = feedparser.parse(
                _UNREAD.sub(b"", body),
                response_headers=response_headers,
                sanitize_html=False,
                resolve_relative_uris=False,
            )
    except Exception as exc:  # feedparser should not raise, but it is third-party code
        raise ParseError(f"feedparser failed: {exc}") from exc
    warnings: list[str] = []
    if data.get("bozo"):
        problem = data.get("bozo_exception")
        if type(problem).__name__ == "CharacterEncodingOverride":
            warnings.append(f"declared encoding was wrong: {problem}")
        else:
            warnings.append(f"feed is not well-formed ({problem}); read it leniently")
    if not data.get("version") and not data.entries:
        start = body[:200].lstrip().lower()
        hint = " (it looks like an HTML page)" if start.startswith((b"<!doctype html",
                                                                    b"<html")) else ""
        raise ParseError(f"not an RSS or Atom feed{hint}")
    items = tuple(_raw_item(e, views_field) for e in data.entries)
    feed = data.get("feed", {})
    return ParsedPage(items=items, title=feed.get("title"), link=feed.get("link"),
                      warnings=tuple(warnings), ttl=_ttl(feed.get("ttl")))


def _ttl(value: Any) -> int | None:
    """RSS <ttl>: minutes the channel may be cached (a hint for the schedule), or None."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() and len(text) <= 7 else None


def _raw_item(entry: Any, views_field: str | None) -> RawItem:
    content = None
    for part in entry.get("content") or []:
        if part.get("type") in _HTML_TYPES or content is None:
            content = part.get("value")
    summary = entry.get("summary")
    if summary is not None and content is not None and summary.strip() == content.strip():
        summary = None
    return RawItem(
        guid=entry.get("id") or None,
        link=entry.get("link") or None,
        title=entry.get("title"),
        summary=summary,
        content=content,
        author=entry.get("author") or None,
        # dict.get: FeedParserDict maps a missing "updated" to "published" (with a warning)
        published=dict.get(entry, "published") or None,
        updated=dict.get(entry, "updated") or None,
        views=_views(entry, views_field),
        categories=tuple(t.get("term") for t in entry.get("tags") or [] if t.get("term")),
        image=_image(entry),
    )


def _views(entry: Any, views_field: str | None) -> str | None:
    value = entry.get(views_field) if views_field else None
    if value is None:
        value = entry.get("media_statistics")
    if isinstance(value, dict):
        value = value.get("views") or value.get("value")
    if value is None:
        return None
    return str(value)


def _image(entry: Any) -> str | None:
    for key in ("media_content", "media_thumbnail"):
        for media in entry.get(key) or []:
            medium = media.get("medium") or ""
            kind = media.get("type") or ""
            if media.get("url") and (key == "media_thumbnail" or medium == "image"
                                     or kind.startswith("image/")):
                return str(media["url"])
    for link in entry.get("links") or []:
        if link.get("rel") == "enclosure" and (link.get("type") or "").startswith("image/"):
            return str(link.get("href"))
    image = entry.get("image")
    if isinstance(image, dict) and image.get("href"):
        return str(image["href"])
    return None
