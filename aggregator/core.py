"""Wiring: config + store + clock, and the operations the CLI, the scheduler and the web
app call. Nothing here parses, ranks or renders by itself."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aggregator import dedupe, policy, retention
from aggregator.config import load_config
from aggregator.errors import NotFoundError, RequestError
from aggregator.fetch import Fetcher
from aggregator.lock import RunLock
from aggregator.metrics import METRICS
from aggregator.normalize.urls import canonical_url
from aggregator.parse.html import selector_problem
from aggregator.pipeline import (
    ParseJob,
    Poller,
    Progress,
    field_drift,
    make_pool,
    parse_job,
)
from aggregator.pipeline import run as run_poll
from aggregator.store import Store
from aggregator.store.sql import ts
from aggregator.types import (
    Config,
    NormalizedPage,
    RankSettings,
    Source,
    SourceReport,
    SourceSchedule,
    Story,
    StoryOverride,
)

if TYPE_CHECKING:  # publishing (feedgen, lxml) loads only when something is rendered
    from aggregator.publish import FeedRenderer, Rendered, WriteReport
    from aggregator.rank import ScoreParts
    from aggregator.site import Site


def utcnow() -> datetime:
    return datetime.now(UTC)


def read_config(path: str | None = None, texts: Mapping[Path, str] | None = None) -> Config:
    """The config, with every HTML selector checked by the HTML parser (`texts`: files as
    an edit would leave them, see load_config)."""
    return load_config(path, selector_check=selector_problem, texts=texts)


def story_overrides(config: Config) -> list[StoryOverride]:
    """The config's [[merge]]/[[split]] with links in the canonical form items are stored in."""
    return [replace(o, items=tuple(canonical_url(r) or r if "://" in r else r for r in o.items))
            for o in config.overrides]


@dataclass(frozen=True)
class StoryReport:
    story: Story
    reasons: dict[int, dict[str, Any]]  # item id -> method, details, matched_uid, at
    merged: list[dict[str, Any]]  # from_id, at, reason
    created_at: str | None
    pairs: list[tuple[int, int, dedupe.Verdict]]  # every pair of its items, compared now
    asked_as: str | None  # the reference given, when it was not the story id


MAINTENANCE_META = "maintenance_at"  # store_meta: when retention last ran
OUTPUT_LOCK = ".aggregator-lock"  # in the output folder, held while static files are written
PUBLISH_WAIT = 300.0  # seconds a publish waits for another one writing the same folder


@dataclass(frozen=True)
class MaintenanceReport:
    items_pruned: int
    stories_pruned: int
    samples_dropped: int
    fetches_dropped: int


@dataclass(frozen=True)
class RunReport:
    reports: tuple[SourceReport, ...]
    publish: WriteReport


class Aggregator:
    def __init__(self, config: Config, clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.clock = clock
        self.store = Store(config.settings.database)
        self.store.sync_sources(config)
        self.store.index_backlog()
        self.store.configure_dedupe(config.settings.dedupe, story_overrides(config))
        self.renderer: FeedRenderer | None = None  # made at the first render
        self.stopping = threading.Event()  # `stop()`: polls wind down, no new poll starts

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM): a poll under way starts no more fetches, gives those in
        flight `[settings.schedule] shutdown_grace` seconds, then abandons them (they stay
        due); everything stored is committed. No poll starts afterwards."""
        self.stopping.set()

    @classmethod
    def open(cls, config_path: str | None = None,
             clock: Callable[[], datetime] = utcnow) -> Aggregator:
        return cls(read_config(config_path), clock)

    def close(self) -> None:
        self.store.close()

    def reload(self, config: Config, at_once: Sequence[str] = (),
               interval_of: Mapping[str, int] | None = None) -> None:
        """Put a new, validated config in force (aggregator/reload.py decides what changed):
        the sources table follows it, the sources `at_once` are due now, those of
        `interval_of` are rescheduled to their new interval; then the config is swapped in
        one assignment, so a poll, a render or a request sees the old or the new one whole.
        The database path is not changed here (it needs a restart)."""
        self.store.sync_sources(config)
        self.store.reschedule(interval_of or {}, self.clock(), at_once)
        if (config.settings.dedupe, config.overrides) != (self.config.settings.dedupe,
                                                           self.config.overrides):
            self.store.configure_dedupe(config.settings.dedupe, story_overrides(config))
        self.config = config

    # --- polling ----------------------------------------------------------------------------

    def select_sources(self, ids: Sequence[str] = (), everything: bool = False) -> list[Source]:
        """Named sources, or all enabled sources, or (default) the enabled ones that are due."""
        if ids:
            unknown = [i for i in ids if self.config.source(i) is None]
            if unknown:
                raise NotFoundError(f"unknown source id(s): {', '.join(unknown)}")
            return [s for s in self.config.sources if s.id in ids]
        enabled = [s for s in self.config.sources if s.enabled]
        if self.stopping.is_set():
            return []
        if everything:
            return enabled
        due = set(self.store.due_source_ids(self.clock()))
        return [s for s in enabled if s.id in due]

    def poll(self, sources: Sequence[Source], progress: Progress | None = None) -> list[
            SourceReport]:
        if not sources:
            return []
        feeds = sum(s.kind == "feed" for s in sources)
        poller = Poller(self.config, self.store, self.clock,
                        lambda: make_pool(self.config.settings.parse_workers, feeds), progress,
                        stop=self.stopping)
        try:
            reports = run_poll(poller.poll(sources))
            METRICS.record_reports(reports)
            return reports
        finally:
            if poller.pool is not None:
                poller.pool.shutdown(wait=True, cancel_futures=True)

    # --- publishing -------------------------------------------------------------------------

    def render(self) -> Site:
        """Every document now. Feeds equal to their last render are not rendered again."""
        from aggregator.publish import FeedRenderer
        from aggregator.site import SiteBuilder

        if self.renderer is None:
            self.renderer = FeedRenderer()
        with METRICS.timed_render():
            return SiteBuilder(self.config, self.store, self.renderer).build(self.clock())

    def publish(self, out_dir: str | None = None) -> WriteReport:
        """Write the static files; the feeds that changed are announced to the WebSub hub."""
        from aggregator.publish import DiskRenders, FeedRenderer, save_renders, write_static

        out = out_dir or self.config.settings.output_dir
        # two exports into one folder at once (a manual publish during a cron run) would
        # race on its manifest: the second waits for the first
        with RunLock(Path(out) / OUTPUT_LOCK, wait=PUBLISH_WAIT, holder="another publish",
                     note_pid=False):
            if self.renderer is None:  # a new process (cron): reuse the last export's renders
                self.renderer = FeedRenderer(DiskRenders(out))
            report = write_static(self.render(), out)
            save_renders(out, self.renderer.documents(), bool(report.written))
        pinged, problems = self.announce(report.changed)
        return replace(report, pinged=tuple(pinged), hub_problems=tuple(problems))

    def announce(self, paths: Sequence[str]) -> tuple[list[str], list[str]]:
        """Ping `[settings] websub_hub` (when set) for the feeds among the changed `paths`:
        the feed URLs pinged, and one message per ping that failed."""
        from aggregator.fetch import ping_hub
        from aggregator.publish import hub_topics

        settings = self.config.settings
        if not settings.websub_hub:
            return [], []
        topics = hub_topics(paths, settings.base_url)
        return topics, ping_hub(settings.websub_hub, topics, settings)

    def lock_path(self) -> Path:
        return Path(self.config.settings.database).with_suffix(".lock")

    def run_once(self, out_dir: str | None = None, progress: Progress | None = None) -> RunReport:
        """One cron cycle under the run lock: poll due sources, then publish. Raises LockedError
        when another run holds the lock."""
        with RunLock(self.lock_path()):
            reports = self.poll(self.select_sources(), progress)
            self.maintain()
            return RunReport(tuple(reports), self.publish(out_dir))

    def maintain(self, force: bool = False) -> MaintenanceReport | None:
        """Retention (README, "Retention"): prune items older than `prune_after`, compact
        view samples, bound the fetch log. At most once an hour (the time is kept in the
        database, so cron runs and the daemon share it) unless `force`; None when not due.
        A stop (SIGTERM) ends it between batches; it then runs again at the next chance."""
        now = self.clock()
        last = self.store.meta_get(MAINTENANCE_META)
        if not force and not retention.maintenance_due(
                datetime.fromisoformat(last) if last else None, now):
            return None
        settings = self.config.settings
        horizon = retention.prune_horizon(now, settings.retention)
        stop = self.stopping.is_set
        pruned = self.store.prune_items(horizon, now, stop) if horizon is not None else None
        samples = self.store.compact_view_samples(
            retention.sample_horizons(now, settings.retention, settings.rank), stop)
        fetches = self.store.trim_fetches(settings.retention.fetches_per_source)
        if not stop():
            self.store.meta_set(MAINTENANCE_META, now.isoformat())
        return MaintenanceReport(pruned.items if pruned else 0, pruned.stories if pruned else 0,
                                 samples, fetches)

    # --- reading ----------------------------------------------------------------------------

    def top(self, agency: str | None = None, limit: int | None = None) -> list[
            tuple[Story, ScoreParts]]:
        return self.top_from(self.store, agency, limit)

    def top_from(self, store: Store, agency: str | None = None, limit: int | None = None
                 ) -> list[tuple[Story, ScoreParts]]:
        """The ranked stories now, read through `store` (the web app reads with its own
        connection)."""
        if agency is not None and agency not in self.config.agencies:
            raise NotFoundError(f"unknown agency '{agency}'")
        from aggregator.site import SiteBuilder

        return SiteBuilder(self.config, store).ranked(self.clock(), agency, limit)

    SEARCH_MAX_LIMIT = 200

    def search_from(self, store: Store, ext: str, params: Mapping[str, str],
                    query: str) -> Rendered:
        """/feeds/search.EXT: stories whose title or summary has every word of `q`, newest
        first; `agency=SLUG`, `region=SLUG`, `hours=N` (published in the last N hours) and
        `limit=N` narrow it. `query` is the request's query string (the feed's own URL).
        Raises RequestError (400) or NotFoundError (404) naming the parameter."""
        from aggregator.publish import render_feed
        from aggregator.site import SiteBuilder
        from aggregator.store.search import fts_query

        if ext not in ("rss", "atom", "json"):
            raise NotFoundError(f"no search feed format '{ext}': use .rss, .atom or .json")
        words = " ".join(params.get("q", "").split())
        if fts_query(words) is None:
            raise RequestError("q: give one or more words to search for, e.g. ?q=banjir")
        agencies: list[str] | None = None
        if agency := params.get("agency"):
            if agency not in self.config.agencies:
                raise NotFoundError(f"agency: unknown agency '{agency}'")
            agencies = [agency]
        if region := params.get("region"):
            if region not in self.config.regions:
                raise NotFoundError(f"region: unknown region '{region}'")
            members = [a.slug for a in self.config.agencies.values() if a.region == region]
            agencies = [a for a in agencies if a in members] if agencies is not None \
                else members
        since = None
        if hours := params.get("hours"):
            if not hours.isdigit() or not 0 < int(hours) <= 24 * 366:
                raise RequestError("hours: a whole number of hours from 1 to 8784")
            since = self.clock() - timedelta(hours=int(hours))
        horizon = retention.feed_horizon(self.clock(), self.config.settings.retention)
        if horizon is not None:  # older items are in no feed (README, "Retention")
            since = max(since, horizon) if since is not None else horizon
        limit = self.config.settings.feed_size
        if limit_text := params.get("limit"):
            if not limit_text.isdigit() or not 0 < int(limit_text) <= self.SEARCH_MAX_LIMIT:
                raise RequestError(f"limit: a whole number from 1 to {self.SEARCH_MAX_LIMIT}")
            limit = int(limit_text)
        doc = SiteBuilder(self.config, store).search(words, agencies, since, limit, query)
        return render_feed(doc, only=ext)[0]

    def story(self, ref: str) -> StoryReport:
        """A story by its id (also a merged-away id), an item id or a link, and how it was
        formed: each item's reason, and the figures of every pair compared now."""
        story_id = self.store.story_id_for(canonical_url(ref) or ref)
        if story_id is None:
            raise NotFoundError(f"no story, item or link '{ref}' is stored")
        story = self.store.stories_by_id([story_id])[0]
        explain = self.store.story_explain(story_id)
        settings = self.config.settings.dedupe
        probes = [dedupe.Probe(it.id, it.source_id, it.published,
                               dedupe.item_fingerprint(it.title, it.summary, it.content))
                  for it in story.items]
        pairs = [(a.item_id, b.item_id, dedupe.compare(a, b, settings))
                 for i, a in enumerate(probes) for b in probes[i + 1:]]
        return StoryReport(story, explain["links"], explain["merged"], explain["created_at"],
                           pairs, ref if ref != story_id else None)

    def source_status(self) -> list[dict[str, Any]]:
        return self.source_status_from(self.store)

    def source_status_from(self, store: Store) -> list[dict[str, Any]]:
        """Source health, read through `store` (the web app reads with its own connection)."""
        configured = {s.id: s for s in self.config.sources}
        hosts = store.host_states()
        now = self.clock()
        per_day = store.new_per_day(now)
        rows = []
        for row in store.source_rows():
            row["in_config"] = row["id"] in configured
            row["state"] = _state(row) if row["in_config"] else "not in config"
            source = configured.get(row["id"])
            if source is not None:  # the interval the schedule uses now (learnt or configured)
                limits = policy.bounds(source, self.config.settings.schedule)
                row["effective_interval"] = policy.current_interval(
                    SourceSchedule(interval=row["effective_interval"]), source, limits)
            # its host asked us to wait (a 429): until when, and why
            host = hosts.get((urlsplit(row["url"]).hostname or "").lower())
            paused = policy.host_paused(host, now)
            row["host_slow_until"] = ts(paused) if paused else None
            row["host_reason"] = host.reason if host is not None and paused else None
            row["new_per_day"] = per_day.get(row["id"], 0.0)
            rows.append(row)
        return sorted(rows, key=lambda r: (STATE_ORDER.get(r["state"], 3), r["id"]))

    def source_detail(self, source_id: str) -> dict[str, Any]:
        for row in self.source_status():
            if row["id"] == source_id:
                row["fetches"] = self.store.recent_fetches(source_id)
                return row
        raise NotFoundError(f"unknown source id '{source_id}'")


def preview_source(config: Config, source_id: str, file: str | None = None,
                   now: datetime | None = None) -> NormalizedPage:
    """What a source yields now (or from a saved page), without opening the database."""
    source = config.source(source_id)
    if source is None:
        raise NotFoundError(f"unknown source id '{source_id}'")
    headers: dict[str, str] = {}
    if file is not None:
        body, url = Path(file).read_bytes(), source.url
    else:
        async def get() -> tuple[bytes, dict[str, str], str]:
            async with Fetcher(config.settings, None, utcnow) as fetcher:
                result = await fetcher.fetch(source.url, None, source.kind)
                return result.body or b"", result.headers, result.final_url
        body, headers, url = asyncio.run(get())
    zone = source.timezone or config.settings.timezone
    page = parse_job(ParseJob(source.kind, body, headers, url, source.id, source.views_field,
                              zone, now or utcnow(), source.html))
    if source.html is not None:
        drift = field_drift(page.items, source.html)
        page = replace(page, warnings=page.warnings + tuple(drift))
    return page


def top_rows(ranked: Sequence[tuple[Story, ScoreParts]], explain: bool = False
             ) -> list[dict[str, Any]]:
    """The ranked stories as plain data (`top --json`, `/api/top`); with `explain`, the
    score's parts under "parts" (README, "Ranking")."""
    rows: list[dict[str, Any]] = []
    for n, (story, parts) in enumerate(ranked, 1):
        row: dict[str, Any] = {
            "rank": n, "story": story.id, "title": story.lead.title, "link": story.lead.link,
            "agencies": list(story.agencies), "source": story.lead.source_id,
            "published": story.published.isoformat(), "views": story.views,
            "score": parts.score}
        if explain:
            row["parts"] = asdict(parts)
        rows.append(row)
    return rows


def explain_lines(parts: ScoreParts, settings: RankSettings) -> list[str]:
    """`top --explain`: how a story's score was made, one line per part."""
    lines = [f"score {parts.score:.4f} = (1 + {settings.views_weight:g} x views "
             f"{parts.views_term:.3f} + {settings.growth_weight:g} x growth "
             f"{parts.growth_term:.3f}) x decay {parts.decay:.4f} (age {parts.age_hours:.1f} h, "
             f"half-life {settings.half_life_hours:g} h)"]
    for p in parts.sources:
        if p.views_neutral:
            seen = "no view data: neutral x1 (the source's typical)"
        else:
            seen = f"{p.views} views, typical {p.typical:g} -> x{p.rel_views:.2f}"
        if p.growth_neutral:
            growth = f"growth unknown: the source's pace {p.rel_growth:.3f}/day"
        else:
            growth = (f"+{p.per_hour:.1f} views/h in the last {settings.growth_hours:g} h "
                      f"-> {p.rel_growth:.3f} typical/day")
        lines.append(f"{p.source_id}: {seen}; {growth}")
    if parts.capped:
        lines.append(f"placed after the others: its source leads more than "
                     f"{settings.max_per_source} stories (max_per_source)")
    return lines


# status listings: what needs the admin first (a state not named here sorts with "new")
STATE_ORDER = {"broken": 0, "failing": 1, "drifting": 2, "new": 3, "ok": 4, "disabled": 5,
               "not in config": 6}


def _state(row: dict[str, Any]) -> str:
    if not row["enabled"]:
        return "disabled"
    if row["last_fetch_at"] is None:
        return "new"
    if row["failures"] and row.get("broken_reason"):
        return "broken"
    if row["failures"]:
        return "drifting" if (row["last_error"] or "").startswith("drift:") else "failing"
    if any(w.startswith("drift:") for w in row["warnings"]):
        return "drifting"
    return "ok"
