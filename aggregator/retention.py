"""Retention policy (pure): which items the feeds show, which the database keeps, which view
samples and fetch log rows are kept. Every decision takes `now` and the settings; the store
applies them (`aggregator.store.retention`).

View samples are compacted so that the database grows with items, not with polls: every
sample of the recent window (never less than what ranking reads, `rank.growth_hours`), then
the last sample of each hour, then the last of each day. Buckets are aligned to whole UTC
hours and days, and the window edges to bucket edges, so a kept sample stays the last of its
bucket when it later moves to a coarser zone: compacting again changes nothing, and an item's
latest sample is always kept (it is the last of its bucket).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.types import Item, RankSettings, RetentionSettings

MAINTENANCE_EVERY = timedelta(hours=1)  # `run` and `serve` compact and prune at most this often


def feed_horizon(now: datetime, settings: RetentionSettings) -> datetime | None:
    """Items published before this are left out of every feed (None: no limit)."""
    if settings.feed_max_age is None:
        return None
    return now - timedelta(seconds=settings.feed_max_age)


def prune_horizon(now: datetime, settings: RetentionSettings) -> datetime | None:
    """Items published before this are deleted, and not stored again (None: never)."""
    if settings.prune_after is None:
        return None
    return now - timedelta(seconds=settings.prune_after)


def maintenance_due(last: datetime | None, now: datetime,
                    every: timedelta = MAINTENANCE_EVERY) -> bool:
    return last is None or now - last >= every or last > now


def keep_new(items: Iterable[Item], horizon: datetime | None) -> list[Item]:
    """The items a poll may store: not dated by their source before the prune horizon."""
    if horizon is None:
        return list(items)
    return [it for it in items if it.dated_by != "source" or it.published >= horizon]


def _floor_hour(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def _floor_day(when: datetime) -> datetime:
    return when.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class SampleHorizons:
    """Samples at or after `raw` are all kept; from `hourly` to `raw`, the last of each UTC
    hour; before `hourly`, the last of each UTC day. `raw` is a whole hour, `hourly` a whole
    day, `hourly <= raw`."""

    raw: datetime
    hourly: datetime

    def bucket(self, at: datetime) -> datetime | None:
        """The bucket of a sample taken at `at`: None in the raw window."""
        if at >= self.raw:
            return None
        if at >= self.hourly:
            return _floor_hour(at)
        return _floor_day(at)


def sample_horizons(now: datetime, settings: RetentionSettings,
                    rank: RankSettings) -> SampleHorizons:
    raw_hours = max(settings.samples_raw_hours, rank.growth_hours)
    raw = _floor_hour(now - timedelta(hours=raw_hours))
    hourly = _floor_day(min(raw, now - timedelta(days=settings.samples_hourly_days)))
    return SampleHorizons(raw, hourly)


def samples_to_drop(times: Sequence[datetime], horizons: SampleHorizons) -> list[datetime]:
    """Of one item's sample times, those compaction deletes: every sample outside the raw
    window that is not the last of its bucket. The item's latest sample is never dropped."""
    if not times:
        return []
    last: dict[datetime, datetime] = {}
    for at in times:
        bucket = horizons.bucket(at)
        if bucket is not None and (bucket not in last or at > last[bucket]):
            last[bucket] = at
    keep = set(last.values()) | {max(times)}
    return sorted(at for at in set(times) if horizons.bucket(at) is not None
                  and at not in keep)
