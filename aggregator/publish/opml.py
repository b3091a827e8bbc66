"""OPML 2.0 list of every published feed, to subscribe to all at once (stdlib xml)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from xml.etree import ElementTree as ET

from aggregator.publish.model import FeedDoc


def render_opml(title: str, groups: Sequence[tuple[str, Sequence[FeedDoc]]],
                updated: datetime) -> bytes:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateModified").text = format_datetime(updated, usegmt=True)
    body = ET.SubElement(root, "body")
    for group_title, docs in groups:
        group = ET.SubElement(body, "outline", text=group_title, title=group_title)
        for doc in docs:
            ET.SubElement(group, "outline", type="rss", text=doc.title, title=doc.title,
                          xmlUrl=doc.url("rss"), htmlUrl=doc.home)
    ET.indent(root)
    xml = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + xml + "\n").encode()


def render_sources_opml(title: str,
                        groups: Sequence[tuple[str, str, Sequence[tuple[str, str, str | None]]]],
                        updated: datetime) -> bytes:
    """OPML 2.0 of the configured sources' own feeds (`aggregator sources export-opml`):
    `groups` are (agency name, agency slug, [(title, feed URL, site URL)]); each source is an
    outline in its agency's folder with category="/SLUG"."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(updated, usegmt=True)
    body = ET.SubElement(root, "body")
    for name, slug, feeds in groups:
        group = ET.SubElement(body, "outline", text=name, title=name)
        for feed_title, xml_url, html_url in feeds:
            attrs = {"type": "rss", "text": feed_title, "title": feed_title, "xmlUrl": xml_url,
                     "category": f"/{slug}"}
            if html_url:
                attrs["htmlUrl"] = html_url
            ET.SubElement(group, "outline", attrs)
    ET.indent(root)
    xml = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + xml + "\n").encode()
