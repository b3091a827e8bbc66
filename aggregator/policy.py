"""Pure timing decisions: when to poll a source next. No clock, no randomness of its own:
`now` and a jitter fraction in [0, 1) are arguments."""

from __future__ import annotations

from datetime import datetime, timedelta

BACKOFF_CAP = timedelta(hours=6)
JITTER = 0.1  # +-10% of the interval, so sources added together drift apart


def next_poll(now: datetime, interval: int, failures: int, jitter: float,
              cap: timedelta = BACKOFF_CAP) -> datetime:
    """After a success (`failures` == 0) the next poll is one interval away; after the n-th
    failure in a row it is interval * 2**(n-1) away, at most `cap` (but never less than the
    interval). A failing source keeps being retried: it is never dropped."""
    base = timedelta(seconds=interval)
    if failures > 0:
        base = min(base * (2 ** min(failures - 1, 20)), max(cap, base))
    spread = (jitter * 2 - 1) * JITTER  # -10% .. +10%
    return now + base * (1 + spread)
