"""The `aggregator` command line (the click adapter).

Exit codes: 0 ok, 1 some sources failed, 2 usage or config error.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

import click

from aggregator import __version__
from aggregator.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    _dumps,
    _errors,
    _open,
)
from aggregator.cli_sources import sources
from aggregator.config import DEFAULT_CONFIG, config_warnings
from aggregator.core import Aggregator, explain_lines, preview_source, read_config, top_rows
from aggregator.errors import ConfigError, LockedError
from aggregator.logs import FORMATS as LOG_FORMATS
from aggregator.logs import LEVELS as LOG_LEVELS
from aggregator.normalize.text import excerpt
from aggregator.types import SourceReport

if TYPE_CHECKING:  # publishing loads only when something is rendered
    from aggregator.publish import WriteReport


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="aggregator")
@click.option("--config", "config", envvar="AGGREGATOR_CONFIG", default=DEFAULT_CONFIG,
              show_default=True, metavar="PATH",
              help="Main config file (env AGGREGATOR_CONFIG).")
@click.option("--log-format", "log_format", envvar="AGGREGATOR_LOG_FORMAT", default=None,
              type=click.Choice(LOG_FORMATS),
              help="Log lines as key=value text or JSON (default: settings.log_format).")
@click.option("--log-level", "log_level", envvar="AGGREGATOR_LOG_LEVEL", default=None,
              type=click.Choice(LOG_LEVELS),
              help="Default: info, or warning when stderr is a terminal.")
@click.pass_context
def cli(ctx: click.Context, config: str, log_format: str | None,
        log_level: str | None) -> None:
    """Aggregate Indonesian regional government news into feeds.

    \b
    Examples:
      aggregator check                 validate config/aggregator.toml
      aggregator poll --all            fetch every source once and store new items
      aggregator publish --out public  write all feeds as static files
      aggregator serve                 poll on schedule and serve feeds over HTTP
    """
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    ctx.obj["log_format"] = log_format
    ctx.obj["log_level"] = log_level


# --- check ---------------------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Validate the config and every file it includes.

    Every problem is listed with its file, section (source id, agency slug) and field.
    Exit code 2 when there is any.

    \b
    Example:
      aggregator --config config/aggregator.toml check
    """
    try:
        config = read_config(ctx.obj["config"])
    except ConfigError as exc:
        if as_json:
            click.echo(_dumps({"ok": False, "errors": [vars(i) for i in exc.issues]}))
        else:
            for issue in exc.issues:
                click.echo(f"error: {issue}", err=True)
            click.echo(f"{len(exc.issues)} config error(s).", err=True)
        sys.exit(EXIT_USAGE)
    warnings = config_warnings(config)
    summary = {"ok": True, "files": list(config.files), "sources": len(config.sources),
               "agencies": len(config.agencies), "regions": len(config.regions),
               "warnings": warnings}
    if as_json:
        click.echo(_dumps(summary))
    else:
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        click.echo(f"ok: {len(config.sources)} sources, {len(config.agencies)} agencies, "
                   f"{len(config.regions)} regions in {len(config.files)} file(s)")


# --- poll ----------------------------------------------------------------------------------


class ProgressBar:
    """`12/50 sources [#####     ] 1 error` on a terminal; nothing otherwise."""

    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total, self.stream, self.enabled = total, stream, enabled and total > 0
        self.done = self.errors = 0

    def __call__(self, report: SourceReport) -> None:
        self.done += 1
        self.errors += report.outcome == "error"
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // self.total
        bar = "#" * filled + " " * (width - filled)
        errors = f", {self.errors} error{'s' if self.errors != 1 else ''}" if self.errors else ""
        self.stream.write(f"\r{self.done}/{self.total} sources [{bar}]{errors}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _report_dict(r: SourceReport) -> dict[str, Any]:
    return {"source": r.source_id, "outcome": r.outcome, "new": r.new, "updated": r.updated,
            "unchanged": r.unchanged, "status": r.status, "error": r.error,
            "warnings": list(r.warnings), "duration": round(r.duration, 3), "bytes": r.bytes}


def _print_reports(reports: list[SourceReport], as_json: bool) -> None:
    if as_json:
        click.echo(_dumps([_report_dict(r) for r in reports]))
        return
    width = max((len(r.source_id) for r in reports), default=6)
    for r in reports:
        status = str(r.status or "-")
        line = (f"{r.source_id:<{width}}  {r.outcome:<12} new={r.new} updated={r.updated} "
                f"unchanged={r.unchanged} status={status} {r.duration:.2f}s")
        if r.error:
            line += f"  error: {r.error}"
        click.echo(line)
        for w in r.warnings:
            click.echo(f"{'':<{width}}  warning: {w}")
    failed = sum(r.outcome == "error" for r in reports)
    new = sum(r.new for r in reports)
    updated = sum(r.updated for r in reports)
    click.echo(f"{len(reports)} sources: {new} new, {updated} updated, {failed} failed")


def _progress(as_json: bool, total: int) -> ProgressBar:
    return ProgressBar(total, sys.stderr, not as_json and sys.stderr.isatty())


@cli.command()
@click.option("--all", "everything", is_flag=True, help="Poll every enabled source, due or not.")
@click.option("--source", "ids", multiple=True, metavar="ID", help="Poll this source (repeat).")
@click.option("--json", "as_json", is_flag=True, help="Print the per-source summary as JSON.")
@click.pass_context
def poll(ctx: click.Context, everything: bool, ids: tuple[str, ...], as_json: bool) -> None:
    """Fetch the due sources (or all, or the named ones) once and store new items.

    Prints one line per source: new, updated, unchanged or error. Exit code 1 if any source
    failed.

    \b
    Examples:
      aggregator poll --all
      aggregator poll --source setkab-berita --source bnpb-berita --json
    """
    agg = _open(ctx)
    _stop_on_sigterm(agg)
    with _errors():
        sources = agg.select_sources(ids, everything)
        bar = _progress(as_json, len(sources))
        try:
            reports = agg.poll(sources, bar)
        finally:
            bar.close()
    _print_reports(reports, as_json)
    sys.exit(EXIT_FAILED if any(r.outcome == "error" for r in reports) else EXIT_OK)


# --- publish and run ------------------------------------------------------------------------


@cli.command()
@click.option("--out", "out_dir", metavar="DIR", default=None,
              help="Directory for the static files (default: settings.output_dir).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_context
def publish(ctx: click.Context, out_dir: str | None, as_json: bool) -> None:
    """Render every feed, the OPML and the index page as static files.

    Files are written atomically; a file whose content did not change is left untouched.
    The files of feeds that no longer exist (an agency removed from the config) are
    deleted, only those an earlier publish wrote (listed in DIR/.aggregator-manifest);
    other files in DIR are never touched.

    \b
    Example:
      aggregator publish --out public/
    """
    agg = _open(ctx)
    with _errors():
        result = agg.publish(out_dir)
    if as_json:
        click.echo(_dumps({"written": result.written, "unchanged": result.unchanged,
                           "removed": result.removed, "kept": result.kept,
                           "pinged": result.pinged, "hub_errors": result.hub_problems}))
    else:
        for path in result.written:
            click.echo(f"wrote {path}")
        for path in result.removed:
            click.echo(f"removed {path}")
        click.echo(f"{len(result.written)} written, {len(result.unchanged)} unchanged"
                   + (f", {len(result.removed)} removed" if result.removed else ""))
        if result.pinged:
            click.echo(f"WebSub hub told of {len(result.pinged)} changed feed(s)")
    _warn_publish(result)


def _warn_publish(result: WriteReport) -> None:
    for path in result.kept:
        click.echo(f"warning: {path} is no longer published but was changed since it was "
                   "written; left alone", err=True)
    for problem in result.hub_problems:
        click.echo(f"warning: WebSub ping failed: {problem}", err=True)


@cli.command()
@click.option("--out", "out_dir", metavar="DIR", default=None,
              help="Directory for the static files (default: settings.output_dir).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def run(ctx: click.Context, out_dir: str | None, as_json: bool) -> None:
    """One cron cycle: poll the due sources, then publish static files.

    A lock beside the database makes overlapping runs safe: a second run started while one
    is going says so and exits 0 without doing anything.

    \b
    Example (crontab, every 5 minutes):
      */5 * * * * cd /srv/aggregator && .venv/bin/aggregator run >> run.log 2>&1
    """
    agg = _open(ctx)
    _stop_on_sigterm(agg)
    with _errors():
        try:
            result = agg.run_once(out_dir)
        except LockedError as exc:
            click.echo(f"skipped: {exc}")
            sys.exit(EXIT_OK)
    if as_json:
        click.echo(_dumps({"sources": [_report_dict(r) for r in result.reports],
                           "written": result.publish.written,
                           "unchanged": result.publish.unchanged,
                           "removed": result.publish.removed,
                           "pinged": result.publish.pinged,
                           "hub_errors": result.publish.hub_problems}))
    else:
        _print_reports(list(result.reports), False)
        click.echo(f"published: {len(result.publish.written)} written, "
                   f"{len(result.publish.unchanged)} unchanged"
                   + (f", {len(result.publish.removed)} removed"
                      if result.publish.removed else ""))
    _warn_publish(result.publish)
    sys.exit(EXIT_FAILED if any(r.outcome == "error" for r in result.reports) else EXIT_OK)


# --- serve ---------------------------------------------------------------------------------


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default: settings).")
@click.option("--port", default=None, type=int, help="Port to listen on (default: settings).")
@click.option("--tick", default=15.0, type=click.FloatRange(min=0.1), show_default=True,
              metavar="SECONDS", help="How often the scheduler looks for due sources.")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, tick: float) -> None:
    """Run the daemon: poll on schedule and serve the feeds over HTTP.

    The config files (the main file and every included file, also files that start or stop
    matching an include glob) are watched: a valid edit is put in force within seconds, an
    invalid one is refused (the last valid config stays, the error shows on /status and
    /api/config). SIGHUP reloads at once.

    \b
    Example:
      aggregator serve --host 0.0.0.0 --port 8080
      kill -HUP $(pidof -s aggregator)     # reload the config now
    """
    from aggregator.web import serve as run_server

    agg = _open(ctx)
    settings = agg.config.settings
    # uvicorn stops gracefully on SIGTERM (a poll under way winds down, everything stored is
    # committed), then raises the signal again: by then a stop is clean, so exit with 0
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_cleanly)
    with _errors():
        run_server(agg, host or settings.listen_host,
                   settings.listen_port if port is None else port, ctx.obj["config"], tick)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_OK)


def _stop_on_sigterm(agg: Aggregator) -> None:
    """`poll` and `run`: a first SIGTERM winds the poll down like `serve` does (no new fetch,
    a grace period, everything stored committed); a second one ends the process at once."""
    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        agg.stop()

    if threading.current_thread() is threading.main_thread():  # (click's test runner may not be)
        signal.signal(signal.SIGTERM, stop)


# --- top, stories, preview (the sources group: cli_sources.py) ---------------------------


@cli.command()
@click.option("--agency", metavar="SLUG", default=None, help="Only this agency's stories.")
@click.option("--limit", default=20, show_default=True, help="How many stories.")
@click.option("--explain", is_flag=True, help="Show the parts of each score.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def top(ctx: click.Context, agency: str | None, limit: int, explain: bool,
        as_json: bool) -> None:
    """The ranked stories, as in /feeds/top.

    \b
    score = (1 + views_weight * views_term + growth_weight * growth_term) * decay
      views_term  = log10(1 + views against each source's typical count)
      growth_term = log10(1 + views gained per day against the same)
      decay       = 0.5 ** (age_hours / half_life_hours)
    and at most max_per_source stories of one source ahead of the others
    (README, "Ranking"; weights in [settings.rank]).

    \b
    Example:
      aggregator top --explain --limit 10
    """
    agg = _open(ctx)
    with _errors():
        ranked = agg.top(agency, limit)
    if as_json:
        click.echo(_dumps(top_rows(ranked, explain)))
        return
    rank_settings = agg.config.settings.rank
    for n, (story, p) in enumerate(ranked, 1):
        click.echo(f"{n:>3}. {p.score:8.4f}  {story.lead.title}  [{', '.join(story.agencies)}]")
        if explain:
            for line in explain_lines(p, rank_settings):
                click.echo(f"       {line}")


@cli.group()
def stories() -> None:
    """Stories: which items were grouped together, and why.

    \b
    Examples:
      aggregator stories show 0b6f2c1e-8f3d-5a7e-9c4b-2d1e0f9a8b7c --explain
      aggregator stories show https://www.beritajakarta.id/read/12345/judul
    """


@stories.command("show")
@click.argument("ref", metavar="ID")
@click.option("--explain", is_flag=True, help="Say why each item is in the story, with the "
              "similarity figures.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def stories_show(ctx: click.Context, ref: str, explain: bool, as_json: bool) -> None:
    """One story: its items (lead first), agencies and combined views. ID is a story id, an
    item id or an item's link. To fix a wrong group, add a [[split]] or [[merge]] with the
    printed item ids or links to the config (config/README.md, "Story overrides").

    \b
    Example:
      aggregator stories show https://dinkes.jakarta.go.id/berita/vaksinasi --explain
    """
    agg = _open(ctx)
    with _errors():
        report = agg.story(ref)
    story = report.story
    uid_of = {it.id: it.uid for it in story.items}
    if as_json:
        click.echo(_dumps({
            "story": story.id, "asked_as": report.asked_as, "created_at": report.created_at,
            "agencies": list(story.agencies), "views": story.views,
            "lead": story.lead.uid, "merged_from": report.merged,
            "items": [{"item": it.uid, "source": it.source_id, "agency": it.agency,
                       "title": it.title, "link": it.link, "published": it.published,
                       "views": it.views, **({"reason": report.reasons.get(it.id)}
                                             if explain else {})} for it in story.items],
            **({"pairs": [{"a": uid_of[a], "b": uid_of[b], "verdict": v}
                          for a, b, v in report.pairs]} if explain else {}),
        }))
        return
    if report.asked_as:
        click.echo(f"{report.asked_as} is in story {story.id}")
    click.echo(f"story    {story.id}  (first stored {report.created_at})")
    click.echo(f"title    {story.lead.title}")
    click.echo(f"agencies {', '.join(story.agencies)}")
    click.echo(f"views    {story.views if story.views is not None else '-'} "
               "(the sum of each source's latest count)")
    for m in report.merged:
        click.echo(f"merged   {m['from_id']} at {m['at']}: {m['reason']}")
    for n, it in enumerate(story.items, 1):
        lead = "  (lead)" if n == 1 else ""
        click.echo(f"{n:>3}. {it.published:%Y-%m-%d %H:%M} UTC  {it.agency}  {it.title}{lead}")
        click.echo(f"     item {it.uid}  source {it.source_id}  views "
                   f"{it.views if it.views is not None else '-'}")
        click.echo(f"     {it.link or '(no link)'}")
        if explain:
            reason = report.reasons.get(it.id, {})
            how = reason.get("method", "?")
            figures = reason.get("details") or ""
            matched = f" with item {reason['matched_uid']}" if reason.get("matched_uid") else ""
            click.echo(f"     joined: {how}{matched} {figures}".rstrip())
    if explain and report.pairs:
        click.echo("pairs compared now (title = word/trigram similarity, text = share of the "
                   "shorter text's word pairs found in the other):")
        index = {it.id: n for n, it in enumerate(story.items, 1)}
        for a, b, v in report.pairs:
            click.echo(f"  {index[a]} ~ {index[b]}: {'same' if v.same else 'not alone'} "
                       f"({v.describe()})")


@cli.command()
@click.argument("source_id")
@click.option("--file", "page", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Read a saved page instead of fetching.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def preview(ctx: click.Context, source_id: str, page: str | None, as_json: bool) -> None:
    """Show what a source yields, field by field, without storing anything.

    \b
    Examples:
      aggregator preview setkab-berita
      aggregator preview beritajakarta-terkini --file saved.html --json
    """
    with _errors():
        result = preview_source(read_config(ctx.obj["config"]), source_id, page)
    if as_json:
        click.echo(_dumps({"items": result.items, "warnings": result.warnings,
                           "drift": result.drift}))
        return
    for n, item in enumerate(result.items, 1):
        problems: dict[str, str] = {}
        for p in item.problems:
            name, _, reason = p.partition(": ")
            problems.setdefault(name.removeprefix("article "), reason)
        rows: list[tuple[str, object, str | None]] = [
            ("id", item.key, problems.get("id")),
            ("title", item.title, problems.get("title")),
            ("link", item.link, problems.get("link")),
            ("date", f"{item.published:%Y-%m-%d %H:%M} UTC"
                     + ("" if item.dated_by == "source" else f" ({item.dated_by})"),
             problems.get("date")),
            ("author", item.author, problems.get("author")),
            ("views", item.views, problems.get("views")),
            ("category", ", ".join(item.categories) or None, problems.get("category")),
            ("image", item.image, problems.get("image")),
            ("summary", excerpt(item.summary, 70) or None, problems.get("summary")),
            ("content", f"{len(item.content)} characters of HTML" if item.content else None,
             problems.get("content")),
        ]
        for i, (field, value, why) in enumerate(rows):
            label = f"{n:>3}" if i == 0 else "   "
            shown = "-" if value is None else str(value)
            click.echo(f"{label}  {field:<9} {shown}" + (f"   <- {why}" if why else ""))
        click.echo("")
    if result.drift:
        click.echo(f"drift: {result.drift}")
    for w in result.warnings:
        click.echo(f"warning: {w}")
    failed = sum(bool(it.problems) for it in result.items)
    click.echo(f"{len(result.items)} item(s), {failed} with a field that failed")


cli.add_command(sources)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="aggregator")

