"""View counts, sanitizing and text cleanup."""

from __future__ import annotations

import pytest

from aggregator.normalize.numbers import parse_count
from aggregator.normalize.text import excerpt, plain_text, sanitize_html


@pytest.mark.parametrize(("text", "expected"), [
    ("1476", 1476),
    ("1.476", 1476),
    ("1,476", 1476),
    ("1.234.567", 1234567),
    ("remove_red_eye1476", 1476),
    ("remove_red_eye 1.476", 1476),
    ("Dilihat 1.234 kali", 1234),
    ("Dibaca: 87x", 87),
    ("1,2 rb", 1200),
    ("1,2rb", 1200),
    ("1,2K", 1200),
    ("1.5k", 1500),
    ("12 ribu", 12000),
    ("2 jt", 2_000_000),
    ("2,5 juta", 2_500_000),
    ("3K views", 3000),
    ("0", 0),
    ("Views: 10", 10),
    ("", None),
    ("tidak ada", None),
    (None, None),
])
def test_parse_count(text: str | None, expected: int | None) -> None:
    assert parse_count(text) == expected


def test_sanitize_removes_scripts_events_and_javascript_links() -> None:
    dirty = ('<p onclick="steal()">Halo <script>alert(1)</script><b>warga</b>'
             '<a href="javascript:alert(1)">klik</a><a href="/berita/2?a=1&amp;b=2">lanjut</a>'
             '<img src="foto.jpg" onerror="x()"><iframe src="https://evil"></iframe>'
             '<style>p{}</style><a href="data:text/html,<script>">d</a></p>')
    clean = sanitize_html(dirty, "https://portal.go.id/berita/1")
    low = clean.lower()
    for bad in ("<script", "onclick", "onerror", "javascript:", "<iframe", "<style", "data:"):
        assert bad not in low, bad
    assert 'href="https://portal.go.id/berita/2?a=1&amp;b=2"' in clean
    assert 'src="https://portal.go.id/berita/foto.jpg"' in clean
    assert "<b>warga</b>" in clean


def test_sanitize_keeps_absolute_and_mailto_links() -> None:
    clean = sanitize_html('<a href="mailto:humas@jakarta.go.id">m</a>'
                          '<a href="https://x.go.id/a">a</a>', "https://p.go.id/")
    assert 'href="mailto:humas@jakarta.go.id"' in clean
    assert 'href="https://x.go.id/a"' in clean


def test_plain_text_strips_markup_and_entities() -> None:
    assert plain_text("  Pemprov&nbsp;DKI <b>Gelar</b>\n Rapat &amp; Diskusi ") == \
        "Pemprov DKI Gelar Rapat & Diskusi"
    assert plain_text("<script>x()</script>Judul") == "Judul"
    assert plain_text(None) == ""


def test_excerpt_cuts_at_a_word() -> None:
    text = "<p>" + "kata " * 100 + "</p>"
    short = excerpt(text, 50)
    assert len(short) <= 51 and short.endswith("…") and "  " not in short
