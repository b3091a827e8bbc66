"""Polling on schedule inside `aggregator serve` (the APScheduler adapter).

One job wakes every `TICK` seconds, polls the sources that are due (each source's next poll
time lives in SQLite, so a restart continues where it left off) and, when anything was stored,
re-renders the site and hands it to the web app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler

from aggregator.core import Aggregator
from aggregator.site import Site

TICK = 15  # seconds
log = logging.getLogger("aggregator.scheduler")


class Scheduler:
    def __init__(self, agg: Aggregator, on_publish: Callable[[Site], None],
                 tick: float = TICK) -> None:
        self.agg = agg
        self.on_publish = on_publish
        self.tick = tick
        self._scheduler = BackgroundScheduler(timezone="UTC")

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        self._scheduler.add_job(self.poll_due, "interval", seconds=self.tick, id="poll-due",
                                max_instances=1, coalesce=True,
                                next_run_time=self.agg.clock())
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def poll_due(self) -> None:
        try:
            sources = self.agg.select_sources()
            if not sources:
                return
            reports = self.agg.poll(sources)
            changed = any(r.new or r.updated for r in reports)
            failed = [r.source_id for r in reports if r.outcome == "error"]
            log.info("polled %d sources: %d new, %d updated, %d failed%s", len(reports),
                     sum(r.new for r in reports), sum(r.updated for r in reports), len(failed),
                     f" ({', '.join(failed)})" if failed else "")
            if changed:
                self.on_publish(self.agg.render())
        except Exception:  # the scheduler must survive anything one tick does
            log.exception("poll tick failed")
