"""`aggregator serve` as a real process while the admin edits its config on disk: a valid edit
(a source added) is polled and served, an invalid one is refused while the service keeps
serving and polling with the old config (the error named on /status and /api/config), and a
valid edit again clears the error and applies (a removed source is no longer polled, its
items are still served). SIGHUP reloads at once."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest

from tests.portal import (
    Portal,
    Route,
    Src,
    database,
    fixture_feed,
    start_serve,
    stop,
    write_config,
)
from tests.test_serve_process import free_port, get, wait_for

pytestmark = pytest.mark.slow

DKI = Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki")
JATENG = Src("jateng-atom", "/atom/diskominfo-jateng.xml", "diskominfo-jateng")
BALI = Src("bali-rss", "/rss/bali.xml", "pemprov-bali")
ITEMS = {"dki-rss": 3, "jateng-atom": 2, "bali-rss": 2}


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], base: str, config: Path,
                 logs: Path) -> None:
        self.proc, self.base, self.config, self.logs = proc, base, config, logs

    def wait(self, what: str, check: Any, seconds: float = 20) -> Any:
        return wait_for(what, check, time.monotonic() + seconds, self.proc, self.logs)

    def json(self, path: str) -> Any:
        status, _, body = get(self.base + path)
        return json.loads(body) if status == 200 else None

    def sources(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in self.json("/api/sources") or []}

    def entries(self) -> list[Any]:
        status, _, body = get(self.base + "/feeds/all.rss")
        assert status == 200
        return list(feedparser.parse(body).entries)

    def make_due(self, *ids: str) -> None:
        """Make sources due now in the service's real database (as time passing would)."""
        conn = sqlite3.connect(database(self.config), timeout=30)
        try:
            conn.executemany("UPDATE sources SET next_due_at='2000-01-01T00:00:00.000000Z' "
                             "WHERE id=?", [(i,) for i in ids])
            conn.commit()
        finally:
            conn.close()


@pytest.fixture
def served(portal: Portal, tmp_path: Path) -> Iterator[Served]:
    portal.routes[DKI.path] = Route(fixture_feed("pemprov-dki.rss"))
    portal.routes[JATENG.path] = Route(fixture_feed("diskominfo-jateng.atom"),
                                       "application/atom+xml; charset=utf-8")
    portal.routes[BALI.path] = Route(fixture_feed("pemprov-bali-etag.rss"))
    config = write_config(tmp_path, portal, [DKI])
    port = free_port()
    logs = tmp_path / "serve.log"
    proc = start_serve(config, port, logs, "--tick", "0.5")
    try:
        s = Served(proc, f"http://127.0.0.1:{port}", config, logs)
        s.wait("the first poll", lambda: True if s.sources().get("dki-rss", {}).get(
            "item_count") == 3 else None)
        yield s
    finally:
        stop(proc)


def test_valid_then_invalid_then_valid_edits(served: Served, portal: Portal,
                                             tmp_path: Path) -> None:
    included = served.config.parent / "sources" / "portal.toml"

    # (a) a valid edit adds a source: it is polled at once and its items are served
    write_config(tmp_path, portal, [DKI, JATENG])
    served.wait("jateng-atom polled", lambda: True if served.sources().get(
        "jateng-atom", {}).get("item_count") == 2 else None)
    served.wait("its items in the feed", lambda: True if len(served.entries()) == 5 else None)
    assert served.json("/api/config")["ok"] is True
    assert b"invalid" not in get(served.base + "/status")[2]

    # (b) an invalid edit (a new source with a bad interval) is refused; the service keeps
    # serving and polling with the config in force
    write_config(tmp_path, portal, [DKI, JATENG, BALI])
    included.write_text(included.read_text().replace(
        'id = "bali-rss"\nkind = "feed"', 'id = "bali-rss"\nkind = "feed"\nintervl = "1h"'))
    state = served.wait("the error on /api/config", lambda: (
        c if (c := served.json("/api/config")) and not c["ok"] else None))
    [error] = state["errors"]
    assert (error["file"], error["section"], error["field"]) == (
        str(included), "source bali-rss", "intervl")
    assert "did you mean 'interval'" in error["message"]
    status, _, page = get(served.base + "/status")
    assert status == 200
    text = page.decode()
    assert "config-error" in text and str(included) in text and "intervl" in text
    assert served.json("/healthz")["status"] == "ok"  # an invalid edit is not a failure
    logs = served.logs.read_text(errors="replace")
    assert "config error:" in logs and "intervl" in logs
    before = len(portal.requests_for(DKI.path))
    served.make_due("dki-rss", "jateng-atom")
    served.wait("the old config's sources polled again", lambda: True if len(
        portal.requests_for(DKI.path)) > before else None)
    assert portal.requests_for(BALI.path) == []  # the refused source was never fetched
    assert set(served.sources()) == {"dki-rss", "jateng-atom"}
    assert len(served.entries()) == 5

    # (c) valid again, with dki removed: the error clears, bali is added, dki no longer
    # polled but its items are still served
    write_config(tmp_path, portal, [JATENG, BALI])
    served.wait("the error cleared", lambda: True if (c := served.json("/api/config"))
                and c["ok"] else None)
    served.wait("bali-rss polled", lambda: True if served.sources().get(
        "bali-rss", {}).get("item_count") == ITEMS["bali-rss"] else None)
    rows = served.sources()
    assert rows["dki-rss"]["state"] == "not in config" and rows["dki-rss"]["item_count"] == 3
    assert b"config-error" not in get(served.base + "/status")[2]
    total = sum(ITEMS.values())
    served.wait("every item in the feed", lambda: True if len(served.entries()) == total
                else None)
    dki_requests = len(portal.requests_for(DKI.path))
    bali_requests = len(portal.requests_for(BALI.path))
    served.make_due("dki-rss", "bali-rss")
    served.wait("a poll after the edit", lambda: True if len(
        portal.requests_for(BALI.path)) > bali_requests else None)
    assert len(portal.requests_for(DKI.path)) == dki_requests  # removed: not polled
    assert get(served.base + "/feeds/agency/pemprov-dki.rss")[0] == 404  # no such agency
    status, _, _ = get(served.base + "/feeds/agency/pemprov-bali.rss")
    assert status == 200
    assert served.proc.poll() is None


def test_sighup_reloads_at_once(served: Served, portal: Portal, tmp_path: Path) -> None:
    write_config(tmp_path, portal, [DKI, JATENG])
    served.proc.send_signal(signal.SIGHUP)
    served.wait("jateng-atom polled", lambda: True if served.sources().get(
        "jateng-atom", {}).get("item_count") == 2 else None)
    assert "config reloaded (SIGHUP)" in served.logs.read_text(errors="replace")
    config = served.json("/api/config")
    assert config["ok"] is True and config["reloads"] == 1
    assert "added 1 source(s): jateng-atom" in config["last_change"]
    assert served.proc.poll() is None
