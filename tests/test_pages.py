"""The pages' language (`ui_language`), its validation, and how static files are written
(atomically, untouched when unchanged)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import AggregatorError
from aggregator.publish import Rendered, labels, write_static
from aggregator.publish.labels import ENGLISH, INDONESIAN, UI_LANGUAGES
from tests.feedcheck import assert_valid_tree
from tests.portal import BASE_URL, Src, invoke, write_config

SOURCES = (Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki"),)
WHEN = datetime(2024, 6, 25, tzinfo=UTC)


def test_ui_language_is_checked(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, SOURCES,
                          settings='ui_language = "jv"\nwebsub_hub = "hub.example.test"\n')
    result = invoke("check", config=config)
    assert result.exit_code == 2
    assert "field 'ui_language': 'jv' must be one of: id, en" in result.stderr
    assert "field 'websub_hub': 'hub.example.test' must start with http" in result.stderr


def test_every_label_is_translated() -> None:
    assert UI_LANGUAGES == ("id", "en")
    assert labels("id") is INDONESIAN and labels("en") is ENGLISH
    for name, indonesian in vars(INDONESIAN).items():
        english = getattr(ENGLISH, name)
        assert english and indonesian, name
        if name != "lang":
            assert english != indonesian, f"label {name} is not translated"
        if isinstance(indonesian, str):  # the same placeholders in both languages
            assert [p for p in ("{name}", "{n}", "{path}", "{url}") if p in indonesian] == \
                   [p for p in ("{name}", "{n}", "{path}", "{url}") if p in english], name


@pytest.mark.parametrize("lang", ["id", "en"])
def test_pages_and_feed_titles_speak_the_configured_language(tmp_path: Path,
                                                             lang: str) -> None:
    settings = f'ui_language = "{lang}"\n' if lang == "en" else ""
    config = write_config(tmp_path, None, SOURCES, settings=settings)
    out = tmp_path / "public"
    assert invoke("publish", "--out", str(out), config=config).exit_code == 0
    words = labels(lang)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert f'<html lang="{lang}">' in index
    for label in (words.top_stories, words.combined, words.agencies, words.opml):
        assert label in index, label
    other = labels("en" if lang == "id" else "id")
    assert other.top_stories not in index and other.combined not in index
    rss = (out / "feeds/all.rss").read_text(encoding="utf-8")
    assert f": {words.newest}</title>" in rss
    assert "<language>id</language>" in rss  # the news stays Indonesian
    opml = (out / "opml").read_text(encoding="utf-8")
    assert f'text="{words.regions}"' in opml
    assert_valid_tree(out, BASE_URL)


def _site(body: bytes) -> dict[str, Rendered]:
    return {"/feeds/all.rss": Rendered("/feeds/all.rss", body, "application/rss+xml", WHEN),
            "/": Rendered("/", b"<html></html>", "text/html", WHEN)}


def test_static_files_are_replaced_whole_or_not_at_all(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    report = write_static(_site(b"<rss>1</rss>"), tmp_path)
    target = tmp_path / "feeds" / "all.rss"
    assert sorted(report.changed) == ["/", "/feeds/all.rss"]
    assert (tmp_path / "index.html").read_bytes() == b"<html></html>"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # readable by the web server

    # unchanged: not rewritten (same inode, same mtime), reported as unchanged
    before = target.stat()
    again = write_static(_site(b"<rss>1</rss>"), tmp_path)
    assert again.written == () and len(again.unchanged) == 2
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == (before.st_ino,
                                                                  before.st_mtime_ns)

    # the rename fails half-way: the old file is intact and no temporary file is left
    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(AggregatorError, match="cannot write static files"):
        write_static(_site(b"<rss>2</rss>"), tmp_path)
    assert target.read_bytes() == b"<rss>1</rss>"
    assert sorted(p.name for p in target.parent.iterdir()) == ["all.rss"]
    monkeypatch.undo()

    # a change is a new file renamed over the old one (a reader never sees half of it)
    changed = write_static(_site(b"<rss>2</rss>"), tmp_path)
    assert changed.changed == ("/feeds/all.rss",)
    assert target.read_bytes() == b"<rss>2</rss>" and target.stat().st_ino != before.st_ino
