"""Ranking is judged on the recorded set (tests/data/rank/, made by bench/rank_data.py): the
score at time t must predict the next 24 hours' views (per source, and as they are) better
than plain "newest first" and plain "most viewed". `python bench/rank_eval.py` prints the
same figures (bench/README.md, "Ranking quality")."""

from __future__ import annotations

from collections import Counter

from tests.rank_replay import BASELINES, evaluate, load_set

MARGIN = 0.05  # the score must beat each baseline by at least this much Spearman


def test_the_recorded_set_is_realistic_enough() -> None:
    stories, meta = load_set()
    items = [it for s in stories for it in s.items]
    assert len(stories) >= 200
    finals = {}
    for source in {it.source for it in items}:
        counts = sorted(it.samples[-1][1] for it in items if it.source == source and it.samples)
        if counts:
            finals[source] = counts[len(counts) // 2]
    assert max(finals.values()) >= 50 * min(finals.values())  # traffic differs ~100x
    assert sum(not it.samples for it in items) >= 0.1 * len(items)  # some without views
    assert sum(len(s.items) > 1 for s in stories) >= 10  # on several portals
    spans = [(it.samples[-1][0] - it.samples[0][0]).days for it in items if it.samples]
    assert min(spans) >= 1 and max(spans) >= 6  # sampled over several days
    per_source = Counter(it.source for it in items)
    assert len(per_source) >= 5
    # some viral: a story's final count at least 10x its source's median
    assert any(it.samples and it.samples[-1][1] >= 10 * finals[it.source] for it in items)
    assert meta["generator"] == "bench/rank_data.py"


def test_the_score_beats_newest_first_and_most_viewed() -> None:
    result = evaluate(*load_set())
    assert result.times >= 30 and result.stories >= 100
    for target in ("next24_rel", "next24"):
        score = result.rho["score"][target]
        for baseline in BASELINES:
            assert score >= result.rho[baseline][target] + MARGIN, (target, baseline,
                                                                    result.rho)
