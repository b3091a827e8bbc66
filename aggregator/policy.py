"""Pure timing decisions: when to poll a source next, and how politely to treat a host.

No clock, no randomness of its own: `now`, the settings and a jitter fraction in [0, 1) are
arguments, so every decision can be tested with a controlled clock.

- After a success the next poll is one interval away (jittered by +-10%). The interval is the
  configured one, or (adaptive sources, the default) one learnt from how often the source
  publishes: the mean gap between new items, as Miniflux's entry-frequency scheduler does.
  A server's own hints (Cache-Control max-age, Expires, RSS <ttl>) may make it longer.
- After the n-th failure in a row the wait is interval * 2**(n-1), at most the backoff cap
  (never less than the interval); a Retry-After makes it longer. A failing source is never
  dropped.
- Every result is clamped: no server makes us poll more often than the source's minimum
  interval, nor wait longer than its maximum (healthy) or the backoff cap (failing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from aggregator.types import HostState, ScheduleSettings, Source, SourceSchedule

JITTER = 0.1  # +-10% of the wait, so sources added together drift apart
ACTIVITY_TAU = 3 * 86400.0  # seconds: how long the memory of a new item lasts (1/e)
MAX_HOST_LEVEL = 8  # a host's slow-down doubles at most this many times
HOST_PAUSE = 60.0  # seconds a host is left alone after a 429 without Retry-After (doubling)


@dataclass(frozen=True)
class Bounds:
    """A source's limits, in seconds: healthy waits stay in [low, high], waits after failures
    in [low, cap]."""

    low: int
    high: int
    cap: int


def bounds(source: Source, settings: ScheduleSettings) -> Bounds:
    """The source's own min/max when set; else the global ones, widened to include the
    source's configured interval (an admin who asks for every 2 minutes gets it)."""
    low = source.min_interval if source.min_interval is not None else \
        min(settings.min_interval, source.interval)
    high = source.max_interval if source.max_interval is not None else \
        max(settings.max_interval, source.interval)
    high = max(high, low)
    return Bounds(low, high, max(settings.backoff_cap, low))


def clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def spread(seconds: float, jitter: float) -> float:
    """`seconds` +-JITTER, by a jitter fraction in [0, 1)."""
    return seconds * (1 + (jitter * 2 - 1) * JITTER)


# --- the interval ---------------------------------------------------------------------------


def learn(schedule: SourceSchedule, source: Source, now: datetime, new: int,
          limits: Bounds) -> SourceSchedule:
    """The schedule after a successful fetch that stored `new` new items.

    `activity` is an exponentially decayed count of new items (memory ACTIVITY_TAU): for a
    source publishing r items a second it settles at r * TAU, so TAU / activity is the mean
    gap between items. The first success starts it as if the source published once per
    configured interval (its first body is a backlog, not a rate)."""
    if schedule.last_success is None or schedule.interval is None:  # nothing learnt yet
        activity = ACTIVITY_TAU / max(source.interval, 1)
    else:
        elapsed = max((now - schedule.last_success).total_seconds(), 0.0)
        activity = schedule.activity * math.exp(-elapsed / ACTIVITY_TAU) + max(new, 0)
    interval = source.interval
    if source.adaptive:
        interval = adaptive_interval(activity, limits)
    else:
        interval = int(clamp(interval, limits.low, limits.high))
    return replace(schedule, interval=interval, activity=activity, last_success=now,
                   parse_failures=0, broken_reason=None)


def adaptive_interval(activity: float, limits: Bounds) -> int:
    """The mean gap between new items (Miniflux: a week / the week's entries), clamped."""
    if activity <= 0:
        return limits.high
    return int(clamp(ACTIVITY_TAU / activity, limits.low, limits.high))


def current_interval(schedule: SourceSchedule | None, source: Source, limits: Bounds) -> int:
    if schedule is not None and schedule.interval is not None and source.adaptive:
        return int(clamp(schedule.interval, limits.low, limits.high))
    return int(clamp(source.interval, limits.low, limits.high))


# --- server hints ---------------------------------------------------------------------------


def http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After (RFC 9110): delay-seconds or an HTTP-date; seconds from `now`, >= 0."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    when = http_date(text)
    if when is None:
        return None
    return max((when - now).total_seconds(), 0.0)


def freshness(headers: dict[str, str], ttl_minutes: int | None, now: datetime) -> float | None:
    """How long the server says the body stays fresh, in seconds: the longest of
    Cache-Control max-age, Expires and RSS <ttl>. `no-cache`/`no-store` count as 0 (which
    never shortens our interval: hints only make it longer)."""
    found: list[float] = []
    control = headers.get("cache-control", "").lower()
    directives = [d.strip() for d in control.split(",") if d.strip()]
    if any(d in ("no-cache", "no-store") for d in directives):
        found.append(0.0)
    for d in directives:
        name, _, value = d.partition("=")
        if name.strip() == "max-age" and value.strip().strip('"').isdigit():
            found.append(float(int(value.strip().strip('"'))))
            break
    else:
        expires = headers.get("expires")
        when = http_date(expires) if expires else None
        if when is not None:
            found.append(max((when - now).total_seconds(), 0.0))
    if ttl_minutes is not None and ttl_minutes >= 0:
        found.append(ttl_minutes * 60.0)
    return max(found) if found else None


# --- the next poll --------------------------------------------------------------------------


def backoff(interval: float, failures: int, cap: float) -> float:
    """The wait after the n-th failure in a row: interval * 2**(n-1), at most `cap` but never
    less than the interval."""
    if failures <= 0:
        return interval
    return min(interval * 2.0 ** min(failures - 1, 40), max(cap, interval))


def next_poll(now: datetime, interval: float, limits: Bounds, failures: int, jitter: float,
              hint: float | None = None, retry: float | None = None) -> datetime:
    """When to poll next. `interval`: the source's current interval; `failures`: failures in a
    row including this one (0 after a success); `hint`: the server's freshness (seconds);
    `retry`: its Retry-After (seconds). Always within the source's bounds."""
    if failures <= 0:
        wait = spread(max(interval, hint or 0.0), jitter)
        wait = clamp(wait, limits.low, limits.high)
    else:
        wait = spread(backoff(interval, failures, limits.cap), jitter)
        if retry is not None:
            wait = max(wait, retry)
        wait = clamp(wait, limits.low, max(limits.cap, interval))
    return now + timedelta(seconds=wait)


def after_failure(schedule: SourceSchedule, status: int | None, parse_failed: bool,
                  reason: str, broken_after: int) -> SourceSchedule:
    """The schedule after a failed fetch: 404/410 make the source broken at once; so do
    `broken_after` parse failures in a row. It keeps being retried on the backoff."""
    parse_failures = schedule.parse_failures + 1 if parse_failed else schedule.parse_failures
    broken = schedule.broken_reason
    if status in (404, 410):
        broken = (f"HTTP {status}: the URL is gone; check the source's url"
                  if status == 410 else
                  f"HTTP {status}: the URL was not found; check the source's url")
    elif parse_failed and parse_failures >= broken_after:
        broken = f"{parse_failures} parse failures in a row (last: {reason})"
    # any other failure leaves it as it was: only a success shows the source works again
    return replace(schedule, parse_failures=parse_failures, broken_reason=broken)


# --- hosts ----------------------------------------------------------------------------------


def host_spacing(base: float, state: HostState | None, ceiling: float) -> float:
    """Seconds between two request starts to a host: the configured spacing, doubled (from at
    least 1 s) for each level of slow-down its 429s earned, at most `ceiling`."""
    if state is None or state.level <= 0:
        return base
    return max(base, min(max(base, 1.0) * 2.0 ** state.level, ceiling))


def host_throttled(state: HostState, now: datetime, retry: float | None, cap: float,
                   reason: str) -> HostState:
    """After a 429 (or a 503 with Retry-After): one level slower, and left alone until the
    Retry-After (clamped to [1 s, cap]) or, without one, HOST_PAUSE doubled per level."""
    level = min(state.level + 1, MAX_HOST_LEVEL)
    pause = retry if retry is not None else HOST_PAUSE * 2.0 ** (level - 1)
    until = now + timedelta(seconds=clamp(pause, 1.0, cap))
    if state.slow_until is not None and state.slow_until > until:
        until = state.slow_until
    return HostState(state.host, level, until, reason)


def host_succeeded(state: HostState, now: datetime) -> HostState:
    """After a success: one level back towards normal."""
    level = max(state.level - 1, 0)
    until = state.slow_until if state.slow_until is not None and state.slow_until > now \
        else None
    return HostState(state.host, level, until, state.reason if level else "")


def host_paused(state: HostState | None, now: datetime) -> datetime | None:
    """Until when the host's sources must wait, or None."""
    if state is None or state.slow_until is None or state.slow_until <= now:
        return None
    return state.slow_until
