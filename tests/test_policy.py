"""The scheduling policy (aggregator/policy.py) with a controlled clock: every decision takes
`now` and a jitter fraction, so these are exact. Hypothesis checks the bounds hold for any
input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from aggregator import policy
from aggregator.types import HostState, ScheduleSettings, Source, SourceSchedule

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
MID = 0.5  # the jitter fraction that means "no jitter"
SETTINGS = ScheduleSettings()  # min 5m, max 24h, backoff cap 6h


def source(interval: int = 1800, **kw: object) -> Source:
    return Source("s", "feed", "https://jatengprov.go.id/feed", "a", interval, **kw)  # type: ignore[arg-type]


def wait(due: datetime) -> float:
    return (due - NOW).total_seconds()


LIMITS = policy.bounds(source(), SETTINGS)


def test_bounds_default_to_the_settings_widened_by_the_sources_interval() -> None:
    assert policy.bounds(source(), SETTINGS) == policy.Bounds(300, 86400, 21600)
    # an admin who asks for every 2 minutes gets it; a weekly source is not forced daily
    assert policy.bounds(source(120), SETTINGS).low == 120
    assert policy.bounds(source(7 * 86400), SETTINGS).high == 7 * 86400
    own = policy.bounds(source(1800, min_interval=900, max_interval=3600), SETTINGS)
    assert (own.low, own.high) == (900, 3600)


def test_success_waits_one_interval_with_ten_percent_jitter() -> None:
    assert wait(policy.next_poll(NOW, 1800, LIMITS, 0, MID)) == 1800
    assert wait(policy.next_poll(NOW, 1800, LIMITS, 0, 0.0)) == 1620
    assert wait(policy.next_poll(NOW, 1800, LIMITS, 0, 0.999999)) < 1980


def test_server_hints_only_lengthen_and_stay_within_the_maximum() -> None:
    assert wait(policy.next_poll(NOW, 1800, LIMITS, 0, MID, hint=7200)) == 7200
    assert wait(policy.next_poll(NOW, 1800, LIMITS, 0, MID, hint=10)) == 1800
    assert wait(policy.next_poll(NOW, 1800, LIMITS, 0, MID, hint=30 * 86400)) == 86400


def test_cache_control_expires_and_ttl_are_read() -> None:
    assert policy.freshness({"cache-control": "public, max-age=3600"}, None, NOW) == 3600
    expires = "Mon, 02 Mar 2026 10:00:00 GMT"  # two hours after NOW
    assert policy.freshness({"expires": expires}, None, NOW) == 7200
    # max-age wins over Expires (RFC 9111); <ttl> is minutes; the longest hint counts
    assert policy.freshness({"cache-control": "max-age=60", "expires": expires}, None,
                            NOW) == 60
    assert policy.freshness({}, 180, NOW) == 10800
    assert policy.freshness({"cache-control": "max-age=60"}, 180, NOW) == 10800
    # PHP's "already expired" and no-cache mean nothing to wait for; junk is ignored
    assert policy.freshness({"expires": "Thu, 19 Nov 1981 08:52:00 GMT"}, None, NOW) == 0
    assert policy.freshness({"cache-control": "no-cache"}, None, NOW) == 0
    assert policy.freshness({"expires": "-1", "cache-control": "max-age=abc"}, None,
                            NOW) is None


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    assert policy.retry_after("120", NOW) == 120
    assert policy.retry_after("Mon, 02 Mar 2026 09:30:00 GMT", NOW) == 5400
    assert policy.retry_after("Mon, 02 Mar 2026 07:00:00 GMT", NOW) == 0  # in the past
    assert policy.retry_after("soon", NOW) is None
    assert policy.retry_after(None, NOW) is None


def test_failures_back_off_exponentially_up_to_the_cap() -> None:
    waits = [wait(policy.next_poll(NOW, 1800, LIMITS, n, MID)) for n in range(1, 8)]
    assert waits == [1800, 3600, 7200, 14400, 21600, 21600, 21600]
    # the cap never makes a failing source wait less than its interval
    slow = policy.bounds(source(43200), SETTINGS)
    assert wait(policy.next_poll(NOW, 43200, slow, 5, MID)) == 43200


def test_retry_after_is_honoured_within_the_cap() -> None:
    assert wait(policy.next_poll(NOW, 1800, LIMITS, 1, MID, retry=5400)) == 5400
    # a short Retry-After does not shorten the backoff; a huge one is cut to the cap
    assert wait(policy.next_poll(NOW, 1800, LIMITS, 3, MID, retry=5)) == 7200
    assert wait(policy.next_poll(NOW, 1800, LIMITS, 1, MID, retry=30 * 86400)) == 21600


def test_adaptive_interval_follows_the_publishing_rate() -> None:
    src = source(1800)
    sched = policy.learn(SourceSchedule(), src, NOW, 50, LIMITS)  # the backlog: not a rate
    assert sched.interval == 1800
    # a source with a new item every 10 minutes for three days: polled every ~10 minutes
    busy, at = sched, NOW
    for _ in range(3 * 24 * 6):
        at += timedelta(minutes=10)
        busy = policy.learn(busy, src, at, 1, LIMITS)
    assert busy.interval is not None and 600 <= busy.interval < 900
    # one with nothing new for five days: polled far less often, at most daily
    quiet = policy.learn(sched, src, NOW + timedelta(days=5), 0, LIMITS)
    assert quiet.interval is not None and quiet.interval > 2 * 3600
    silent = policy.learn(quiet, src, NOW + timedelta(days=60), 0, LIMITS)
    assert silent.interval == 86400
    # within the source's own bounds, and not at all when adaptive is off
    tight = policy.bounds(source(1800, max_interval=7200), SETTINGS)
    assert policy.learn(quiet, source(1800, max_interval=7200), NOW + timedelta(days=60), 0,
                        tight).interval == 7200
    fixed = source(1800, adaptive=False)
    assert policy.learn(quiet, fixed, NOW + timedelta(days=60), 0, LIMITS).interval == 1800
    assert policy.current_interval(silent, fixed, LIMITS) == 1800


def test_404_410_and_repeated_parse_failures_make_a_source_broken() -> None:
    sched = SourceSchedule(interval=1800)
    gone = policy.after_failure(sched, 410, False, "HTTP 410", 5)
    assert gone.broken_reason is not None and "410" in gone.broken_reason
    # a timeout afterwards does not clear it; only a success does
    assert policy.after_failure(gone, None, False, "timed out", 5).broken_reason == \
        gone.broken_reason
    assert policy.learn(gone, source(), NOW, 0, LIMITS).broken_reason is None
    bad = sched
    for n in range(1, 6):
        bad = policy.after_failure(bad, 200, True, "not an RSS or Atom feed", 5)
        assert (bad.broken_reason is not None) == (n == 5)
    assert bad.broken_reason is not None and "5 parse failures" in bad.broken_reason
    assert policy.after_failure(sched, 500, False, "HTTP 500", 5).broken_reason is None
    assert policy.learn(bad, source(), NOW, 0, LIMITS).parse_failures == 0


def test_a_429_slows_the_host_and_successes_bring_it_back() -> None:
    host = HostState("jatengprov.go.id")
    assert policy.host_spacing(0.5, host, 60) == 0.5
    once = policy.host_throttled(host, NOW, 120, 21600, "HTTP 429 from x")
    assert (once.level, once.slow_until) == (1, NOW + timedelta(seconds=120))
    assert policy.host_paused(once, NOW + timedelta(seconds=119)) == once.slow_until
    assert policy.host_paused(once, NOW + timedelta(seconds=120)) is None
    assert policy.host_spacing(0.5, once, 60) == 2.0
    twice = policy.host_throttled(once, NOW, None, 21600, "HTTP 429 from x")
    assert twice.level == 2 and policy.host_spacing(0.5, twice, 60) == 4.0
    # without Retry-After: a pause doubling per level; a huge Retry-After is capped
    assert twice.slow_until == NOW + timedelta(seconds=120)  # the earlier, longer pause
    assert policy.host_throttled(host, NOW, 10**9, 21600, "").slow_until == \
        NOW + timedelta(seconds=21600)
    later = NOW + timedelta(hours=1)
    back = policy.host_succeeded(policy.host_succeeded(twice, later), later)
    assert back == HostState("jatengprov.go.id", 0, None, "")


# --- properties -----------------------------------------------------------------------------

intervals = st.integers(min_value=60, max_value=30 * 86400)
fractions = st.floats(min_value=0, max_value=1, exclude_max=True)
seconds = st.none() | st.floats(min_value=0, max_value=10**9, allow_nan=False)


@st.composite
def limits(draw: st.DrawFn) -> tuple[Source, policy.Bounds]:
    interval = draw(intervals)
    low = draw(st.none() | st.integers(min_value=60, max_value=interval))
    high = draw(st.none() | st.integers(min_value=interval, max_value=60 * 86400))
    settings = ScheduleSettings(min_interval=draw(intervals), max_interval=draw(intervals),
                                backoff_cap=draw(intervals))
    src = source(interval, min_interval=low, max_interval=high)
    return src, policy.bounds(src, settings)


@given(limits(), st.integers(min_value=0, max_value=200), fractions, seconds, seconds)
def test_every_next_poll_is_within_the_bounds(sb: tuple[Source, policy.Bounds], failures: int,
                                              jitter: float, hint: float | None,
                                              retry: float | None) -> None:
    src, b = sb
    interval = policy.current_interval(None, src, b)
    assert b.low <= interval <= b.high
    waited = wait(policy.next_poll(NOW, interval, b, failures, jitter, hint, retry))
    assert waited >= b.low - 1e-6
    if failures == 0:
        assert waited <= b.high + 1e-6
    else:
        assert waited <= max(b.cap, interval) + 1e-6


@given(limits(), fractions, st.integers(min_value=1, max_value=100))
def test_backoff_is_monotone_up_to_the_cap(sb: tuple[Source, policy.Bounds], jitter: float,
                                           failures: int) -> None:
    src, b = sb
    interval = policy.current_interval(None, src, b)
    one = wait(policy.next_poll(NOW, interval, b, failures, jitter))
    more = wait(policy.next_poll(NOW, interval, b, failures + 1, jitter))
    assert one <= more + 1e-6
    assert policy.backoff(interval, failures, b.cap) <= max(b.cap, interval)


@given(limits(), st.lists(st.tuples(st.integers(min_value=0, max_value=10**6),
                                    st.integers(min_value=0, max_value=500)), max_size=30))
def test_the_learnt_interval_stays_within_the_bounds(sb: tuple[Source, policy.Bounds],
                                                     polls: list[tuple[int, int]]) -> None:
    src, b = sb
    sched, at = SourceSchedule(), NOW
    for gap, new in polls:
        at += timedelta(seconds=gap)
        sched = policy.learn(sched, src, at, new, b)
        assert sched.interval is not None and b.low <= sched.interval <= b.high
        assert sched.activity >= 0


@given(st.floats(min_value=0, max_value=3600), st.integers(min_value=0, max_value=20),
       st.floats(min_value=1, max_value=3600))
def test_host_spacing_grows_with_the_level_and_stays_under_the_ceiling(
        base: float, level: int, ceiling: float) -> None:
    now = policy.host_spacing(base, HostState("h", level), ceiling)
    nxt = policy.host_spacing(base, HostState("h", level + 1), ceiling)
    assert base <= now <= nxt <= max(base, ceiling)
