"""The one exception tree of the aggregator.

Every error that crosses a module border is one of these; adapters (httpx, feedparser,
sqlite-utils, ...) convert their library's errors at the border::

    AggregatorError
    ├── ConfigError            the config is invalid; carries every ConfigIssue at once
    ├── FetchError             one source could not be fetched (carries the URL)
    │   ├── FetchTimeout       no complete answer within the timeout
    │   ├── ConnectFailed      DNS, refused connection, TLS, reset
    │   ├── HTTPStatusError    4xx/5xx answer (carries status and Retry-After)
    │   ├── BodyTooLarge       the body passed max_body_bytes (after decompression)
    │   ├── TooManyRedirects   more than max_redirects hops
    │   ├── RobotsDisallowed   robots.txt forbids the URL (HTML sources)
    │   └── FetchDeferred      not fetched now: stopping, or the host asked us to wait
    ├── ParseError             the body could not be read as a feed or page at all
    ├── StoreError             the database refused an operation
    ├── LockedError            another `aggregator run` holds the lock
    └── NotFoundError          an unknown source id, agency or feed was asked for
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class AggregatorError(Exception):
    """Base of every error the aggregator raises on purpose."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in the config: where it is and why it is wrong."""

    file: str
    section: str  # "settings", "source beritajakarta-terkini", "agency dinas-x", ...
    field: str  # dotted field name, "" when the problem is the whole section
    message: str

    def __str__(self) -> str:
        where = self.section + (f", field '{self.field}'" if self.field else "")
        return f"{self.file}: {where}: {self.message}"


class ConfigError(AggregatorError):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        lines = "\n".join(str(i) for i in self.issues)
        super().__init__(f"{len(self.issues)} config error(s):\n{lines}")


class FetchError(AggregatorError):
    def __init__(self, url: str, message: str) -> None:
        self.url = url
        self.message = message
        super().__init__(f"{message} ({url})")


class FetchTimeout(FetchError):
    pass


class ConnectFailed(FetchError):
    pass


class HTTPStatusError(FetchError):
    def __init__(self, url: str, status: int, retry_after: str | None = None) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(url, f"HTTP {status}")


class BodyTooLarge(FetchError):
    pass


class TooManyRedirects(FetchError):
    pass


class RobotsDisallowed(FetchError):
    pass


class FetchDeferred(FetchError):
    """Not an error of the source: the request was not made (a stop is under way, or the
    host is slowed down after a 429 until `until`)."""

    def __init__(self, url: str, message: str, until: datetime | None) -> None:
        self.until = until
        super().__init__(url, message)


class ParseError(AggregatorError):
    pass


class StoreError(AggregatorError):
    pass


class LockedError(AggregatorError):
    pass


class NotFoundError(AggregatorError):
    pass


class RequestError(AggregatorError):
    """A request's parameters are wrong (HTTP 400): the message says which and why."""
