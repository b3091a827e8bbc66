"""The feedparser adapter: its speed-ups change no answer, and it leaves feedparser as it was."""

from __future__ import annotations

import contextlib
from pathlib import Path

import feedparser
import pytest

from aggregator.parse import feed as adapter

FEEDS = sorted((Path(__file__).parent / "fixtures" / "feeds").glob("*"))


@pytest.mark.parametrize("path", FEEDS, ids=[p.name for p in FEEDS])
def test_lean_parsing_gives_the_same_items(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = path.read_bytes()
    headers = {"content-type": "application/xml"}
    lean = adapter.parse_feed(body, headers, "https://portal.go.id/feed")
    monkeypatch.setattr(adapter, "_lean_feedparser", contextlib.nullcontext)
    plain = adapter.parse_feed(body, headers, "https://portal.go.id/feed")
    assert lean.items == plain.items
    assert lean.items, path.name


def test_feedparser_is_left_as_installed() -> None:
    before = (feedparser.util.FeedParserDict.__getitem__, feedparser.util.FeedParserDict.get,
              list(feedparser.datetimes._date_handlers))
    adapter.parse_feed((FEEDS[0]).read_bytes(), {}, "https://portal.go.id/feed")
    after = (feedparser.util.FeedParserDict.__getitem__, feedparser.util.FeedParserDict.get,
             list(feedparser.datetimes._date_handlers))
    assert before == after
    assert before[2], "feedparser's date handlers are back"


def test_unread_elements_are_cut_but_nothing_else() -> None:
    body = (b'<rss version="2.0" xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
            b'xmlns:slash="http://purl.org/rss/1.0/modules/slash/"><channel><title>T</title>'
            b"<item><title>Judul</title><link>https://p.go.id/1</link>"
            b"<comments>https://p.go.id/1#respond</comments>"
            b"<wfw:commentRss>https://p.go.id/1/feed</wfw:commentRss>"
            b"<slash:comments>3</slash:comments>"
            b"<description><![CDATA[<p>Isi <b>berita</b></p>]]></description></item>"
            b"</channel></rss>")
    assert adapter._UNREAD.sub(b"", body).count(b"comment") == 0
    page = adapter.parse_feed(body, {}, "https://p.go.id/feed")
    (item,) = page.items
    assert item.title == "Judul" and item.link == "https://p.go.id/1"
    assert item.summary == "<p>Isi <b>berita</b></p>"
