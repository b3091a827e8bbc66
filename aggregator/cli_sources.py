"""`aggregator sources ...`: source health, and the admin's edits of the source list
(enable, disable, add by URL with feed discovery, OPML import and export).

Every edit keeps the config files' comments and formatting (aggregator/config_edit.py), is
validated as `aggregator check` validates before anything is written, and is written
atomically; a running `aggregator serve` picks it up by itself (README, "Editing the config
while it runs").
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from aggregator.cli_common import EXIT_USAGE, _dumps, _errors, _fail, _open
from aggregator.config import format_interval
from aggregator.config_edit import (
    EditError,
    append_entries,
    appended_sources,
    propose_id,
    read_text,
    set_enabled,
    source_entry,
    write_atomic,
)
from aggregator.core import read_config, utcnow
from aggregator.errors import ConfigError, FetchError, ParseError
from aggregator.normalize.urls import canonical_url
from aggregator.types import Config


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def sources(ctx: click.Context, as_json: bool) -> None:
    """Health of each source, and edits of the source list.

    Without a subcommand: `sources list`. The edits (enable, disable, add, import-opml)
    keep every comment of the config files, are checked as `aggregator check` checks before
    anything is written, and are picked up by a running `aggregator serve` within seconds.

    \b
    Examples:
      aggregator sources
      aggregator sources show setkab-berita --json
      aggregator sources add https://diskominfo.jatengprov.go.id/ --agency diskominfo-jateng
    """
    ctx.obj["json"] = as_json
    if ctx.invoked_subcommand is None:
        ctx.invoke(sources_list, as_json=as_json)


# --- health ---------------------------------------------------------------------------------


def _when(value: str | None) -> str:
    """A stored time, shorter: 2026-11-27 01:23:45Z."""
    if not value:
        return "-"
    return value[:19].replace("T", " ") + "Z"


def _per_day(row: dict[str, Any]) -> str | None:
    value = row.get("new_per_day")
    return None if value is None else f"{value:.1f}/day"


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def sources_list(ctx: click.Context, as_json: bool) -> None:
    """One line per source: state (ok, failing, broken, disabled, drifting, new, not in
    config), items, new items per day, interval, last success, next poll, and the last error
    with its time. Sources removed from the config whose items are still stored come last.

    \b
    Example:
      aggregator sources list --json
    """
    agg = _open(ctx)
    rows = sorted(agg.source_status(), key=lambda r: not r["in_config"])
    if as_json or ctx.obj.get("json"):
        click.echo(_dumps(rows))
        return
    width = max((len(r["id"]) for r in rows), default=6)
    for r in rows:
        per_day = _per_day(r)
        polled = r["in_config"] and r["state"] != "disabled"
        line = (f"{r['id']:<{width}}  {r['state']:<13} items={r['item_count']:<5} "
                + (f"{per_day:<10} " if per_day else "")
                + f"every {format_interval(r['interval']):<6} "
                f"last ok {_when(r['last_success_at'])}  "
                f"next {_when(r['next_due_at']) if polled else '-'}")
        if r["failures"] and r["last_error"]:
            line += (f"  error at {_when(r.get('last_error_at'))}: {r['last_error']} "
                     f"({r['failures']}x)")
        elif r["state"] == "drifting":
            line += "  " + "; ".join(w for w in r["warnings"] if w.startswith("drift:"))
        click.echo(line)
    if not rows:
        click.echo("no sources yet: add one with `aggregator sources add URL`")


@sources.command("show")
@click.argument("source_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def sources_show(ctx: click.Context, source_id: str, as_json: bool) -> None:
    """Everything about one source, with its last 20 fetches.

    \b
    Example:
      aggregator sources show setkab-berita
    """
    agg = _open(ctx)
    with _errors():
        row = agg.source_detail(source_id)
    source = agg.config.source(source_id)
    row["file"] = source.file if source else None
    if as_json or ctx.obj.get("json"):
        click.echo(_dumps(row))
        return
    keys = ["id", "state", "kind", "url", "agency", "interval", "effective_interval",
            "enabled", "file", "item_count", "new_per_day", "last_success_at", "last_fetch_at",
            "last_status", "last_error", "last_error_at", "failures", "broken_reason",
            "moved_to", "host_slow_until", "host_reason", "next_due_at", "etag",
            "last_modified"]
    for key in keys:
        if key not in row:
            continue
        value = row[key]
        if key in ("interval", "effective_interval") and value is not None:
            value = format_interval(value)
        elif key == "enabled":
            value = "yes" if value and row["in_config"] else "no"
        elif key == "new_per_day" and value is not None:
            value = f"{value:.2f}"
        elif key.endswith("_at") or key == "host_slow_until":
            value = _when(value) if value else None
        click.echo(f"{key:<16} {value if value is not None else '-'}")
    for w in row["warnings"]:
        click.echo(f"{'warning':<16} {w}")
    click.echo(f"last {len(row['fetches'])} fetches:")
    for f in row["fetches"]:
        click.echo(f"  {_when(f['started_at'])}  {f['outcome']:<12} "
                   f"status={f['status'] or '-'} new={f['new']} updated={f['updated']} "
                   f"{f['duration']:.2f}s" + (f"  {f['error']}" if f["error"] else ""))


# --- edits: shared ----------------------------------------------------------------------------


def _config(ctx: click.Context) -> Config:
    """The config as it is now; an edit starts only from a valid one."""
    try:
        return read_config(ctx.obj["config"])
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(f"error: {issue}", err=True)
        _fail(f"{len(exc.issues)} config error(s): fix them first (`aggregator check`); "
              "nothing was changed")


def _validate(ctx: click.Context, path: Path, text: str) -> Config:
    """The config as it would be with `path` holding `text`; exits with the errors (and
    writes nothing) when it would not pass `aggregator check`."""
    try:
        return read_config(ctx.obj["config"], {path: text})
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(f"error: {issue}", err=True)
        click.echo(f"{len(exc.issues)} config error(s) after the edit; nothing was written.",
                   err=True)
        sys.exit(EXIT_USAGE)


def _check_read(config: Config, path: Path, ids: Sequence[str]) -> None:
    """The new entries must be in the config as it is read (not in a file nothing includes)."""
    missing = [sid for sid in ids if config.source(sid) is None]
    if missing:
        _fail(f"{path} is not read by the config: it is not the main file and no include "
              "glob matches it; nothing was written")


def _write(path: Path, text: str, expected: str | None) -> None:
    try:
        write_atomic(path, text, expected)
    except (EditError, OSError) as exc:
        _fail(str(exc))


def _target_file(config: Config, file: str | None) -> Path:
    """Where new entries go: `--file` (a config file, or a new file an include glob
    matches), else the main config file."""
    if file is None:
        return Path(config.files[0])
    path = Path(file)
    if not path.is_absolute() and not path.exists():
        path = Path(config.files[0]).parent / path
    return path


def _same_url(config: Config, url: str) -> str | None:
    key = canonical_url(url) or url
    for s in config.sources:
        if (canonical_url(s.url) or s.url) == key:
            return s.id
    return None


def _guess_agency(config: Config, url: str) -> str | None:
    """The agency whose site is on the URL's host (or a parent domain of it), or the only
    agency there is."""
    host = (urlsplit(url).hostname or "").lower().removeprefix("www.")
    matches = []
    for agency in config.agencies.values():
        own = (urlsplit(agency.url).hostname or "").lower().removeprefix("www.") \
            if agency.url else ""
        if own and (host == own or host.endswith("." + own)):
            matches.append(agency.slug)
    if len(matches) == 1:
        return matches[0]
    if len(config.agencies) == 1:
        return next(iter(config.agencies))
    return None


def _needs_agency(config: Config) -> None:
    _fail("give --agency SLUG (one of: " + ", ".join(sorted(config.agencies)) + ")"
          if config.agencies else "the config defines no [[agency]] yet: add one first "
          "(config/README.md, \"[[agency]]\")")


# --- enable / disable -------------------------------------------------------------------------


def _set_enabled(ctx: click.Context, source_id: str, enabled: bool) -> None:
    config = _config(ctx)
    source = config.source(source_id)
    if source is None:
        _fail(f"unknown source id '{source_id}'")
    path = Path(source.file)
    old = read_text(path)
    try:
        new = set_enabled(old, source_id, enabled)
    except EditError as exc:
        _fail(f"{path}: {exc}")
    word = "enabled" if enabled else "disabled"
    if new == old:
        click.echo(f"source {source_id} is already {word} ({path})")
        return
    _validate(ctx, path, new)
    _write(path, new, old)
    click.echo(f"{word} source {source_id} in {path}; `aggregator serve` picks it up by itself")


@sources.command("enable")
@click.argument("source_id")
@click.pass_context
def sources_enable(ctx: click.Context, source_id: str) -> None:
    """Poll a disabled source again: sets `enabled = true` in its [[source]] table, in
    the file that defines it, changing nothing else in the file.

    \b
    Example:
      aggregator sources enable bpbd-jatim-rss
    """
    _set_enabled(ctx, source_id, True)


@sources.command("disable")
@click.argument("source_id")
@click.pass_context
def sources_disable(ctx: click.Context, source_id: str) -> None:
    """Stop polling a source, keeping its entry and its stored items: sets
    `enabled = false` in its [[source]] table, changing nothing else in the file.

    \b
    Example:
      aggregator sources disable bpbd-jatim-rss
    """
    _set_enabled(ctx, source_id, False)


# --- add --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    url: str  # the feed's URL
    title: str | None
    how: str  # where it was found, for the entry's comment
    others: tuple[tuple[str, str, str], ...] = ()  # other feeds the page announces


async def _find_feed(config: Config, url: str) -> Found:
    """`url` itself when it is a feed, else the feed its page announces."""
    from aggregator.fetch import Fetcher
    from aggregator.parse.feed import parse_feed
    from aggregator.parse.html import discover_feeds

    async with Fetcher(config.settings, None, utcnow) as fetcher:
        first = await fetcher.fetch(url, None, "feed")
        body = first.body or b""
        ctype = first.headers.get("content-type", "").lower()
        start = body[:512].lstrip().lower()
        looks_html = "html" in ctype or start.startswith((b"<!doctype html", b"<html"))
        if not looks_html:
            page = parse_feed(body, first.headers, first.final_url)
            return Found(first.final_url, page.title, "the URL is a feed")
        feeds = discover_feeds(body, first.headers, first.final_url)
        if not feeds:
            raise ParseError(f"{first.final_url} is an HTML page that announces no feed "
                             "(no <link rel=\"alternate\" type=\"application/rss+xml\">); "
                             "give the feed's own URL, or scrape the page with a kind = "
                             "\"html\" source (config/README.md)")
        chosen = feeds[0]
        feed = await fetcher.fetch(chosen[0], None, "feed")
        page = parse_feed(feed.body or b"", feed.headers, feed.final_url)
        return Found(chosen[0], page.title or chosen[2] or None,
                     f"discovered in the <link rel=\"alternate\"> of {first.final_url}",
                     tuple(feeds[1:]))


@sources.command("add")
@click.argument("url")
@click.option("--agency", metavar="SLUG", default=None,
              help="The agency publishing it (default: the agency whose url is on the same "
                   "host, or the only agency).")
@click.option("--id", "source_id", metavar="ID", default=None,
              help="The source id (default: made from the feed's title or host).")
@click.option("--interval", metavar="DURATION", default=None,
              help="How often to poll it, e.g. 30m (default: settings.default_interval).")
@click.option("--file", "file", metavar="FILE", default=None,
              help="The config file to append to (default: the main config file); a new "
                   "file must match an include glob.")
@click.option("--dry-run", is_flag=True, help="Print the entry; write nothing.")
@click.pass_context
def sources_add(ctx: click.Context, url: str, agency: str | None, source_id: str | None,
                interval: str | None, file: str | None, dry_run: bool) -> None:
    """Add a feed by its URL or by a page that announces it.

    Fetches URL (with the config's timeout, size limit and User-Agent). A feed is used as
    is; an HTML page is searched for <link rel="alternate" type="application/rss+xml"> (or
    atom+xml, feed+json): the main feed is taken and the others are listed. A commented
    [[source]] entry is appended to the config file, leaving its existing text untouched;
    nothing is written unless the result passes `aggregator check`.

    \b
    Examples:
      aggregator sources add https://diskominfo.jatengprov.go.id/ --agency diskominfo-jateng
      aggregator sources add https://bpbd.jatimprov.go.id/feed --id bpbd-jatim --dry-run
    """
    config = _config(ctx)
    if source_id is not None and config.source(source_id) is not None:
        _fail(f"source id '{source_id}' is already defined in "
              f"{config.source(source_id).file}")  # type: ignore[union-attr]
    if (dup := _same_url(config, url)) is not None:
        _fail(f"{url} is already configured as source {dup}")
    try:
        found = asyncio.run(_find_feed(config, url))
    except (FetchError, ParseError) as exc:
        _fail(str(exc), 1)
    if (dup := _same_url(config, found.url)) is not None:
        _fail(f"the feed {found.url} is already configured as source {dup}")
    agency = agency or _guess_agency(config, url)
    if agency is None:
        _needs_agency(config)
    host = urlsplit(found.url).hostname or ""
    sid = source_id or propose_id(found.title, host, {s.id for s in config.sources})
    when = f"{utcnow():%Y-%m-%d %H:%M} UTC"
    entry = source_entry(
        f"{found.title or sid}: added by `aggregator sources add` on {when},\n{found.how}",
        [("id", sid), ("name", found.title), ("kind", "feed"), ("url", found.url),
         ("agency", agency), ("interval", interval)])
    path = _target_file(config, file)
    old = read_text(path) if path.exists() else None
    new = append_entries(old or "", [entry])
    try:
        appended_sources(old or "", new)
    except EditError as exc:
        _fail(f"{path}: {exc}")
    _check_read(_validate(ctx, path, new), path, [sid])
    if dry_run:
        click.echo(f"# would append to {path}:")
        click.echo(entry, nl=False)
    else:
        _write(path, new, old)
        click.echo(entry, nl=False)
        click.echo(f"added source {sid} to {path}; `aggregator check` passes")
    for other_url, kind, title in found.others:
        click.echo(f"also announced by the page ({kind}): {other_url}"
                   + (f"  \"{title}\"" if title else ""))


# --- OPML -------------------------------------------------------------------------------------


def _outline_agency(config: Config, category: str | None, folders: Sequence[str],
                    url: str) -> str | None:
    names = {a.name.lower(): a.slug for a in config.agencies.values()}
    for candidate in [*(c.strip().strip("/") for c in (category or "").split(",")),
                      *reversed(folders)]:
        if not candidate:
            continue
        slug = candidate.split("/")[-1]
        if slug in config.agencies:
            return slug
        if candidate.lower() in names:
            return names[candidate.lower()]
    return _guess_agency(config, url)


@sources.command("import-opml")
@click.argument("opml_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option("--agency", metavar="SLUG", default=None,
              help="The agency of every imported feed (default: from each outline's "
                   "category or folder, naming an agency slug or name).")
@click.option("--file", "file", metavar="FILE", default=None,
              help="The config file to append to (default: the main config file).")
@click.option("--dry-run", is_flag=True, help="Print the entries; write nothing.")
@click.pass_context
def sources_import_opml(ctx: click.Context, opml_file: str, agency: str | None,
                        file: str | None, dry_run: bool) -> None:
    """Add every feed of an OPML subscription list (from another reader).

    Each outline with an xmlUrl becomes a commented [[source]] entry, with an id made from
    its title; feeds already configured are skipped (and listed). Files with a DTD are
    refused. Nothing is written unless the result passes `aggregator check`.

    \b
    Example:
      aggregator sources import-opml subscriptions.opml --agency diskominfo-jabar
    """
    from aggregator.parse.opml import parse_opml

    config = _config(ctx)
    try:
        outlines = parse_opml(Path(opml_file).read_bytes())
    except ParseError as exc:
        _fail(f"{opml_file}: {exc}")
    taken = {s.id for s in config.sources}
    seen_urls: dict[str, str] = {}
    entries: list[str] = []
    skipped: list[str] = []
    homeless: list[str] = []
    when = f"{utcnow():%Y-%m-%d %H:%M} UTC"
    for o in outlines:
        key = canonical_url(o.xml_url) or o.xml_url
        if (dup := _same_url(config, o.xml_url)) is not None:
            skipped.append(f"{o.xml_url} (already configured as source {dup})")
            continue
        if key in seen_urls:
            skipped.append(f"{o.xml_url} (listed twice in the file)")
            continue
        slug = agency or _outline_agency(config, o.category, o.folders, o.xml_url)
        if slug is None:
            homeless.append(f"{o.title or o.xml_url} ({o.xml_url})")
            continue
        sid = propose_id(o.title, urlsplit(o.xml_url).hostname or "", taken)
        taken.add(sid)
        seen_urls[key] = sid
        entries.append(source_entry(
            f"{o.title or sid}: imported from {Path(opml_file).name} by "
            f"`aggregator sources import-opml` on {when}",
            [("id", sid), ("name", o.title or None), ("kind", "feed"), ("url", o.xml_url),
             ("agency", slug)]))
    if homeless:
        for line in homeless:
            click.echo(f"error: no agency for {line}", err=True)
        _needs_agency(config)
    for line in skipped:
        click.echo(f"skipped {line}")
    if not entries:
        click.echo("nothing to import")
        return
    path = _target_file(config, file)
    old = read_text(path) if path.exists() else None
    new = append_entries(old or "", entries)
    try:
        appended_sources(old or "", new)
    except EditError as exc:
        _fail(f"{path}: {exc}")
    _check_read(_validate(ctx, path, new), path, list(seen_urls.values()))
    if dry_run:
        click.echo(f"# would append to {path}:")
        click.echo("\n".join(entries), nl=False)
        return
    _write(path, new, old)
    click.echo(f"imported {len(entries)} source(s) into {path}"
               + (f", skipped {len(skipped)}" if skipped else "")
               + "; `aggregator check` passes")


@sources.command("export-opml")
@click.option("--out", "out", metavar="FILE", default=None,
              help="Write to FILE (atomically) instead of printing.")
@click.pass_context
def sources_export_opml(ctx: click.Context, out: str | None) -> None:
    """The configured feed sources as OPML 2.0 (their own URLs, one folder per agency,
    category="/SLUG"), for another reader or for `import-opml`. Sources of kind "html" are
    pages, not feeds, and are left out (and counted). For the feeds this aggregator
    publishes, see /opml.

    \b
    Example:
      aggregator sources export-opml --out sources.opml
    """
    from aggregator.publish.opml import render_sources_opml

    config = _config(ctx)
    groups = []
    for agency in sorted(config.agencies.values(), key=lambda a: a.name):
        feeds = [(s.label, s.url, agency.url) for s in config.sources
                 if s.agency == agency.slug and s.kind == "feed"]
        if feeds:
            groups.append((agency.name, agency.slug, feeds))
    body = render_sources_opml(f"{config.settings.title}: sources", groups,
                               datetime.now().astimezone())
    pages = sum(s.kind == "html" for s in config.sources)
    if out is None:
        click.echo(body.decode("utf-8"), nl=False)
    else:
        path = Path(out)
        _write(path, body.decode("utf-8"), read_text(path) if path.exists() else None)
        click.echo(f"wrote {sum(len(f) for _, _, f in groups)} feed(s) to {path}")
    if pages:
        click.echo(f"note: {pages} html source(s) left out (pages, not feeds)", err=True)
