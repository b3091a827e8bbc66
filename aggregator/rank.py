"""Pure scoring of stories from views and age (documented in README, "Ranking").

    views_term = log10(1 + views)            views: the story's combined latest count
    views_term = median of the candidates'   when the story has no view data (neutral: not
                 views_terms                  zero, not the maximum)
    decay      = 0.5 ** (age_hours / half_life_hours)
    score      = (1 + views_weight * views_term) * decay

Ties are broken by story id, so the order is deterministic.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aggregator.types import RankSettings, Story


@dataclass(frozen=True)
class ScoreParts:
    story_id: str
    age_hours: float
    decay: float
    views: int | None
    views_term: float
    views_neutral: bool  # True when views_term is the neutral value
    score: float


def views_term(views: int) -> float:
    return math.log10(1 + max(views, 0))


def score_stories(stories: Sequence[Story], now: datetime,
                  settings: RankSettings) -> list[tuple[Story, ScoreParts]]:
    """Score and sort stories, best first."""
    known = [views_term(v) for s in stories if (v := s.views) is not None]
    neutral = statistics.median(known) if known else 0.0
    scored: list[tuple[Story, ScoreParts]] = []
    for story in stories:
        age = max((now - story.published).total_seconds() / 3600, 0.0)
        decay = 0.5 ** (age / settings.half_life_hours)
        views = story.views
        term = views_term(views) if views is not None else neutral
        score = (1 + settings.views_weight * term) * decay
        scored.append((story, ScoreParts(story.id, age, decay, views, term, views is None,
                                         score)))
    scored.sort(key=lambda pair: (-pair[1].score, pair[0].id))
    return scored
