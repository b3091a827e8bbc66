"""Golden pages: every shipped HTML source's config, run on a saved page, yields exactly the
expected items. A config change that breaks a source fails here. One test runs the shipped
scraper on the real m.beritajakarta.id page in ../shared/fixtures/ when that folder exists."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.core import preview_source, read_config
from aggregator.parse.html import parse_article
from aggregator.types import Config

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "fixtures" / "html"
REAL = ROOT.parent / "shared" / "fixtures" / "beritajakarta" / \
    "m_read_19952_rehab-total-4-puskesmas-kelurahan-dikebut.html"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def shipped() -> Config:
    return read_config(str(ROOT / "config" / "aggregator.toml"))


def html_sources(config: Config) -> list[str]:
    return [s.id for s in config.sources if s.kind == "html"]


def golden_page(source_id: str) -> Path:
    found = sorted(GOLDEN.glob(f"*/{source_id}.html"))
    assert found, f"shipped HTML source {source_id} has no golden page in {GOLDEN}"
    return found[0]


def test_every_shipped_html_source_has_a_golden_page(shipped: Config) -> None:
    ids = html_sources(shipped)
    assert len(ids) >= 8
    for source_id in ids:
        golden_page(source_id)


def test_golden_pages(shipped: Config) -> None:
    for source_id in html_sources(shipped):
        page = golden_page(source_id)
        expected = json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))
        result = preview_source(shipped, source_id, str(page), NOW)
        got = [{"key": it.key, "title": it.title, "link": it.link,
                "published": it.published.isoformat(), "views": it.views,
                "author": it.author} for it in result.items]
        assert got == expected, source_id
        for item in result.items:
            # the "Berita Terpopuler" box shows no photos: only the image may be missing
            problems = [p for p in item.problems if not p.startswith("image:")]
            assert problems == [], (source_id, item.key, item.problems)
            assert item.dated_by == "source"
            assert item.image is None or item.image.startswith("https://")
        assert not [w for w in result.warnings if w.startswith("drift")], source_id


@pytest.mark.skipif(not REAL.exists(), reason="../shared/fixtures is not present")
def test_shipped_scraper_on_the_real_page(shipped: Config) -> None:
    result = preview_source(shipped, "beritajakarta-terkini", str(REAL), NOW)
    by_key = {it.key: it for it in result.items}
    # "Berita Terkait" (ul.list-index) and "Berita Terpopuler" (ol.slides closed by </ul>)
    assert len(result.items) == 7
    related = by_key["id:19611"]
    assert related.title == "Gedung SDN Makasar 08 dan 09 Direhab"
    assert related.link == "https://m.beritajakarta.id/read/19611/gedung-sdn-makasar-08-dan-09-direhab"
    assert related.published == datetime(2015, 11, 5, 14, 46, tzinfo=UTC)  # 21:46 WIB
    assert related.views == 7591
    assert related.author == "Nurito"
    popular = by_key["id:155970"]
    assert popular.title == "Petugas Berhasil Evakuasi Jenazah di Kali Ciliwung"
    assert popular.published == datetime(2026, 10, 7, 17, 0, tzinfo=UTC)  # 08-10-2026 WIB
    assert popular.views == 5819
    assert all(p.startswith("image:") for it in result.items for p in it.problems)
    assert related.problems == ()


@pytest.mark.skipif(not REAL.exists(), reason="../shared/fixtures is not present")
def test_shipped_article_spec_on_the_real_article(shipped: Config) -> None:
    source = shipped.source("beritajakarta-terkini")
    assert source is not None and source.html is not None and source.html.article is not None
    found, problems = parse_article(REAL.read_bytes(), {}, source.html.article,
                                    source.html.ignore)
    assert problems == []
    assert found["category"] == "Pembangunan"
    assert found["author"] == "Nurito"
    assert "Proses rehab total empat puskesmas" in found["content"]
