"""HTTP fetching (the httpx adapter: the only module that imports httpx).

One `Fetcher` per poll: a shared connection pool, a global concurrency limit and a per-host
limit (many agency sources share one provincial domain). Each request is conditional (ETag,
Last-Modified), has a total deadline, a bounded number of redirects and a maximum body size
counted after decompression; a body whose hash equals the last one counts as not modified.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import defaultdict
from urllib.parse import urlsplit

import httpx

from aggregator.errors import (
    BodyTooLarge,
    ConnectFailed,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    TooManyRedirects,
)
from aggregator.types import FetchResult, Settings, Validators

ACCEPT = {
    "feed": "application/rss+xml, application/atom+xml, application/xml;q=0.9, "
            "text/xml;q=0.9, */*;q=0.5",
    "html": "text/html, application/xhtml+xml;q=0.9, */*;q=0.5",
}


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class Fetcher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: httpx.AsyncClient | None = None
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.per_host_concurrency))

    async def __aenter__(self) -> Fetcher:
        s = self.settings
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=s.max_redirects,
            timeout=httpx.Timeout(s.timeout),
            limits=httpx.Limits(max_connections=s.concurrency,
                                max_keepalive_connections=s.concurrency),
            headers={"User-Agent": s.user_agent},
            trust_env=False,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def fetch(self, url: str, validators: Validators | None = None,
                    kind: str = "feed") -> FetchResult:
        """GET `url` once. Raises a FetchError subclass on any failure."""
        host = (urlsplit(url).hostname or "").lower()
        async with self._global, self._hosts[host]:
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.settings.timeout):
                    return await self._get(url, validators or Validators(), kind, started)
            except TimeoutError as exc:
                raise FetchTimeout(
                    url, f"no complete answer within {self.settings.timeout:g} s") from exc

    async def _get(self, url: str, validators: Validators, kind: str,
                   started: float) -> FetchResult:
        assert self._client is not None, "use `async with Fetcher(...)`"
        headers = {"Accept": ACCEPT.get(kind, "*/*")}
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        limit = self.settings.max_body_bytes
        try:
            async with self._client.stream("GET", url, headers=headers) as response:
                resp_headers = {k.lower(): v for k, v in response.headers.items()}
                redirects = len(response.history)
                final_url = str(response.url)
                if response.status_code == 304:
                    return FetchResult(url, final_url, 304, resp_headers, None, True,
                                       validators.body_hash, time.monotonic() - started,
                                       redirects)
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
                           time.monotonic() - started, redirects)
