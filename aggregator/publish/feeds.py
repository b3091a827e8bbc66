"""RSS 2.0 and Atom 1.0 documents (the feedgen adapter: the only module importing feedgen)."""

from __future__ import annotations

from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from aggregator.publish.model import NAMESPACE, FeedDoc, also_html, categories, escape_html

_DC = "http://purl.org/dc/elements/1.1/"
_MEDIA = "http://search.yahoo.com/mrss/"  # Media RSS: the lead image for readers that show it
_ATOM = "http://www.w3.org/2005/Atom"
_IMAGE_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png",
                "gif": "image/gif", "webp": "image/webp", "svg": "image/svg+xml"}


class _AggFeedExt(BaseExtension):  # type: ignore[misc]
    """Namespaces, and the WebSub hub link in RSS (feedgen writes only rel="self" there)."""

    def __init__(self) -> None:
        self.hub: str | None = None

    def extend_ns(self) -> dict[str, str]:
        return {"agg": NAMESPACE, "dc": _DC, "media": _MEDIA}

    def extend_rss(self, feed: Any) -> Any:
        channel = feed.find("channel")
        if self.hub and channel is not None:
            link = etree.Element(f"{{{_ATOM}}}link", href=self.hub, rel="hub")
            self_link = channel.find(f"{{{_ATOM}}}link")
            if self_link is not None:
                self_link.addnext(link)
            else:
                channel.append(link)
        return feed

    def extend_atom(self, feed: Any) -> Any:
        return feed


class _AggEntryExt(BaseEntryExtension):  # type: ignore[misc]
    """Our namespaced elements on each entry: views, agency, source, also-published-by."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def _extend(self, entry: Any) -> Any:
        d = self.data
        if d.get("author"):
            creator = etree.SubElement(entry, f"{{{_DC}}}creator")
            creator.text = d["author"]
        agency = etree.SubElement(entry, f"{{{NAMESPACE}}}agency", slug=d["agency_slug"])
        agency.text = d["agency_name"]
        source = etree.SubElement(entry, f"{{{NAMESPACE}}}source", id=d["source_id"])
        source.text = d["source_name"]
        if d.get("views") is not None:
            views = etree.SubElement(entry, f"{{{NAMESPACE}}}views")
            views.text = str(d["views"])
        if d.get("image"):
            etree.SubElement(entry, f"{{{_MEDIA}}}content", url=d["image"], medium="image",
                             type=d["image_type"])
            etree.SubElement(entry, f"{{{_MEDIA}}}thumbnail", url=d["image"])
        for name, link in zip(d.get("also", ()), d.get("also_links", ()), strict=True):
            also = etree.SubElement(entry, f"{{{NAMESPACE}}}alsoPublishedBy")
            if link:
                also.set("href", link)
            also.text = name
        return entry

    def extend_rss(self, entry: Any) -> Any:
        # RSS has only pubDate: the entry's last change as atom:updated, which readers know
        etree.SubElement(entry, f"{{{_ATOM}}}updated").text = self.data["updated"]
        return self._extend(entry)

    def extend_atom(self, entry: Any) -> Any:
        d = dict(self.data)
        d["author"] = None  # Atom has <author>
        ns = entry.tag[: entry.tag.index("}") + 1] if entry.tag.startswith("{") else ""
        if d.get("image"):
            # feedgen 1.0 drops `rel` from entry links, which would make the image a second
            # alternate link; write the enclosure ourselves, in the entry's namespace
            etree.SubElement(entry, f"{ns}link", rel="enclosure", href=d["image"],
                             type=d["image_type"])
        # atom:source (RFC 4287 4.2.11): the source's feed (or listing page) and its name
        source = etree.SubElement(entry, f"{ns}source")
        etree.SubElement(source, f"{ns}id").text = d["source_url"]
        etree.SubElement(source, f"{ns}title").text = d["source_name"]
        if d["source_is_feed"]:
            etree.SubElement(source, f"{ns}link", rel="self", href=d["source_url"])
        else:
            etree.SubElement(source, f"{ns}link", rel="alternate", type="text/html",
                             href=d["source_url"])
        saved, self.data = self.data, d
        try:
            return self._extend(entry)
        finally:
            self.data = saved


def _generator(doc: FeedDoc, ext: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.register_extension("agg", _AggFeedExt, _AggEntryExt, rss=True, atom=True)
    fg.id(doc.url("atom"))
    fg.title(doc.title)
    fg.subtitle(doc.description)
    fg.description(doc.description)
    fg.link(href=doc.url(ext), rel="self",
            type="application/atom+xml" if ext == "atom" else "application/rss+xml")
    if doc.hub and ext == "atom":
        fg.link(href=doc.hub, rel="hub")
    fg.agg.hub = doc.hub
    fg.link(href=doc.home, rel="alternate", type="text/html")  # last link = RSS <link>
    fg.language(doc.language)
    fg.updated(doc.updated)
    fg.lastBuildDate(doc.updated)  # derived from the entries: unchanged feed, same bytes
    fg.generator("aggregator", uri=doc.base_url)
    fg.docs("https://www.rssboard.org/rss-specification")
    for e in doc.entries:
        fe = fg.add_entry(order="append")
        fe.id(e.id)
        fe.guid(e.id, permalink=False)
        fe.title(e.title)
        if e.link:
            fe.link(href=e.link, rel="alternate", type="text/html")
        fe.published(e.published)
        fe.updated(e.updated)
        if e.author:
            fe.author(name=e.author)
        summary = e.summary + also_html(e, doc.ui_language)
        if summary and ext == "rss":
            fe.description(summary)
        elif summary:
            fe.summary(summary, type="html")
        if e.content:
            fe.content(e.content, type="CDATA" if ext == "rss" else "html")
        elif not summary and not e.link:
            fe.content(escape_html(e.title), type="html")
        for term in categories(e):
            fe.category(term=term, label=term)
        if ext == "rss":  # Atom: written whole by the extension
            fe.source(url=e.source_url, title=e.source_name)
        image_type = ""
        if e.image:
            suffix = e.image.rsplit(".", 1)[-1].split("?")[0].lower()
            image_type = _IMAGE_TYPES.get(suffix, "image/jpeg")
            if ext == "rss":
                fe.enclosure(e.image, "0", image_type)
        fe.agg.data = {
            "author": e.author, "agency_slug": e.agency_slug, "agency_name": e.agency_name,
            "source_id": e.source_id, "source_name": e.source_name, "views": e.views,
            "also": e.also_published_by, "also_links": e.also_links, "image": e.image,
            "image_type": image_type, "source_url": e.source_url,
            "updated": e.updated.isoformat(),
            "source_is_feed": e.source_is_feed,
        }
    return fg


def render_rss(doc: FeedDoc) -> bytes:
    body: bytes = _generator(doc, "rss").rss_str(pretty=True)
    return body


def render_atom(doc: FeedDoc) -> bytes:
    body: bytes = _generator(doc, "atom").atom_str(pretty=True)
    return body
