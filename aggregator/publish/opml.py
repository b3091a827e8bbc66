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
