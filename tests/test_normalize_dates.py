"""The date parser on a labelled table of real-shaped strings (tests/data/dates.tsv).
Every row must parse to its label; the table's accuracy is printed by bench/dates_eval.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from aggregator.normalize.dates import parse_date

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
TABLE = Path(__file__).parent / "data" / "dates.tsv"


def load_table() -> list[tuple[str, str, str, str]]:
    rows = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip("\t"):
            continue
        text, zone, expected, note = line.split("\t")
        rows.append((text, zone, expected, note))
    return rows


ROWS = load_table()


def test_table_is_big_enough() -> None:
    assert len(ROWS) >= 50


@pytest.mark.parametrize(("text", "zone", "expected", "note"), ROWS,
                         ids=[f"{i}-{r[3]}" for i, r in enumerate(ROWS)])
def test_date_table(text: str, zone: str, expected: str, note: str) -> None:
    result = parse_date(text, ZoneInfo(zone), NOW)
    if expected == "NONE":
        assert result.value is None, f"{text!r} should not parse"
        assert result.error
        return
    assert result.value is not None, f"{text!r} ({note}): {result.error}"
    want = datetime.fromisoformat(expected.replace("Z", "+00:00"))
    assert result.value == want, f"{text!r} ({note})"
    assert result.value.tzinfo is not None
    assert result.value.utcoffset() == UTC.utcoffset(None)


def test_relative_dates_are_marked_relative() -> None:
    zone = ZoneInfo("Asia/Jakarta")
    assert parse_date("2 jam yang lalu", zone, NOW).relative
    assert parse_date("kemarin", zone, NOW).relative
    assert not parse_date("17-01-2025", zone, NOW).relative


def test_parser_never_raises_on_garbage() -> None:
    zone = ZoneInfo("Asia/Jakarta")
    for text in ["99/99/9999", "0-0-0", "(/)", "jam", "Mon, 99 Foo 2024 99:99:99", "ä" * 500,
                 "2024-13-45T99:99:99", "1e9", "Kamis, ", "yang lalu"]:
        parse_date(text, zone, NOW)


def test_language_en_us_reads_numeric_dates_month_first() -> None:
    zone = ZoneInfo("Asia/Jakarta")
    us = parse_date("06/25/2024 10:00", zone, NOW, language="en-us").value
    assert us == datetime(2024, 6, 25, 3, 0, tzinfo=UTC)
    assert parse_date("06/25/2024", zone, NOW, language="id").value is None
    assert parse_date("05/06/2024", zone, NOW, language="id").value == \
        datetime(2024, 6, 4, 17, 0, tzinfo=UTC)


def test_date_format_is_tried_first() -> None:
    zone = ZoneInfo("Asia/Jakarta")
    value = parse_date("2024|06|25 10.00", zone, NOW, fmt="%Y|%m|%d %H.%M").value
    assert value == datetime(2024, 6, 25, 3, 0, tzinfo=UTC)
