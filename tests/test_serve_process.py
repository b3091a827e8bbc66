"""`aggregator serve` as a real process: it polls the fake portal on start (the scheduler's
first tick), serves the feeds with validators, and stops cleanly on SIGTERM. What it serves is
byte for byte what `publish --out` writes from the same database."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import feedparser
import pytest

from aggregator.core import OUTPUT_LOCK
from aggregator.publish import MANIFEST
from aggregator.publish.render_cache import RENDER_CACHE
from tests.feedcheck import assert_valid_tree
from tests.portal import (
    BASE_URL,
    Portal,
    Route,
    Src,
    fixture_feed,
    run_cli,
    start_serve,
    write_config,
)

pytestmark = pytest.mark.slow

T = TypeVar("T")
SOURCES = [Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki"),
           Src("jateng-atom", "/atom/diskominfo-jateng.xml", "diskominfo-jateng")]
ITEMS = {"dki-rss": 3, "jateng-atom": 2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A plain GET (no proxy, no gzip): status, lower-cased headers, body."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=5) as response:
            return (response.status, {k.lower(): v for k, v in response.headers.items()},
                    response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def wait_for(what: str, check: Callable[[], T | None], deadline: float,
             proc: subprocess.Popen[bytes], logs: Path) -> T:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve exited with {proc.returncode} while waiting for {what}:\n"
                        + logs.read_text(errors="replace"))
        try:
            value = check()
        except OSError:
            value = None
        if value is not None:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}:\n" + logs.read_text(errors="replace"))


@pytest.fixture
def served(portal: Portal, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str,
                                                             Path, Path]]:
    portal.routes["/rss/pemprov-dki.xml"] = Route(fixture_feed("pemprov-dki.rss"))
    portal.routes["/atom/diskominfo-jateng.xml"] = Route(
        fixture_feed("diskominfo-jateng.atom"), "application/atom+xml; charset=utf-8")
    config = write_config(tmp_path, portal, SOURCES)
    port = free_port()
    logs = tmp_path / "serve.log"
    proc = start_serve(config, port, logs)
    try:
        yield proc, f"http://127.0.0.1:{port}", config, logs
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_serve_polls_serves_and_stops_on_sigterm(served: tuple[subprocess.Popen[bytes], str,
                                                               Path, Path],
                                                 portal: Portal, tmp_path: Path) -> None:
    proc, base, config, logs = served
    deadline = time.monotonic() + 15

    def health() -> dict[str, str] | None:
        status, _, body = get(base + "/healthz")
        return json.loads(body) if status == 200 else None

    checks = wait_for("/healthz", health, deadline, proc, logs)
    assert {k: checks[k] for k in ("status", "process", "database", "scheduler")} == {
        "status": "ok", "process": "ok", "database": "ok", "scheduler": "running"}

    def polled() -> bytes | None:
        status, _, body = get(base + "/feeds/all.rss")
        entries = feedparser.parse(body).entries if status == 200 else []
        return body if len(entries) == sum(ITEMS.values()) else None

    # the scheduler polls at start: no `poll` was run, yet the feeds fill up
    served_rss = wait_for("the first scheduled poll", polled, deadline, proc, logs)
    for src in SOURCES:
        assert len(portal.requests_for(src.path)) == 1, f"{src.id} fetched once at start"

    status, _, body = get(base + "/api/sources")
    assert status == 200
    rows = {r["id"]: r for r in json.loads(body)}
    assert set(rows) == set(ITEMS)
    for sid, n in ITEMS.items():
        assert rows[sid]["state"] == "ok", rows[sid]
        assert rows[sid]["item_count"] == n
        assert rows[sid]["last_success_at"] is not None
        assert rows[sid]["next_due_at"] is not None

    status, headers, body = get(base + "/feeds/all.rss")
    assert status == 200 and body == served_rss
    etag = headers["etag"]
    assert etag and headers.get("last-modified")
    status, headers, body = get(base + "/feeds/all.rss", {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert headers["etag"] == etag
    status, _, _ = get(base + "/feeds/all.rss", {"If-None-Match": '"something-else"'})
    assert status == 200

    # what `publish --out` writes from the same database is what is served
    out = tmp_path / "out"
    result = run_cli("publish", "--out", str(out), config=config)
    assert result.returncode == 0, result.stderr
    assert (out / "feeds" / "all.rss").read_bytes() == served_rss
    assert_valid_tree(out, BASE_URL)
    own = (MANIFEST, RENDER_CACHE, OUTPUT_LOCK)  # its own files
    written = sorted(f.relative_to(out).as_posix() for f in out.rglob("*")
                     if f.is_file() and f.name not in own)
    assert {"feeds/all.atom", "feeds/all.json", "feeds/agency/pemprov-dki.rss", "opml",
            "index.html"} <= set(written)
    for name in written:
        status, _, body = get(base + ("/" if name == "index.html" else f"/{name}"))
        assert status == 200, name
        assert (out / name).read_bytes() == body, f"/{name} differs from the published file"

    # SIGTERM: a clean, quick stop (uvicorn re-raises the signal after its shutdown)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail("serve did not stop within 5 s of SIGTERM:\n" + logs.read_text())
    text = logs.read_text(errors="replace")
    assert code in (0, -signal.SIGTERM), f"exit code {code}:\n{text}"
    assert time.monotonic() - started < 5
    assert "Traceback" not in text, text
    assert "Application shutdown complete" in text, text
