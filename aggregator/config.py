"""Read the TOML config into frozen, validated settings, agencies, regions and sources.

Every problem is collected (not just the first) and reported with the file, the section
(source id, agency slug, ...) and the field, so `aggregator check` can list them all at once.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aggregator.errors import ConfigError, ConfigIssue
from aggregator.types import (
    HTML_FIELDS,
    UI_LANGUAGES,
    Agency,
    ArticleSpec,
    Config,
    DedupeSettings,
    FieldSpec,
    HostSettings,
    HtmlSpec,
    RankSettings,
    Region,
    RetentionSettings,
    Rule,
    ScheduleSettings,
    Settings,
    Source,
    StoryOverride,
)

SelectorCheck = Callable[[str], "str | None"]

DEFAULT_CONFIG = "config/aggregator.toml"
ZONE_ALIASES = {"WIB": "Asia/Jakarta", "WITA": "Asia/Makassar", "WIT": "Asia/Jayapura"}
MIN_INTERVAL = 60
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SOURCE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_INTERVAL_RE = re.compile(r"(\d+)\s*([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(value: object) -> int:
    """'15m', '1h30m', '90s', '2d' or a number of seconds -> seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '15m' or '1h'")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a duration such as '15m' or '1h'")
    text = value.strip().lower().replace(" ", "")
    if not text or _INTERVAL_RE.sub("", text):
        raise ValueError(f"'{value}' is not a duration; write it like '15m', '1h30m' or '90s'")
    return sum(int(n) * _UNIT[u] for n, u in _INTERVAL_RE.findall(text))


def format_interval(seconds: int) -> str:
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out) or "0s"


def url_problem(value: str) -> str | None:
    """Why a string is not an absolute http(s) URL, or None."""
    if any(c.isspace() for c in value):
        return "a URL may not contain spaces"
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host name"
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return "has an invalid port"
    return None


def resolve_zone(name: str) -> ZoneInfo:
    """A zone name (or WIB/WITA/WIT) -> ZoneInfo. Raises ValueError."""
    try:
        return ZoneInfo(ZONE_ALIASES.get(name.upper(), name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone '{name}' (use e.g. Asia/Jakarta, Asia/Makassar, "
            "Asia/Jayapura, or WIB/WITA/WIT)"
        ) from exc


class _Table:
    """Typed field access on one TOML table that records problems instead of raising."""

    def __init__(
        self, data: dict[str, Any], file: str, section: str, issues: list[ConfigIssue],
        prefix: str = "",
    ) -> None:
        self.data = data
        self.file = file
        self.section = section
        self.issues = issues
        self.prefix = prefix
        self.seen: set[str] = set()

    def problem(self, name: str, message: str) -> None:
        self.issues.append(ConfigIssue(self.file, self.section, self.prefix + name, message))

    def get(self, name: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
        self.seen.add(name)
        if name not in self.data:
            if required:
                self.problem(name, "is required")
            return None
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            names = " or ".join(_type_name(k) for k in kinds)
            self.problem(name, f"must be {names}, not {_type_name(type(value))}")
            return None
        return value

    def string(self, name: str, *, required: bool = False) -> str | None:
        value = self.get(name, str, required=required)
        if isinstance(value, str) and not value.strip():
            self.problem(name, "must not be empty")
            return None
        return value  # type: ignore[no-any-return]

    def url(self, name: str, *, required: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is None:
            return None
        why = url_problem(value)
        if why:
            self.problem(name, f"'{value}' {why}")
            return None
        return value

    def number(self, name: str, *, minimum: float, integer: bool = False,
               maximum: float | None = None) -> Any:
        value = self.get(name, int if integer else float)
        if value is not None and value < minimum:
            self.problem(name, f"must be at least {minimum}, got {value}")
            return None
        if value is not None and maximum is not None and value > maximum:
            self.problem(name, f"must be at most {maximum}, got {value}")
            return None
        return value

    def interval(self, name: str, *, required: bool = False) -> int | None:
        self.seen.add(name)
        if name not in self.data:
            if required:
                self.problem(name, "is required")
            return None
        try:
            seconds = parse_interval(self.data[name])
        except ValueError as exc:
            self.problem(name, str(exc))
            return None
        if seconds < MIN_INTERVAL:
            self.problem(name, f"must be at least {format_interval(MIN_INTERVAL)} (be polite)")
            return None
        return seconds

    def zone(self, name: str) -> str | None:
        value = self.string(name)
        if value is None:
            return None
        try:
            resolve_zone(value)
        except ValueError as exc:
            self.problem(name, str(exc))
            return None
        return value

    def finish(self) -> None:
        for name in self.data:
            if name not in self.seen:
                self.problem(name, "is not a known field" + _suggest(name, self.seen))


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            list: "a list", dict: "a table"}.get(kind, kind.__name__)


def _suggest(name: str, known: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _read_toml(path: Path, issues: list[ConfigIssue],
               texts: Mapping[Path, str] | None = None) -> dict[str, Any] | None:
    try:
        text = (texts or {}).get(path.resolve())
        if text is not None:
            return tomllib.loads(text)
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        issues.append(ConfigIssue(str(path), "file", "", "file not found"))
    except tomllib.TOMLDecodeError as exc:
        issues.append(ConfigIssue(str(path), "file", "", f"invalid TOML: {exc}"))
    except OSError as exc:
        issues.append(ConfigIssue(str(path), "file", "", f"cannot read: {exc.strerror}"))
    return None


def _settings(raw: Any, file: str, issues: list[ConfigIssue]) -> Settings:
    if raw is None:
        return Settings()
    if not isinstance(raw, dict):
        issues.append(ConfigIssue(file, "settings", "", "must be a table ([settings])"))
        return Settings()
    t = _Table(raw, file, "settings", issues)
    values: dict[str, Any] = {}
    for name in ("database", "title", "description", "language", "output_dir", "listen_host"):
        values[name] = t.string(name)
    values["base_url"] = t.url("base_url")
    values["ui_language"] = _ui_language(t)
    values["websub_hub"] = t.url("websub_hub")
    values["contact_url"] = _contact(t)
    values["timezone"] = t.zone("timezone")
    values["default_interval"] = t.interval("default_interval")
    values["timeout"] = t.number("timeout", minimum=0.1)
    values["max_body_bytes"] = t.number("max_body_bytes", minimum=1024, integer=True)
    values["max_redirects"] = t.number("max_redirects", minimum=0, integer=True)
    values["concurrency"] = t.number("concurrency", minimum=1, integer=True)
    values["per_host_concurrency"] = t.number("per_host_concurrency", minimum=1, integer=True)
    values["feed_size"] = t.number("feed_size", minimum=1, integer=True)
    values["listen_port"] = t.number("listen_port", minimum=0, maximum=65535, integer=True)
    values["parse_workers"] = t.number("parse_workers", minimum=0, integer=True)
    include = t.get("include", (list, str))
    if isinstance(include, str):
        include = [include]
    if include is not None:
        if not all(isinstance(p, str) for p in include):
            t.problem("include", "must be a list of file names or glob patterns")
        else:
            values["include"] = tuple(include)
    rank_raw = t.get("rank", dict)
    if rank_raw is not None:
        r = _Table(rank_raw, file, "settings", issues, prefix="rank.")
        rank_vals = {
            "half_life_hours": r.number("half_life_hours", minimum=0.1),
            "views_weight": r.number("views_weight", minimum=0),
            "growth_weight": r.number("growth_weight", minimum=0),
            "candidates": r.number("candidates", minimum=1, integer=True),
            "baseline_days": r.number("baseline_days", minimum=1),
            "growth_hours": r.number("growth_hours", minimum=1),
            "max_per_source": r.number("max_per_source", minimum=1, integer=True),
        }
        r.finish()
        values["rank"] = RankSettings(**{k: v for k, v in rank_vals.items() if v is not None})
    dedupe_raw = t.get("dedupe", dict)
    if dedupe_raw is not None:
        values["dedupe"] = _dedupe_settings(_Table(dedupe_raw, file, "settings", issues,
                                                   prefix="dedupe."))
    schedule_raw = t.get("schedule", dict)
    if schedule_raw is not None:
        values["schedule"] = _schedule_settings(_Table(schedule_raw, file, "settings", issues,
                                                       prefix="schedule."))
    values["log_format"] = t.string("log_format")
    if values["log_format"] is not None and values["log_format"] not in LOG_FORMATS:
        t.problem("log_format", f"'{values['log_format']}' must be one of: "
                                f"{', '.join(LOG_FORMATS)}")
        values["log_format"] = None
    retention_raw = t.get("retention", dict)
    if retention_raw is not None:
        values["retention"] = _retention_settings(
            _Table(retention_raw, file, "settings", issues, prefix="retention."))
    values["admin_token"] = _admin_token(t)
    t.finish()
    if values.get("base_url"):
        values["base_url"] = values["base_url"].rstrip("/")
    return Settings(**{k: v for k, v in values.items() if v is not None})


LOG_FORMATS = ("text", "json")


def _schedule_settings(t: _Table) -> ScheduleSettings:
    """[settings.schedule]: bounds of every next poll, backoff, broken, per-host politeness."""
    vals: dict[str, Any] = {
        "min_interval": t.interval("min_interval"),
        "max_interval": t.interval("max_interval"),
        "backoff_cap": t.interval("backoff_cap"),
        "broken_after": t.number("broken_after", minimum=1, integer=True),
        "host_spacing": t.number("host_spacing", minimum=0, maximum=3600),
        "max_host_spacing": t.number("max_host_spacing", minimum=1, maximum=3600),
        "shutdown_grace": t.number("shutdown_grace", minimum=0, maximum=600),
    }
    low = vals["min_interval"] or ScheduleSettings.min_interval
    high = vals["max_interval"] or ScheduleSettings.max_interval
    if (vals["min_interval"] or vals["max_interval"]) and low > high:
        t.problem("max_interval" if vals["max_interval"] else "min_interval",
                  f"max_interval ({format_interval(high)}) must not be below min_interval "
                  f"({format_interval(low)})")
    hosts_raw = t.get("hosts", dict)
    if hosts_raw is not None:
        hosts: dict[str, HostSettings] = {}
        for name, raw in hosts_raw.items():
            host = name.strip().lower()
            if not host or "/" in host or ":" in host or " " in host:
                t.problem(f"hosts.{name}", "must be a host name such as 'jatengprov.go.id' "
                                           "(no scheme, port or path)")
                continue
            if not isinstance(raw, dict):
                t.problem(f"hosts.{name}", "must be a table with concurrency and/or spacing")
                continue
            h = _Table(raw, t.file, t.section, t.issues, prefix=f"{t.prefix}hosts.{name}.")
            hosts[host] = HostSettings(
                concurrency=h.number("concurrency", minimum=1, integer=True),
                spacing=h.number("spacing", minimum=0, maximum=3600))
            h.finish()
        vals["hosts"] = hosts
    t.finish()
    return ScheduleSettings(**{k: v for k, v in vals.items() if v is not None})


def _dedupe_settings(d: _Table) -> DedupeSettings:
    vals: dict[str, Any] = {
        "window_hours": d.number("window_hours", minimum=1),
        "title_window_hours": d.number("title_window_hours", minimum=1),
        "prefer_lead": _strings(d, "prefer_lead") or None,
    }
    for name in ("strong_text_similarity", "text_similarity", "text_similarity_with_title",
                 "title_similarity", "title_only_similarity", "title_cover"):
        vals[name] = d.number(name, minimum=0, maximum=1)
    d.finish()
    return DedupeSettings(**{k: v for k, v in vals.items() if v is not None})


def _retention_settings(r: _Table) -> RetentionSettings:
    vals: dict[str, Any] = {
        "feed_max_age": r.interval("feed_max_age"),
        "prune_after": r.interval("prune_after"),
        "samples_raw_hours": r.number("samples_raw_hours", minimum=1),
        "samples_hourly_days": r.number("samples_hourly_days", minimum=1),
        "fetches_per_source": r.number("fetches_per_source", minimum=20, integer=True),
    }
    prune = vals["prune_after"]
    if prune is not None and prune < 7 * 86400:
        r.problem("prune_after", "must be at least 7d (items are compared with those of the "
                  "last days to find duplicates)")
        vals["prune_after"] = None
    r.finish()
    return RetentionSettings(**{k: v for k, v in vals.items() if v is not None})


def _admin_token(t: _Table) -> str | None:
    """`admin_token`: a secret of at least 16 characters (env AGGREGATOR_ADMIN_TOKEN wins)."""
    value = t.string("admin_token")
    if value is not None and len(value.strip()) < 16:
        t.problem("admin_token", "must be at least 16 characters (e.g. the output of "
                  "`python -c 'import secrets; print(secrets.token_urlsafe())'`)")
        return None
    return value.strip() if value is not None else None


ENV_OVERRIDES = {
    "AGGREGATOR_DATABASE": "database",
    "AGGREGATOR_BASE_URL": "base_url",
    "AGGREGATOR_OUTPUT_DIR": "output_dir",
    "AGGREGATOR_ADMIN_TOKEN": "admin_token",
}


def _env_overrides(settings: Settings, file: str, issues: list[ConfigIssue]) -> Settings:
    """Deployment overrides (Docker, systemd): env AGGREGATOR_DATABASE, AGGREGATOR_BASE_URL,
    AGGREGATOR_OUTPUT_DIR take precedence over [settings]."""
    changes: dict[str, Any] = {}
    for env, name in ENV_OVERRIDES.items():
        value = os.environ.get(env, "").strip()
        if not value:
            continue
        if name == "base_url":
            why = url_problem(value)
            if why:
                issues.append(ConfigIssue(f"env {env}", "settings", name, f"'{value}' {why}"))
                continue
            value = value.rstrip("/")
        changes[name] = value
    return replace(settings, **changes) if changes else settings


def _ui_language(t: _Table) -> str | None:
    """The language of our own labels (index page, status page, feed titles): id or en."""
    value = t.string("ui_language")
    if value is not None and value not in UI_LANGUAGES:
        t.problem("ui_language", f"'{value}' must be one of: {', '.join(UI_LANGUAGES)}")
        return None
    return value


def _contact(t: _Table) -> str | None:
    """Where site owners can reach the operator: an http(s) URL or a mailto: address."""
    value = t.string("contact_url")
    if value is None:
        return None
    if value.startswith("mailto:") and "@" in value and " " not in value:
        return value
    why = url_problem(value)
    if why:
        t.problem("contact_url", f"'{value}' {why} (or write mailto:someone@example.go.id)")
        return None
    return value


def _array(doc: dict[str, Any], key: str, file: str, issues: list[ConfigIssue]) -> list[Any]:
    raw = doc.get(key, [])
    if not isinstance(raw, list):
        issues.append(ConfigIssue(file, key, "", f"must be an array of tables ([[{key}]])"))
        return []
    return raw


def load_config(path: str | os.PathLike[str] | None = None,
                selector_check: SelectorCheck | None = None,
                texts: Mapping[Path, str] | None = None) -> Config:
    """Load and validate the config; raises ConfigError listing every problem.
    `selector_check` (from the HTML parser) says why a CSS selector cannot be used.
    `texts` (resolved path -> TOML text) stands in for those files as they would be after
    an edit, so that `aggregator sources add/enable/...` validate before they write."""
    main = Path(path or os.environ.get("AGGREGATOR_CONFIG") or DEFAULT_CONFIG)
    issues: list[ConfigIssue] = []
    texts = {Path(k).resolve(): v for k, v in (texts or {}).items()}
    doc = _read_toml(main, issues, texts)
    if doc is None:
        raise ConfigError(issues)
    settings = _settings(doc.get("settings"), str(main), issues)
    settings = _env_overrides(settings, str(main), issues)

    documents: list[tuple[str, dict[str, Any]]] = [(str(main), doc)]
    read = {main.resolve()}
    for pattern in settings.include:
        full = pattern if os.path.isabs(pattern) else str(main.parent / pattern)
        matches = [m for m in sorted(glob.glob(full, recursive=True)) if os.path.isfile(m)]
        matches += sorted(str(p) for p in texts if not p.exists()  # a file an edit creates
                          and fnmatch.fnmatch(str(p), str(Path(full).resolve())))
        if not matches and not glob.has_magic(pattern):
            issues.append(ConfigIssue(str(main), "settings", "include",
                                      f"included file '{pattern}' does not exist"))
        for match in matches:
            if Path(match).resolve() in read:
                continue  # matched by an earlier pattern too
            read.add(Path(match).resolve())
            sub = _read_toml(Path(match), issues, texts)
            if sub is None:
                continue
            if "settings" in sub:
                issues.append(ConfigIssue(match, "settings", "",
                                          "only the main config file may have [settings]"))
            documents.append((match, sub))

    known_top = {"settings", "agency", "region", "source", "rule", "scraper", "merge", "split"}
    regions: dict[str, Region] = {}
    agencies: dict[str, Agency] = {}
    raw_sources: list[tuple[str, dict[str, Any]]] = []
    raw_rules: list[tuple[str, Any]] = []
    scrapers: dict[str, HtmlSpec | None] = {}
    overrides: list[StoryOverride] = []
    for file, d in documents:
        for key in d:
            if key not in known_top:
                issues.append(ConfigIssue(file, key, "", "is not a known section"
                                          + _suggest(key, known_top)))
        for i, raw in enumerate(_array(d, "region", file, issues)):
            region = _region(raw, file, i, issues)
            if region is None:
                continue
            if region.slug in regions:
                issues.append(ConfigIssue(file, f"region {region.slug}", "slug",
                                          "is defined twice"))
            regions[region.slug] = region
        for i, raw in enumerate(_array(d, "agency", file, issues)):
            agency = _agency(raw, file, i, issues)
            if agency is None:
                continue
            if agency.slug in agencies:
                issues.append(ConfigIssue(file, f"agency {agency.slug}", "slug",
                                          "is defined twice"))
            agencies[agency.slug] = agency
        raw_sources.extend((file, raw) for raw in _array(d, "source", file, issues))
        raw_rules.extend((file, raw) for raw in _array(d, "rule", file, issues))
        for action in ("merge", "split"):
            for i, raw in enumerate(_array(d, action, file, issues)):
                override = _override(action, raw, file, i, issues)
                if override is not None:
                    overrides.append(override)
        scraper_tables = d.get("scraper", {})
        if not isinstance(scraper_tables, dict):
            issues.append(ConfigIssue(file, "scraper", "", "must be tables [scraper.NAME]"))
            scraper_tables = {}
        for name, table in scraper_tables.items():
            if name in scrapers:
                issues.append(ConfigIssue(file, f"scraper {name}", "", "is defined twice"))
            elif not isinstance(table, dict):
                issues.append(ConfigIssue(file, f"scraper {name}", "", "must be a table"))
                scrapers[name] = None
            else:
                scrapers[name] = _html_spec(_Table(table, file, f"scraper {name}", issues),
                                            selector_check)

    for slug in settings.dedupe.prefer_lead:
        if slug not in agencies:
            issues.append(ConfigIssue(str(main), "settings", "dedupe.prefer_lead",
                                      f"'{slug}' is not a defined [[agency]] slug"
                                      + _suggest(slug, set(agencies))))
    for agency in agencies.values():
        if agency.region not in regions:
            regions[agency.region] = Region(agency.region, _title_from_slug(agency.region))

    sources: list[Source] = []
    seen_ids: dict[str, str] = {}
    for i, (file, raw) in enumerate(raw_sources):
        source = _source(raw, file, i, settings, agencies, issues, selector_check, scrapers)
        if source is None:
            continue
        if source.id in seen_ids:
            issues.append(ConfigIssue(file, f"source {source.id}", "id",
                                      f"duplicate source id (first defined in "
                                      f"{seen_ids[source.id]})"))
            continue
        seen_ids[source.id] = file
        sources.append(source)

    declared = {raw["id"] for _, raw in raw_sources
                if isinstance(raw, dict) and isinstance(raw.get("id"), str)}
    rules: list[Rule] = []
    per_file: Counter[str] = Counter()
    for file, raw in raw_rules:
        per_file[file] += 1  # "rule #2" is the second [[rule]] of that file
        rule = _rule(raw, file, per_file[file] - 1, agencies, declared, issues)
        if rule is not None:
            rules.append(rule)
    if issues:
        raise ConfigError(issues)
    return Config(settings, agencies, regions, tuple(sources),
                  tuple(f for f, _ in documents), tuple(rules), tuple(overrides))


def _title_from_slug(slug: str) -> str:
    return " ".join(w.capitalize() for w in slug.split("-"))


def _not_table(raw: Any, file: str, kind: str, index: int, issues: list[ConfigIssue]) -> bool:
    if isinstance(raw, dict):
        return False
    issues.append(ConfigIssue(file, f"{kind} #{index + 1}", "", "must be a table"))
    return True


def _slug(t: _Table, name: str) -> str | None:
    value = t.string(name, required=True)
    if value is not None and not SLUG_RE.match(value):
        t.problem(name, f"'{value}' must be lower-case letters, digits and single hyphens "
                        "(it becomes part of feed URLs)")
        return None
    return value


def _region(raw: Any, file: str, index: int, issues: list[ConfigIssue]) -> Region | None:
    if _not_table(raw, file, "region", index, issues):
        return None
    label = raw.get("slug") if isinstance(raw.get("slug"), str) else f"#{index + 1}"
    t = _Table(raw, file, f"region {label}", issues)
    slug = _slug(t, "slug")
    name = t.string("name", required=True)
    t.finish()
    if slug is None or name is None:
        return None
    return Region(slug, name)


def _agency(raw: Any, file: str, index: int, issues: list[ConfigIssue]) -> Agency | None:
    if _not_table(raw, file, "agency", index, issues):
        return None
    label = raw.get("slug") if isinstance(raw.get("slug"), str) else f"#{index + 1}"
    t = _Table(raw, file, f"agency {label}", issues)
    slug = _slug(t, "slug")
    name = t.string("name", required=True)
    region = t.string("region", required=True)
    if region is not None and not SLUG_RE.match(region):
        t.problem("region", f"'{region}' must be a slug like 'jakarta-pusat'")
        region = None
    url = t.url("url")
    t.finish()
    if slug is None or name is None or region is None:
        return None
    return Agency(slug, name, region, url)


SOURCE_KINDS = ("feed", "html")


def _source(
    raw: Any, file: str, index: int, settings: Settings, agencies: dict[str, Agency],
    issues: list[ConfigIssue], selector_check: SelectorCheck | None = None,
    scrapers: dict[str, HtmlSpec | None] | None = None,
) -> Source | None:
    scrapers = scrapers or {}
    if _not_table(raw, file, "source", index, issues):
        return None
    label = raw.get("id") if isinstance(raw.get("id"), str) else f"#{index + 1}"
    t = _Table(raw, file, f"source {label}", issues)
    before = len(issues)
    sid = t.string("id", required=True)
    if sid is not None and not SOURCE_ID_RE.match(sid):
        t.problem("id", f"'{sid}' must be lower-case letters, digits, '.', '_' or '-'")
    kind = t.string("kind", required=True)
    if kind is not None and kind not in SOURCE_KINDS:
        t.problem("kind", f"'{kind}' must be one of: {', '.join(SOURCE_KINDS)}")
    url = t.url("url", required=True)
    agency = t.string("agency", required=True)
    if agency is not None and agency not in agencies:
        t.problem("agency", f"'{agency}' is not a defined [[agency]] slug"
                  + _suggest(agency, set(agencies)))
    interval = t.interval("interval")
    min_interval = t.interval("min_interval")
    max_interval = t.interval("max_interval")
    adaptive = t.get("adaptive", bool)
    every = interval or settings.default_interval
    if min_interval is not None and min_interval > every:
        t.problem("min_interval", f"{format_interval(min_interval)} is above the source's "
                                  f"interval ({format_interval(every)})")
    if max_interval is not None and max_interval < every:
        t.problem("max_interval", f"{format_interval(max_interval)} is below the source's "
                                  f"interval ({format_interval(every)})")
    name = t.string("name")
    zone = t.zone("timezone")
    enabled = t.get("enabled", bool)
    views_field = t.string("views_field")
    html = None
    scraper = t.string("scraper")
    if kind == "html" and "html" not in raw and scraper is None:
        t.problem("html", "an html source needs a [source.html] table of selectors "
                          "or scraper = \"NAME\" naming a [scraper.NAME] table")
    elif kind == "feed" and ("html" in raw or scraper is not None):
        t.problem("html" if "html" in raw else "scraper",
                  "only sources of kind = \"html\" take selectors")
    elif "html" in raw and scraper is not None:
        t.problem("scraper", "give either scraper or a [source.html] table, not both")
    html_raw = t.get("html", dict)
    if html_raw is not None and kind == "html":
        html = _html_spec(_Table(html_raw, file, t.section, issues, prefix="html."),
                          selector_check)
    elif scraper is not None and kind == "html":
        if scraper not in scrapers:
            t.problem("scraper", f"'{scraper}' is not a defined [scraper.NAME] table"
                      + _suggest(scraper, set(scrapers)))
        else:
            html = scrapers[scraper]
            if html is None:  # its own errors are reported once, under "scraper NAME"
                return None
    if kind == "html" and views_field:
        t.problem("views_field", "is for feed sources; an html source names a 'views' selector")
    t.finish()
    if len(issues) > before:
        return None
    assert sid is not None and kind is not None and url is not None and agency is not None
    return Source(
        id=sid,
        kind=kind,  # type: ignore[arg-type]
        url=url,
        agency=agency,
        interval=interval or settings.default_interval,
        name=name or "",
        timezone=zone,
        enabled=True if enabled is None else enabled,
        views_field=views_field,
        html=html,
        file=file,
        min_interval=min_interval,
        max_interval=max_interval,
        adaptive=True if adaptive is None else adaptive,
    )


_FIELD_STRING = re.compile(r"^(.*?)(?:^|\s)@([A-Za-z_:][\w:.-]*)\s*$")
_HTML_KEYS = {"item", "container", "ignore", "id", "id_scope", "date_format", "language",
              "next_page", "page_template", "first_page", "max_pages", "article", *HTML_FIELDS}


def _field(t: _Table, name: str, selector_check: SelectorCheck | None,
           *, required: bool = False) -> FieldSpec | None:
    """A field spec: "css", "css @attr", "@attr", or {css, attr, regex, all}."""
    raw = t.get(name, (str, dict), required=required)
    if raw is None:
        return None
    if isinstance(raw, str):
        match = _FIELD_STRING.match(raw)
        css, attr = (match.group(1).strip(), match.group(2)) if match else (raw.strip(), "text")
        spec = FieldSpec(css=css, attr=attr)
        if not css and not match:
            t.problem(name, "is empty; write a CSS selector such as 'h2 a' or 'h2 a @href'")
            return None
    else:
        sub = _Table(raw, t.file, t.section, t.issues, prefix=f"{t.prefix}{name}.")
        css = sub.get("css", str) or ""
        attr = sub.get("attr", str) or "text"
        regex = sub.get("regex", str)
        every = sub.get("all", bool) or False
        sub.finish()
        spec = FieldSpec(css=css.strip(), attr=attr.removeprefix("@"), regex=regex, all=every)
        if regex is not None:
            try:
                re.compile(regex)
            except re.error as exc:
                t.problem(name, f"regex '{regex}' does not compile: {exc}")
                return None
    if spec.css and selector_check is not None:
        why = selector_check(spec.css)
        if why:
            t.problem(name, why)
            return None
    return spec


def _selector(t: _Table, name: str, selector_check: SelectorCheck | None,
              *, required: bool = False) -> str:
    value = t.string(name, required=required)
    if value is None:
        return ""
    if selector_check is not None:
        why = selector_check(value)
        if why:
            t.problem(name, why)
            return ""
    return value


def _html_spec(t: _Table, selector_check: SelectorCheck | None) -> HtmlSpec | None:
    before = len(t.issues)
    item = _selector(t, "item", selector_check, required=True)
    container = _selector(t, "container", selector_check)
    ignore = _selector(t, "ignore", selector_check)
    fields: dict[str, FieldSpec] = {}
    for name in HTML_FIELDS:
        spec = _field(t, name, selector_check, required=name in ("title", "link"))
        if spec is not None:
            fields[name] = spec
    item_id = _field(t, "id", selector_check)
    id_scope = t.string("id_scope") or ""
    if id_scope and not SOURCE_ID_RE.match(id_scope):
        t.problem("id_scope", f"'{id_scope}' must be lower-case letters, digits, '.', '_', '-'")
    date_format = t.string("date_format") or ""
    if date_format and "%" not in date_format:
        t.problem("date_format", f"'{date_format}' is not a strptime format (e.g. '%d-%m-%Y')")
    language = t.string("language") or "id"
    if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z]{2})?", language):
        t.problem("language", f"'{language}' is not a language tag such as 'id', 'en' or 'en-US'")
    next_page = _field(t, "next_page", selector_check)
    template = t.string("page_template") or ""
    if template and "{page}" not in template:
        t.problem("page_template", "must contain {page}, e.g. 'https://x.go.id/berita?page={page}'")
    elif template and url_problem(template.replace("{page}", "1")):
        t.problem("page_template", f"'{template}' {url_problem(template.replace('{page}', '1'))}")
    first_page = t.number("first_page", minimum=0, integer=True)
    max_pages = t.number("max_pages", minimum=1, integer=True)
    if max_pages is not None and max_pages > 20:
        t.problem("max_pages", "must be at most 20 (be polite)")
    if next_page is not None and template:
        t.problem("page_template", "give either next_page or page_template, not both")
    article = None
    article_raw = t.get("article", dict)
    if article_raw is not None:
        a = _Table(article_raw, t.file, t.section, t.issues, prefix=f"{t.prefix}article.")
        article_fields = {}
        for name in HTML_FIELDS:
            spec = _field(a, name, selector_check)
            if spec is not None:
                article_fields[name] = spec
        root = _selector(a, "root", selector_check)
        cap = a.number("max_per_poll", minimum=0, integer=True)
        a.finish()
        if not article_fields:
            a.problem("", "names no field to fetch from article pages")
        article = ArticleSpec(article_fields, 10 if cap is None else cap, root)
    t.finish()
    if len(t.issues) > before:
        return None
    return HtmlSpec(item=item, fields=fields, container=container, id=item_id,
                    id_scope=id_scope, ignore=ignore, date_format=date_format,
                    language=language, next_page=next_page, page_template=template,
                    first_page=1 if first_page is None else first_page,
                    max_pages=max_pages or (1 if next_page is None and not template else 3),
                    article=article)


def _strings(t: _Table, name: str) -> tuple[str, ...]:
    value = t.get(name, (list, str))
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    if not all(isinstance(v, str) and v.strip() for v in values):
        t.problem(name, "must be a string or a list of non-empty strings")
        return ()
    return tuple(v.strip() for v in values)


def _rule(raw: Any, file: str, index: int, agencies: dict[str, Agency],
          source_ids: set[str], issues: list[ConfigIssue]) -> Rule | None:
    if _not_table(raw, file, "rule", index, issues):
        return None
    t = _Table(raw, file, f"rule #{index + 1}", issues)
    before = len(issues)
    agency = t.string("agency", required=True)
    if agency is not None and agency not in agencies:
        t.problem("agency", f"'{agency}' is not a defined [[agency]] slug"
                  + _suggest(agency, set(agencies)))
    globs = _strings(t, "sources")
    for pattern in globs:
        if not any(fnmatch.fnmatchcase(sid, pattern) for sid in source_ids):
            t.problem("sources", f"'{pattern}' matches no source id")
    title = _strings(t, "title")
    category = _strings(t, "category")
    url = _strings(t, "url")
    if not (globs or title or category or url):
        t.problem("", "a rule needs at least one condition: sources, title, category or url")
    t.finish()
    if len(issues) > before or agency is None:
        return None
    return Rule(agency, globs, title, category, url, file)


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _override(action: str, raw: Any, file: str, index: int,
              issues: list[ConfigIssue]) -> StoryOverride | None:
    """[[merge]] / [[split]]: an admin's decision about which items are one story."""
    if _not_table(raw, file, action, index, issues):
        return None
    t = _Table(raw, file, f"{action} #{index + 1}", issues)
    before = len(issues)
    items = _strings(t, "items")
    if len(items) < 2:
        t.problem("items", "needs at least two items (links or item ids)")
    for ref in items:
        if not _UUID.match(ref) and url_problem(ref) is not None:
            t.problem("items", f"'{ref}' is neither an item id (a UUID, as `aggregator stories "
                      "show` prints it) nor an absolute http(s) link")
    note = t.string("note") or ""
    t.finish()
    if len(issues) > before:
        return None
    return StoryOverride(action, items, note, file)  # type: ignore[arg-type]


def config_warnings(config: Config) -> list[str]:
    """Things that are valid but probably not what the admin wants."""
    out: list[str] = []
    contact = config.settings.contact_url
    if "example.invalid" in contact or "change-me" in contact.lower():
        out.append(f"settings.contact_url is still the placeholder '{contact}': site owners "
                   "read it in our User-Agent, so put a real page or mailto: address there")
    used = {a.region for a in config.agencies.values()}
    for region in config.regions.values():
        if region.slug not in used:
            out.append(f"region {region.slug} has no agency; it gets no feed")
    for agency in config.agencies.values():
        if not any(s.agency == agency.slug for s in config.sources) and \
                not any(r.agency == agency.slug for r in config.rules):
            out.append(f"agency {agency.slug} has no source and no rule; its feed stays empty")
    for source in config.sources:
        if not source.enabled:
            out.append(f"source {source.id} is disabled")
    return out
