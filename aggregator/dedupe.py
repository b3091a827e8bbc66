"""Items -> stories. Pure: the store finds candidate stories, this module decides.

Today a new item joins a story when another source already carries the same canonical link;
otherwise it starts its own story whose id derives from the item's public id and never changes.
Near-duplicate grouping (different links, edited titles) extends `choose_story`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aggregator.normalize.keys import story_uid
from aggregator.types import Item


@dataclass(frozen=True)
class Candidate:
    """A stored item that shares an exact key (the canonical link) with the new item."""

    story_id: str
    source_id: str
    published: datetime


def choose_story(item_uid: str, item: Item, candidates: Sequence[Candidate]) -> str:
    """The story the new item belongs to: the oldest candidate's story, or a new story id
    derived from the item's own id."""
    if candidates:
        return min(candidates, key=lambda c: (c.published, c.story_id)).story_id
    return story_uid(item_uid)
