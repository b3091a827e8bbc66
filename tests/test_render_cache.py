"""A render after a poll renders only the feeds whose content changed (`FeedRenderer`), and
its bytes are exactly those of a render from scratch."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aggregator.core import Aggregator
from aggregator.publish import FeedRenderer, Rendered
from aggregator.site import SiteBuilder
from aggregator.web import SiteHolder
from tests.portal import (
    Portal,
    Route,
    Src,
    fixture_feed,
    invoke,
    serve_standard_feeds,
    write_config,
)

SOURCES = (Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki"),
           Src("bali-etag", "/rss/bali.xml", "pemprov-bali"))
NOW = datetime(2024, 6, 20, tzinfo=UTC)


def test_only_changed_feeds_are_rendered_again(portal: Portal, tmp_path: Path) -> None:
    serve_standard_feeds(portal)
    config = write_config(tmp_path, portal, SOURCES)
    assert invoke("poll", "--all", config=config).exit_code == 0
    agg = Aggregator.open(str(config), clock=lambda: NOW)
    try:
        first = agg.render()
        assert agg.renderer is not None and agg.renderer.reused == 0
        again = agg.render()
        feeds = [p for p in first if p.startswith("/feeds/")]
        assert len(feeds) == 3 * 6  # all, top, 2 agencies, 2 regions
        assert all(again[p] is first[p] for p in feeds)  # nothing rendered again
        assert agg.renderer.reused == 6

        # Bali's feed changes (an edited title, a new item); Jakarta's does not
        portal.routes["/rss/bali.xml"] = Route(fixture_feed("pemprov-bali-etag-v2.rss"),
                                               etag='"bali-v2"')
        assert invoke("poll", "--source", "bali-etag", config=config).exit_code == 0
        after = agg.render()
        for path in feeds:
            if "bali" in path or "/feeds/all." in path or "/feeds/top." in path:
                assert after[path] is not first[path], path
                assert after[path].body != first[path].body, path
            else:
                assert after[path] is first[path], path
        assert agg.renderer.reused == 2  # Jakarta's agency and region feeds

        # the same bytes as a build from scratch, document by document
        fresh = SiteBuilder(agg.config, agg.store, FeedRenderer()).build(NOW)
        assert sorted(fresh) == sorted(after)
        assert all(fresh[p].body == after[p].body and fresh[p].etag == after[p].etag
                   for p in fresh)
    finally:
        agg.close()


def test_gzip_is_made_by_the_holder_not_by_static_export() -> None:
    """Static export never compresses; the server's holder compresses each document once,
    when it takes the render (on the scheduler's thread, not on the event loop)."""
    doc = Rendered("/feeds/a.rss", b"<rss>" + b"x" * 1000 + b"</rss>", "application/rss+xml",
                   NOW)
    assert "gzipped" not in vars(doc)
    SiteHolder(lambda: NOW).update({doc.path: doc})
    made = vars(doc)["gzipped"]
    assert doc.gzipped is made and len(made) < len(doc.body)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not p.name.startswith(".aggregator-")}


def test_a_new_process_reads_unchanged_feeds_back_from_the_last_export(
        portal: Portal, tmp_path: Path) -> None:
    """A cron run is a new process: `publish` takes the feeds whose documents did not change
    from the files the last export wrote (publish/render_cache.py), never a file someone
    edited, and writes exactly the bytes a render from scratch gives."""
    serve_standard_feeds(portal)
    config = write_config(tmp_path, portal, SOURCES)
    assert invoke("poll", "--all", config=config).exit_code == 0
    out = tmp_path / "out"

    def publish() -> FeedRenderer:  # as a new process: a fresh Aggregator each time
        agg = Aggregator.open(str(config), clock=lambda: NOW)
        try:
            agg.publish(str(out))
            assert agg.renderer is not None
            return agg.renderer
        finally:
            agg.close()

    assert publish().reused == 0  # nothing on disk yet
    assert publish().reused == 6  # every feed read back
    # an edited file is not what the export wrote: that feed is rendered (and written) again
    edited = out / "feeds" / "agency" / "pemprov-dki.atom"
    edited.write_bytes(edited.read_bytes().replace(b"</feed>", b"<!-- x --></feed>"))
    assert publish().reused == 5
    assert b"<!-- x -->" not in edited.read_bytes()
    # Bali's feed changes: its agency and region feeds, all and top are rendered again
    portal.routes["/rss/bali.xml"] = Route(fixture_feed("pemprov-bali-etag-v2.rss"),
                                           etag='"bali-v2"')
    assert invoke("poll", "--source", "bali-etag", config=config).exit_code == 0
    assert publish().reused == 2
    # the bytes of a render from scratch, file by file
    scratch = tmp_path / "scratch"
    agg = Aggregator.open(str(config), clock=lambda: NOW)
    try:
        agg.publish(str(scratch))
    finally:
        agg.close()
    assert _tree(out) == _tree(scratch)
