"""The docs cover what the code accepts: every config field in config/README.md, every CLI
command (with an example) in the README and in its own --help."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click
from click.testing import CliRunner

from aggregator import config as config_module
from aggregator.cli import cli
from aggregator.types import (
    HTML_FIELDS,
    DedupeSettings,
    HostSettings,
    RankSettings,
    RetentionSettings,
    ScheduleSettings,
    Settings,
)

ROOT = Path(__file__).resolve().parent.parent
_FIELD_CALL = re.compile(
    r"\b(?:string|get|url|number|interval|zone|_field|_selector|_strings|_slug)\("
    r"(?:[a-z]+, )?\"(\w+)\"")


def config_fields() -> set[str]:
    source = Path(config_module.__file__).read_text(encoding="utf-8")
    names = set(_FIELD_CALL.findall(source))
    names |= {"css", "attr", "regex", "all", "contact_url", "include", "rank"}
    names |= set(HTML_FIELDS)
    names |= {f.name for f in dataclasses.fields(Settings)}
    names |= {f.name for f in dataclasses.fields(RankSettings)}
    names |= {f.name for f in dataclasses.fields(DedupeSettings)} | {"merge", "split"}
    names |= {f.name for f in dataclasses.fields(RetentionSettings)}
    return names


def test_field_extraction_finds_the_known_fields() -> None:
    fields = config_fields()
    for name in ("database", "base_url", "timezone", "include", "slug", "region", "kind",
                 "interval", "item", "id_scope", "max_per_poll", "page_template", "sources",
                 "half_life_hours", "scraper", "views_field"):
        assert name in fields, name


def test_config_readme_documents_every_field() -> None:
    doc = (ROOT / "config" / "README.md").read_text(encoding="utf-8")
    missing = sorted(f for f in config_fields() if f"`{f}`" not in doc)
    assert not missing, f"config/README.md does not document: {missing}"


def commands() -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name, command in cli.commands.items():  # type: ignore[attr-defined]
        out.append((name, command))
        if isinstance(command, click.Group):
            out.extend((f"{name} {sub}", c) for sub, c in command.commands.items())
    return out


def test_readme_lists_every_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, _ in commands():
        top = name.split()[0]
        assert f"`aggregator {top}" in readme, f"README does not show `aggregator {top}`"


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    for name, _ in commands():
        result = runner.invoke(cli, [*name.split(), "--help"])
        assert result.exit_code == 0, name
        assert "Example" in result.output, f"`aggregator {name} --help` has no example"


def test_every_setting_can_be_set_in_the_config(tmp_path: Path) -> None:
    """Each Settings field is a [settings] key the config reader accepts (none is forgotten)."""
    from aggregator.config import load_config

    values = {"database": '"x.db"', "base_url": '"https://agregator.go.id"',
              "timezone": '"WITA"', "title": '"T"', "description": '"D"', "language": '"id"',
              "contact_url": '"mailto:humas@jakarta.go.id"', "default_interval": '"1h"',
              "timeout": "5", "max_body_bytes": "4096", "max_redirects": "3",
              "concurrency": "8", "per_host_concurrency": "1", "feed_size": "10",
              "output_dir": '"out"', "listen_host": '"0.0.0.0"', "listen_port": "9000",
              "parse_workers": "1", "include": "[]", "ui_language": '"en"',
              "websub_hub": '"https://hub.example.test/"', "log_format": '"json"',
              "admin_token": '"a-long-enough-admin-secret"'}
    names = {f.name for f in dataclasses.fields(Settings)} - {"rank", "dedupe", "schedule",
                                                             "retention"}
    assert names == set(values), "a Settings field is missing from this test"
    body = "[settings]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
    rank = {"half_life_hours": "12", "views_weight": "2", "growth_weight": "3",
            "candidates": "50", "baseline_days": "14", "growth_hours": "6",
            "max_per_source": "4"}
    assert {f.name for f in dataclasses.fields(RankSettings)} == set(rank)
    body += "[settings.rank]\n" + "".join(f"{k} = {v}\n" for k, v in rank.items())
    dedupe = {"window_hours": "72", "title_window_hours": "24", "prefer_lead": '["dinkes"]',
              "strong_text_similarity": "0.6", "text_similarity": "0.4",
              "text_similarity_with_title": "0.3", "title_similarity": "0.55",
              "title_only_similarity": "0.7", "title_cover": "0.9"}
    assert {f.name for f in dataclasses.fields(DedupeSettings)} == set(dedupe)
    body += "[settings.dedupe]\n" + "".join(f"{k} = {v}\n" for k, v in dedupe.items())
    schedule = {"min_interval": '"10m"', "max_interval": '"12h"', "backoff_cap": '"3h"',
                "broken_after": "3", "host_spacing": "0.5", "max_host_spacing": "30",
                "shutdown_grace": "2"}
    assert {f.name for f in dataclasses.fields(ScheduleSettings)} - {"hosts"} == set(schedule)
    body += "[settings.schedule]\n" + "".join(f"{k} = {v}\n" for k, v in schedule.items())
    body += '[settings.schedule.hosts."jatengprov.go.id"]\nconcurrency = 1\nspacing = 2\n'
    retention = {"feed_max_age": '"30d"', "prune_after": '"400d"',
                 "samples_raw_hours": "36", "samples_hourly_days": "10",
                 "fetches_per_source": "50"}
    assert {f.name for f in dataclasses.fields(RetentionSettings)} == set(retention)
    body += "[settings.retention]\n" + "".join(f"{k} = {v}\n" for k, v in retention.items())
    body += '[[agency]]\nslug = "dinkes"\nname = "Dinkes"\nregion = "dki"\n'
    (tmp_path / "a.toml").write_text(body)
    settings = load_config(str(tmp_path / "a.toml")).settings
    assert settings.dedupe == DedupeSettings(72, 24, ("dinkes",), 0.6, 0.4, 0.3, 0.55, 0.7, 0.9)
    assert (settings.timeout, settings.listen_port, settings.rank.candidates) == (5, 9000, 50)
    assert settings.rank == RankSettings(12, 2, 3, 50, 14, 6, 4)
    assert settings.retention == RetentionSettings(30 * 86400, 400 * 86400, 36, 10, 50)
    assert settings.admin_token == "a-long-enough-admin-secret"
    assert settings.default_interval == 3600 and settings.timezone == "WITA"
    assert (settings.ui_language, settings.websub_hub) == ("en", "https://hub.example.test/")
    assert settings.log_format == "json"
    assert settings.schedule == ScheduleSettings(600, 43200, 10800, 3, 0.5, 30, 2, {
        "jatengprov.go.id": HostSettings(1, 2)})
