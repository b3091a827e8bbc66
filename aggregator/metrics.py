"""Process metrics in the Prometheus text exposition format (version 0.0.4), written by hand:
counters and histograms kept in memory (fed by `core` from every poll's reports and every
render), gauges read from the database at scrape time (`web`). Stdlib only.

Families (README, "Monitoring"):
  aggregator_fetches_total{outcome}            counter   fetch attempts by outcome
  aggregator_fetch_duration_seconds            histogram one per fetch attempt
  aggregator_items_ingested_total{kind}        counter   new / updated items stored
  aggregator_publish_duration_seconds          histogram one per render of the site
  plus the gauges `web.metrics_gauges` adds (sources by state, last success, ...).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from aggregator.types import SourceReport

FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
RENDER_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text.replace(chr(92), chr(92) * 2).replace(chr(10), ' ')}",
            f"# TYPE {name} {kind}"]


@dataclass
class Counter:
    name: str
    help: str
    values: dict[Labels, float] = field(default_factory=dict)

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def lines(self) -> list[str]:
        out = _header(self.name, "counter", self.help)
        out += [f"{self.name}{_labels(k)} {_number(v)}" for k, v in sorted(self.values.items())]
        return out


@dataclass
class Histogram:
    name: str
    help: str
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative; +Inf last
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        for n, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[n] += 1
                break
        else:
            self.counts[-1] += 1
        self.total += value
        self.count += 1

    def lines(self) -> list[str]:
        out = _header(self.name, "histogram", self.help)
        running = 0
        for bound, n in zip((*self.buckets, math.inf), self.counts, strict=True):
            running += n
            out.append(f'{self.name}_bucket{{le="{_number(bound)}"}} {running}')
        out.append(f"{self.name}_sum {_number(self.total)}")
        out.append(f"{self.name}_count {self.count}")
        return out


@dataclass(frozen=True)
class Gauge:
    """A gauge family read at scrape time: (labels, value) samples."""

    name: str
    help: str
    samples: Sequence[tuple[Labels, float]]

    def lines(self) -> list[str]:
        return _header(self.name, "gauge", self.help) + [
            f"{self.name}{_labels(k)} {_number(v)}" for k, v in self.samples]


class Metrics:
    """The process's counters and histograms; thread-safe (the scheduler's thread writes,
    the server's event loop reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fetches = Counter("aggregator_fetches_total",
                               "Fetch attempts by outcome (new, updated, unchanged, "
                               "not_modified, error, ...; skipped: not made, the source's "
                               "host asked us to wait).")
        self.fetch_duration = Histogram("aggregator_fetch_duration_seconds",
                                        "Duration of one fetch attempt, parse included.",
                                        FETCH_BUCKETS)
        self.items = Counter("aggregator_items_ingested_total",
                             "Items stored by polls: kind=new (first seen) or updated.")
        self.publish_duration = Histogram("aggregator_publish_duration_seconds",
                                          "Duration of one render of every published "
                                          "document.", RENDER_BUCKETS)

    def record_reports(self, reports: Iterable[SourceReport]) -> None:
        with self._lock:
            for r in reports:
                self.fetches.inc((("outcome", r.outcome),))
                if r.outcome != "skipped":  # not fetched: its host asked us to wait
                    self.fetch_duration.observe(max(r.duration, 0.0))
                if r.new:
                    self.items.inc((("kind", "new"),), r.new)
                if r.updated:
                    self.items.inc((("kind", "updated"),), r.updated)

    def observe_render(self, seconds: float) -> None:
        with self._lock:
            self.publish_duration.observe(seconds)

    @contextmanager
    def timed_render(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe_render(time.perf_counter() - started)

    def exposition(self, gauges: Sequence[Gauge] = ()) -> str:
        """Every family as Prometheus text, the counters first, then `gauges`."""
        with self._lock:
            for name in ("new", "updated"):  # both series exist from the start
                self.items.values.setdefault((("kind", name),), 0.0)
            lines = [*self.fetches.lines(), *self.fetch_duration.lines(), *self.items.lines(),
                     *self.publish_duration.lines()]
        for gauge in gauges:
            lines += gauge.lines()
        return "\n".join(lines) + "\n"


METRICS = Metrics()  # the process's
