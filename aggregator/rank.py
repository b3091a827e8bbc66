"""Pure scoring of stories from views, view growth and age (documented in README, "Ranking").

Portals differ a hundredfold in traffic, so views are measured against each source's own
recent items (its *baseline*: the items it published in the last `baseline_days` that have a
count):

    typical_s   = median latest count of source s's baseline items
    pace_s      = median rel_growth of those of them that have a growth

For each item i of source s:

    rel_views   = (1 + views) / (1 + typical_s)         1 without a count (neutral: typical)
    rel_growth  = 24 * per_hour / (1 + typical_s)        per_hour: views gained per hour
                                                         between the first and the last sample
                                                         of the last growth_hours; pace_s with
                                                         fewer than two samples (neutral)

and for a story (each of its distinct sources once, with the largest count and the fastest
growth of its items from that source):

    views_term  = log10(1 + sum of rel_views)
    growth_term = log10(1 + sum of rel_growth)
    decay       = 0.5 ** (age_hours / half_life_hours)
    score       = (1 + views_weight * views_term + growth_weight * growth_term) * decay

A source without any view data counts as typical (rel_views 1) with the median pace of the
other sources. Every part grows with views and shrinks with age, so more views never rank a
story lower and a newer story never ranks lower than an older one with the same views. Ties are
broken by story id. `cap` then keeps one source from filling the top: past `max_per_source`
stories led by one source, its further stories wait until every other candidate is placed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from aggregator.types import RankSettings, StoredItem, Story, ViewSamples

MIN_GROWTH_SPAN_HOURS = 0.5  # two samples closer than this say nothing about growth


@dataclass(frozen=True)
class ItemViews:
    """What is known of one item's views at the time of ranking."""

    views: int | None  # the latest count
    per_hour: float | None = None  # views gained per hour recently; None: fewer than 2 samples


@dataclass(frozen=True)
class Baseline:
    """A source's typical values, from its recent items (see the module docstring)."""

    typical: float | None  # median latest count; None: no item with a count
    pace: float | None  # median rel_growth; None: no item with a growth
    items: int = 0  # how many items with a count it was taken from


@dataclass(frozen=True)
class SourceParts:
    """One source's share of a story's score."""

    source_id: str
    views: int | None
    typical: float | None
    rel_views: float
    views_neutral: bool  # no count: rel_views is the neutral 1
    per_hour: float | None
    rel_growth: float
    growth_neutral: bool  # no growth: rel_growth is the source's pace


@dataclass(frozen=True)
class ScoreParts:
    story_id: str
    age_hours: float
    decay: float
    views: int | None  # the story's combined count (Story.views)
    views_term: float
    views_neutral: bool  # True when no source of the story has a count
    growth_term: float
    growth_neutral: bool  # True when no source of the story has a growth
    score: float
    sources: tuple[SourceParts, ...] = ()
    capped: bool = False  # placed after the others by max_per_source


def growth_per_hour(samples: Sequence[tuple[datetime, int]], now: datetime,
                    settings: RankSettings) -> float | None:
    """Views gained per hour between the first and the last sample taken in the last
    `growth_hours` before `now`; None with fewer than two such samples (or too close)."""
    start = now - timedelta(hours=settings.growth_hours)
    window = sorted((at, v) for at, v in samples if start <= at <= now)
    if len(window) < 2:
        return None
    (first_at, first), (last_at, last) = window[0], window[-1]
    hours = (last_at - first_at).total_seconds() / 3600
    if hours < MIN_GROWTH_SPAN_HOURS:
        return None
    return max(last - first, 0) / hours


def item_views(stored: ViewSamples, now: datetime, settings: RankSettings) -> ItemViews:
    """An item's stored view data -> what ranking uses of it."""
    return ItemViews(stored.latest, growth_per_hour(stored.window, now, settings))


def _rel_growth(per_hour: float, typical: float) -> float:
    return 24 * per_hour / (1 + typical)


def baselines(population: Mapping[str, Sequence[ItemViews]]) -> dict[str, Baseline]:
    """Each source's typical count and pace, from its recent items."""
    out: dict[str, Baseline] = {}
    for source_id, items in population.items():
        counts = [it.views for it in items if it.views is not None]
        if not counts:
            out[source_id] = Baseline(None, None, 0)
            continue
        typical = float(statistics.median(counts))
        paces = [_rel_growth(it.per_hour, typical) for it in items
                 if it.views is not None and it.per_hour is not None]
        out[source_id] = Baseline(typical, statistics.median(paces) if paces else None,
                                  len(counts))
    return out


def _population(stories: Sequence[Story], views: Mapping[int, ItemViews]
                ) -> dict[str, list[ItemViews]]:
    population: dict[str, list[ItemViews]] = {}
    for story in stories:
        for it in story.items:
            population.setdefault(it.source_id, []).append(_item_views(it, views))
    return population


def _item_views(item: StoredItem, views: Mapping[int, ItemViews]) -> ItemViews:
    return views.get(item.id) or ItemViews(item.views, None)


def score_story(story: Story, now: datetime, settings: RankSettings,
                views: Mapping[int, ItemViews], base: Mapping[str, Baseline],
                default_pace: float) -> ScoreParts:
    """One story's score and its parts (see the module docstring)."""
    counts: dict[str, int | None] = {}  # source -> its largest count in the story
    paces: dict[str, float | None] = {}  # source -> its fastest growth in the story
    for it in story.items:
        iv = _item_views(it, views)
        counts.setdefault(it.source_id, None)
        paces.setdefault(it.source_id, None)
        if iv.views is not None:
            counts[it.source_id] = max(counts[it.source_id] or 0, iv.views)
            if iv.per_hour is not None:
                paces[it.source_id] = max(paces[it.source_id] or 0.0, iv.per_hour)
    parts: list[SourceParts] = []
    for source_id in sorted(counts):
        count, per_hour = counts[source_id], paces[source_id]
        b = base.get(source_id) or Baseline(None, None)
        pace = b.pace if b.pace is not None else default_pace
        has_views = count is not None and b.typical is not None
        rel_views = (1 + max(count or 0, 0)) / (1 + (b.typical or 0)) if has_views else 1.0
        has_growth = has_views and per_hour is not None
        rel_growth = _rel_growth(per_hour or 0.0, b.typical or 0) if has_growth else pace
        parts.append(SourceParts(source_id, count, b.typical, rel_views, not has_views,
                                 per_hour, rel_growth, not has_growth))
    age = max((now - story.published).total_seconds() / 3600, 0.0)
    decay = 0.5 ** (age / settings.half_life_hours)
    views_term = math.log10(1 + sum(p.rel_views for p in parts))
    growth_term = math.log10(1 + sum(p.rel_growth for p in parts))
    score = (1 + settings.views_weight * views_term + settings.growth_weight * growth_term) \
        * decay
    return ScoreParts(story.id, age, decay, story.views, views_term,
                      all(p.views_neutral for p in parts), growth_term,
                      all(p.growth_neutral for p in parts), score, tuple(parts))


def score_stories(stories: Sequence[Story], now: datetime, settings: RankSettings,
                  views: Mapping[int, ItemViews] | None = None,
                  base: Mapping[str, Baseline] | None = None,
                  ) -> list[tuple[Story, ScoreParts]]:
    """Score and sort stories, best first (ties by story id). `views` has what is known of
    each item's views (by item id; default: its latest count, no growth); `base` each source's
    baseline (default: taken from these stories' own items)."""
    views = views or {}
    if base is None:
        base = baselines(_population(stories, views))
    paces = [b.pace for b in base.values() if b.pace is not None]
    default_pace = statistics.median(paces) if paces else 0.0
    scored = [(story, score_story(story, now, settings, views, base, default_pace))
              for story in stories]
    scored.sort(key=lambda pair: (-pair[1].score, pair[0].id))
    return scored


def cap(scored: Sequence[tuple[Story, ScoreParts]], limit: int, max_per_source: int
        ) -> list[tuple[Story, ScoreParts]]:
    """The first `limit` of `scored` (best first), with at most `max_per_source` stories led by
    one source ahead of the others: a source's further stories come after every story of the
    other sources (in score order), so one busy or viral source cannot push the rest out."""
    kept: list[tuple[Story, ScoreParts]] = []
    waiting: list[tuple[Story, ScoreParts]] = []
    per_source: dict[str, int] = {}
    for story, parts in scored:
        source = story.lead.source_id
        if per_source.get(source, 0) < max_per_source:
            per_source[source] = per_source.get(source, 0) + 1
            kept.append((story, parts))
            if len(kept) == limit:
                return kept
        else:
            waiting.append((story, replace(parts, capped=True)))
    return (kept + waiting)[:limit]
