"""Render feeds (RSS 2.0, Atom 1.0, JSON Feed 1.1), OPML and the index page, and write them as
static files (`static.py`). Output is a pure function of the data: no build time, so an
unchanged feed has the same bytes, the same ETag, and its file is not rewritten."""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.publish.feeds import render_atom, render_rss
from aggregator.publish.jsonfeed import render_json
from aggregator.publish.labels import Labels, labels
from aggregator.publish.model import EPOCH, Entry, FeedDoc, Rendered, changed_paths
from aggregator.publish.opml import render_opml
from aggregator.publish.pages import render_index, render_source, render_status
from aggregator.publish.render_cache import DiskRenders
from aggregator.publish.render_cache import save as save_renders
from aggregator.publish.static import MANIFEST, WriteReport, write_static

__all__ = [
    "EPOCH",
    "MANIFEST",
    "DiskRenders",
    "Entry",
    "FeedDoc",
    "FeedRenderer",
    "Labels",
    "Rendered",
    "WriteReport",
    "changed_paths",
    "hub_topics",
    "labels",
    "render_feed",
    "render_index",
    "render_opml",
    "render_source",
    "render_status",
    "save_renders",
    "write_static",
]

FORMATS = (
    ("rss", render_rss, "application/rss+xml; charset=utf-8"),
    ("atom", render_atom, "application/atom+xml; charset=utf-8"),
    ("json", render_json, "application/feed+json; charset=utf-8"),
)


def render_feed(doc: FeedDoc, only: str | None = None) -> list[Rendered]:
    """The document in every format, or only in format `only` ("rss", "atom", "json")."""
    return [Rendered(f"/{doc.path}.{ext}", render(doc), ctype, doc.updated)
            for ext, render, ctype in FORMATS if only in (None, ext)]


class FeedRenderer:
    """`render_feed` that remembers the last render of each feed: a document equal to the one
    rendered last time under its path (the same entries, title, links...) gets the same
    `Rendered` objects back, without rendering and compressing it again. Output is a pure
    function of the document, so this changes no byte; it makes a render after a poll cost
    the feeds that changed, not all of them. Only the documents of the latest call are
    kept."""

    def __init__(self, disk: DiskRenders | None = None) -> None:
        """`disk`: the renders a previous export left on disk (a new process's first render
        reads unchanged feeds back instead of rendering them)."""
        self._last: dict[str, tuple[FeedDoc, list[Rendered]]] = {}
        self._disk = disk
        self.reused = 0  # documents reused by the latest call (for tests and benchmarks)

    def render(self, docs: Sequence[FeedDoc]) -> list[Rendered]:
        last, self._last = self._last, {}
        disk, self._disk = self._disk, None
        self.reused = 0
        out: list[Rendered] = []
        for doc in docs:
            prev = last.get(doc.path)
            rendered = None
            if prev is not None and prev[0] == doc:
                rendered = prev[1]
            elif disk is not None:
                rendered = disk.load(doc, tuple((ext, ctype) for ext, _, ctype in FORMATS))
            if rendered is None:
                rendered = render_feed(doc)
            else:
                self.reused += 1
            self._last[doc.path] = (doc, rendered)
            out.extend(rendered)
        return out

    def documents(self) -> dict[str, FeedDoc]:
        """The documents of the latest call, by path (what `render_cache.save` records)."""
        return {path: doc for path, (doc, _) in self._last.items()}


def hub_topics(paths: Sequence[str], base_url: str) -> list[str]:
    """The feed URLs among changed document paths: what a WebSub hub is told about."""
    return [base_url + path for path in paths if path.startswith("/feeds/")]
