"""Graceful shutdown of `aggregator serve` as a real process: SIGTERM while a poll is in flight
(one source's answer is held back by the portal) ends the process promptly with exit code 0;
the fast sources' items are stored exactly once, the held-back source is abandoned and stays
due, and the database is intact. A later poll picks up exactly the abandoned source."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.portal import (
    Portal,
    Route,
    Src,
    cli_env,
    database,
    fixture_feed,
    item_counts,
    query,
    run_cli,
    write_config,
)
from tests.test_serve_process import free_port

pytestmark = pytest.mark.slow

SOURCES = [Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki"),
           Src("jateng-atom", "/atom/diskominfo-jateng.xml", "diskominfo-jateng"),
           Src("surabaya-slow", "/rss/surabaya.xml", "pemkot-surabaya")]
FAST = {"dki-rss": 3, "jateng-atom": 2}


def _serve_with_one_held_back(portal: Portal) -> Route:
    """The fast sources' feeds, and the slow source's, whose answer is held back 60 s."""
    portal.routes["/rss/pemprov-dki.xml"] = Route(fixture_feed("pemprov-dki.rss"))
    portal.routes["/atom/diskominfo-jateng.xml"] = Route(
        fixture_feed("diskominfo-jateng.atom"), "application/atom+xml; charset=utf-8")
    slow = portal.routes["/rss/surabaya.xml"] = Route(fixture_feed("pemprov-bali-etag.rss"),
                                                      delay=60.0)
    return slow


def _wait_under_way(proc: subprocess.Popen[bytes], logs: Path, slow: Route,
                    logged: str) -> None:
    """Until the fast sources are done (`logged`, with `{}` for the source id, is in the log
    for each) and the slow one is in flight."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = logs.read_text(errors="replace")
        if slow.arrived.is_set() and all(logged.format(sid) in text for sid in FAST):
            return
        assert proc.poll() is None, text
        time.sleep(0.05)
    pytest.fail("the poll did not get under way:\n" + logs.read_text())


def test_sigterm_mid_poll_stops_promptly_and_loses_nothing(portal: Portal,
                                                           tmp_path: Path) -> None:
    slow = _serve_with_one_held_back(portal)
    # the request timeout (60 s) is far beyond the grace period: only the stop can end it
    config = write_config(tmp_path, portal, SOURCES, timeout=60.0,
                          settings="[settings.schedule]\nshutdown_grace = 1\n")
    logs = tmp_path / "serve.log"
    with logs.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "--log-format",
             "json", "serve", "--host", "127.0.0.1", "--port", str(free_port())],
            stdout=out, stderr=subprocess.STDOUT, env=cli_env(), cwd=config.parent)
    try:
        _wait_under_way(proc, logs, slow, '"source": "{}", ')
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(20)  # the grace is 1 s; the held answer would take 60
        except subprocess.TimeoutExpired:
            pytest.fail("serve did not stop after SIGTERM:\n" + logs.read_text())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    text = logs.read_text(errors="replace")
    assert code == 0, f"exit code {code}:\n{text}"
    assert "Traceback" not in text, text
    # --log-format json: every line is a JSON object, uvicorn's own included
    records = [json.loads(line) for line in text.splitlines()]
    fetches = {r["source"]: r["outcome"] for r in records if r.get("event") == "fetch"}
    assert fetches == {"dki-rss": "new", "jateng-atom": "new", "surabaya-slow": "abandoned"}
    assert any(r["logger"].startswith("uvicorn") and "shutdown complete" in r["msg"]
               for r in records), text

    conn = sqlite3.connect(database(config))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert item_counts(config) == FAST
    links = query(config, "SELECT COUNT(*) AS n, COUNT(DISTINCT link) AS d FROM items")[0]
    assert links["n"] == links["d"] == sum(FAST.values())
    state = {r["id"]: r for r in query(config, "SELECT * FROM sources")}
    for sid in FAST:
        assert state[sid]["last_success_at"] is not None and state[sid]["next_due_at"]
    # the abandoned source left no trace: never fetched, still due
    assert state["surabaya-slow"]["last_fetch_at"] is None
    assert state["surabaya-slow"]["next_due_at"] is None
    assert query(config, "SELECT * FROM fetches WHERE source_id='surabaya-slow'") == []

    # the next run (cron, or serve again) polls exactly the abandoned source
    slow.delay = 0.0
    portal.clear_log()
    done = run_cli("poll", config=config)
    assert done.returncode == 0, done.stderr
    assert [r.path for r in portal.log] == ["/rss/surabaya.xml"]
    assert item_counts(config) == {**FAST, "surabaya-slow": 2}


def test_sigterm_winds_a_cli_poll_down_the_same_way(portal: Portal, tmp_path: Path) -> None:
    """`aggregator poll` (and `run`, from cron) on SIGTERM: the done sources are committed,
    the held-back one is abandoned and stays due, the process ends promptly."""
    slow = _serve_with_one_held_back(portal)
    config = write_config(tmp_path, portal, SOURCES, timeout=60.0,
                          settings="[settings.schedule]\nshutdown_grace = 0.5\n")
    logs = tmp_path / "poll.log"
    with logs.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "poll", "--all"],
            stdout=out, stderr=subprocess.STDOUT, env=cli_env(), cwd=config.parent)
    try:
        _wait_under_way(proc, logs, slow, "source={} ")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    text = logs.read_text(errors="replace")
    assert code == 0, text
    assert "outcome=abandoned" in text and "2 sources: 5 new" in text, text
    assert item_counts(config) == FAST
    slow_row = query(config, "SELECT * FROM sources WHERE id='surabaya-slow'")[0]
    assert slow_row["last_fetch_at"] is None and slow_row["next_due_at"] is None
