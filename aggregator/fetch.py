"""HTTP fetching (the httpx adapter: the only module that imports httpx).

One `Fetcher` per poll: a shared connection pool, a global concurrency limit and per-host
politeness (many agency sources share one provincial domain): at most K requests at once and
a minimum spacing between request starts per host, both configurable per host; a 429 (or a
503 with Retry-After) from any URL of a host slows that whole host (aggregator/policy.py).
Each request is conditional (ETag, Last-Modified), has a total deadline, a bounded number of
redirects and a maximum body size counted after decompression; a body whose hash equals the
last one counts as not modified.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from aggregator import policy
from aggregator.errors import (
    BodyTooLarge,
    ConnectFailed,
    FetchDeferred,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    RobotsDisallowed,
    TooManyRedirects,
)
from aggregator.types import FetchResult, HostState, Settings, Validators

ACCEPT = {
    "feed": "application/rss+xml, application/atom+xml, application/xml;q=0.9, "
            "text/xml;q=0.9, */*;q=0.5",
    "html": "text/html, application/xhtml+xml;q=0.9, */*;q=0.5",
}


ROBOTS_TTL = timedelta(hours=24)
ROBOTS_MAX_BYTES = 512 * 1024
ROBOTS_AGENT = "aggregator"
MAX_CRAWL_DELAY = 60.0  # seconds; a larger Crawl-delay is capped (and the cap is logged)


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class RobotsCache(Protocol):
    """Where robots.txt answers are kept between runs (the store, through its thread)."""

    async def robots_get(self, origin: str) -> tuple[int, str, datetime] | None: ...

    async def robots_put(self, origin: str, status: int, body: str, at: datetime) -> None: ...


class Robots:
    """One host's robots.txt, read per RFC 9309: a 4xx answer allows everything; a 5xx answer
    or no answer at all disallows everything (until the next try)."""

    def __init__(self, status: int, body: str) -> None:
        import urllib.robotparser  # it loads urllib.request: only HTML sources need it

        self.status = status
        self.parser = urllib.robotparser.RobotFileParser()
        self.parser.parse(body.splitlines() if 200 <= status < 300 else [])

    def allowed(self, url: str) -> bool:
        if 400 <= self.status < 500:
            return True
        if not 200 <= self.status < 300:
            return False
        return self.parser.can_fetch(ROBOTS_AGENT, url)

    def crawl_delay(self) -> float:
        if not 200 <= self.status < 300:
            return 0.0
        delay = self.parser.crawl_delay(ROBOTS_AGENT)
        return min(float(delay or 0), MAX_CRAWL_DELAY)

    def why_not(self) -> str:
        if not 200 <= self.status < 300 and not 400 <= self.status < 500:
            reason = f"HTTP {self.status}" if self.status else "no answer"
            return f"robots.txt could not be read ({reason}); RFC 9309 says: do not crawl"
        return f"robots.txt disallows this URL for user agent '{ROBOTS_AGENT}'"


SHARD_CONNECTIONS = 2


class Fetcher:
    """Requests go through many small connection pools (shards) rather than one big one:
    httpcore checks every connection of its pool, with a system call, whenever a request
    starts or ends, so a request's CPU cost grows with the pool's size (bench/README.md: 3.2 ms
    per 304 with one pool of 32 connections, 1.2 ms with pools of 8, about 0.7 ms with 2).
    A host's requests stay in one shard, so its connections are reused; a shard keeps at most
    SHARD_CONNECTIONS idle connections but never makes a request wait for one."""

    def __init__(self, settings: Settings, robots_cache: RobotsCache | None = None,
                 clock: Callable[[], datetime] | None = None,
                 hosts: Mapping[str, HostState] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.settings = settings
        self._shards: list[httpx.AsyncClient] = []
        self._turns: dict[str, int] = {}
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._robots_cache = robots_cache
        self._robots: dict[str, Robots] = {}
        self._robots_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._spacing_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._last_request: dict[str, float] = {}
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self.host_states: dict[str, HostState] = dict(hosts or {})
        self.touched_hosts: set[str] = set()  # whose state changed during this poll
        self.stopping = False  # set by `stop()`: no request starts any more

    def stop(self) -> None:
        """From now on no request starts (each raises FetchDeferred); those under way go on."""
        self.stopping = True

    def _now(self) -> datetime:
        return self._clock() if self._clock else datetime.now(UTC)

    def host_limit(self, host: str) -> int:
        override = self.settings.schedule.hosts.get(host)
        if override is not None and override.concurrency is not None:
            return override.concurrency
        return self.settings.per_host_concurrency

    def host_spacing(self, host: str) -> float:
        """Seconds between request starts to `host`: configured, grown by its 429s."""
        schedule = self.settings.schedule
        override = schedule.hosts.get(host)
        base = override.spacing if override is not None and override.spacing is not None \
            else schedule.host_spacing
        return policy.host_spacing(base, self.host_states.get(host), schedule.max_host_spacing)

    def _check(self, host: str, url: str) -> None:
        if self.stopping:
            raise FetchDeferred(url, "not started: stopping", None)
        state = self.host_states.get(host)
        until = policy.host_paused(state, self._now()) if state is not None else None
        if state is not None and until is not None:
            raise FetchDeferred(url, f"host {host} asked us to wait until "
                                     f"{until.isoformat(timespec='seconds')} ({state.reason})",
                                until)

    def _throttled(self, host: str, exc: HTTPStatusError) -> None:
        """A 429, or a 503 with Retry-After: the whole host slows down."""
        if exc.status != 429 and not (exc.status == 503 and exc.retry_after):
            return
        now = self._now()
        state = self.host_states.get(host) or HostState(host)
        retry = policy.retry_after(exc.retry_after, now)
        self.host_states[host] = policy.host_throttled(
            state, now, retry, self.settings.schedule.backoff_cap,
            f"HTTP {exc.status} from {exc.url}")
        self.touched_hosts.add(host)

    def _succeeded(self, host: str) -> None:
        state = self.host_states.get(host)
        if state is not None and state.level > 0:
            self.host_states[host] = policy.host_succeeded(state, self._now())
            self.touched_hosts.add(host)

    async def __aenter__(self) -> Fetcher:
        s = self.settings
        count = max(1, -(-s.concurrency // SHARD_CONNECTIONS))
        self._per_host_shards = max(1, -(-s.per_host_concurrency // SHARD_CONNECTIONS))
        tls = httpx.create_ssl_context()  # one CA bundle load for every shard
        self._shards = [httpx.AsyncClient(
            verify=tls,
            follow_redirects=True,
            max_redirects=s.max_redirects,
            timeout=httpx.Timeout(s.timeout),
            limits=httpx.Limits(max_connections=s.concurrency,
                                max_keepalive_connections=SHARD_CONNECTIONS),
            headers={"User-Agent": s.user_agent},
            trust_env=False,
        ) for _ in range(count)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self._shards:
            await client.aclose()
        self._shards = []

    def _client(self, url: str) -> httpx.AsyncClient:
        """The shard of `url`'s host (one of its sub-shards in turn, when the host may have
        more than SHARD_CONNECTIONS requests at once)."""
        assert self._shards, "use `async with Fetcher(...)`"
        host = urlsplit(url).hostname or ""
        turn = self._turns[host] = self._turns.get(host, -1) + 1  # round robin per host
        sub = turn % self._per_host_shards
        return self._shards[(zlib.crc32(host.encode()) + sub) % len(self._shards)]

    async def robots(self, url: str) -> Robots:
        """The robots.txt of `url`'s origin: from memory, the cache (24 h), or fetched."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        async with self._robots_locks[origin]:
            if origin in self._robots:
                return self._robots[origin]
            now = self._clock() if self._clock else None
            cached = await self._robots_cache.robots_get(origin) if self._robots_cache else None
            if cached is not None and now is not None and now - cached[2] < ROBOTS_TTL:
                robots = Robots(cached[0], cached[1])
            else:
                status, body = await self._get_robots(origin + "/robots.txt")
                robots = Robots(status, body)
                if self._robots_cache is not None and now is not None and status:
                    await self._robots_cache.robots_put(origin, status, body, now)
            self._robots[origin] = robots
            return robots

    async def _get_robots(self, url: str) -> tuple[int, str]:
        try:
            async with asyncio.timeout(self.settings.timeout):
                response = await self._client(url).get(url, headers={"Accept": "text/plain"})
        except (httpx.HTTPError, TimeoutError):
            return 0, ""
        return response.status_code, response.content[:ROBOTS_MAX_BYTES].decode("utf-8",
                                                                                  "replace")

    async def _space(self, host: str, delay: float) -> None:
        """Keep at least `delay` seconds between two request starts to one host (the
        configured spacing, grown by 429s, or robots.txt's Crawl-delay)."""
        async with self._spacing_locks[host]:
            last = self._last_request.get(host)
            if last is not None:
                wait = last + delay - self._monotonic()
                if wait > 0:
                    await self._sleep(wait)
            self._last_request[host] = self._monotonic()

    async def fetch(self, url: str, validators: Validators | None = None,
                    kind: str = "feed") -> FetchResult:
        """GET `url` once. Raises a FetchError subclass on any failure: FetchDeferred when
        the fetcher is stopping or the host asked us to wait (a 429 with Retry-After). Per
        host: at most `host_limit` requests at once, `host_spacing` seconds between starts;
        for HTML pages the host's robots.txt is obeyed, Crawl-delay included."""
        host = (urlsplit(url).hostname or "").lower()
        self._check(host, url)
        delay = 0.0
        if kind == "html":
            robots = await self.robots(url)
            if not robots.allowed(url):
                raise RobotsDisallowed(url, robots.why_not())
            delay = robots.crawl_delay()
        semaphore = self._hosts.get(host)
        if semaphore is None:
            semaphore = self._hosts[host] = asyncio.Semaphore(self.host_limit(host))
        async with semaphore:
            self._check(host, url)  # a stop, or a 429 from the host, while this one waited
            delay = max(delay, self.host_spacing(host))
            if delay:
                await self._space(host, delay)
            async with self._global:
                self._check(host, url)
                started = time.monotonic()
                try:
                    async with asyncio.timeout(self.settings.timeout):
                        result = await self._get(url, validators or Validators(), kind,
                                                 started)
                except TimeoutError as exc:
                    raise FetchTimeout(
                        url, f"no complete answer within {self.settings.timeout:g} s") from exc
                except HTTPStatusError as exc:
                    self._throttled(host, exc)
                    raise
        self._succeeded(host)
        return result

    async def _get(self, url: str, validators: Validators, kind: str,
                   started: float) -> FetchResult:
        headers = {"Accept": ACCEPT.get(kind, "*/*")}
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        limit = self.settings.max_body_bytes
        try:
            async with self._client(url).stream("GET", url, headers=headers) as response:
                resp_headers = {k.lower(): v for k, v in response.headers.items()}
                redirects = len(response.history)
                final_url = str(response.url)
                moved_to = _moved_to(response)
                if response.status_code == 304:
                    await response.aread()  # no body; reading the end keeps the connection
                    return FetchResult(url, final_url, 304, resp_headers, None, True,
                                       validators.body_hash, time.monotonic() - started,
                                       redirects, moved_to)
                if response.status_code >= 400:
                    raise HTTPStatusError(url, response.status_code,
                                          resp_headers.get("retry-after"))
                declared = resp_headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit and \
                        "content-encoding" not in resp_headers:
                    raise BodyTooLarge(url, f"body of {int(declared)} bytes is over the "
                                            f"limit of {limit} bytes")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise BodyTooLarge(url, f"body is over the limit of {limit} bytes")
                    chunks.append(chunk)
        except httpx.TimeoutException as exc:
            raise FetchTimeout(url, f"timed out ({type(exc).__name__})") from exc
        except httpx.TooManyRedirects as exc:
            raise TooManyRedirects(
                url, f"more than {self.settings.max_redirects} redirects") from exc
        except httpx.DecodingError as exc:
            raise FetchError(url, f"could not decode the body: {exc}") from exc
        except httpx.TransportError as exc:
            raise ConnectFailed(url, f"connection failed: {exc or type(exc).__name__}") from exc
        except httpx.InvalidURL as exc:
            raise FetchError(url, f"invalid URL: {exc}") from exc
        body = b"".join(chunks)
        digest = body_hash(body)
        unchanged = digest == validators.body_hash
        return FetchResult(url, final_url, response.status_code, resp_headers,
                           None if unchanged else body, unchanged, digest,
                           time.monotonic() - started, redirects, moved_to)


def _moved_to(response: httpx.Response) -> str | None:
    """Where the permanent redirects (301/308) at the start of the chain lead: the URL to
    put in the config. A temporary redirect (302/303/307) ends it: what follows may change."""
    moved = None
    hops = [*response.history, response]
    for i, hop in enumerate(hops[:-1]):
        if hop.status_code not in (301, 308):
            break
        moved = str(hops[i + 1].url)
    return moved


def ping_hub(hub: str, topics: Sequence[str], settings: Settings) -> list[str]:
    """Tell a WebSub hub that `topics` (feed URLs) changed: one form POST
    `hub.mode=publish&hub.url=TOPIC` per feed, the convention hubs accept (the WebSub
    recommendation leaves publishing to the hub). Returns one message per failed ping; a hub
    that is down never fails a publish, and once it cannot be reached the rest are skipped."""
    problems: list[str] = []
    if not topics:
        return problems
    with httpx.Client(timeout=httpx.Timeout(settings.timeout), trust_env=False,
                      follow_redirects=True, max_redirects=settings.max_redirects,
                      headers={"User-Agent": settings.user_agent}) as client:
        for n, topic in enumerate(topics):
            try:
                response = client.post(hub, data={"hub.mode": "publish", "hub.url": topic})
            except httpx.TransportError as exc:
                problems.append(f"{hub}: cannot reach the hub ({exc or type(exc).__name__}); "
                                f"{len(topics) - n} feed(s) not announced")
                break
            except httpx.HTTPError as exc:
                problems.append(f"{hub}: {topic}: {exc or type(exc).__name__}")
                continue
            if not 200 <= response.status_code < 300:
                problems.append(f"{hub}: {topic}: HTTP {response.status_code}")
    return problems
