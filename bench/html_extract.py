"""HTML extraction rate: pages per second for a ~30 KB listing page with 20 items, through the
shipped beritajakarta.id scraper (lexbor parse, selectors, ignore, id rule) and through
normalize (dates, counts, canonical links, keys).

    python bench/html_extract.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aggregator.core import read_config
from aggregator.normalize import normalize_page
from aggregator.parse.html import parse_listing

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "tests" / "fixtures" / "html" / "beritajakarta" / "beritajakarta-terkini.html"


def padded_page() -> bytes:
    """The golden terkini page (20 items) padded to ~30 KB with the kind of markup a real page
    carries besides the list (menus, scripts, footer), like the real 28 KB page."""
    body = PAGE.read_text(encoding="utf-8")
    filler = "\n".join(
        f'<li class="menu-item"><a href="https://m.beritajakarta.id/kategori/k{i}">'
        f"Kategori nomor {i}</a></li>" for i in range(90))
    body = body.replace("</nav>", f"<ul class='side-menu'>{filler}</ul></nav>")
    return body.encode()


def rate(fn: object, seconds: float) -> tuple[int, float]:
    assert callable(fn)
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        n += 1
    return n, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    config = read_config(str(ROOT / "config" / "aggregator.toml"))
    source = config.source("beritajakarta-terkini")
    assert source is not None and source.html is not None
    spec = source.html
    body = padded_page()
    zone = ZoneInfo("Asia/Jakarta")
    now = datetime.now(UTC)
    page = parse_listing(body, {}, spec)
    assert len(page.items) >= 20, len(page.items)  # 20 in the list, 5 in "Terpopuler"

    def extract() -> None:
        parse_listing(body, {}, spec)

    def extract_and_normalize() -> None:
        normalize_page(parse_listing(body, {}, spec), source.id, source.url, zone, now)

    print(f"page: {len(body) / 1024:.1f} KB, {len(page.items)} items")
    print(f"{'stage':<28}{'pages/s':>10}{'ms/page':>10}")
    for name, fn in (("parse + extract", extract),
                     ("parse + extract + normalize", extract_and_normalize)):
        n, elapsed = rate(fn, args.seconds)
        print(f"{name:<28}{n / elapsed:>10.0f}{1000 * elapsed / n:>10.2f}")


if __name__ == "__main__":
    main()
