"""What the last `publish --out` rendered, kept beside its files, so that the next process (a
cron `aggregator run`) takes an unchanged feed's bytes from disk instead of rendering it again.

`.aggregator-render` (JSON) holds a digest of each feed's document (its entries, titles,
links: everything its bytes are made from). A new process digests the documents it built; a
feed whose digest is recorded, and whose three files are on disk with the bytes the manifest
says the export wrote, is read back. Anything else (no record, a changed document, a file
edited or missing) is rendered as usual: a miss
only costs the render, and the bytes are the same either way, since a feed's bytes are a pure
function of its document.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from aggregator.publish.model import FeedDoc, Rendered
from aggregator.publish.static import digest, file_for, read_manifest

RENDER_CACHE = ".aggregator-render"
_VERSION = 1


def doc_digest(doc: FeedDoc) -> str:
    """The same for equal documents in any process: their repr (pickle is not: it shares
    repeated objects, and which are shared differs between processes)."""
    return hashlib.sha256(repr(doc).encode("utf-8", "surrogatepass")).hexdigest()


class DiskRenders:
    """The renders a previous export left in `out_dir`, for `FeedRenderer`."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.root = Path(out_dir)
        self.manifest = read_manifest(self.root)
        try:
            data = json.loads((self.root / RENDER_CACHE).read_text(encoding="utf-8"))
            docs = data.get("docs", {}) if data.get("version") == _VERSION else {}
        except (OSError, ValueError, AttributeError):
            docs = {}
        self.digests: dict[str, str] = {k: v for k, v in docs.items()
                                        if isinstance(k, str) and isinstance(v, str)}

    def load(self, doc: FeedDoc, formats: tuple[tuple[str, str], ...]) -> list[Rendered] | None:
        """`doc`'s renders from disk, in `formats` ((extension, content type)), or None."""
        if self.digests.get(doc.path) != doc_digest(doc):
            return None
        out: list[Rendered] = []
        for ext, content_type in formats:
            path = f"/{doc.path}.{ext}"
            name = file_for(path)
            try:
                body = (self.root / name).read_bytes()
            except OSError:
                return None
            if digest(body) not in self.manifest.get(name, ()):
                return None  # not what the export wrote: render it again
            out.append(Rendered(path, body, content_type, doc.updated))
        return out


def save(out_dir: str | os.PathLike[str], docs: Mapping[str, FeedDoc],
         files_written: bool) -> None:
    """Record the documents just exported (write then rename, as the files). When no file
    was written the record stays as it is, untouched like the files: a document can differ
    without its bytes (a story's score moves with the clock); such a feed is rendered again
    next time, which costs only its render."""
    root = Path(out_dir)
    if not files_written and (root / RENDER_CACHE).exists():
        return
    body = json.dumps({"version": _VERSION, "about": "digests of the feeds `aggregator "
                       "publish` rendered last, to reuse their files",
                       "docs": {path: doc_digest(doc) for path, doc in sorted(docs.items())}},
                      indent=0).encode("utf-8")
    target = root / RENDER_CACHE
    try:
        if target.read_bytes() == body:
            return  # untouched, as the files of unchanged feeds
    except OSError:
        pass
    tmp = root / f"{RENDER_CACHE}.tmp"
    tmp.write_bytes(body)
    os.replace(tmp, target)
