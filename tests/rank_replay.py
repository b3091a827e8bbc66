"""Replay of the recorded ranking set (tests/data/rank/, made by bench/rank_data.py): how well
a ranking at time t predicts the views of the next 24 hours. Used by tests/test_rank_quality.py
and bench/rank_eval.py.

At each evaluation time t (every 3 h from day 2 until t+24h is 8 h before the end of the
recording), the candidates are the newest `candidates` stories published by t, as the
aggregator would hold them: only the items published by t, only the samples taken by t. The
score is `aggregator.rank.score_stories` with each source's baseline taken from its items of
the last `baseline_days`, as `SiteBuilder.ranked` does from the store (without the
per-source cap, which only reorders the head of the list).

Each story with a count is judged against what happened next (counts between samples are
interpolated; a count is 0 at publication):

- `next24_rel` (the target the score is built for): the views each of its copies gained from t
  to t+24h, divided by the median gain of that source's candidates, summed over its copies.
  Readers of a small portal count as much as a big portal's, relative to each one's audience.
- `next24`: the views gained from t to t+24h, as they are.
- `views24`: the count at t+24h (the literal "views at t+24h": mostly what it had at t).

Each ranking's agreement with a target is the Spearman rank correlation over the stories
that have a count, averaged over the evaluation times. The baselines are plain "newest first"
and plain "most viewed" (the story's combined latest count at t).
"""

from __future__ import annotations

import bisect
import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from aggregator.rank import Baseline, ItemViews, baselines, item_views, score_stories
from aggregator.types import RankSettings, StoredItem, Story, ViewSamples

DATA = Path(__file__).parent / "data" / "rank"
STEP = timedelta(hours=3)
FIRST_T = timedelta(days=2)
HORIZON = timedelta(hours=24)
LAST_MARGIN = timedelta(hours=8)  # every source has a sample after t+24h (polls: 2-6 h)
TARGETS = ("next24_rel", "next24", "views24")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class RecordedItem:
    id: int
    source: str
    published: datetime
    samples: tuple[tuple[datetime, int], ...]

    def latest(self, t: datetime) -> int | None:
        n = bisect.bisect_right(self.samples, (t, math.inf))
        return self.samples[n - 1][1] if n else None

    def true_views(self, t: datetime) -> float | None:
        """The count at t, interpolated between samples; None past the last sample."""
        if not self.samples or t > self.samples[-1][0]:
            return None
        prev_at, prev_v = self.published, 0
        for at, v in self.samples:
            if at >= t:
                span = (at - prev_at).total_seconds()
                share = (t - prev_at).total_seconds() / span if span > 0 else 1.0
                return prev_v + (v - prev_v) * share
            prev_at, prev_v = at, v
        return float(prev_v)


@dataclass(frozen=True)
class RecordedStory:
    id: str
    items: tuple[RecordedItem, ...]


def load_set(path: Path = DATA) -> tuple[list[RecordedStory], dict[str, object]]:
    stories = []
    for line in (path / "stories.jsonl").read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        stories.append(RecordedStory(raw["id"], tuple(
            RecordedItem(it["id"], it["source"], _time(it["published"]),
                         tuple((_time(at), v) for at, v in it["samples"]))
            for it in raw["items"])))
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    return stories, meta


def _stored(item: RecordedItem, story_id: str, views: int | None) -> StoredItem:
    return StoredItem(id=item.id, uid=str(item.id), source_id=item.source, agency=item.source,
                      link=None, title=story_id, summary="", content="", author=None,
                      published=item.published, updated=item.published, views=views,
                      categories=(), image=None, story_id=story_id)


def view_samples(item: RecordedItem, t: datetime, settings: RankSettings) -> ViewSamples:
    """What the store would give ranking at t (store.views.ViewReader.samples)."""
    start = t - timedelta(hours=settings.growth_hours)
    window = [(at, v) for at, v in item.samples if start <= at <= t]
    return ViewSamples(item.latest(t), tuple(window[:1] + window[-1:]) if window else ())


@dataclass(frozen=True)
class Snapshot:
    """One evaluation time: the candidates as the aggregator sees them, and what followed."""

    t: datetime
    stories: list[Story]
    views: dict[int, ItemViews]
    base: dict[str, Baseline]
    targets: dict[str, dict[str, float]]  # target name -> story id -> value


def snapshot(stories: Sequence[RecordedStory], t: datetime,
             settings: RankSettings) -> Snapshot:
    since = t - timedelta(days=settings.baseline_days)
    candidates: list[Story] = []
    views: dict[int, ItemViews] = {}
    recorded: dict[str, list[RecordedItem]] = {}
    published = [(min(it.published for it in rs.items), rs) for rs in stories]
    newest = sorted(((p, rs) for p, rs in published if p <= t), key=lambda pair: pair[0],
                    reverse=True)[:settings.candidates]
    for _, rs in newest:
        items = [it for it in rs.items if it.published <= t]
        recorded[rs.id] = items
        for it in items:
            views[it.id] = item_views(view_samples(it, t, settings), t, settings)
        candidates.append(Story(rs.id, tuple(_stored(it, rs.id, views[it.id].views)
                                             for it in items)))
    population: dict[str, list[ItemViews]] = {}
    for items in recorded.values():
        for it in items:
            if views[it.id].views is not None and it.published >= since:
                population.setdefault(it.source, []).append(views[it.id])
    gains: dict[int, float] = {}
    for items in recorded.values():
        for it in items:
            now_v, later = it.true_views(t), it.true_views(t + HORIZON)
            if it.samples and now_v is not None and later is not None:
                gains[it.id] = later - now_v
    typical_gain: dict[str, float] = {}
    for source in {it.source for items in recorded.values() for it in items}:
        values = [g for items in recorded.values() for it in items
                  if it.source == source and (g := gains.get(it.id)) is not None]
        if values:
            typical_gain[source] = max(statistics.median(values), 1.0)
    targets: dict[str, dict[str, float]] = {name: {} for name in TARGETS}
    for sid, items in recorded.items():
        counted = [it for it in items if it.id in gains]
        if not counted:
            continue
        targets["next24_rel"][sid] = sum(gains[it.id] / typical_gain[it.source]
                                         for it in counted)
        targets["next24"][sid] = sum(gains[it.id] for it in counted)
        targets["views24"][sid] = sum(it.true_views(t + HORIZON) or 0.0 for it in counted)
    return Snapshot(t, candidates, views, baselines(population), targets)


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); 0 when one side is constant."""
    if len(xs) < 2:
        return 0.0
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / math.sqrt(vx * vy) if vx and vy else 0.0


Ranking = Callable[[Snapshot, RankSettings], dict[str, float]]  # story id -> higher is better


def by_score(snap: Snapshot, settings: RankSettings) -> dict[str, float]:
    scored = score_stories(snap.stories, snap.t, settings, snap.views, snap.base)
    return {story.id: parts.score for story, parts in scored}


def newest_first(snap: Snapshot, settings: RankSettings) -> dict[str, float]:
    return {s.id: s.published.timestamp() for s in snap.stories}


def most_viewed(snap: Snapshot, settings: RankSettings) -> dict[str, float]:
    return {s.id: float(s.views or 0) for s in snap.stories}


def previous_score(snap: Snapshot, settings: RankSettings) -> dict[str, float]:
    """The formula before per-source views and growth (commit 288d752): absolute views,
    the candidates' median for a story without, a 24 h half-life."""
    terms = {s.id: math.log10(1 + s.views) for s in snap.stories if s.views is not None}
    neutral = statistics.median(terms.values()) if terms else 0.0
    return {s.id: (1 + terms.get(s.id, neutral))
            * 0.5 ** ((snap.t - s.published).total_seconds() / 3600 / 24)
            for s in snap.stories}


RANKINGS: dict[str, Ranking] = {"score": by_score, "newest first": newest_first,
                                "most viewed": most_viewed,
                                "previous score (absolute views)": previous_score}
BASELINES = ("newest first", "most viewed")  # what the score must beat


@dataclass(frozen=True)
class Result:
    times: int
    stories: float  # judged stories per evaluation time, on average
    rho: dict[str, dict[str, float]]  # ranking -> target -> mean Spearman


def evaluate(stories: Sequence[RecordedStory], meta: dict[str, object],
             settings: RankSettings | None = None) -> Result:
    settings = settings or RankSettings()
    start, end = _time(str(meta["start"])), _time(str(meta["end"]))
    sums = {name: dict.fromkeys(TARGETS, 0.0) for name in RANKINGS}
    times, judged = 0, 0
    t = start + FIRST_T
    while t + HORIZON <= end - LAST_MARGIN:
        snap = snapshot(stories, t, settings)
        times += 1
        judged += len(snap.targets["next24"])
        for name, ranking in RANKINGS.items():
            scores = ranking(snap, settings)
            for target in TARGETS:
                ids = sorted(snap.targets[target])
                sums[name][target] += spearman([scores[i] for i in ids],
                                               [snap.targets[target][i] for i in ids])
        t += STEP
    rho = {name: {target: value / times for target, value in per.items()}
           for name, per in sums.items()}
    return Result(times, judged / times, rho)
