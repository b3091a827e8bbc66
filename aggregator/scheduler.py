"""Polling on schedule inside `aggregator serve` (the APScheduler adapter).

One job wakes every `TICK` seconds, polls the sources that are due (each source's next poll
time lives in SQLite, so a restart continues where it left off) and, when anything was stored,
re-renders the site and hands it to the web app. A config reload (aggregator/reload.py) is
put in force between two ticks (`apply_config`), never in the middle of one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from aggregator.core import Aggregator
from aggregator.reload import ConfigChange
from aggregator.site import Site
from aggregator.types import Config

TICK = 15  # seconds
log = logging.getLogger("aggregator.scheduler")


class Scheduler:
    def __init__(self, agg: Aggregator, on_publish: Callable[[Site], None],
                 tick: float = TICK) -> None:
        self.agg = agg
        self.on_publish = on_publish
        self.tick = tick
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._lock = threading.Lock()  # a tick and a config reload never overlap
        # heartbeat for /healthz: when the last tick started and ended (monotonic seconds)
        self.tick_started: float | None = None
        self.tick_ended: float | None = None

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        self._scheduler.add_job(self.poll_due, "interval", seconds=self.tick, id="poll-due",
                                max_instances=1, coalesce=True,
                                next_run_time=self.agg.clock())
        self._scheduler.start()

    def stop(self) -> None:
        self.agg.stop()  # a poll under way winds down within the grace period
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def wake(self) -> None:
        """Run the next tick now (after a reload that made sources due)."""
        if self._scheduler.running:
            self._scheduler.modify_job("poll-due", next_run_time=datetime.now(UTC))

    def apply_config(self, config: Config, change: ConfigChange) -> None:
        """Put a validated config in force after the tick in flight, re-render the site
        with it, and poll the sources it made due (added, or rescheduled) at once."""
        with self._lock:
            self.agg.reload(config, change.added, change.intervals)
            site = self.agg.render()
        self.on_publish(site)
        if change.added or change.intervals:
            self.wake()

    def poll_due(self) -> None:
        self.tick_started = time.monotonic()
        try:
            with self._lock:
                self._poll_due()
        finally:
            self.tick_ended = time.monotonic()

    def _poll_due(self) -> None:
        aged = False  # retention removed items or aged some out of the feeds: render again
        try:
            done = self.agg.maintain()  # retention, at most once an hour
            if done is not None:
                log.info("retention: %d items and %d stories pruned, %d view samples and %d "
                         "fetch log rows compacted away", done.items_pruned,
                         done.stories_pruned, done.samples_dropped, done.fetches_dropped)
                aged = bool(done.items_pruned
                            or self.agg.config.settings.retention.feed_max_age)
        except Exception:
            log.exception("retention maintenance failed")
        try:
            sources = self.agg.select_sources()
            if not sources:
                if aged:
                    self.on_publish(self.agg.render())
                return
            reports = self.agg.poll(sources)
            changed = any(r.new or r.updated for r in reports)
            failed = [r.source_id for r in reports if r.outcome == "error"]
            log.info("polled %d sources: %d new, %d updated, %d failed%s", len(reports),
                     sum(r.new for r in reports), sum(r.updated for r in reports), len(failed),
                     f" ({', '.join(failed)})" if failed else "")
            if changed or aged:
                self.on_publish(self.agg.render())
        except Exception:  # the scheduler must survive anything one tick does
            log.exception("poll tick failed")
