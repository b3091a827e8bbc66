"""The ranking at its seam (aggregator.rank, pure): the documented formula on worked numbers,
and its properties with Hypothesis: more views never rank a story lower, newer never ranks
lower, the order is deterministic, and one source cannot fill the top."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.rank import (
    Baseline,
    ItemViews,
    baselines,
    cap,
    growth_per_hour,
    score_stories,
)
from aggregator.types import RankSettings, StoredItem, Story

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
SETTINGS = RankSettings()
SOURCES = ("besar", "sedang", "kecil", "tanpa-views")


def item(item_id: int, source: str, hours_old: float, views: int | None = None,
         story: str = "") -> StoredItem:
    at = NOW - timedelta(hours=hours_old)
    return StoredItem(id=item_id, uid=f"u{item_id}", source_id=source, agency=source,
                      link=None, title=f"t{item_id}", summary="", content="", author=None,
                      published=at, updated=at, views=views, categories=(), image=None,
                      story_id=story or f"s{item_id}")


def story_of(*items: StoredItem) -> Story:
    return Story(items[0].story_id, items)


# --- the formula on worked numbers ------------------------------------------------------------


def test_views_are_measured_against_the_source_s_own_typical_count() -> None:
    """100 views on a small portal (typical 10) beat 1,000 on a big one (typical 3,000)."""
    base = {"besar": Baseline(3000.0, 0.0, 50), "kecil": Baseline(10.0, 0.0, 50)}
    small = story_of(item(1, "kecil", 5, 100))
    big = story_of(item(2, "besar", 5, 1000))
    views = {1: ItemViews(100), 2: ItemViews(1000)}
    (first, p1), (second, p2) = score_stories([big, small], NOW, SETTINGS, views, base)
    assert (first.id, second.id) == (small.id, big.id)
    [s1], [s2] = p1.sources, p2.sources
    assert s1.rel_views == pytest.approx(101 / 11) and s2.rel_views == pytest.approx(1001 / 3001)
    assert p1.views_term == pytest.approx(math.log10(1 + 101 / 11))
    decay = 0.5 ** (5 / SETTINGS.half_life_hours)
    assert p1.decay == pytest.approx(decay)
    assert p1.score == pytest.approx((1 + SETTINGS.views_weight * p1.views_term
                                      + SETTINGS.growth_weight * p1.growth_term) * decay)


def test_growth_is_views_gained_per_day_in_typical_counts() -> None:
    base = {"besar": Baseline(999.0, 0.1, 50)}
    growing = story_of(item(1, "besar", 10, 2000))
    (_, parts), = score_stories([growing], NOW, SETTINGS, {1: ItemViews(2000, 50.0)}, base)
    [src] = parts.sources
    assert not src.growth_neutral
    assert src.rel_growth == pytest.approx(24 * 50 / 1000)
    assert parts.growth_term == pytest.approx(math.log10(1 + 1.2))


def test_an_item_without_views_is_neutral_its_source_s_typical() -> None:
    """Neither zero nor the maximum: a story without counts scores as a typical story of its
    source would, with the source's typical growth."""
    base = {"besar": Baseline(300.0, 0.4, 20)}
    unknown = story_of(item(1, "besar", 3))
    typical = story_of(item(2, "besar", 3, 300))
    low = story_of(item(3, "besar", 3, 0))
    high = story_of(item(4, "besar", 3, 30000))
    views = {1: ItemViews(None), 2: ItemViews(300, 0.4 * 301 / 24), 3: ItemViews(0, 0.0),
             4: ItemViews(30000, 500.0)}
    ranked = score_stories([unknown, typical, low, high], NOW, SETTINGS, views, base)
    parts = {s.id: p for s, p in ranked}
    assert parts["s1"].views_neutral and parts["s1"].growth_neutral
    assert parts["s1"].views_term == pytest.approx(math.log10(2))
    assert parts["s1"].score == pytest.approx(parts["s2"].score)  # typical count and growth
    assert [s.id for s, _ in ranked].index("s1") in (1, 2)  # below the hit, above the flop
    assert parts["s3"].score < parts["s1"].score < parts["s4"].score


def test_a_source_without_any_view_data_gets_the_median_pace_of_the_others() -> None:
    base = {"besar": Baseline(100.0, 0.2), "kecil": Baseline(10.0, 0.6),
            "sedang": Baseline(50.0, 1.0)}
    (_, parts), = score_stories([story_of(item(1, "tanpa-views", 1))], NOW, SETTINGS, {},
                                base)
    assert parts.sources[0].rel_growth == pytest.approx(0.6)
    assert parts.views_neutral and parts.growth_neutral


def test_a_story_on_several_portals_adds_each_portal_s_share() -> None:
    base = {"besar": Baseline(1000.0, 0.0), "kecil": Baseline(10.0, 0.0)}
    both = story_of(item(1, "besar", 2, 1000, "s"), item(2, "kecil", 2, 10, "s"),
                    item(3, "kecil", 1, 4, "s"))
    (_, parts), = score_stories([both], NOW, SETTINGS, {}, base)
    assert [p.source_id for p in parts.sources] == ["besar", "kecil"]
    assert [p.views for p in parts.sources] == [1000, 10]  # one portal is never counted twice
    assert parts.views_term == pytest.approx(math.log10(1 + 1 + 1))
    assert parts.views == 1010


def test_growth_per_hour_reads_the_first_and_last_sample_of_the_window() -> None:
    s = replace(SETTINGS, growth_hours=12)
    h = lambda n: NOW - timedelta(hours=n)  # noqa: E731
    assert growth_per_hour([], NOW, s) is None
    assert growth_per_hour([(h(1), 50)], NOW, s) is None  # one sample: unknown
    assert growth_per_hour([(h(1.1), 50), (h(1), 60)], NOW, s) is None  # too close
    assert growth_per_hour([(h(30), 0), (h(10), 100), (h(6), 160), (h(2), 400)], NOW,
                           s) == pytest.approx((400 - 100) / 8)  # h(30) is outside
    assert growth_per_hour([(h(4), 100), (h(2), 90)], NOW, s) == 0  # a counter reset
    assert growth_per_hour([(h(4), 10), (NOW + timedelta(hours=1), 90)], NOW, s) is None


def test_baselines_are_medians_of_each_source_s_recent_items() -> None:
    base = baselines({"besar": [ItemViews(100, 10.0), ItemViews(300), ItemViews(200, 20.0),
                                ItemViews(None)],
                      "tanpa-views": [ItemViews(None)]})
    assert base["besar"] == Baseline(200.0, pytest.approx(24 * 15 / 201), 3)
    assert base["tanpa-views"] == Baseline(None, None, 0)


# --- properties -------------------------------------------------------------------------------


@st.composite
def story_sets(draw: st.DrawFn) -> tuple[list[Story], dict[int, ItemViews]]:
    n = draw(st.integers(1, 12))
    stories: list[Story] = []
    views: dict[int, ItemViews] = {}
    next_id = 1
    for k in range(n):
        items = []
        for _ in range(draw(st.integers(1, 3))):
            source = draw(st.sampled_from(SOURCES))
            count = None if source == "tanpa-views" else draw(
                st.one_of(st.none(), st.integers(0, 10**6)))
            per_hour = None if count is None else draw(
                st.one_of(st.none(), st.floats(0, 1e4, allow_nan=False)))
            hours = draw(st.floats(0, 400, allow_nan=False))
            items.append(item(next_id, source, hours, count, f"s{k:02d}"))
            views[next_id] = ItemViews(count, per_hour)
            next_id += 1
        stories.append(story_of(*items))
    return stories, views


def fixed_base(stories: list[Story], views: dict[int, ItemViews]) -> dict[str, Baseline]:
    """Each source's baseline, from these stories, then held fixed: the baseline is the
    source's whole recent output, which one story's change barely moves."""
    population: dict[str, list[ItemViews]] = {}
    for s in stories:
        for it in s.items:
            population.setdefault(it.source_id, []).append(views[it.id])
    return baselines(population)


def order(stories: list[Story], views: dict[int, ItemViews],
          base: dict[str, Baseline]) -> list[str]:
    return [s.id for s, _ in score_stories(stories, NOW, SETTINGS, views, base)]


@settings(max_examples=300, deadline=None)
@given(story_sets(), st.data())
def test_more_views_never_rank_a_story_lower(data: tuple[list[Story], dict[int, ItemViews]],
                                             draw: st.DataObject) -> None:
    stories, views = data
    base = fixed_base(stories, views)
    counted = [it for s in stories for it in s.items if views[it.id].views is not None]
    if not counted:
        return
    target = draw.draw(st.sampled_from(counted))
    more = draw.draw(st.integers(1, 10**6))
    old = views[target.id]
    faster = draw.draw(st.floats(0, 1e4, allow_nan=False)) if old.per_hour is not None else 0
    bumped = {**views, target.id: ItemViews((old.views or 0) + more,
                                            None if old.per_hour is None
                                            else old.per_hour + faster)}
    before = {s.id: p for s, p in score_stories(stories, NOW, SETTINGS, views, base)}
    after = {s.id: p for s, p in score_stories(stories, NOW, SETTINGS, bumped, base)}
    assert after[target.story_id].score >= before[target.story_id].score
    assert order(stories, bumped, base).index(target.story_id) <= \
        order(stories, views, base).index(target.story_id)


@settings(max_examples=300, deadline=None)
@given(story_sets(), st.data())
def test_newer_never_ranks_lower(data: tuple[list[Story], dict[int, ItemViews]],
                                 draw: st.DataObject) -> None:
    stories, views = data
    base = fixed_base(stories, views)
    k = draw.draw(st.integers(0, len(stories) - 1))
    hours = draw.draw(st.floats(0.01, 300, allow_nan=False))
    younger = Story(stories[k].id, tuple(replace(it, published=it.published
                                                 + timedelta(hours=hours))
                                         for it in stories[k].items))
    moved = [*stories[:k], younger, *stories[k + 1:]]
    before = {s.id: p for s, p in score_stories(stories, NOW, SETTINGS, views, base)}
    after = {s.id: p for s, p in score_stories(moved, NOW, SETTINGS, views, base)}
    assert after[younger.id].score >= before[younger.id].score
    assert order(moved, views, base).index(younger.id) <= \
        order(stories, views, base).index(younger.id)


@settings(max_examples=200, deadline=None)
@given(story_sets(), st.randoms(use_true_random=False))
def test_the_order_is_deterministic_and_ties_go_by_id(
        data: tuple[list[Story], dict[int, ItemViews]], rnd: random.Random) -> None:
    stories, views = data
    ranked = score_stories(stories, NOW, SETTINGS, views)
    shuffled = list(stories)
    rnd.shuffle(shuffled)
    again = score_stories(shuffled, NOW, SETTINGS, views)
    assert [s.id for s, _ in again] == [s.id for s, _ in ranked]
    assert [p.score for _, p in again] == [p.score for _, p in ranked]
    for (a, pa), (b, pb) in itertools.pairwise(ranked):
        assert pa.score > pb.score or (pa.score == pb.score and a.id < b.id)


def test_equal_scores_are_ordered_by_story_id() -> None:
    twins = [story_of(item(n, "besar", 6, 500, f"s{n}")) for n in (3, 1, 2)]
    ranked = score_stories(twins, NOW, SETTINGS, {})
    assert len({p.score for _, p in ranked}) == 1
    assert [s.id for s, _ in ranked] == ["s1", "s2", "s3"]


@settings(max_examples=300, deadline=None)
@given(story_sets(), st.integers(1, 30), st.integers(1, 5))
def test_one_source_cannot_fill_the_top(data: tuple[list[Story], dict[int, ItemViews]],
                                        limit: int, max_per_source: int) -> None:
    stories, views = data
    scored = score_stories(stories, NOW, SETTINGS, views)
    top = cap(scored, limit, max_per_source)
    assert len(top) == min(limit, len(stories))  # nothing is lost while there is room
    assert len({s.id for s, _ in top}) == len(top)
    lead = [s.lead.source_id for s, _ in top]
    uncapped = [s.lead.source_id for s, p in top if not p.capped]
    for source in set(lead):
        assert uncapped.count(source) <= max_per_source
        others_here = sum(1 for x in lead if x != source)
        others_admissible = sum(min(sum(1 for s in stories if s.lead.source_id == o),
                                    max_per_source)
                                for o in {s.lead.source_id for s in stories} - {source})
        assert others_here >= min(others_admissible, limit - max_per_source)
    # the capped ones come last, and each part keeps score order
    flags = [p.capped for _, p in top]
    assert flags == sorted(flags)
    for part in (False, True):
        scores = [p.score for _, p in top if p.capped is part]
        assert scores == sorted(scores, reverse=True)


def test_a_viral_source_leaves_room_for_the_others() -> None:
    """One portal with a viral story and many fresh ones, two quiet sources: the top keeps
    the quiet sources' stories ahead of the portal's extras."""
    portal = [story_of(item(n, "besar", n, 100_000 if n == 1 else 5000, f"p{n:02d}"))
              for n in range(1, 21)]
    quiet = [story_of(item(100 + n, src, 30 + n, 3, f"q{n:02d}"))
             for n, src in enumerate(["kecil", "sedang", "kecil", "sedang"])]
    scored = score_stories(portal + quiet, NOW, SETTINGS, {})
    assert all(s.id.startswith("p") for s, _ in scored[:10])  # the score alone: portal first
    top = cap(scored, 10, 3)
    assert [s.id[0] for s, _ in top] == ["p"] * 3 + ["q"] * 4 + ["p"] * 3
    assert top[0][0].id == "p01" and not top[0][1].capped and top[-1][1].capped
