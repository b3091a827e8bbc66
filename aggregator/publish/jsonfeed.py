"""JSON Feed 1.1 documents (https://jsonfeed.org/version/1.1), stdlib json."""

from __future__ import annotations

import json
from typing import Any

from aggregator.publish.model import NAMESPACE, FeedDoc, also_html, categories


def render_json(doc: FeedDoc) -> bytes:
    items: list[dict[str, Any]] = []
    for e in doc.entries:
        item: dict[str, Any] = {
            "id": e.id,
            "title": e.title,
            "date_published": e.published.isoformat(),
            "date_modified": e.updated.isoformat(),
            "tags": categories(e),
            "_aggregator": {
                "about": NAMESPACE,
                "agency": {"slug": e.agency_slug, "name": e.agency_name},
                "source": {"id": e.source_id, "name": e.source_name, "url": e.source_url},
                "views": e.views,
                "also_published_by": [
                    {"agency": name, "url": link}
                    for name, link in zip(e.also_published_by, e.also_links, strict=True)],
            },
        }
        if e.link:
            item["url"] = e.link
        html = (e.content or e.summary) + also_html(e, doc.ui_language)
        if html:
            item["content_html"] = html
        if e.summary_text:
            item["summary"] = e.summary_text  # plain text, as JSON Feed asks
        if e.author:
            item["authors"] = [{"name": e.author}]
        if e.image:
            item["image"] = e.image
        items.append(item)
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": doc.title,
        "description": doc.description,
        "home_page_url": doc.home,
        "feed_url": doc.url("json"),
        "language": doc.language,
        "items": items,
    }
    if doc.hub:
        feed["hubs"] = [{"type": "WebSub", "url": doc.hub}]
    # compact: with `indent` the json module encodes in Python, about 10x slower than its C
    # encoder (a third of rendering every feed at 100 agencies, bench/README.md)
    return json.dumps(feed, ensure_ascii=False, separators=(",", ":")).encode()
