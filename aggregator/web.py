"""The HTTP app (the Starlette/uvicorn adapter).

Feeds are rendered once per change (after a poll that stored something) and served from
memory with ETag, Last-Modified, 304s, gzip and HEAD. The paths are the same as the files
`aggregator publish --out` writes.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from aggregator.core import Aggregator, top_rows, utcnow
from aggregator.errors import NotFoundError
from aggregator.publish import Labels, Rendered, changed_paths, labels, render_status
from aggregator.scheduler import Scheduler
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
        """Serve `site` from now on; returns the paths whose bytes changed."""
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


def _not_modified(request: Request, etags: tuple[str, str], last_modified: str) -> bool:
    inm = request.headers.get("if-none-match")
    if inm is not None:  # weak comparison (RFC 9110 13.1.2); it outranks If-Modified-Since
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or any(etag in tags for etag in etags)
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            return parsedate_to_datetime(ims) >= parsedate_to_datetime(last_modified)
        except (TypeError, ValueError):
            return False
    return False


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


def build_app(agg: Aggregator, holder: SiteHolder, scheduler: Scheduler | None = None,
              cache_seconds: int = 300) -> Starlette:
    status_lock = threading.Lock()
    reader: dict[str, Store] = {}
    lab = labels(agg.config.settings.ui_language)
    base = agg.config.settings.base_url
    combined = [(title, f"{base}/feeds/{name}") for name, title in
                (("all", f"{agg.config.settings.title}: {lab.newest}"),
                 ("top", f"{agg.config.settings.title}: {lab.top}"))]

    def read_store() -> Store:
        if "store" not in reader:
            reader["store"] = Store(agg.config.settings.database)
        return reader["store"]

    def lookup(path: str) -> tuple[Rendered | None, datetime | None]:
        site, since = holder.state
        for candidate in (path, path.rstrip("/"), "/" if path == "/index.html" else None):
            if candidate and candidate in site:
                return site[candidate], since.get(candidate)
        return None, None

    async def document(request: Request) -> Response:
        path = request.url.path
        doc, since = lookup(path)
        if doc is None:
            return PlainTextResponse(not_found_text(path, list(holder.site), lab),
                                     status_code=404)
        gzipped = accepts_gzip(request.headers.get("accept-encoding", ""))
        last_modified = format_datetime(since or doc.last_modified, usegmt=True)
        headers = {
            "ETag": doc.gzip_etag if gzipped else doc.etag,
            "Last-Modified": last_modified,
            "Cache-Control": f"public, max-age={cache_seconds}",
            "Vary": "Accept-Encoding",
        }
        if _not_modified(request, (doc.etag, doc.gzip_etag), last_modified):
            return Response(status_code=304, headers=headers)
        body = doc.body
        if gzipped:
            body = doc.gzipped
            headers["Content-Encoding"] = "gzip"
        headers["Content-Length"] = str(len(body))
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers, media_type=doc.content_type)
        return Response(body, headers=headers, media_type=doc.content_type)

    def sources_rows() -> list[dict[str, Any]]:
        with status_lock:
            rows = agg.source_status_from(read_store())
        return [r for r in rows if r["in_config"]]

    async def api_sources(request: Request) -> Response:
        return JSONResponse(sources_rows())

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

    async def status(request: Request) -> Response:
        page = render_status(sources_rows(), lab, combined)
        return Response(page, media_type="text/html; charset=utf-8")

    async def healthz(request: Request) -> Response:
        ok = True
        checks: dict[str, Any] = {}
        try:
            with status_lock:
                checks["database"] = read_store().integrity_quick()
        except Exception as exc:
            ok, checks["database"] = False, str(exc)
        if scheduler is not None:
            checks["scheduler"] = "running" if scheduler.running else "stopped"
            ok = ok and scheduler.running
        return JSONResponse({"status": "ok" if ok else "failing", **checks},
                            status_code=200 if ok else 503)

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
        Route("/api/sources", api_sources),
        Route("/api/top", api_top),
        Route("/status", status),
        Route("/{path:path}", document, methods=["GET", "HEAD"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


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


def serve(agg: Aggregator, host: str, port: int) -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    holder = SiteHolder(agg.clock)
    holder.update(agg.render())  # at start: served as is, not announced
    scheduler = Scheduler(agg, publisher(agg, holder))
    app = build_app(agg, holder, scheduler, cache_seconds=max_age(agg.config))
    log.info("serving %d documents on http://%s:%d/", len(holder.site), host, port)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
