"""HTML extraction: field specs, malformed markup, drift, pagination links, and config checks
of selectors."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.core import read_config
from aggregator.errors import ConfigError
from aggregator.parse.html import extract, parse_article, parse_listing, selector_problem
from aggregator.rules import assign_agency
from aggregator.types import ArticleSpec, FieldSpec, HtmlSpec, Item, Rule, Source

SPEC = HtmlSpec(
    item="ul.list-index > li",
    fields={
        "title": FieldSpec("h2 a"),
        "link": FieldSpec("h2 a", "href"),
        "date": FieldSpec("span:has(i:contains('access_time'))"),
        "views": FieldSpec("span:has(i:contains('remove_red_eye'))"),
        "author": FieldSpec("span:has(i:contains('person'))"),
    },
    id=FieldSpec("h2 a", "href", r"/read/(\d+)"),
    ignore="i.material-icons",
    next_page=FieldSpec("a.next", "href"),
)

MALFORMED = b"""<html><body>
<ul class="list-index">
  <li><h2><a href="/read/1/satu">Satu <b>tebal</a></h2>
      <span><i class="material-icons">access_time</i>17-01-2025</span>
      <span><i class="material-icons">remove_red_eye</i>1.476</span>
      <span><i class="material-icons">person</i>Budhi</span>
  <li><h2><a href="/read/2/dua">Dua</a></h5>
      <p>nested <p>paragraph
      <span><i class="material-icons">access_time</i>18-01-2025</span>
</ol>
<li><h2><a href="/read/3/tiga">Tiga</a></h2></li>
</ul>
<a class="next" href="?page=2">berikutnya</a>
</body></html>"""


def test_malformed_markup_parses_as_a_browser_would() -> None:
    page = parse_listing(MALFORMED, {}, SPEC)
    assert [r.title for r in page.items] == ["Satu tebal", "Dua", "Tiga"]
    first, second, third = page.items
    assert first.link == "/read/1/satu" and first.id == "1"
    assert first.published == "17-01-2025"  # the icon ligature is ignored
    assert first.views == "1.476" and first.author == "Budhi"
    assert second.published == "18-01-2025"
    assert any(p.startswith("views:") for p in second.problems)
    assert third.published is None and any(p.startswith("date:") for p in third.problems)
    assert page.next_url == "?page=2"
    assert page.drift is None


def test_drift_when_the_item_selector_matches_nothing() -> None:
    changed = b"<html><body><div class='berita-baru'><article>x</article></div></body></html>"
    page = parse_listing(changed, {}, SPEC)
    assert page.items == ()
    assert page.drift and "matched nothing" in page.drift


def test_container_tells_layout_change_from_an_empty_day() -> None:
    spec = HtmlSpec(item="ul.list-index > li", fields=SPEC.fields, container="ul.list-index")
    empty_day = parse_listing(b"<ul class='list-index'></ul>", {}, spec)
    assert empty_day.drift is None and empty_day.warnings
    layout_changed = parse_listing(b"<div class='grid'></div>", {}, spec)
    assert layout_changed.drift and "container" in layout_changed.drift


def test_charset_from_meta_and_header() -> None:
    body = "<meta charset='windows-1252'><ul class='list-index'><li><h2><a href='/read/9/x'>" \
           "Caf\xe9 Warga</a></h2></li></ul>"
    page = parse_listing(body.encode("cp1252"), {}, SPEC)
    assert page.items[0].title == "Café Warga"
    page = parse_listing(body.replace("windows-1252", "utf-8").encode("cp1252"),
                         {"content-type": "text/html; charset=windows-1252"}, SPEC)
    assert page.items[0].title == "Café Warga"


def test_field_specs() -> None:
    from selectolax.lexbor import LexborHTMLParser

    node = LexborHTMLParser("<div><a href='/x' title='T'>Kesehatan</a><a>Pendidikan</a>"
                            "<span>Dilihat 1.234 kali</span></div>").css_first("div")
    assert extract(node, FieldSpec("a", "title")) == ("T", None)
    assert extract(node, FieldSpec("a", all=True)) == ("Kesehatan, Pendidikan", None)
    assert extract(node, FieldSpec("span", regex=r"(\d[\d.]*)")) == ("1.234", None)
    value, why = extract(node, FieldSpec("span", regex=r"Views (\d+)"))
    assert value is None and why and "did not match" in why
    value, why = extract(node, FieldSpec("table td"))
    assert value is None and why == "selector 'table td' matched nothing"
    assert extract(node, FieldSpec("a", "html")) == ("Kesehatan", None)


def test_article_page_fields() -> None:
    spec = ArticleSpec({"content": FieldSpec("div.body", "html"),
                        "author": FieldSpec("span.by", regex=r"Reporter\s*:\s*(.+)")})
    found, problems = parse_article(
        b"<div class='body'><p>Isi <script>x()</script></p></div>"
        b"<span class='by'>Reporter : Nurito</span>", {}, spec)
    assert found["author"] == "Nurito"
    assert found["content"].startswith("<p>Isi")
    assert problems == []


def test_selector_problem() -> None:
    assert selector_problem("ul.list-index > li") is None
    assert selector_problem("span:has(i:contains('access_time'))") is None
    assert selector_problem("ul[") is not None
    assert selector_problem("") == "is empty"


def test_check_rejects_a_bad_selector_naming_source_and_field(tmp_path: Path) -> None:
    (tmp_path / "main.toml").write_text(textwrap.dedent("""
        [[agency]]
        slug = "pemprov-dki"
        name = "Pemprov DKI"
        region = "dki-jakarta"

        [[source]]
        id = "portal-terkini"
        kind = "html"
        url = "https://portal.go.id/terkini"
        agency = "pemprov-dki"
        [source.html]
        item = "ul.list-index > li"
        title = "h2 a["
        link = "h2 a @href"
        date = { css = "span.date", regex = "([0-9" }
        colour = "red"
        [source.html.article]
        content = "div..x @html"
    """))
    with pytest.raises(ConfigError) as err:
        read_config(str(tmp_path / "main.toml"))
    text = str(err.value)
    assert "source portal-terkini, field 'html.title': selector 'h2 a[' does not parse" in text
    assert "field 'html.date': regex '([0-9' does not compile" in text
    assert "field 'html.colour': is not a known field" in text
    assert "field 'html.article.content'" in text


def _item(title: str, link: str = "https://m.beritajakarta.id/read/1/x",
          categories: tuple[str, ...] = ()) -> Item:
    return Item("s", "id:1", link, title, "", "", None, datetime(2026, 1, 1, tzinfo=UTC), None,
                "source", None, categories, None, "h")


def test_agency_rules_first_match_wins_and_outranks_the_source() -> None:
    terkini = Source("bj-terkini", "html", "https://x/terkini", "pemprov-dki", 900)
    pusat = Source("bj-jakarta-pusat", "html", "https://x/wilayah/jp", "pemkot-jp", 900)
    rules = (
        Rule("kominfotik-jakpus", ("bj-*",), title=("Sudin Kominfotik Jakpus",)),
        Rule("dinkes-dki", ("bj-*",), title=("Puskesmas",), category=("Kesehatan",)),
        Rule("pemkot-jp", ("bj-jakarta-pusat",)),
    )
    assert assign_agency(_item("Sudin Kominfotik Jakpus Gelar Pelatihan"), terkini, rules) == \
        ("kominfotik-jakpus", 2)
    assert assign_agency(_item("Rehab Puskesmas"), terkini, rules) == ("pemprov-dki", 1)
    assert assign_agency(_item("Rehab Puskesmas", categories=("kesehatan",)), terkini,
                         rules) == ("dinkes-dki", 2)
    assert assign_agency(_item("Lomba Kebersihan"), pusat, rules) == ("pemkot-jp", 2)
    assert assign_agency(_item("Lomba Kebersihan"), terkini, rules) == ("pemprov-dki", 1)
