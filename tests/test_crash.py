"""Crash safety: `aggregator serve` killed with SIGKILL in the middle of a poll, restarted on
the same database, polls again; nothing stored before the kill is lost or changed, nothing
is stored twice, the database is intact and the served feeds are valid. And the cron lock:
a `run` killed while holding it leaves no stale lock; two overlapping runs never both write."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.feedcheck import check_document
from tests.portal import (
    AGENCIES,
    BASE_URL,
    Portal,
    Route,
    Src,
    cli_env,
    database,
    start_serve,
    stop,
    write_config,
)
from tests.test_serve_process import free_port, get, wait_for

pytestmark = pytest.mark.slow

FAST = 6  # sources that answer at once, 400 items each: the poll commits mid-way (2000)
PER_FAST = 400
PER_SLOW = 50
_SYLLABLES = ["ba", "ka", "ma", "ra", "sa", "ta", "ni", "lu", "go", "pe", "di", "jo", "we",
              "su", "ri", "ha", "ya", "na", "tu", "ke"]


def _titles(rng: random.Random, n: int) -> list[str]:
    """Titles of unrelated made-up words, so that no two items are one story."""
    return [" ".join("".join(rng.choice(_SYLLABLES) for _ in range(3)) for _ in range(7))
            for _ in range(n)]


def _feed(source: str, n: int, rng: random.Random) -> bytes:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><guid isPermaLink='false'>{source}-{k}</guid><title>{title}</title>"
        f"<link>https://{source}.example.go.id/berita/{k}</link>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=k))}</pubDate>"
        f"<description>{title}, {title}.</description></item>"
        for k, title in enumerate(_titles(rng, n)))
    return ("<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel>"
            f"<title>{source}</title><link>https://{source}.example.go.id/</link>"
            f"<description>d</description>{items}</channel></rss>").encode()


def _rows(db: Path) -> dict[tuple[str, str], tuple[int, str]]:
    """(scope, key) -> (item id, story id) of every committed item."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        return {(scope, key): (item_id, story) for scope, key, item_id, story in conn.execute(
            "SELECT scope, key, id, story_id FROM items")}
    finally:
        conn.close()


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db, timeout=30)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        conn.close()


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line has `text` (a fork server's has its sys.path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def test_sigkill_mid_poll_loses_and_duplicates_nothing(portal: Portal, tmp_path: Path) -> None:
    rng = random.Random(6)
    agencies = list(AGENCIES)
    sources = [Src(f"src-{n}", f"/feed/{n}.xml", agencies[n]) for n in range(FAST + 3)]
    fast, slow = sources[:FAST], sources[FAST:]
    bodies = {s.id: _feed(s.id, PER_FAST if s in fast else PER_SLOW, rng) for s in sources}
    for s in fast:
        portal.routes[s.path] = Route(bodies[s.id])
    for s in slow:  # in flight until the kill (answered when the portal stops)
        portal.routes[s.path] = Route(bodies[s.id], delay=120.0)
    config = write_config(tmp_path, portal, sources, timeout=120.0)
    db = database(config)
    logs = tmp_path / "serve.log"
    port = free_port()

    proc = start_serve(config, port, logs)
    try:
        deadline = time.monotonic() + 120
        wait_for("a commit in the middle of the poll",
                 lambda: True if _count(db) >= 2000 else None, deadline, proc, logs)
        wait_for("the slow sources' requests",
                 lambda: True if all(portal.routes[s.path].arrived.is_set() for s in slow)
                 else None, deadline, proc, logs)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    # its parse workers (and their fork server) notice and leave: none is left behind
    deadline = time.monotonic() + 15
    while _processes_mentioning(str(config.parent)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_mentioning(str(config.parent)) == []
    before = _rows(db)  # what was committed when the process died
    assert len(before) >= 2000
    assert not any(key[0] in {s.id for s in slow} for key in before), "the kill was mid-poll"

    for s in slow:  # the restarted service finds them answering
        portal.routes[s.path] = Route(bodies[s.id])
    total = FAST * PER_FAST + len(slow) * PER_SLOW
    proc = start_serve(config, port, logs)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        wait_for("every item after the restart",
                 lambda: True if _count(db) == total else None, deadline, proc, logs)

        def rendered() -> bool | None:
            status, _, body = get(f"{base}/feeds/agency/{slow[-1].agency}.rss")
            return True if status == 200 and slow[-1].id.encode() in body else None

        wait_for("the feeds after the poll", rendered, deadline, proc, logs)
        paths = ["/feeds/all", "/feeds/top", *(f"/feeds/agency/{s.agency}" for s in sources)]
        for path in paths:
            for ext in ("rss", "atom", "json"):
                status, _, body = get(f"{base}{path}.{ext}")
                assert status == 200, path
                problems = check_document(body, f"{BASE_URL}{path}.{ext}")
                assert not problems, (path, ext, problems)
    finally:
        stop(proc)

    after = _rows(db)
    assert len(after) == total
    lost = {k: v for k, v in before.items() if after.get(k) != v}
    assert not lost, f"{len(lost)} items lost or changed (id, story), e.g. {next(iter(lost))}"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        twice = conn.execute("SELECT scope, key, COUNT(*) FROM items GROUP BY scope, key "
                             "HAVING COUNT(*) > 1").fetchall()
        assert twice == []
        links = conn.execute("SELECT source_id, link, COUNT(*) FROM items GROUP BY "
                             "source_id, link HAVING COUNT(*) > 1").fetchall()
        assert links == []
        per_source = dict(conn.execute("SELECT source_id, COUNT(*) FROM items "
                                       "GROUP BY source_id").fetchall())
        assert per_source == {s.id: PER_FAST if s in fast else PER_SLOW for s in sources}
    finally:
        conn.close()


# --- the cron lock ----------------------------------------------------------------------------


def _run(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "aggregator", "--config", str(config),
                             "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env(), cwd=config.parent)


def test_a_run_killed_holding_the_lock_leaves_no_stale_lock(portal: Portal,
                                                            tmp_path: Path) -> None:
    rng = random.Random(1)
    src = Src("src-0", "/feed/0.xml", "pemprov-dki")
    gate_route = Route(_feed(src.id, 5, rng), delay=120.0)  # holds the run mid-poll
    portal.routes[src.path] = gate_route
    config = write_config(tmp_path, portal, [src], timeout=120.0)
    lock = database(config).with_suffix(".lock")
    proc = _run(config)
    try:
        deadline = time.monotonic() + 60
        while not gate_route.arrived.is_set():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never fetched"
            time.sleep(0.05)
        assert lock.exists() and lock.read_text() == str(proc.pid)  # held, by that run
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert lock.exists()  # the file stays; the kernel dropped the lock with the process
    portal.routes[src.path] = Route(_feed(src.id, 5, random.Random(1)))
    nxt = _run(config)
    out, err = nxt.communicate(timeout=60)
    assert nxt.returncode == 0, err
    assert "skipped" not in out, out
    conn = sqlite3.connect(database(config))
    try:
        assert conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 5
    finally:
        conn.close()


def test_overlapping_runs_never_both_write(portal: Portal, tmp_path: Path) -> None:
    rng = random.Random(2)
    src = Src("src-0", "/feed/0.xml", "pemprov-dki")
    slow = Route(_feed(src.id, 5, rng), delay=120.0)
    portal.routes[src.path] = slow
    config = write_config(tmp_path, portal, [src], timeout=120.0)
    first = _run(config)
    try:
        deadline = time.monotonic() + 60
        while not slow.arrived.is_set():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never fetched"
            time.sleep(0.05)
        second = _run(config)
        out, err = second.communicate(timeout=60)
        # documented (README, `aggregator run`): a clear line, exit 0 (cron mails nothing)
        assert second.returncode == 0, (second.returncode, out, err)
        assert out.startswith("skipped: another run holds") and f"pid {first.pid}" in out, out
        assert len(portal.requests_for(src.path)) == 1  # the second fetched nothing
        conn = sqlite3.connect(database(config))
        try:
            assert conn.execute("SELECT COUNT(*) FROM fetches").fetchone()[0] == 0
        finally:
            conn.close()
    finally:
        first.kill()
        first.communicate()
