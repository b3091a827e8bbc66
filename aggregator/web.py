"""The HTTP app (the Starlette/uvicorn adapter).

Feeds are rendered once per change (after a poll that stored something) and served from
memory with ETag, Last-Modified, 304s, gzip and HEAD. The paths are the same as the files
`aggregator publish --out` writes.
"""

from __future__ import annotations

import contextlib
import html
import logging
import threading
from collections.abc import AsyncIterator
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from aggregator.core import Aggregator, top_rows
from aggregator.errors import NotFoundError
from aggregator.scheduler import Scheduler
from aggregator.site import Site
from aggregator.store import Store

log = logging.getLogger("aggregator.web")


class SiteHolder:
    """The current rendered site; swapped whole, read without locking."""

    def __init__(self) -> None:
        self.site: Site = {}

    def update(self, site: Site) -> None:
        self.site = site


def _not_modified(request: Request, etag: str, last_modified: str) -> bool:
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return etag in tags or "*" in tags
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

    def read_store() -> Store:
        if "store" not in reader:
            reader["store"] = Store(agg.config.settings.database)
        return reader["store"]

    async def document(request: Request) -> Response:
        path = request.url.path
        doc = holder.site.get(path)
        if doc is None and path.endswith("/") and path != "/":
            doc = holder.site.get(path.rstrip("/"))
        if doc is None:
            return PlainTextResponse(
                f"404: no feed at {path}. Every published feed is listed at /opml and on /.\n",
                status_code=404)
        last_modified = format_datetime(doc.last_modified, usegmt=True)
        headers = {
            "ETag": doc.etag,
            "Last-Modified": last_modified,
            "Cache-Control": f"public, max-age={cache_seconds}",
            "Vary": "Accept-Encoding",
        }
        if _not_modified(request, doc.etag, last_modified):
            return Response(status_code=304, headers=headers)
        body = doc.body
        if accepts_gzip(request.headers.get("accept-encoding", "")):
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
        rows = sources_rows()
        body = "".join(
            f"<tr><td>{html.escape(r['id'])}</td><td class='{r['state']}'>{r['state']}</td>"
            f"<td>{r['item_count']}</td><td>{r['last_success_at'] or '-'}</td>"
            f"<td>{html.escape(r['last_error'] or '')}</td><td>{r['next_due_at'] or '-'}</td>"
            "</tr>" for r in rows)
        page = (
            "<!DOCTYPE html><html lang='id'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>Status sumber</title><style>body{font:15px system-ui;margin:1rem}"
            "td,th{padding:.2rem .5rem;text-align:left}.failing{color:#b00}</style></head>"
            "<body><h1>Status sumber</h1><table><tr><th>Sumber</th><th>Status</th>"
            "<th>Item</th><th>Terakhir berhasil</th><th>Galat terakhir</th>"
            f"<th>Berikutnya</th></tr>{body}</table></body></html>")
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


def serve(agg: Aggregator, host: str, port: int) -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    holder = SiteHolder()
    holder.update(agg.render())
    scheduler = Scheduler(agg, holder.update)
    app = build_app(agg, holder, scheduler,
                    cache_seconds=min((s.interval for s in agg.config.sources), default=300))
    log.info("serving %d documents on http://%s:%d/", len(holder.site), host, port)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
