"""The HTTP app (the Starlette/uvicorn adapter).

Feeds are rendered once per change (after a poll that stored something) and served from
memory with ETag, Last-Modified, 304s, gzip and HEAD. The paths are the same as the files
`aggregator publish --out` writes. Every document's headers are made once per render
(`Prepared`), and a GET or HEAD of a document's path is answered before Starlette's routing
(`DocumentsFirst`): a request costs a lookup and an ETag comparison.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import difflib
import functools
import hmac
import ipaddress
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from aggregator.core import Aggregator, top_rows, utcnow
from aggregator.errors import NotFoundError, RequestError, StoreError
from aggregator.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from aggregator.metrics import METRICS, Gauge
from aggregator.publish import (
    Labels,
    Rendered,
    changed_paths,
    labels,
    render_source,
    render_status,
)
from aggregator.reload import ConfigWatcher
from aggregator.scheduler import TICK, Scheduler
from aggregator.site import Site
from aggregator.store import Store
from aggregator.types import Config

log = logging.getLogger("aggregator.web")


class SiteHolder:
    """The current rendered site, with the time each document's bytes were first served
    (its Last-Modified, as a static file's mtime would be); swapped whole, read without
    locking."""

    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self.clock = clock
        self.state: tuple[Site, dict[str, datetime]] = ({}, {})

    @property
    def site(self) -> Site:
        return self.state[0]

    def update(self, site: Site) -> list[str]:
        """Serve `site` from now on; returns the paths whose bytes changed. The gzip-coded
        bodies are made here (on the caller's thread, not the server's event loop); a
        document kept from the last render already has its own."""
        for doc in site.values():
            doc.gzipped  # noqa: B018 - made once, cached on the document
        old, since = self.state
        now = self.clock().replace(microsecond=0)
        changed = changed_paths(old, site)
        moved = set(changed)
        self.state = (site, {path: now if path in moved else since[path] for path in site})
        return changed


def max_age(config: Config) -> int:
    """Cache-Control max-age of the feeds: the shortest poll interval of the enabled sources
    (no feed can change sooner), or `default_interval` when there are none."""
    return min((s.interval for s in config.sources if s.enabled),
               default=config.settings.default_interval)


def not_found_text(path: str, paths: Sequence[str], lab: Labels) -> str:
    """A 404 that helps: the closest published paths, and where every feed is listed."""
    lines = [lab.not_found.format(path=path)]
    for guess in difflib.get_close_matches(path, list(paths), n=3, cutoff=0.6):
        lines.append(lab.did_you_mean.format(url=guess))
    lines.append(lab.known_feeds)
    return "\n".join(lines) + "\n"


def not_modified(inm: str | None, ims: str | None, etags: tuple[str, str],
                 last_modified: str) -> bool:
    """Whether a request with these If-None-Match / If-Modified-Since values gets a 304."""
    if inm is not None:  # weak comparison (RFC 9110 13.1.2); it outranks If-Modified-Since
        if inm in etags:  # the usual case: the one ETag the client was given
            return True
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or any(etag in tags for etag in etags)
    if ims:
        try:
            return parsedate_to_datetime(ims) >= parsedate_to_datetime(last_modified)
        except (TypeError, ValueError):
            return False
    return False


@functools.lru_cache(maxsize=256)
def _accepts_gzip(header: str) -> bool:
    return accepts_gzip(header)


RawHeaders = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Prepared:
    """One document's responses (plain or gzip, 200 or 304) with every header made once per
    render, so that a request costs a lookup and a comparison."""

    doc: Rendered
    last_modified: str
    ok: RawHeaders
    ok_gzip: RawHeaders
    unchanged: RawHeaders  # the 304's headers
    unchanged_gzip: RawHeaders

    @classmethod
    def of(cls, doc: Rendered, since: datetime | None, cache_seconds: int) -> Prepared:
        last_modified = format_datetime(since or doc.last_modified, usegmt=True)

        def validators(etag: str) -> RawHeaders:
            return [(b"etag", etag.encode("latin-1")),
                    (b"last-modified", last_modified.encode("latin-1")),
                    (b"cache-control", f"public, max-age={cache_seconds}".encode("latin-1")),
                    (b"vary", b"Accept-Encoding")]

        plain, gzipped = validators(doc.etag), validators(doc.gzip_etag)
        ctype = (b"content-type", doc.content_type.encode("latin-1"))
        return cls(doc, last_modified,
                   [*plain, (b"content-length", b"%d" % len(doc.body)), ctype],
                   [*gzipped, (b"content-encoding", b"gzip"),
                    (b"content-length", b"%d" % len(doc.gzipped)), ctype],
                   plain, gzipped)

    def answer(self, method: str, inm: str | None, ims: str | None,
               accept_encoding: str) -> tuple[int, RawHeaders, bytes]:
        """Status, headers and body for a GET or HEAD with these request headers."""
        gzipped = _accepts_gzip(accept_encoding)
        doc = self.doc
        if not_modified(inm, ims, (doc.etag, doc.gzip_etag), self.last_modified):
            return 304, self.unchanged_gzip if gzipped else self.unchanged, b""
        headers = self.ok_gzip if gzipped else self.ok
        if method == "HEAD":
            return 200, headers, b""
        return 200, headers, doc.gzipped if gzipped else doc.body


class PreparedSite:
    """The prepared responses of the holder's current site, remade (on the event loop, at
    the first request after a render) whenever the holder's state is swapped."""

    def __init__(self, holder: SiteHolder, cache_seconds: int | Callable[[], int]) -> None:
        self.holder = holder
        self.cache_seconds = cache_seconds if callable(cache_seconds) else (
            lambda: cache_seconds)
        self._state: object = None
        self._table: dict[str, Prepared] = {}

    def table(self) -> dict[str, Prepared]:
        state = self.holder.state
        if state is not self._state:
            site, since = state
            seconds = self.cache_seconds()
            table = {path: Prepared.of(doc, since.get(path), seconds)
                     for path, doc in site.items()}
            if "/" in table:
                table["/index.html"] = table["/"]
            self._table, self._state = table, state
        return self._table

    def lookup(self, path: str) -> Prepared | None:
        table = self.table()
        stripped = path.rstrip("/")
        return table.get(path) or (table.get(stripped) if stripped else None)


class PreparedResponse(Response):
    def __init__(self, status: int, headers: RawHeaders, body: bytes) -> None:
        self.status_code, self.raw_headers, self.body = status, list(headers), body
        self.background = None


class DocumentsFirst:
    """ASGI: a GET or HEAD of a published document is answered from its prepared response
    without routing or building a Response; anything else goes to the Starlette app (which
    answers the same documents the same way, under other spellings of their paths)."""

    def __init__(self, app: ASGIApp, documents: PreparedSite) -> None:
        self.app = app
        self.documents = documents

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            prepared = self.documents.table().get(scope["path"])
            if prepared is not None:
                inm = ims = None
                accept = ""
                for name, value in scope["headers"]:  # the first of each, as Starlette reads
                    if name == b"if-none-match":
                        inm = value.decode("latin-1") if inm is None else inm
                    elif name == b"if-modified-since":
                        ims = value.decode("latin-1") if ims is None else ims
                    elif name == b"accept-encoding" and not accept:
                        accept = value.decode("latin-1")
                status, headers, body = prepared.answer(scope["method"], inm, ims, accept)
                await send({"type": "http.response.start", "status": status,
                            "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def accepts_gzip(header: str) -> bool:
    """RFC 9110: gzip is acceptable when listed (or `*` is) with a q-value above 0."""
    quality: dict[str, float] = {}
    for part in header.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name:
            quality[name.lower()] = q
    return quality.get("gzip", quality.get("x-gzip", quality.get("*", 0.0))) > 0


# --- admin token, health, metrics (README, "Monitoring" and "Admin token") -------------------

ADMIN_REALM = 'Basic realm="aggregator admin", charset="UTF-8"'
NO_TOKEN = ("403: this server listens on {host}, not on loopback, and no admin token is set, "
            "so admin pages are closed. Set `admin_token` in [settings] of the config or the "
            "environment variable AGGREGATOR_ADMIN_TOKEN (at least 16 characters, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe())'`), then send it as "
            "`Authorization: Bearer TOKEN`.\n")
TICK_STUCK = 3600.0  # seconds one scheduler tick may run before /healthz calls it stuck


def is_loopback(host: str) -> bool:
    """Whether a listen address is reachable only from this machine."""
    if host.lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def given_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, or the password of
    `Authorization: Basic ...` (so that a browser can open /status: any user name)."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


class AdminGuard:
    """Admin-only endpoints (/status, /api/sources, /api/config, /metrics): open on a
    loopback address; elsewhere they need the admin token, compared in constant time."""

    def __init__(self, host: str, token: Callable[[], str | None]) -> None:
        self.host = host
        self.open = is_loopback(host)
        self.token = token  # read at each request: a config reload may set or change it

    def denied(self, request: Request) -> Response | None:
        if self.open:
            return None
        token = self.token()
        if not token:
            return PlainTextResponse(NO_TOKEN.format(host=self.host), status_code=403)
        given = given_token(request.headers.get("authorization", ""))
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            return None
        return PlainTextResponse(
            "401: admin token required: send `Authorization: Bearer TOKEN` (the admin_token "
            "of the config or AGGREGATOR_ADMIN_TOKEN)\n", status_code=401,
            headers={"WWW-Authenticate": ADMIN_REALM})


def scheduler_problem(scheduler: Scheduler, now: float) -> str | None:
    """Why the scheduler is not alive (None when it is): stopped, no tick for three tick
    periods (at least a minute), or one tick running for an hour. `now`: time.monotonic()."""
    if not scheduler.running:
        return "stopped"
    started = getattr(scheduler, "tick_started", None)
    ended = getattr(scheduler, "tick_ended", None)
    if started is None:
        return None  # the first tick is about to run
    if ended is None or ended < started:
        if now - started > TICK_STUCK:
            return f"one tick has been running for {now - started:.0f} s"
        return None
    grace = max(3 * float(getattr(scheduler, "tick", 60)), 60.0)
    if now - started > grace:
        return f"no tick for {now - started:.0f} s"
    return None


def metrics_gauges(rows: Sequence[dict[str, Any]]) -> list[Gauge]:
    """The gauges of /metrics, from the source status rows (`Aggregator.source_status`)."""
    from aggregator.core import STATE_ORDER

    states = dict.fromkeys(STATE_ORDER, 0)
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    configured = [r for r in rows if r["in_config"]]

    def stamp(value: str | None) -> float | None:
        return datetime.fromisoformat(value).timestamp() if value else None

    successes = [(r["id"], t) for r in configured
                 if (t := stamp(r["last_success_at"])) is not None]
    return [
        Gauge("aggregator_sources", "Sources by state (broken, failing, drifting, ok, ...).",
              [((("state", k),), v) for k, v in states.items()]),
        Gauge("aggregator_source_failures", "Consecutive failed fetches of each source.",
              [((("source", r["id"]),), r["failures"]) for r in configured]),
        Gauge("aggregator_source_last_success_timestamp_seconds",
              "Unix time of each source's last successful fetch.",
              [((("source", sid),), t) for sid, t in successes]),
        Gauge("aggregator_last_success_timestamp_seconds",
              "Unix time of the last successful fetch of any source.",
              [((), max(t for _, t in successes))] if successes else []),
        Gauge("aggregator_items", "Items stored, by the source that first stored them.",
              [((("source", r["id"]),), r["item_count"]) for r in rows]),
    ]


def build_app(agg: Aggregator, holder: SiteHolder, scheduler: Scheduler | None = None,
              cache_seconds: int | None = None, watcher: ConfigWatcher | None = None,
              host: str = "127.0.0.1") -> ASGIApp:
    """`cache_seconds`: the feeds' max-age; by default it follows the config in force
    (`max_age`), as the pages' language and titles do, so a reload changes them."""
    status_lock = threading.Lock()
    reader: dict[str, Store] = {}

    def cache_for() -> int:
        return max_age(agg.config) if cache_seconds is None else cache_seconds

    def lab() -> Labels:
        return labels(agg.config.settings.ui_language)

    def combined() -> list[tuple[str, str]]:
        settings = agg.config.settings
        return [(title, f"{settings.base_url}/feeds/{name}") for name, title in
                (("all", f"{settings.title}: {lab().newest}"),
                 ("top", f"{settings.title}: {lab().top}"))]

    def read_store() -> Store:
        if "store" not in reader:
            reader["store"] = Store(agg.config.settings.database)
        return reader["store"]

    documents = PreparedSite(holder, cache_for)
    guard = AdminGuard(host, lambda: agg.config.settings.admin_token)

    async def document(request: Request) -> Response:
        path = request.url.path
        prepared = documents.lookup(path)
        if prepared is None:
            return PlainTextResponse(not_found_text(path, list(holder.site), lab()),
                                     status_code=404)
        headers = request.headers
        return PreparedResponse(*prepared.answer(
            request.method, headers.get("if-none-match"), headers.get("if-modified-since"),
            headers.get("accept-encoding", "")))

    def sources_rows() -> list[dict[str, Any]]:
        """Every source, those that need the admin first; sources removed from the config
        (their items stay) last, as "not in config"."""
        with status_lock:
            return agg.source_status_from(read_store())

    def source_detail(source_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        rows = [r for r in sources_rows() if r["id"] == source_id]
        if not rows:
            return None
        with status_lock:
            return rows[0], read_store().recent_fetches(source_id, 20)

    def api_sources(request: Request) -> Response:
        return guard.denied(request) or JSONResponse(sources_rows())

    def api_source(request: Request) -> Response:
        """One source's row with its last 20 fetches under "fetches"."""
        if denied := guard.denied(request):
            return denied
        found = source_detail(request.path_params["source_id"])
        if found is None:
            return JSONResponse({"error": f"unknown source id "
                                          f"'{request.path_params['source_id']}'"},
                                status_code=404)
        row, fetches = found
        return JSONResponse({**row, "fetches": fetches})

    async def api_top(request: Request) -> Response:
        """The ranked stories as JSON, as `aggregator top --json`: `limit=` (default
        feed_size), `agency=SLUG`, and `explain=1` for each score's parts."""
        params = request.query_params
        explain = params.get("explain", "0").lower() in ("1", "true", "yes")
        limit_text = params.get("limit", "")
        if limit_text and not (limit_text.isdigit() and 0 < int(limit_text) <= 1000):
            return JSONResponse({"error": "limit must be a whole number from 1 to 1000"},
                                status_code=400)
        try:
            with status_lock:
                ranked = agg.top_from(read_store(), params.get("agency") or None,
                                      int(limit_text) if limit_text else None)
        except NotFoundError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse(top_rows(ranked, explain))

    async def search(request: Request) -> Response:
        """/feeds/search.{rss,atom,json}?q=...: rendered per request (the query varies), with
        the same validators and caching headers as the published feeds."""
        try:
            with status_lock:
                rendered = agg.search_from(read_store(), request.path_params["ext"],
                                           request.query_params, request.url.query)
        except RequestError as exc:
            return PlainTextResponse(f"400: {exc}", status_code=400)
        except NotFoundError as exc:
            return PlainTextResponse(f"404: {exc}", status_code=404)
        headers = request.headers
        return PreparedResponse(*Prepared.of(rendered, None, cache_for()).answer(
            request.method, headers.get("if-none-match"), headers.get("if-modified-since"),
            headers.get("accept-encoding", "")))

    def status(request: Request) -> Response:
        if denied := guard.denied(request):
            return denied
        banner = watcher.snapshot().banner() if watcher is not None else []
        page = render_status(sources_rows(), lab(), combined(), banner)
        return Response(page, media_type="text/html; charset=utf-8")

    def api_config(request: Request) -> Response:
        """The config in force and the last reload (README, "Editing the config while it
        runs"): `ok` is false while the file on disk is invalid, `errors` say where."""
        if denied := guard.denied(request):
            return denied
        if watcher is None:
            return JSONResponse({"ok": True, "watching": False,
                                 "files": list(agg.config.files)})
        return JSONResponse({**watcher.snapshot().as_dict(), "watching": True})

    def status_source(request: Request) -> Response:
        if denied := guard.denied(request):
            return denied
        found = source_detail(request.path_params["source_id"])
        if found is None:
            return PlainTextResponse(f"404: unknown source id "
                                     f"'{request.path_params['source_id']}'\n",
                                     status_code=404)
        return Response(render_source(*found, lab()), media_type="text/html; charset=utf-8")

    def healthz(request: Request) -> Response:
        """200 when the process answers, the database takes a write and the scheduler
        ticks; else 503 naming the failing checks. Open to all (a container's HEALTHCHECK,
        a load balancer): it says nothing about the sources."""
        failing: list[str] = []
        checks: dict[str, Any] = {"process": "ok"}
        try:
            with status_lock:
                read_store().touch(agg.clock())
            checks["database"] = "ok"
        except StoreError as exc:
            if "locked" in str(exc) or "busy" in str(exc):  # our own poll is writing
                checks["database"] = "ok"
                checks["database_note"] = "busy: another connection is writing"
            else:
                failing.append("database")
                checks["database"] = str(exc)
        if scheduler is not None:
            problem = scheduler_problem(scheduler, time.monotonic())
            checks["scheduler"] = "running" if problem is None else problem
            if problem is not None:
                failing.append("scheduler")
        status = "ok" if not failing else "failing: " + ", ".join(failing)
        return JSONResponse({"status": status, **checks},
                            status_code=503 if failing else 200)

    def metrics(request: Request) -> Response:
        if denied := guard.denied(request):
            return denied
        body = METRICS.exposition(metrics_gauges(sources_rows()))
        return Response(body, media_type=METRICS_CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if scheduler is not None:
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()
            for store in reader.values():
                store.close()

    routes = [
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/api/sources", api_sources),
        Route("/api/sources/{source_id}", api_source),
        Route("/api/top", api_top),
        Route("/api/config", api_config),
        Route("/status", status),
        Route("/status/{source_id}", status_source),
        Route("/feeds/search.{ext}", search, methods=["GET", "HEAD"]),
        Route("/{path:path}", document, methods=["GET", "HEAD"]),
    ]
    return DocumentsFirst(Starlette(routes=routes, lifespan=lifespan), documents)


def publisher(agg: Aggregator, holder: SiteHolder) -> Callable[[Site], None]:
    """What the scheduler calls with each new render: serve it, and announce its changed
    feeds to the WebSub hub, if one is set."""

    def publish(site: Site) -> None:
        pinged, problems = agg.announce(holder.update(site))
        for problem in problems:
            log.warning("WebSub ping failed: %s", problem)
        if pinged:
            log.info("WebSub hub told of %d changed feed(s)", len(pinged))

    return publish


def serve(agg: Aggregator, host: str, port: int, config_path: str | None = None,
          tick: float = TICK) -> None:
    """Serve until SIGINT/SIGTERM; with `config_path`, watch the config files and reload
    them on change and on SIGHUP (aggregator/reload.py)."""
    from aggregator.core import read_config

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)  # each tick
    holder = SiteHolder(agg.clock)
    holder.update(agg.render())  # at start: served as is, not announced
    scheduler = Scheduler(agg, publisher(agg, holder), tick=tick)
    watcher = None
    if config_path is not None:
        watcher = ConfigWatcher(config_path, agg.config, read_config, scheduler.apply_config,
                                agg.clock)
        if hasattr(signal, "SIGHUP"):
            request = watcher.request
            signal.signal(signal.SIGHUP, lambda signum, frame: request())
        watcher.start()
        log.info("watching %d config file(s) for changes (SIGHUP reloads at once)",
                 len(agg.config.files))
    app = build_app(agg, holder, scheduler, watcher=watcher, host=host)
    if not is_loopback(host) and not agg.config.settings.admin_token:
        log.warning("listening on %s without an admin token: /status, /api/sources, "
                    "/api/config and /metrics answer 403 until [settings] admin_token or "
                    "AGGREGATOR_ADMIN_TOKEN is set", host)
    log.info("serving %d documents on http://%s:%d/", len(holder.site), host, port)
    try:
        # log_config=None: uvicorn's lines go through the process's own log format
        # (aggregator/logs.py: text or JSON), not a format of uvicorn's
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                    log_config=None)
    finally:
        if watcher is not None:
            watcher.stop()
