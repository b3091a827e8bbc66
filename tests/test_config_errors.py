"""A bad config: exit code 2, and every problem named by file, source id and field, all of them
in one run (not one per run)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.portal import invoke, run_cli

MAIN = """\
[settings]
database = "{db}"
base_url = "http://berita.example.test"
timezone = "Asia/Jakarta"
include = ["sources/*.toml"]

[[agency]]
slug = "pemprov-sulsel"
name = "Pemerintah Provinsi Sulawesi Selatan"
region = "sulawesi-selatan"

[[agency]]
slug = "pemkot-medan"
name = "Pemerintah Kota Medan"
region = "sumatera-utara"

[[agency]]
slug = "pemkab-gowa"
name = "Pemerintah Kabupaten Gowa"
region = "sulawesi-selatan"
"""

# One file with five broken sources and one good one...
SULSEL = """\
[[source]]
id = "sulsel-berita"                       # fine
kind = "feed"
url = "https://sulselprov.go.id/feed"
agency = "pemprov-sulsel"
interval = "30m"

[[source]]
id = "sulsel-tanpa-url"                    # missing field
kind = "feed"
agency = "pemprov-sulsel"
interval = "30m"

[[source]]
id = "sulsel-salah-ketik"                  # unknown field
kind = "feed"
url = "https://sulselprov.go.id/berita/feed"
agency = "pemprov-sulsel"
intervall = "30m"

[[source]]
id = "gowa-berita"                         # agency not defined
kind = "feed"
url = "https://gowakab.go.id/feed/"
agency = "pemkab-gowaa"
interval = "1h"

[[source]]
id = "sulsel-interval"                     # bad interval
kind = "feed"
url = "https://sulselprov.go.id/siaran-pers/feed"
agency = "pemprov-sulsel"
interval = "setiap 15 menit"

[[source]]
id = "sulsel-url-rusak"                    # bad URL
kind = "feed"
url = "htps://sulselprov.go.id/feed"
agency = "pemprov-sulsel"
interval = "30m"
"""

# ...and a second file that reuses a source id of the first.
MEDAN = """\
[[source]]
id = "medan-berita"
kind = "feed"
url = "https://pemkomedan.go.id/feed"
agency = "pemkot-medan"
interval = "15m"

[[source]]
id = "sulsel-berita"                       # duplicate id (first in 10-sulsel.toml)
kind = "feed"
url = "https://pemkomedan.go.id/rss"
agency = "pemkot-medan"
interval = "15m"
"""

# (file, source id, field) of every problem above.
EXPECTED = [
    ("10-sulsel.toml", "sulsel-tanpa-url", "url"),
    ("10-sulsel.toml", "sulsel-salah-ketik", "intervall"),
    ("10-sulsel.toml", "gowa-berita", "agency"),
    ("10-sulsel.toml", "sulsel-interval", "interval"),
    ("10-sulsel.toml", "sulsel-url-rusak", "url"),
    ("20-medan.toml", "sulsel-berita", "id"),
]


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    conf = tmp_path / "config"
    (conf / "sources").mkdir(parents=True)
    main = conf / "aggregator.toml"
    main.write_text(MAIN.format(db=tmp_path / "data" / "aggregator.db"), encoding="utf-8")
    (conf / "sources" / "10-sulsel.toml").write_text(SULSEL, encoding="utf-8")
    (conf / "sources" / "20-medan.toml").write_text(MEDAN, encoding="utf-8")
    return main


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def find(lines: list[str], file: str, source_id: str, field: str) -> list[str]:
    return [line for line in lines
            if file in line and f"source {source_id}" in line and f"'{field}'" in line]


def test_check_reports_every_error_at_once(bad_config: Path) -> None:
    result = run_cli("check", config=bad_config)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = error_lines(result.stderr)
    for file, source_id, field in EXPECTED:
        assert find(lines, file, source_id, field), (file, source_id, field, result.stderr)
    # The valid sources are not blamed, and the count printed is the count listed.
    assert not [line for line in lines if "medan-berita" in line]
    assert f"{len(lines)} config error(s)" in result.stderr
    assert len(lines) >= len(EXPECTED)


def test_each_message_says_why(bad_config: Path) -> None:
    lines = error_lines(invoke("check", config=bad_config).stderr)

    def message(source_id: str, field: str) -> str:
        [line] = [x for x in lines if f"source {source_id}" in x and f"'{field}'" in x]
        return line

    assert "required" in message("sulsel-tanpa-url", "url")
    assert "not a known field" in message("sulsel-salah-ketik", "intervall")
    assert "'interval'" in message("sulsel-salah-ketik", "intervall").split("field", 2)[-1]
    assert "pemkab-gowaa" in message("gowa-berita", "agency")
    assert "pemkab-gowa'" in message("gowa-berita", "agency")  # did you mean ...
    assert "setiap 15 menit" in message("sulsel-interval", "interval")
    assert "http" in message("sulsel-url-rusak", "url")
    duplicate = message("sulsel-berita", "id")
    assert "20-medan.toml" in duplicate and "10-sulsel.toml" in duplicate  # both places named


def test_check_json_lists_every_issue(bad_config: Path) -> None:
    result = invoke("check", "--json", config=bad_config)
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    found = {(Path(e["file"]).name, e["section"], e["field"]) for e in doc["errors"]}
    for file, source_id, field in EXPECTED:
        assert (file, f"source {source_id}", field) in found, (file, source_id, field, found)


def test_every_command_refuses_a_bad_config(bad_config: Path) -> None:
    for args in (["poll", "--all"], ["publish", "--out", str(bad_config.parent / "out")],
                 ["run"], ["sources"], ["top"]):
        result = invoke(*args, config=bad_config)
        assert result.exit_code == 2, (args, result.output)
        lines = error_lines(result.stderr)
        for file, source_id, field in EXPECTED:
            assert find(lines, file, source_id, field), (args, file, source_id, field)
    # Nothing was touched: no database, no output.
    assert not (bad_config.parent.parent / "data").exists()
    assert not (bad_config.parent / "out").exists()


def test_a_good_config_checks_ok(bad_config: Path) -> None:
    """The same files with the problems fixed: exit 0 (so the errors above are not blanket)."""
    sources = bad_config.parent / "sources"
    fixed = (SULSEL.replace("# missing field\n", '\nurl = "https://sulselprov.go.id/rss"\n')
             .replace("intervall", "interval").replace("pemkab-gowaa", "pemkab-gowa")
             .replace("setiap 15 menit", "15m").replace("htps://", "https://"))
    (sources / "10-sulsel.toml").write_text(fixed, encoding="utf-8")
    medan = MEDAN.replace('id = "sulsel-berita"', 'id = "medan-rss"')
    (sources / "20-medan.toml").write_text(medan, encoding="utf-8")
    result = invoke("check", config=bad_config)
    assert result.exit_code == 0, result.output
    assert "8 sources" in result.stdout


@pytest.mark.parametrize("content, expect", [
    ("[settings\ndatabase = 1\n", "invalid TOML"),
    (None, "not found"),
])
def test_unreadable_config_names_the_file(tmp_path: Path, content: str | None,
                                          expect: str) -> None:
    path = tmp_path / "rusak.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = invoke("check", config=path)
    assert result.exit_code == 2
    assert str(path) in result.stderr and expect in result.stderr, result.stderr


def test_errors_in_the_main_file_name_it(tmp_path: Path) -> None:
    path = tmp_path / "aggregator.toml"
    path.write_text(textwrap.dedent("""\
        [settings]
        database = "data/x.db"
        base_url = "berita.example.test"
        timeout = "lama"
        """), encoding="utf-8")
    lines = error_lines(invoke("check", config=path).stderr)
    assert [x for x in lines if str(path) in x and "settings" in x and "'base_url'" in x]
    assert [x for x in lines if str(path) in x and "settings" in x and "'timeout'" in x]


def test_rank_settings_are_checked_field_by_field(tmp_path: Path) -> None:
    path = tmp_path / "aggregator.toml"
    path.write_text(textwrap.dedent("""\
        [settings.rank]
        max_per_source = 2.5
        growth_hours = 0.5
        baseline_days = "seminggu"
        growth_weight = -1
        growth_weigth = 1
        """), encoding="utf-8")
    result = invoke("check", config=path)
    assert result.exit_code == 2
    lines = error_lines(result.stderr)
    for field, why in (("max_per_source", "must be an integer, not a number"),
                       ("growth_hours", "must be at least 1, got 0.5"),
                       ("baseline_days", "must be a number, not a string"),
                       ("growth_weight", "must be at least 0, got -1"),
                       ("growth_weigth", "did you mean 'growth_weight'?")):
        assert [x for x in lines if f"field 'rank.{field}'" in x and why in x], (field, lines)
    assert len(lines) == 5
