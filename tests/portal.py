"""The fake "government portal" for the end-to-end tests, and the helpers around it (config
files in tmp dirs, reading the real SQLite file, driving the real CLI).

The portal: a fake government news site: a real HTTP server on 127.0.0.1, port 0,
in a background thread (stdlib ThreadingHTTPServer).

The test owns the routes: `portal.routes[path] = Route(body, headers, ...)` can be changed between
polls; every request is appended to `portal.log` (method, path, headers, status answered), so a
test can check which conditional headers the aggregator sent and which answers were 304.

A route may answer with a fixed status (500), delay its answer (timeout) or wait on a gate (an
Event the test opens) so that a test can hold a poll in flight deterministically.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

FEEDS_DIR = Path(__file__).parent / "fixtures" / "feeds"


def fixture_feed(name: str) -> bytes:
    return (FEEDS_DIR / name).read_bytes()


@dataclass
class Route:
    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    etag: str | None = None  # when set, answer 304 to a matching If-None-Match
    last_modified: str | None = None  # when set, answer 304 to If-Modified-Since >= it
    delay: float = 0.0  # seconds to wait before answering (a timeout case)
    gate: threading.Event | None = None  # wait until the test sets it
    arrived: threading.Event = field(default_factory=threading.Event)  # set on each request
    extra_headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    status: int | None = None  # what the portal answered (None: no answer yet, or never)
    at: float = 0.0  # time.monotonic() when the request arrived


class Portal:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        portal = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                portal._handle(self)

            def do_HEAD(self) -> None:
                portal._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that gave up (timeout case) is expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Portal:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        for route in self.routes.values():
            if route.gate is not None:
                route.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Portal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test helpers -------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base + path

    def requests_for(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.log if r.path == path]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    # --- serving ------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        record = Request(h.command, path, {k.lower(): v for k, v in h.headers.items()},
                         at=time.monotonic())
        with self._lock:
            self.log.append(record)
        route = self.routes.get(path)
        if route is None:
            self._answer(h, record, 404, b"Halaman tidak ditemukan",
                         {"Content-Type": "text/plain; charset=utf-8"})
            return
        route.arrived.set()
        if route.gate is not None:
            route.gate.wait(10)
        if route.delay and self._stopping.wait(route.delay):
            return
        out = {"Content-Type": route.content_type, **route.extra_headers}
        if route.etag:
            out["ETag"] = route.etag
        if route.last_modified:
            out["Last-Modified"] = route.last_modified
        if route.status == 200 and self._not_modified(route, record.headers):
            self._answer(h, record, 304, b"", out)
            return
        self._answer(h, record, route.status, route.body, out)

    @staticmethod
    def _not_modified(route: Route, headers: dict[str, str]) -> bool:
        inm = headers.get("if-none-match")
        if route.etag and inm is not None:
            return route.etag in [t.strip() for t in inm.split(",")]
        ims = headers.get("if-modified-since")
        if route.last_modified and ims:
            try:
                return parsedate_to_datetime(ims) >= parsedate_to_datetime(route.last_modified)
            except (TypeError, ValueError):
                return False
        return False

    def _answer(self, h: BaseHTTPRequestHandler, record: Request, status: int, body: bytes,
                out: dict[str, str]) -> None:
        record.status = status
        h.send_response(status)
        for name, value in out.items():
            h.send_header(name, value)
        if status != 304:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if status != 304 and h.command != "HEAD":
            h.wfile.write(body)


# --- the standard portal and config ---------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "http://berita.example.test"
LAST_MODIFIED = "Wed, 12 Jun 2024 03:00:00 GMT"
ETAG_V1 = '"bali-v1-6c1f"'
JATENG_LAST_MODIFIED = "Mon, 24 Jun 2024 03:00:00 GMT"  # Last-Modified without an ETag

# agency slug -> (name, region)
AGENCIES = {
    "pemprov-dki": ("Pemerintah Provinsi DKI Jakarta", "dki-jakarta"),
    "diskominfo-jateng": ("Diskominfo Provinsi Jawa Tengah", "jawa-tengah"),
    "pemkot-bandung": ("Pemerintah Kota Bandung", "jawa-barat"),
    "pemkab-bogor": ("Pemerintah Kabupaten Bogor", "jawa-barat"),
    "bpbd-jatim": ("BPBD Provinsi Jawa Timur", "jawa-timur"),
    "pemkot-surabaya": ("Pemerintah Kota Surabaya", "jawa-timur"),
    "pemprov-bali": ("Pemerintah Provinsi Bali", "bali"),
    "kominfo": ("Kementerian Komunikasi dan Informatika", "nasional"),
    "diskominfo-jabar": ("Diskominfo Provinsi Jawa Barat", "jawa-barat"),
}


@dataclass(frozen=True)
class Src:
    id: str
    path: str  # on the portal
    agency: str


# The standard portal: one source per case the issue lists.
PORTAL_SOURCES = (
    Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki"),
    Src("jateng-atom", "/atom/diskominfo-jateng.xml", "diskominfo-jateng"),
    Src("bandung-mysql", "/feed/bandung.rss", "pemkot-bandung"),
    Src("bogor-rusak", "/rss/bogor.xml", "pemkab-bogor"),
    Src("jatim-500", "/rss/bpbd-jatim.xml", "bpbd-jatim"),
    Src("surabaya-timeout", "/rss/surabaya.xml", "pemkot-surabaya"),
    Src("bali-etag", "/rss/bali.xml", "pemprov-bali"),
)
FAILING = {"jatim-500", "surabaya-timeout"}


def serve_standard_feeds(portal: Portal) -> None:
    r = portal.routes
    r["/rss/pemprov-dki.xml"] = Route(fixture_feed("pemprov-dki.rss"))
    r["/atom/diskominfo-jateng.xml"] = Route(fixture_feed("diskominfo-jateng.atom"),
                                             "application/atom+xml; charset=utf-8",
                                             last_modified=JATENG_LAST_MODIFIED)
    r["/feed/bandung.rss"] = Route(fixture_feed("pemkot-bandung-mysql.rss"),
                                   "text/xml; charset=utf-8")
    r["/rss/bogor.xml"] = Route(fixture_feed("pemkab-bogor-rusak.rss"))
    r["/rss/bpbd-jatim.xml"] = Route(
        b"<html><body><h1>500 Internal Server Error</h1></body></html>",
        "text/html; charset=utf-8", status=500)
    # Answers long after the timeout the e2e tests configure (2 s); let go at teardown.
    r["/rss/surabaya.xml"] = Route(fixture_feed("pemprov-dki.rss"), delay=30.0)
    r["/rss/bali.xml"] = Route(fixture_feed("pemprov-bali-etag.rss"), etag=ETAG_V1,
                               last_modified=LAST_MODIFIED)


def toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(tmp: Path, portal: Portal | None, sources: Sequence[Src],
                 settings: str = "", base_url: str = BASE_URL, timeout: float = 5.0) -> Path:
    """A main config with [settings] and an included file with the agencies and sources."""
    main = _write_main_config(tmp, settings, base_url, timeout)
    conf = main.parent
    used = {s.agency for s in sources}
    parts = []
    for slug, (name, region) in AGENCIES.items():
        if slug in used:
            parts.append(f'[[agency]]\nslug = "{slug}"\nname = {toml_str(name)}\n'
                         f'region = "{region}"\n')
    for s in sources:
        url = portal.url(s.path) if portal is not None else f"http://127.0.0.1:9{s.path}"
        parts.append(f'[[source]]\nid = "{s.id}"\nkind = "feed"\nurl = {toml_str(url)}\n'
                     f'agency = "{s.agency}"\ninterval = "15m"\n')
    (conf / "sources" / "portal.toml").write_text("\n".join(parts), encoding="utf-8")
    return main


def _write_main_config(tmp: Path, settings: str, base_url: str, timeout: float) -> Path:
    """The main config file (settings; includes sources/*.toml)."""
    conf = tmp / "config"
    (conf / "sources").mkdir(parents=True, exist_ok=True)
    main = conf / "aggregator.toml"
    main.write_text(textwrap.dedent(f"""\
        [settings]
        database = {toml_str(str(tmp / "data" / "aggregator.db"))}
        output_dir = {toml_str(str(tmp / "public"))}
        base_url = {toml_str(base_url)}
        timezone = "Asia/Jakarta"
        timeout = {timeout}
        per_host_concurrency = 8
        include = ["sources/*.toml"]
        """) + settings, encoding="utf-8")
    return main


def write_sources_config(tmp: Path, sources_toml: str, settings: str = "",
                         base_url: str = BASE_URL, timeout: float = 5.0) -> Path:
    """Like write_config, with the included file's TOML (agencies, sources, scrapers, rules)
    given as text: for HTML sources, shared [scraper.NAME] tables and [[rule]]s."""
    main = _write_main_config(tmp, settings, base_url, timeout)
    (main.parent / "sources" / "portal.toml").write_text(sources_toml, encoding="utf-8")
    return main


def database(config: Path) -> Path:
    return config.parent.parent / "data" / "aggregator.db"


def query(config: Path, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
    """Read the aggregator's real SQLite file."""
    conn = sqlite3.connect(database(config))
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def item_counts(config: Path) -> dict[str, int]:
    return {r["source_id"]: r["n"] for r in query(
        config, "SELECT source_id, COUNT(*) AS n FROM items GROUP BY source_id")}


def cli_env() -> dict[str, str]:
    """The environment for a CLI run: no AGGREGATOR_* overrides from the caller, no proxy."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AGGREGATOR_") and not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = "*"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(*args: str, config: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m aggregator [--config PATH] ARGS...` in a subprocess, as a user runs it."""
    argv = [sys.executable, "-m", "aggregator"]
    if config is not None:
        argv += ["--config", str(config)]
    return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=timeout,
                          env=cli_env(), cwd=config.parent if config else ROOT, check=False)


def start_serve(config: Path, port: int, logs: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`aggregator serve` as a process on 127.0.0.1:`port`, its output appended to `logs`."""
    with logs.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "serve",
             "--host", "127.0.0.1", "--port", str(port), *extra],
            stdout=out, stderr=subprocess.STDOUT, env=cli_env(), cwd=config.parent)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a service manager stops it; SIGKILL if it has not exited in 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def invoke(*args: str, config: Path | None = None) -> Result:
    """The same CLI in-process through click's CliRunner (fast, no subprocess)."""
    from aggregator.cli import cli

    argv = (["--config", str(config)] if config is not None else []) + list(args)
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("AGGREGATOR_")}
    return CliRunner().invoke(cli, argv, catch_exceptions=False, env=unset)


# --- a beritajakarta.id-like portal (HTML pages) ----------------------------------------------
# Markup modelled on m.beritajakarta.id (see tests/fixtures/html/beritajakarta/generate.py and
# ../shared/fixtures/README.md): `ul.list-index > li` items with `h2 a` and `div.list-info`
# spans named by Material icon ligatures, the "Berita Terpopuler" `ol.slides` box closed by
# `</ul>`, articles at /read/<id>/<slug> with `div.news-read div.content-body`, "Reporter : NAME"
# in `div.content-info`, and the category in `ul.breadcrumbs li.active`.

HTML_TYPE = "text/html; charset=utf-8"
WIB = timezone(timedelta(hours=7))
_DAYS = ["Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"]
_MONTHS = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
           "September", "Oktober", "November", "Desember"]

# The shared scraper of the portal, as config/sources/jakarta.toml writes it, plus pagination.
BJ_SCRAPER = """\
[scraper.bj]
item = "ul.list-index > li, ol.slides > li"
title = "h2 a, h3 a"
link = "h2 a, h3 a @href"
id = { css = "h2 a, h3 a", attr = "href", regex = "/read/(\\\\d+)" }
id_scope = "bj-portal"
date = "span:has(i:contains('access_time'))"
views = "span:has(i:contains('remove_red_eye'))"
author = "span:has(i:contains('person'))"
image = "img @src"
ignore = "i.material-icons"
next_page = "ul.pagination a[rel=next] @href"
max_pages = 3

[scraper.bj.article]
content = "div.news-read div.content-body @html"
category = "ul.breadcrumbs li.active"
max_per_poll = 10

[scraper.bj.article.author]
css = "div.content-info span:has(i:contains('person'))"
regex = "Reporter\\\\s*:\\\\s*(.+)"
"""


def html_route(text: str, status: int = 200) -> Route:
    return Route(text.encode("utf-8"), HTML_TYPE, status=status)


def slugify(title: str) -> str:
    keep = "".join(c.lower() if c.isalnum() else "-" for c in title)
    return "-".join(filter(None, keep.split("-")))


def long_date(when: datetime) -> str:
    """'Rabu, 25 November 2026 14:50 WIB', as the portal writes dates."""
    d = when.astimezone(WIB)
    return f"{_DAYS[d.weekday()]}, {d.day:02d} {_MONTHS[d.month - 1]} {d.year} {d:%H:%M} WIB"


@dataclass
class Article:
    id: int
    title: str
    published: datetime  # aware
    views: int
    reporter: str
    category: str = "Pemerintahan"
    text: str = ""
    author_in_listing: bool = True  # the listing shows a `person` span

    @property
    def path(self) -> str:
        return f"/read/{self.id}/{slugify(self.title)}"

    @property
    def image(self) -> str:
        return f"/photo/2026_bj/{self.id:x}a7.jpg"

    @property
    def body_text(self) -> str:
        return self.text or f"Isi berita nomor {self.id}: {self.title}."


def bj_list_item(a: Article, date_icon: str = "access_time") -> str:
    author = (f'\n              <span><i class="material-icons">person</i>{a.reporter}</span>'
              if a.author_in_listing else "")
    return f"""        <li class="row">
          <div class="col s7">
            <h2><a href="{a.path}">{a.title}</a></h2>
            <div class="list-info">
              <span><i class="material-icons">{date_icon}</i>{long_date(a.published)}</span><br>
              <span><i class="material-icons">remove_red_eye</i>{a.views}</span>{author}
            </div>
          </div>
          <div class="col s5 right-image">
            <a href="{a.path}">
              <img class="responsive-img" src="{a.image}" />
            </a>
          </div>
        </li>
"""


def bj_popular_box(articles: Sequence[Article], base: str) -> str:
    """The "Berita Terpopuler" box: absolute links, date without time, `<ol>` closed by
    `</ul>` as on the real page."""
    if not articles:
        return ""

    def day(a: Article) -> str:
        return f"{a.published.astimezone(WIB):%d-%m-%Y}"

    rows = "".join(f"""            <li>
              <h3 class="populer-title"><a href="{base}{a.path}">{a.title}</a></h3>
              <div class="populer-info">
                <span><i class="material-icons">access_time</i>{day(a)}</span>
                <span><i class="material-icons">remove_red_eye</i>{a.views}</span>
                <span><i class="material-icons">person</i>{a.reporter}</span>
              </div>
            </li>
""" for a in articles)
    return f"""    <div class="news-grey">
      <div class="news-list">
        <div class="header"><span class="title">Berita Terpopuler</span></div>
        <div class="slider">
          <ol class="slides">
{rows}          </ul>
        </div>
      </div>
    </div>
"""


def _bj_page(title: str, breadcrumb: str, main: str, crumb_href: str = "#") -> str:
    return f"""<!DOCTYPE html>
<html lang="id">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} - Beritajakarta.id</title>
  <script type="text/javascript">
    var items = "<li class='row'><h2><a href='/read/1/x'>bukan berita</a></h2></li>";
  </script>
</head>
<body>
  <div class="navbar-fixed"><nav><div class="nav-wrapper">
    <a href="/" class="left brand-logo">Berita Jakarta</a>
    <ul class="right"><li><a href="/berita/terkini">Terkini</a></li>
    <li><a href="/berita/terpopuler">Terpopuler</a></ul>
  </div></nav></div>
  <div class="nav-wrapper mt16">
    <ul class="col s12 breadcrumbs"><li><a href="/">Beranda</a></li>
      <li class="separator"></li>
      <li class="active"><a href="{crumb_href}">{breadcrumb}</a></li></ul>
  </div>
{main}
<footer class="text-white">
  <div class="container"><div class="row"><div class="col s12">
    <h5>KONTAK KAMI</h3>
    <p>Jl. Medan Merdeka Selatan 8-9 Blok F Lt. II Jakarta <br>
      <i class="material-icons">local_phone</i> +62 21 3822356</p>
  </div></div></div>
</footer>
</body>
</html>
"""


def bj_listing(heading: str, listing: Sequence[Article], popular: Sequence[Article] = (),
               base: str = "", next_href: str | None = None,
               date_icon: str = "access_time") -> str:
    """A listing page (latest, most viewed, a category or region page)."""
    items = "".join(bj_list_item(a, date_icon) for a in listing)
    pager = (f'      <ul class="pagination"><li class="waves-effect">'
             f'<a rel="next" href="{next_href}">Berikutnya</a></li></ul>\n'
             if next_href else "")
    main = f"""    <div class="news-list">
      <div class="header"><span class="title">{heading}</span></div>
      <ul class="list-index">
{items}      </ul>
{pager}      <p class="text-center"><p>Tampilkan lebih banyak</p></p>
    </div>
{bj_popular_box(popular, base)}"""
    return _bj_page(heading, heading, main)


def bj_redesigned(heading: str, listing: Sequence[Article]) -> str:
    """The same listing after a redesign: cards instead of `ul.list-index`, no popular box."""
    cards = "".join(f"""      <article class="card-berita">
        <a class="judul" href="{a.path}">{a.title}</a>
        <time datetime="{a.published.isoformat()}">{long_date(a.published)}</time>
        <span class="dibaca">{a.views} kali dibaca</span>
      </article>
""" for a in listing)
    main = f"""    <section class="daftar-berita">
      <h1>{heading}</h1>
{cards}    </section>
"""
    return _bj_page(heading, heading, main)


def bj_article(a: Article) -> str:
    """An article's own page at /read/<id>/<slug>."""
    main = f"""    <div class="news-read">
        <img class="responsive-img" src="{a.image}" alt="{a.title}" />
        <div class="image-info">
            <span><i class='material-icons'>photo</i> {a.reporter} - Beritajakarta.id</span>
        </div>
      <div class="content">
        <h1>{a.title}</h1>
        <div class="content-info">
          <span><i class="material-icons">access_time</i> {long_date(a.published)}</span>
          <span><i class="material-icons">remove_red_eye</i> {a.views}</span>
          <span><i class="material-icons">person</i> Reporter : {a.reporter}</span>
          <span><i class="material-icons">person</i> Editor : Widodo Bogiarto</span>
        </div>
        <div class="content-body">
        <p class="text-justify"><p>{a.body_text}</p>
        <p class="text-justify">Paragraf kedua berita {a.id}.</p>
        </div>
      </div>
    </div>
"""
    return _bj_page(a.title, a.category, main, f"/kategori/{slugify(a.category)}")


@contextmanager
def app_in_thread(app: Any, sock: socket.socket) -> Iterator[None]:
    """Serve an ASGI app with uvicorn on a thread, on an already bound socket, until the
    block ends."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
