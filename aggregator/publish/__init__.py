"""Render feeds (RSS 2.0, Atom 1.0, JSON Feed 1.1), OPML and the index page, and write them as
static files. Output is a pure function of the data: no build time, so an unchanged feed has
the same bytes, the same ETag, and its file is not rewritten."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aggregator.errors import AggregatorError
from aggregator.publish.feeds import render_atom, render_rss
from aggregator.publish.jsonfeed import render_json
from aggregator.publish.labels import Labels, labels
from aggregator.publish.model import EPOCH, Entry, FeedDoc, Rendered, changed_paths
from aggregator.publish.opml import render_opml
from aggregator.publish.pages import render_index, render_status

__all__ = ["EPOCH", "Entry", "FeedDoc", "Labels", "Rendered", "changed_paths", "hub_topics",
           "labels", "render_feed", "render_index", "render_opml", "render_status", "write_static"]

FORMATS = (
    ("rss", render_rss, "application/rss+xml; charset=utf-8"),
    ("atom", render_atom, "application/atom+xml; charset=utf-8"),
    ("json", render_json, "application/feed+json; charset=utf-8"),
)


def render_feed(doc: FeedDoc) -> list[Rendered]:
    return [Rendered(f"/{doc.path}.{ext}", render(doc), ctype, doc.updated)
            for ext, render, ctype in FORMATS]


@dataclass(frozen=True)
class WriteReport:
    written: tuple[str, ...]  # files
    unchanged: tuple[str, ...]
    changed: tuple[str, ...] = ()  # URL paths of the written files ("/feeds/all.rss")
    pinged: tuple[str, ...] = ()  # feed URLs announced to the WebSub hub
    hub_problems: tuple[str, ...] = ()  # pings that failed


def hub_topics(paths: Sequence[str], base_url: str) -> list[str]:
    """The feed URLs among changed document paths: what a WebSub hub is told about."""
    return [base_url + path for path in paths if path.startswith("/feeds/")]


def _file_for(path: str) -> str:
    return "index.html" if path == "/" else path.lstrip("/")


def write_static(site: Mapping[str, Rendered], out_dir: str | os.PathLike[str]) -> WriteReport:
    """Write every document under `out_dir` atomically (temporary file, then rename); a file
    whose bytes are already right is left alone so its mtime and a web server's ETag stay."""
    root = Path(out_dir)
    written: list[str] = []
    unchanged: list[str] = []
    changed: list[str] = []
    try:
        for path in sorted(site):
            target = root / _file_for(path)
            body = site[path].body
            if target.is_file() and target.stat().st_size == len(body) \
                    and target.read_bytes() == body:
                unchanged.append(str(target))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(body)
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            written.append(str(target))
            changed.append(path)
    except OSError as exc:
        raise AggregatorError(f"cannot write static files to {root}: {exc}") from exc
    return WriteReport(tuple(written), tuple(unchanged), tuple(changed))
