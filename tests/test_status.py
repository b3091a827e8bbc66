"""Visibility for admins through the real app on a real socket: /status and /api/sources
(states, needing-attention first, new items per day, last error with its time, the last 20
fetches per source), /healthz (a real write, the scheduler's heartbeat; 503 naming the failing
check), and the admin token when the server is bound to an address that is not loopback."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator import web
from aggregator.core import Aggregator
from aggregator.scheduler import Scheduler
from aggregator.web import SiteHolder, build_app, given_token, is_loopback, scheduler_problem
from tests.portal import (
    PORTAL_SOURCES,
    Portal,
    app_in_thread,
    database,
    invoke,
    query,
    serve_standard_feeds,
    write_config,
)

pytestmark = pytest.mark.slow

TOKEN = "s3cret-admin-token-for-tests"
SOURCES = [s for s in PORTAL_SOURCES if s.id != "surabaya-timeout"]  # no 30 s wait
ADMIN_PATHS = ("/status", "/status/dki-rss", "/api/sources", "/api/sources/dki-rss",
               "/api/config", "/metrics")


class Client:
    def __init__(self, port: int) -> None:
        self.port = port

    def get(self, path: str, headers: dict[str, str] | None = None
            ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return (response.status, {k.lower(): v for k, v in response.getheaders()},
                    response.read())
        finally:
            conn.close()


@contextmanager
def running(agg: Aggregator, host: str = "127.0.0.1",
            scheduler: Scheduler | None = None) -> Iterator[Client]:
    """build_app told it listens on `host`, served on a kernel-chosen port of 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    holder = SiteHolder()
    holder.update(agg.render())
    with app_in_thread(build_app(agg, holder, scheduler, host=host), sock):
        yield Client(sock.getsockname()[1])


@pytest.fixture(scope="module")
def polled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A database after two polls of the standard portal (one source answers 500)."""
    tmp = tmp_path_factory.mktemp("status")
    with Portal() as portal:
        serve_standard_feeds(portal)
        config = write_config(tmp, portal, SOURCES, timeout=2.0)
        for _ in range(2):
            invoke("poll", "--all", config=config)
        yield config


def test_status_and_api_sources_put_what_needs_the_admin_first(polled: Path) -> None:
    agg = Aggregator.open(str(polled))
    try:
        with running(agg) as client:
            status, headers, body = client.get("/api/sources")
            assert status == 200 and "json" in headers["content-type"]
            rows = json.loads(body)
            assert rows[0]["id"] == "jatim-500"  # failing before ok
            states = [r["state"] for r in rows]
            order = [web_state_rank(s) for s in states]
            assert order == sorted(order), states
            by_id = {r["id"]: r for r in rows}
            failing = by_id["jatim-500"]
            assert failing["state"] == "failing" and failing["failures"] == 2
            assert "500" in failing["last_error"] and failing["last_error_at"]
            ok = by_id["dki-rss"]
            assert ok["state"] == "ok" and ok["item_count"] > 0
            # every item was first stored today: new per day is the count (a day at least)
            assert ok["new_per_day"] == float(ok["item_count"])
            assert failing["new_per_day"] == 0.0
            assert {"last_success_at", "next_due_at"} <= set(ok)

            status, _, body = client.get("/api/sources/jatim-500")
            detail = json.loads(body)
            assert status == 200 and len(detail["fetches"]) == 2
            assert all(f["outcome"] == "error" and f["status"] == 500
                       for f in detail["fetches"])
            assert client.get("/api/sources/nope")[0] == 404

            status, headers, body = client.get("/status")
            page = body.decode()
            assert status == 200 and "text/html" in headers["content-type"]
            assert page.index("jatim-500") < page.index("dki-rss")
            assert "href='/status/jatim-500'" in page and "500" in page
            status, _, body = client.get("/status/jatim-500")
            assert status == 200 and body.decode().count("<tr><td>") == 2  # its 2 fetches
            assert client.get("/status/nope")[0] == 404
    finally:
        agg.close()


def web_state_rank(state: str) -> int:
    from aggregator.core import STATE_ORDER

    return STATE_ORDER.get(state, 3)


def test_a_source_removed_from_the_config_is_listed_last(polled: Path, tmp_path: Path
                                                         ) -> None:
    config = write_config(tmp_path, None, SOURCES[:1])
    text = config.read_text().replace(str(tmp_path / "data" / "aggregator.db"),
                                      str(database(polled)))
    config.write_text(text)
    agg = Aggregator.open(str(config))
    try:
        rows = agg.source_status()
        assert rows[-1]["state"] == "not in config"
        assert {r["id"] for r in rows if r["in_config"]} == {SOURCES[0].id}
    finally:
        agg.close()


# --- healthz ----------------------------------------------------------------------------------


def test_healthz_writes_and_names_the_failing_check(polled: Path, tmp_path: Path) -> None:
    agg = Aggregator.open(str(polled))
    try:
        scheduler = Scheduler(agg, lambda site: None, tick=3600)  # one tick at start
        with running(agg, scheduler=scheduler) as client:
            deadline = time.monotonic() + 20
            while scheduler.tick_ended is None and time.monotonic() < deadline:
                time.sleep(0.05)
            status, _, body = client.get("/healthz")
            checks = json.loads(body)
            assert status == 200, checks
            assert checks["database"] == "ok" and checks["scheduler"] == "running"
            # the write is rolled back: nothing of it stays
            assert query(polled, "SELECT COUNT(*) FROM store_meta WHERE name='healthz_at'"
                         )[0][0] == 0

            # a scheduler whose last tick is long past is not alive
            assert scheduler.tick_started is not None
            scheduler.tick_started -= 4 * 3600  # three ticks (3 h here) and more
            scheduler.tick_ended = scheduler.tick_started + 1
            status, _, body = client.get("/healthz")
            checks = json.loads(body)
            assert status == 503 and checks["status"] == "failing: scheduler", checks
            assert checks["scheduler"].startswith("no tick for")
    finally:
        agg.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files")
def test_healthz_is_503_when_the_database_is_read_only(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, SOURCES[:1])
    agg = Aggregator.open(str(config))
    db = database(config)
    try:
        with running(agg) as client:
            assert client.get("/healthz")[0] == 200
            db.chmod(stat.S_IRUSR)
            status, _, body = client.get("/healthz")
            assert status == 503 and json.loads(body)["status"] == "failing: database"
    finally:
        db.chmod(stat.S_IRUSR | stat.S_IWUSR)
        agg.close()


def test_touch_is_a_real_write(tmp_path: Path) -> None:
    """The health write fails where writing fails (a connection that may not write, as a
    read-only file would), and leaves nothing behind where it succeeds."""
    from aggregator.errors import StoreError
    from aggregator.store import Store

    store = Store(tmp_path / "a.db")
    try:
        store.touch(datetime.now(UTC))
        assert store.meta_get("healthz_at") is None  # rolled back
        store.db.conn.execute("PRAGMA query_only=ON")
        with pytest.raises(StoreError, match="readonly"):
            store.touch(datetime.now(UTC))
        assert not store.db.conn.in_transaction
    finally:
        store.db.conn.execute("PRAGMA query_only=OFF")
        store.close()


def test_healthz_names_a_failing_database(polled: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """(A fake at the store's seam, for machines where the read-only file test is skipped:
    root writes anyway.)"""
    from aggregator.errors import StoreError
    from aggregator.store import Store

    def full(self: Store, now: datetime, wait: float = 2.0) -> None:
        raise StoreError("database error: database or disk is full")

    agg = Aggregator.open(str(polled))
    try:
        with running(agg) as client:
            monkeypatch.setattr(Store, "touch", full)
            status, _, body = client.get("/healthz")
            checks = json.loads(body)
            assert status == 503 and checks["status"] == "failing: database"
            assert "disk is full" in checks["database"]
    finally:
        agg.close()


def test_scheduler_problem_rules() -> None:
    class Fake:
        running = True
        tick = 15.0
        tick_started: float | None = None
        tick_ended: float | None = None

    s: Any = Fake()
    assert scheduler_problem(s, 1000.0) is None  # not ticked yet: starting
    s.tick_started, s.tick_ended = 990.0, 991.0
    assert scheduler_problem(s, 1000.0) is None
    assert scheduler_problem(s, 1049.0) is None  # a minute is the least grace
    assert scheduler_problem(s, 1100.0) == "no tick for 110 s"
    s.tick_ended = None  # a tick in progress, for a long poll
    assert scheduler_problem(s, 2000.0) is None
    assert scheduler_problem(s, 990.0 + 3601) == "one tick has been running for 3601 s"
    s.running = False
    assert scheduler_problem(s, 1000.0) == "stopped"


# --- the admin token ------------------------------------------------------------------------


def test_loopback_addresses() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.10", "10.0.0.5", "berita.example.test"):
        assert not is_loopback(host), host


def test_token_from_bearer_or_basic() -> None:
    basic = base64.b64encode(b"admin:" + TOKEN.encode()).decode()
    assert given_token(f"Bearer {TOKEN}") == TOKEN
    assert given_token(f"bearer   {TOKEN} ") == TOKEN
    assert given_token(f"Basic {basic}") == TOKEN
    assert given_token("Basic !!notbase64") is None
    assert given_token(TOKEN) is None and given_token("") is None


def test_admin_endpoints_without_a_token_on_a_public_address(polled: Path) -> None:
    agg = Aggregator.open(str(polled))
    try:
        with running(agg, host="0.0.0.0") as client:
            for path in ADMIN_PATHS:
                status, _, body = client.get(path, {"Authorization": f"Bearer {TOKEN}"})
                assert status == 403, path
                assert b"AGGREGATOR_ADMIN_TOKEN" in body and b"admin_token" in body
            # the public side keeps working
            assert client.get("/feeds/all.rss")[0] == 200
            assert client.get("/")[0] == 200
            assert client.get("/healthz")[0] == 200
            assert client.get("/api/top")[0] == 200
    finally:
        agg.close()


def test_admin_endpoints_with_a_token(polled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_ADMIN_TOKEN", TOKEN)
    agg = Aggregator.open(str(polled))
    assert agg.config.settings.admin_token == TOKEN
    basic = base64.b64encode(b"anyone:" + TOKEN.encode()).decode()
    try:
        with running(agg, host="192.168.1.10") as client:
            for path in ADMIN_PATHS:
                status, headers, _ = client.get(path)
                assert status == 401 and headers["www-authenticate"].startswith("Basic"), path
                assert client.get(path, {"Authorization": "Bearer wrong-token-xxxxxx"}
                                  )[0] == 401
                assert client.get(f"{path}?token={TOKEN}")[0] == 401  # never in a URL
                assert client.get(path, {"Authorization": f"Bearer {TOKEN}"})[0] == 200, path
                assert client.get(path, {"Authorization": f"Basic {basic}"})[0] == 200, path
            assert client.get("/feeds/all.rss")[0] == 200
    finally:
        agg.close()


def test_serve_warns_when_public_without_a_token(polled: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    started: list[tuple[str, int]] = []
    monkeypatch.setattr(web.uvicorn, "run", lambda app, host, port, **kw: started.append(
        (host, port)))
    agg = Aggregator.open(str(polled))
    try:
        with caplog.at_level(logging.WARNING, logger="aggregator.web"):
            web.serve(agg, "0.0.0.0", 8080)
        assert started == [("0.0.0.0", 8080)]
        assert any("without an admin token" in r.message for r in caplog.records)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="aggregator.web"):
            web.serve(agg, "127.0.0.1", 8080)
        assert not any("admin token" in r.message for r in caplog.records)
    finally:
        agg.close()


def test_a_reloaded_config_changes_max_age_and_the_pages_language(polled: Path) -> None:
    """What the web app derives from the config (the feeds' max-age from the shortest poll
    interval, the pages' language) follows a reload, as `Aggregator.reload` swaps the config:
    max-age at the next render (a search feed's at once), the pages at once."""
    from dataclasses import replace

    from aggregator.web import max_age

    agg = Aggregator.open(str(polled))
    try:
        with running(agg) as client:
            _, headers, _ = client.get("/feeds/all.rss")
            assert "max-age=900" in headers["cache-control"]  # every source polls every 15m
            status, _, body = client.get("/feeds/nothing.rss")
            assert status == 404 and "tidak ada feed" in body.decode()
            assert '<html lang="id">' in client.get("/status")[2].decode()

            config = agg.config
            faster = replace(config, settings=replace(config.settings, ui_language="en"),
                             sources=tuple(replace(s, interval=600) for s in config.sources))
            agg.reload(faster)
            assert max_age(agg.config) == 600
            status, _, body = client.get("/feeds/nothing.rss")
            assert status == 404 and "no feed at" in body.decode()
            assert '<html lang="en">' in client.get("/status")[2].decode()
            # a search feed is made per request: it shows the new max-age at once (the
            # documents' prepared responses take it at the next render)
            _, headers, _ = client.get("/feeds/search.rss?q=banjir")
            assert "max-age=600" in headers["cache-control"]
    finally:
        agg.close()
