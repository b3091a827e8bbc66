"""Raw items -> normalized items: canonical links, UTC dates, clean text, stable keys.

Pure: takes `now` and the source's zone as arguments and does no I/O.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, tzinfo

from aggregator.normalize.dates import ParsedDate, parse_date
from aggregator.normalize.keys import content_hash, item_key
from aggregator.normalize.numbers import parse_count
from aggregator.normalize.text import excerpt, plain_text, sanitize_html
from aggregator.normalize.urls import absolute_url, canonical_url
from aggregator.types import Item, NormalizedPage, ParsedPage, RawItem

__all__ = [
    "canonical_url",
    "normalize_item",
    "normalize_page",
    "parse_count",
    "parse_date",
    "plain_text",
]


def normalize_page(page: ParsedPage, source_id: str, page_url: str, zone: tzinfo,
                   now: datetime, date_format: str = "", language: str = "id",
                   ) -> NormalizedPage:
    """Normalize every item of one fetched page. Items without a title or link are dropped with
    a warning; duplicate keys within the page keep their first occurrence."""
    guid_counts = Counter(r.guid.strip() for r in page.items if r.guid and r.guid.strip())
    warnings = list(page.warnings)
    items: list[Item] = []
    seen: set[str] = set()
    bad_dates: list[str] = []
    for index, raw in enumerate(page.items):
        guid_unique = bool(raw.guid and guid_counts[raw.guid.strip()] == 1)
        item, date_error = normalize_item(raw, source_id, page_url, zone, now, guid_unique,
                                          date_format, language)
        if item is None:
            warnings.append(f"entry {index + 1} has neither a title nor a link; skipped")
            continue
        if date_error:
            bad_dates.append(date_error)
        if item.key in seen:
            continue
        seen.add(item.key)
        items.append(item)
    if bad_dates:
        warnings.append(f"{len(bad_dates)} date(s) not understood, first-seen time used "
                        f"instead (e.g. {bad_dates[0]})")
    duplicated = sorted(g for g, n in guid_counts.items() if n > 1)
    if duplicated:
        warnings.append(f"{len(duplicated)} GUID(s) used by more than one entry "
                        f"(e.g. '{duplicated[0]}'); those entries are keyed by link")
    return NormalizedPage(tuple(items), tuple(warnings), page.drift)


def normalize_item(raw: RawItem, source_id: str, page_url: str, zone: tzinfo, now: datetime,
                   guid_unique: bool = True, date_format: str = "", language: str = "id",
                   ) -> tuple[Item | None, str | None]:
    """One raw item -> (item or None when unusable, date problem or None)."""
    link = canonical_url(raw.link, page_url) if raw.link else None
    if link is None and raw.guid and raw.guid.strip().startswith(("http://", "https://")):
        link = canonical_url(raw.guid.strip())
    content = sanitize_html(raw.content, link or page_url)
    summary = sanitize_html(raw.summary, link or page_url)
    title = plain_text(raw.title) or excerpt(raw.summary or raw.content, 120)
    if not title and not link:
        return None, None
    title = title or link or ""

    date_error: str | None = None
    published_text = raw.published or raw.updated
    published: ParsedDate = parse_date(published_text, zone, now, date_format, language)
    problems = list(raw.problems)
    if published_text and published.value is None:
        date_error = published.error
        problems.append(f"date: {published.error}; first-seen time used")
    dated_by = "source"
    when = published.value
    if when is None:
        when, dated_by = now, "first_seen"
    elif when > now:
        when, dated_by = now, "clamped"
    updated = parse_date(raw.updated, zone, now, date_format, language).value \
        if raw.updated else None
    if updated is not None and (updated > now or updated < when):
        updated = None

    date_for_key = None if published.relative else published_text
    key = "id:" + raw.id.strip() if raw.id and raw.id.strip() else \
        item_key(raw.guid, guid_unique, link, title, date_for_key)
    views = parse_count(raw.views)
    if raw.views is not None and views is None:
        problems.append(f"views: '{raw.views[:40]}' holds no number")
    categories = tuple(dict.fromkeys(c for c in (plain_text(c) for c in raw.categories) if c))
    image = absolute_url(raw.image, page_url)
    author = plain_text(raw.author) or None
    fingerprint = content_hash(
        title, link, summary, content, author,
        None if published.relative else published_text,
        raw.updated, categories, image,
    )
    return Item(
        source_id=source_id,
        key=key,
        link=link,
        title=title,
        summary=summary,
        content=content,
        author=author,
        published=when,
        updated=updated,
        dated_by=dated_by,  # type: ignore[arg-type]
        views=views,
        categories=categories,
        image=image,
        content_hash=fingerprint,
        problems=tuple(problems),
    ), date_error
