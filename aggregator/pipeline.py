"""One source, end to end: fetch -> parse -> normalize -> store, with every error captured in
that source's report (one broken source never stops the others).

Fetching is asynchronous (many sources at once, politely per host). Feed parsing is CPU-bound
(feedparser) and runs in a pool of worker processes so that a poll uses every core. HTML pages
are parsed in-process (lexbor takes about a millisecond a page) because pagination and article
pages need the result before the next fetch. Storing happens in the calling process, on one
thread: each source is one savepoint, and a poll's writes are committed in groups
(`Store.begin_group`).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import random
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urljoin

from aggregator import dedupe, logs, policy, rules
from aggregator.config import resolve_zone
from aggregator.errors import (
    AggregatorError,
    FetchDeferred,
    FetchError,
    HTTPStatusError,
    ParseError,
)
from aggregator.fetch import Fetcher
from aggregator.normalize import normalize_item, normalize_page
from aggregator.parse.html import parse_article, parse_listing
from aggregator.retention import keep_new, prune_horizon
from aggregator.store import Store
from aggregator.types import (
    Config,
    FetchRecord,
    FetchResult,
    HtmlSpec,
    Item,
    NormalizedPage,
    ParsedPage,
    RawItem,
    Source,
    SourceReport,
    SourceSchedule,
    SourceState,
    Validators,
)

T = TypeVar("T")
Clock = Callable[[], datetime]
Progress = Callable[[SourceReport], None]
log = logging.getLogger("aggregator.fetch")

# Parsing in worker processes pays off only when there are several bodies to parse.
POOL_THRESHOLD = 4
PARSED_WAITING = 8  # feeds being parsed or waiting to be stored, at most
# A field that fails on more than this share of a page's items means the layout drifted.
DRIFT_SHARE = 0.5
DRIFT_MIN_ITEMS = 3
# An article page that never yields the text is tried this many times, then left alone.
ARTICLE_TRIES = 3
STOP_CHECK = 0.1  # seconds: how often a poll looks at its stop signal
STOPPING, GIVE_UP = "stopping", "give up"  # events of a poll that is told to stop
HOST_RETRY_SPREAD = 60.0  # seconds (+-10%) after a slowed-down host's pause ends


@dataclass(frozen=True)
class ParseJob:
    """Everything a worker process needs to turn one body into normalized items."""

    kind: str
    body: bytes
    headers: dict[str, str]
    url: str
    source_id: str
    views_field: str | None
    zone: str
    now: datetime
    html: HtmlSpec | None = None
    fingerprint: bool = False  # every item is likely new: fingerprint them here too


def parse_job(job: ParseJob) -> NormalizedPage:
    """Bytes -> normalized items. Runs in a worker process or inline; raises ParseError.
    With `job.fingerprint` (a source never fetched before), it also computes the items' dedupe
    fingerprints, so that the store thread, which every source's items go through, does not."""
    page = parse_page(job)
    date_format, language = (job.html.date_format, job.html.language) if job.html else ("", "id")
    normalized = normalize_page(page, job.source_id, job.url, resolve_zone(job.zone), job.now,
                                date_format, language)
    if page.ttl is not None:
        normalized = replace(normalized, ttl=page.ttl)
    if not job.fingerprint:
        return normalized
    return replace(normalized, fingerprints=tuple(
        dedupe.pack(dedupe.item_fingerprint(i.title, i.summary, i.content))
        for i in normalized.items))


def parse_page(job: ParseJob) -> ParsedPage:
    if job.kind == "feed":
        from aggregator.parse.feed import parse_feed  # feedparser loads in the workers only

        return parse_feed(job.body, job.headers, job.url, job.views_field)
    if job.kind == "html" and job.html is not None:
        return parse_listing(job.body, job.headers, job.html)
    raise ParseError(f"source kind '{job.kind}' has no parser")


def field_drift(items: Sequence[Item], spec: HtmlSpec) -> list[str]:
    """'drift: ...' warnings for date/views fields that fail on most of a page's items."""
    out: list[str] = []
    if len(items) < DRIFT_MIN_ITEMS:
        return out
    for name in ("date", "views"):
        if name not in spec.fields:
            continue
        failed = sum(any(p.startswith(f"{name}:") for p in it.problems) for it in items)
        if failed > DRIFT_SHARE * len(items):
            out.append(f"drift: field '{name}' failed on {failed} of {len(items)} items")
    return out


def _warm_up(owner: int) -> None:
    """Import the parsing stack once per worker, before the first job arrives, and leave when
    the process that started the pool is gone (killed with SIGKILL, it cannot stop us)."""
    import aggregator.normalize
    import aggregator.parse.feed  # noqa: F401
    threading.Thread(target=_exit_without, args=(owner,), daemon=True,
                     name="owner-watch").start()


def _exit_without(owner: int, every: float = 1.0) -> None:
    while True:
        time.sleep(every)
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:  # alive, another user's (the pid was reused)
            pass


def _ready() -> bool:
    return True


def make_pool(workers: int, jobs: int) -> Executor | None:
    """Worker processes for feed parsing, started (and warmed up) before any fetch begins,
    so that starting them never stalls the event loop during a poll."""
    workers = min(workers or (os.cpu_count() or 1), jobs)
    if workers < 2 or jobs < POOL_THRESHOLD:
        return None
    context = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_warm_up,
                               initargs=(os.getpid(),))
    for future in [pool.submit(_ready) for _ in range(workers)]:
        future.result()
    return pool


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a poll on uvloop when it is installed (about 30% less CPU per request than the
    default event loop: bench/README.md), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


class _StoreThread:
    """Runs every store call on one dedicated thread, so that SQLite work never blocks the
    event loop (a blocked loop would eat into other sources' fetch deadlines) and the one
    connection is never used by two threads at once."""

    BATCH = 64

    def __init__(self, store: Store) -> None:
        self.store = store
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.pending: list[FetchRecord] = []
        self.executor.submit(store.begin_group).result()  # one poll's writes share commits

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def record(self, record: FetchRecord) -> None:
        """Fetch records are written in batches; `flush` writes the rest."""
        self.pending.append(record)
        if len(self.pending) >= self.BATCH:
            await self.flush()

    async def flush(self) -> None:
        batch, self.pending = self.pending, []
        if batch:
            await self.call(self.store.record_fetches, batch)

    async def robots_get(self, origin: str) -> tuple[int, str, datetime] | None:
        return await self.call(self.store.robots_get, origin)

    async def robots_put(self, origin: str, status: int, body: str, at: datetime) -> None:
        await self.call(self.store.robots_put, origin, status, body, at)

    def close(self) -> None:
        try:
            self.executor.submit(self.store.end_group).result()
        finally:
            self.executor.shutdown(wait=True)


class Poller:
    """Polls a set of sources once. `clock` gives aware UTC datetimes."""

    def __init__(self, config: Config, store: Store, clock: Clock,
                 pool: Callable[[], Executor | None] | None = None,
                 progress: Progress | None = None, rng: random.Random | None = None,
                 stop: threading.Event | None = None) -> None:
        self.config = config
        self.settings = config.settings
        self.store = store
        self.clock = clock
        self.stop = stop  # set (from any thread): start no more fetches, then wind down
        self._ttl: dict[str, int] = {}  # RSS <ttl> of the feeds parsed in this poll
        self.pool_factory = pool
        self.pool: Executor | None = None
        self._pool_ready: asyncio.Future[Executor | None] | None = None
        self.progress = progress
        self.rng = rng or random.Random()

    async def _parse_pool(self) -> Executor | None:
        """The worker processes, started on the first body that needs parsing (a poll where
        nothing changed never starts them), in a thread so the event loop keeps fetching."""
        if self.pool_factory is None:
            return None
        self._start_pool()
        assert self._pool_ready is not None
        self.pool = await self._pool_ready
        return self.pool

    def _never_fetched(self, source: Source) -> bool:
        state = self.states.get(source.id, SourceState())
        return not state.validators.body_hash and not state.failures

    def _start_pool(self) -> None:
        if self.pool_factory is not None and self._pool_ready is None:
            self._pool_ready = asyncio.get_running_loop().run_in_executor(
                None, self.pool_factory)

    async def poll(self, sources: Sequence[Source]) -> list[SourceReport]:
        self.db = _StoreThread(self.store)
        self._parsing = asyncio.Semaphore(PARSED_WAITING)
        self.started = self.clock()
        self._articles: dict[tuple[str, str], asyncio.Future[
            tuple[dict[str, str], list[str]]]] = {}
        try:
            # start the sources that were slowest last time first: a source that times out
            # then waits while everything else is fetched, not after it
            by_id = {s.id: s for s in sources}
            order = await self.db.call(self.store.slowest_first, list(by_id))
            self.states = await self.db.call(self.store.source_states, list(by_id))
            if any(s.kind == "feed" and self._never_fetched(s) for s in sources):
                # a feed never fetched before will need parsing: start the workers now, while
                # the first answers are on their way
                self._start_pool()
            hosts = await self.db.call(self.store.host_states)
            async with Fetcher(self.settings, self.db, self.clock, hosts) as fetcher:
                tasks = [asyncio.create_task(self._poll_one(fetcher, by_id[i])) for i in order]
                reports = await self._gather(fetcher, tasks)
                if fetcher.touched_hosts:
                    await self.db.call(self.store.save_hosts, [
                        fetcher.host_states[h] for h in sorted(fetcher.touched_hosts)],
                        self.clock())
            await self.db.flush()
            if self._pool_ready is not None:  # started but maybe never used: the caller
                self.pool = await self._pool_ready  # shuts it down
        finally:
            self.db.close()
        position = {s.id: i for i, s in enumerate(sources)}
        return sorted(reports, key=lambda r: position[r.source_id])

    async def _gather(self, fetcher: Fetcher, tasks: list[asyncio.Task[SourceReport | None]]
                      ) -> list[SourceReport]:
        """The reports, as the sources finish. After a stop no fetch starts; the ones under way
        get `shutdown_grace` seconds, then are cancelled: those sources are not recorded and
        stay due (what they stored is kept: the ingest is idempotent)."""
        events: asyncio.Queue[asyncio.Task[SourceReport | None] | str] = asyncio.Queue()
        for task in tasks:
            task.add_done_callback(events.put_nowait)
        watcher = asyncio.create_task(self._watch_stop(events)) if self.stop else None
        reports: list[SourceReport] = []
        remaining = len(tasks)
        try:
            while remaining:
                event = await events.get()
                if event == STOPPING:
                    fetcher.stop()
                    grace = self.settings.schedule.shutdown_grace
                    log.info("stopping: %d source(s) under way get %gs to finish", remaining,
                             grace)
                    asyncio.get_running_loop().call_later(grace, events.put_nowait, GIVE_UP)
                elif event == GIVE_UP:
                    log.warning("stopping: %d source(s) abandoned; they stay due", remaining)
                    for task in tasks:
                        task.cancel()
                elif isinstance(event, asyncio.Task):
                    remaining -= 1
                    report = None if event.cancelled() else event.result()
                    if report is not None:
                        reports.append(report)
                        if self.progress:
                            self.progress(report)
        finally:
            if watcher is not None:
                watcher.cancel()
        return reports

    async def _watch_stop(self, events: asyncio.Queue[Any]) -> None:
        assert self.stop is not None
        while not self.stop.is_set():
            await asyncio.sleep(STOP_CHECK)
        events.put_nowait(STOPPING)

    async def _poll_one(self, fetcher: Fetcher, source: Source) -> SourceReport | None:
        state = self.states.get(source.id) or SourceState()
        started = self.clock()
        began = time.monotonic()
        result: FetchResult | None = None
        parse_failed = False
        retry: float | None = None
        try:
            result = await fetcher.fetch(source.url, state.validators, source.kind)
            if result.not_modified:
                report = SourceReport(source.id, "not_modified", status=result.status,
                                      duration=result.duration, warnings=state.warnings)
            elif source.kind == "html":
                report = await self._ingest_html(fetcher, source, result)
            else:
                report = await self._ingest_feed(source, result)
        except FetchDeferred as exc:
            return await self._deferred(source, started, exc)
        except asyncio.CancelledError:  # abandoned at a stop: not recorded, stays due
            self._abandoned(source)
            raise
        except AggregatorError as exc:
            status = exc.status if isinstance(exc, HTTPStatusError) else \
                (result.status if result else None)
            parse_failed = isinstance(exc, ParseError) and not str(exc).startswith("drift:")
            if isinstance(exc, HTTPStatusError) and exc.status in (429, 503):
                retry = policy.retry_after(exc.retry_after, self.clock())
            report = SourceReport(source.id, "error", status=status, error=_describe(exc),
                                  duration=result.duration if result else
                                  (self.clock() - started).total_seconds())
        except Exception as exc:  # a bug must not take the other sources down
            log.exception("source=%s internal error", source.id)
            report = SourceReport(source.id, "error", error=f"internal error: {exc!r}",
                                  duration=(self.clock() - started).total_seconds())
        if source.kind == "html" and report.outcome not in ("error", "not_modified"):
            # pagination and article pages count too (and the waits robots.txt asks for)
            report = replace(report, duration=time.monotonic() - began)
        schedule, due = self._schedule(source, state, report, result, parse_failed, retry)
        validators = None
        if result is not None and report.outcome != "error" and result.status != 304:
            validators = Validators(result.etag, result.last_modified, result.body_hash)
        await self.db.record(FetchRecord(report, started, due, validators,
                                         result.final_url if result else None, schedule))
        self._log(source, report, due, schedule)
        return report

    def _schedule(self, source: Source, state: SourceState, report: SourceReport,
                  result: FetchResult | None, parse_failed: bool, retry: float | None
                  ) -> tuple[SourceSchedule, datetime]:
        """The source's schedule after this fetch, and its next poll (aggregator/policy.py)."""
        now = self.clock()
        settings = self.settings.schedule
        limits = policy.bounds(source, settings)
        before = state.schedule or SourceSchedule()
        ttl = self._ttl.pop(source.id, None)
        if report.outcome == "error":
            schedule = policy.after_failure(before, report.status, parse_failed,
                                            report.error or "", settings.broken_after)
            interval = policy.current_interval(before, source, limits)
            due = policy.next_poll(now, interval, limits, state.failures + 1,
                                   self.rng.random(), retry=retry)
            return schedule, due
        schedule = policy.learn(before, source, now, report.new, limits)
        schedule = replace(schedule, moved_to=result.moved_to if result else None)
        hint = policy.freshness(result.headers, ttl, now) if result is not None else None
        assert schedule.interval is not None
        due = policy.next_poll(now, schedule.interval, limits, 0, self.rng.random(), hint=hint)
        return schedule, due

    async def _deferred(self, source: Source, started: datetime,
                        exc: FetchDeferred) -> SourceReport | None:
        """Not fetched: stopping (nothing recorded, the source stays due), or its host asked
        us to wait (only its next poll moves, past the host's pause; it is not failing)."""
        if exc.until is None:
            self._abandoned(source)
            return None
        due = exc.until + timedelta(seconds=policy.spread(HOST_RETRY_SPREAD,
                                                          self.rng.random()))
        report = SourceReport(source.id, "skipped", warnings=(exc.message,))
        await self.db.record(FetchRecord(report, started, due))
        self._log(source, report, due, None)
        return report

    @staticmethod
    def _abandoned(source: Source) -> None:
        fields = {"event": "fetch", "source": source.id, "url": source.url,
                  "outcome": "abandoned"}
        log.info(logs.kv(fields), extra={"fields": fields})

    def _log(self, source: Source, report: SourceReport, due: datetime,
             schedule: SourceSchedule | None) -> None:
        """The one structured line per fetch (keys documented in README, "Logs")."""
        fields: dict[str, object] = {
            "event": "fetch", "source": source.id, "url": source.url,
            "outcome": report.outcome, "status": report.status,
            "duration": round(report.duration, 3), "new": report.new,
            "updated": report.updated, "unchanged": report.unchanged, "bytes": report.bytes,
            "next_poll": due.astimezone(UTC).isoformat(timespec="seconds"),
            "error": report.error,
            "interval": schedule.interval if schedule is not None else None,
            "broken": schedule.broken_reason if schedule is not None else None,
            "moved_to": schedule.moved_to if schedule is not None else None}
        log.log(logging.WARNING if report.outcome == "error" else logging.INFO,
                logs.kv(fields), extra={"fields": fields})

    def _job(self, source: Source, result: FetchResult) -> ParseJob:
        assert result.body is not None
        return ParseJob(source.kind, result.body, result.headers, result.final_url, source.id,
                        source.views_field, source.timezone or self.settings.timezone,
                        self.clock(), source.html)

    async def _store(self, source: Source, items: Sequence[Item], warnings: list[str],
                     result: FetchResult, size: int,
                     fingerprints: Sequence[bytes] = ()) -> SourceReport:
        packed = {item.key: fp for item, fp in zip(items, fingerprints, strict=False)}
        entries = [(item, *rules.assign_agency(item, source, self.config.rules))
                   for item in await self._unpruned(source, items)]
        new, updated, unchanged = await self.db.call(self.store.ingest, source.scope, entries,
                                                     self.clock(), self.started, packed)
        if result.moved_to and result.moved_to != source.url:
            warnings.append(f"moved permanently (301/308) to {result.moved_to}; "
                            "update the source's url")
        outcome = "new" if new else ("updated" if updated else "unchanged")
        return SourceReport(source.id, outcome, new, updated, unchanged,  # type: ignore[arg-type]
                            status=result.status, warnings=tuple(warnings),
                            duration=result.duration, bytes=size)

    async def _unpruned(self, source: Source, items: Sequence[Item]) -> Sequence[Item]:
        """Retention (`prune_after`): items older than the prune horizon, and items pruned
        before, are not stored again (aggregator/retention.py)."""
        horizon = prune_horizon(self.clock(), self.config.settings.retention)
        if horizon is None:
            return items
        kept = keep_new(items, horizon)
        gone = await self.db.call(self.store.pruned_keys, source.scope, [i.key for i in kept])
        return [i for i in kept if i.key not in gone] if gone else kept

    async def _ingest_feed(self, source: Source, result: FetchResult) -> SourceReport:
        job = self._job(source, result)
        # parsed pages waiting for the store thread hold every item in memory: when storing
        # is the slower part (a first poll, deduplicated item by item), parsing waits too
        async with self._parsing:
            pool = await self._parse_pool()
            if pool is not None:
                job = replace(job, fingerprint=self._never_fetched(source))
                page = await asyncio.get_running_loop().run_in_executor(pool, parse_job, job)
            else:
                page = parse_job(job)
            if page.ttl is not None:
                self._ttl[source.id] = page.ttl
            return await self._store(source, page.items, list(page.warnings), result,
                                     len(job.body), page.fingerprints)

    async def _ingest_html(self, fetcher: Fetcher, source: Source,
                           result: FetchResult) -> SourceReport:
        spec = source.html
        assert spec is not None and result.body is not None
        zone = resolve_zone(source.timezone or self.settings.timezone)
        first = parse_page(self._job(source, result))
        if first.drift:
            raise ParseError(f"drift: {first.drift}")
        warnings = list(first.warnings)
        pages: list[tuple[str, ParsedPage]] = [(result.final_url, first)]
        size = len(result.body)
        next_url = self._next_page(spec, result.final_url, first, 1)
        while next_url and len(pages) < spec.max_pages:
            if next_url in {url for url, _ in pages}:
                break
            try:
                more = await fetcher.fetch(next_url, None, "html")
            except FetchError as exc:
                warnings.append(f"page {len(pages) + 1} ({next_url}): {exc.message}")
                break
            page = parse_page(self._job(source, more))
            size += len(more.body or b"")
            if page.drift or not page.items:
                break
            pages.append((more.final_url, page))
            next_url = self._next_page(spec, more.final_url, page, len(pages))
        # normalize every page against its own URL; the same item on two pages counts once
        raws: dict[str, tuple[RawItem, str]] = {}
        items: dict[str, Item] = {}
        now = self.clock()
        for url, page in pages:
            for raw in page.items:
                item, _ = normalize_item(raw, source.id, url, zone, now, True, spec.date_format,
                                         spec.language)
                if item is not None and item.key not in items:
                    items[item.key] = item
                    raws[item.key] = (raw, url)
        todo: list[str] = []
        if spec.article is not None and spec.article.max_per_poll:
            keys = [k for k in items if items[k].link]
            known = await self.db.call(self.store.known_keys, source.scope, keys)
            retry = await self.db.call(self.store.keys_wanting_article, source.scope,
                                       [k for k in keys if k in known], ARTICLE_TRIES)
            todo = [k for k in keys if k not in known] + [k for k in keys if k in retry]
            todo = todo[: spec.article.max_per_poll]
            for key in todo:
                raw, url = raws[key]
                link = items[key].link
                assert link is not None
                try:
                    found, problems = await self._article(fetcher, source, key, link)
                except FetchError as exc:
                    warnings.append(f"article {link}: {exc.message}")
                    continue
                merged = merge_article(raw, found, problems)
                item, _ = normalize_item(merged, source.id, url, zone, now, True,
                                         spec.date_format, spec.language)
                if item is not None and item.key == key:
                    # identity of the content stays the listing's, so the next poll of an
                    # unchanged listing finds the item unchanged
                    items[key] = replace(item, content_hash=items[key].content_hash)
        all_items = list(items.values())
        warnings.extend(field_drift(all_items, spec))
        report = await self._store(source, all_items, warnings, result, size)
        if todo:
            await self.db.call(self.store.article_tried, source.scope, todo)
        return report

    async def _article(self, fetcher: Fetcher, source: Source, key: str, link: str
                       ) -> tuple[dict[str, str], list[str]]:
        """An article page's fields, fetched once per poll even when several sources of one
        scope (a portal's latest, most-viewed and region pages) list the same new article."""
        spec = source.html
        assert spec is not None and spec.article is not None
        article_spec, ignore = spec.article, spec.ignore

        async def fetch() -> tuple[dict[str, str], list[str]]:
            page = await fetcher.fetch(link, None, "html")
            return parse_article(page.body or b"", page.headers, article_spec, ignore)

        task = self._articles.get((source.scope, key))
        if task is None:
            task = self._articles[(source.scope, key)] = asyncio.ensure_future(fetch())
        found, problems = await asyncio.shield(task)
        return dict(found), list(problems)

    @staticmethod
    def _next_page(spec: HtmlSpec, url: str, page: ParsedPage, done: int) -> str | None:
        if spec.page_template:
            return spec.page_template.format(page=spec.first_page + done)
        if page.next_url:
            return urljoin(url, page.next_url)
        return None


def merge_article(raw: RawItem, found: dict[str, str], problems: list[str]) -> RawItem:
    """Fill the fields a listing lacks from the article's own page (the listing wins)."""
    names = {"date": "published", "category": "categories"}
    changes: dict[str, object] = {}
    for field, value in found.items():
        attr = names.get(field, field)
        if attr == "categories":
            if not raw.categories:
                changes[attr] = tuple(c.strip() for c in value.split(",") if c.strip())
        elif getattr(raw, attr, None) in (None, ""):
            changes[attr] = value
    kept = [p for p in raw.problems if p.split(":", 1)[0] not in found]
    return replace(raw, **changes, problems=tuple(kept + problems))  # type: ignore[arg-type]


def _describe(exc: AggregatorError) -> str:
    if isinstance(exc, FetchError):
        return exc.message
    return str(exc)
