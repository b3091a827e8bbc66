"""One source, end to end: fetch -> parse -> normalize -> store, with every error captured in
that source's report (one broken source never stops the others).

Fetching is asynchronous (many sources at once, politely per host); parsing and normalizing are
CPU-bound and run in a pool of worker processes so that a poll uses every core; storing happens
in the calling process, one transaction per source.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from aggregator import policy
from aggregator.config import resolve_zone
from aggregator.errors import AggregatorError, FetchError, HTTPStatusError, ParseError
from aggregator.fetch import Fetcher
from aggregator.normalize import normalize_page
from aggregator.parse.feed import parse_feed
from aggregator.store import Store
from aggregator.types import (
    FetchResult,
    NormalizedPage,
    Settings,
    Source,
    SourceReport,
    Validators,
)

Clock = Callable[[], datetime]
Progress = Callable[[SourceReport], None]

# Parsing in worker processes pays off only when there are several bodies to parse.
POOL_THRESHOLD = 4


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


def parse_job(job: ParseJob) -> NormalizedPage:
    """Bytes -> normalized items. Runs in a worker process; raises ParseError."""
    if job.kind != "feed":
        raise ParseError(f"source kind '{job.kind}' is not supported by this version")
    page = parse_feed(job.body, job.headers, job.url, job.views_field)
    return normalize_page(page, job.source_id, job.url, resolve_zone(job.zone), job.now)


def _warm_up() -> None:
    """Import the parsing stack once per worker, before the first job arrives."""
    import aggregator.normalize
    import aggregator.parse.feed  # noqa: F401


def make_pool(settings: Settings, jobs: int) -> Executor | None:
    workers = settings.parse_workers or (os.cpu_count() or 1)
    workers = min(workers, jobs)
    if workers < 2 and jobs < POOL_THRESHOLD:
        return None
    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(max_workers=max(workers, 1), mp_context=context,
                               initializer=_warm_up)


class Poller:
    """Polls a set of sources once. `clock` gives aware UTC datetimes."""

    def __init__(self, settings: Settings, store: Store, clock: Clock,
                 pool: Executor | None = None, progress: Progress | None = None,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.pool = pool
        self.progress = progress
        self.rng = rng or random.Random()

    async def poll(self, sources: Sequence[Source]) -> list[SourceReport]:
        async with Fetcher(self.settings) as fetcher:
            tasks = [asyncio.create_task(self._poll_one(fetcher, s)) for s in sources]
            reports: list[SourceReport] = []
            for done in asyncio.as_completed(tasks):
                report = await done
                reports.append(report)
                if self.progress:
                    self.progress(report)
        order = {s.id: i for i, s in enumerate(sources)}
        return sorted(reports, key=lambda r: order[r.source_id])

    async def _poll_one(self, fetcher: Fetcher, source: Source) -> SourceReport:
        state = self.store.source_state(source.id)
        started = self.clock()
        result: FetchResult | None = None
        try:
            result = await fetcher.fetch(source.url, state.validators, source.kind)
            if result.not_modified:
                report = SourceReport(source.id, "not_modified", status=result.status,
                                      duration=result.duration, warnings=state.warnings)
            else:
                report = await self._ingest(source, result)
        except AggregatorError as exc:
            status = exc.status if isinstance(exc, HTTPStatusError) else \
                (result.status if result else None)
            report = SourceReport(source.id, "error", status=status, error=_describe(exc),
                                  duration=result.duration if result else
                                  (self.clock() - started).total_seconds())
        except Exception as exc:  # a bug must not take the other sources down
            report = SourceReport(source.id, "error", error=f"internal error: {exc!r}",
                                  duration=(self.clock() - started).total_seconds())
        failures = state.failures + 1 if report.outcome == "error" else 0
        due = policy.next_poll(self.clock(), source.interval, failures, self.rng.random())
        validators = None
        if result is not None and report.outcome != "error" and result.status != 304:
            validators = Validators(result.etag, result.last_modified, result.body_hash)
        self.store.record_fetch(report, started, due, validators,
                                result.final_url if result else None)
        return report

    async def _ingest(self, source: Source, result: FetchResult) -> SourceReport:
        assert result.body is not None
        job = ParseJob(source.kind, result.body, result.headers, result.final_url, source.id,
                       source.views_field, source.timezone or self.settings.timezone,
                       self.clock())
        if self.pool is not None:
            page = await asyncio.get_running_loop().run_in_executor(self.pool, parse_job, job)
        else:
            page = parse_job(job)
        entries = [(item, source.agency) for item in page.items]
        new, updated, unchanged = self.store.ingest(source.id, entries, self.clock())
        warnings = list(page.warnings)
        if result.redirects and result.final_url != source.url:
            warnings.append(f"redirected to {result.final_url}")
        outcome = "new" if new else ("updated" if updated else "unchanged")
        return SourceReport(source.id, outcome, new, updated, unchanged,  # type: ignore[arg-type]
                            status=result.status, warnings=tuple(warnings),
                            duration=result.duration, bytes=len(result.body))


def _describe(exc: AggregatorError) -> str:
    if isinstance(exc, FetchError):
        return exc.message
    return str(exc)
