"""CLI basics as a user meets them: help with examples, version, the run lock, the progress bar
only on a terminal, preview, and exit codes."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import aggregator
from aggregator.cli import cli
from aggregator.core import Aggregator
from aggregator.lock import RunLock
from tests.portal import (
    Portal,
    Route,
    Src,
    cli_env,
    fixture_feed,
    invoke,
    item_counts,
    query,
    run_cli,
    write_config,
)

COMMANDS = ["check", "preview", "poll", "publish", "run", "serve", "sources", "stories", "top"]
SOURCES_COMMANDS = ["list", "show", "enable", "disable", "add", "import-opml", "export-opml"]
SUBCOMMANDS = [[c] for c in COMMANDS] + [["sources", c] for c in SOURCES_COMMANDS] + [
    ["stories", "show"]]
GOOD = (Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki"),
        Src("bandung-mysql", "/feed/bandung.rss", "pemkot-bandung"))


def serve_good(portal: Portal) -> None:
    portal.routes["/rss/pemprov-dki.xml"] = Route(fixture_feed("pemprov-dki.rss"))
    portal.routes["/feed/bandung.rss"] = Route(fixture_feed("pemkot-bandung-mysql.rss"))


def test_help_lists_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert f"  {command} " in result.stdout or f"  {command}\n" in result.stdout, command
    assert "aggregator poll --all" in result.stdout  # how to start
    assert "--config" in result.stdout and "AGGREGATOR_CONFIG" in result.stdout


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert aggregator.__version__ in result.stdout and "aggregator" in result.stdout


def test_the_installed_command_runs() -> None:
    script = Path(sys.executable).with_name("aggregator")
    if not script.exists():
        pytest.skip("no console script next to this interpreter")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                            env=cli_env(), timeout=60)
    assert result.returncode == 0 and aggregator.__version__ in result.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout, result.stdout
    # The example runs the command itself.
    example = result.stdout.split("Example", 1)[1]
    assert re.search(rf"aggregator\b[^\n]* {command[0]}\b", example), example


def test_commands_are_all_tested() -> None:
    """A new command must be added to COMMANDS (and so get its help checked)."""
    assert set(cli.commands) == set(COMMANDS)
    assert set(cli.commands["sources"].commands) == set(SOURCES_COMMANDS)  # type: ignore[attr-defined]
    assert set(cli.commands["stories"].commands) == {"show"}  # type: ignore[attr-defined]


def test_run_is_skipped_while_another_run_holds_the_lock(tmp_path: Path, portal: Portal) -> None:
    serve_good(portal)
    config = write_config(tmp_path, portal, GOOD)
    agg = Aggregator.open(str(config))
    try:
        lock_path = agg.lock_path()
    finally:
        agg.close()
    with RunLock(lock_path):
        skipped = run_cli("run", config=config)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "skipped" in skipped.stdout.lower()
    assert portal.log == []  # it did nothing: no fetch...
    assert query(config, "SELECT COUNT(*) AS n FROM fetches")[0]["n"] == 0  # ...nothing stored
    assert not (tmp_path / "public").exists()  # ...nothing published

    done = run_cli("run", config=config)  # the lock is free again
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped" not in done.stdout.lower()
    assert item_counts(config) == {"dki-rss": 3, "bandung-mysql": 2}
    assert (tmp_path / "public" / "feeds" / "all.rss").is_file()
    # the run left its memory of the dedupe index for the next one (store/index.py)
    assert query(config, "SELECT s.generation = CAST(m.value AS INTEGER) AS current "
                 "FROM dedupe_snapshot s JOIN store_meta m "
                 "ON m.name = 'dedupe_generation'")[0]["current"] == 1


def test_two_concurrent_runs(tmp_path: Path, portal: Portal) -> None:
    """The first run is held inside its fetch (the portal waits on a gate); a second run
    started meanwhile says it is skipped and exits 0; the first one then finishes normally."""
    gate = threading.Event()
    portal.routes["/rss/pemprov-dki.xml"] = Route(fixture_feed("pemprov-dki.rss"), gate=gate)
    config = write_config(tmp_path, portal, GOOD[:1], timeout=20)
    argv = [sys.executable, "-m", "aggregator", "--config", str(config), "run"]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=cli_env())
    try:
        assert portal.routes["/rss/pemprov-dki.xml"].arrived.wait(30), "first run never fetched"
        second = run_cli("run", config=config)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "skipped" in second.stdout.lower()
        assert len(portal.log) == 1  # only the first run's request: the second fetched nothing
    finally:
        gate.set()
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, out + err
    assert "skipped" not in out.lower()
    assert "dki-rss" in out and "published" in out
    assert item_counts(config) == {"dki-rss": 3}


def test_no_progress_bar_when_not_a_terminal(tmp_path: Path, portal: Portal) -> None:
    serve_good(portal)
    config = write_config(tmp_path, portal, GOOD)
    result = run_cli("poll", "--all", config=config)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and "sources [" not in result.stderr, result.stderr
    assert "\r" not in result.stdout and "sources [" not in result.stdout


def test_progress_bar_on_a_terminal(tmp_path: Path, portal: Portal) -> None:
    """The counterpart: with stderr on a terminal (a pty) the bar is drawn."""
    serve_good(portal)
    config = write_config(tmp_path, portal, GOOD)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "aggregator", "--config", str(config),
                             "poll", "--all"], stdout=subprocess.PIPE, stderr=slave,
                            env=cli_env())
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    stdout = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, stdout + seen.decode(errors="replace")
    assert b"2/2 sources [" in seen, seen
    assert b"sources [" not in stdout.encode()  # the report itself stays clean


def test_poll_json_and_unknown_source(tmp_path: Path, portal: Portal) -> None:
    serve_good(portal)
    config = write_config(tmp_path, portal, GOOD)
    result = invoke("poll", "--all", "--json", config=config)
    assert result.exit_code == 0, result.output
    reports = {r["source"]: r for r in json.loads(result.stdout)}
    assert reports["dki-rss"]["new"] == 3 and reports["bandung-mysql"]["new"] == 2
    assert all(r["outcome"] == "new" and r["status"] == 200 for r in reports.values())

    unknown = invoke("poll", "--source", "tidak-ada", config=config)
    assert unknown.exit_code == 2
    assert "tidak-ada" in unknown.stderr


def test_preview_shows_fields_without_storing(tmp_path: Path, portal: Portal) -> None:
    serve_good(portal)
    config = write_config(tmp_path, portal, GOOD)
    result = run_cli("preview", "bandung-mysql", config=config)
    assert result.returncode == 0, result.stderr
    assert "Pemkot Bandung Gelar Operasi Pasar Murah Jelang Iduladha" in result.stdout
    # The MySQL date "2024-06-25 10:00:00", read as WIB, shown in UTC.
    assert re.search(r"2024-06-25[ T]03:00(:00)?( ?UTC|\+00:00)", result.stdout), result.stdout
    assert "2 item(s)" in result.stdout
    assert not (tmp_path / "data" / "aggregator.db").exists() or item_counts(config) == {}

    saved = tmp_path / "saved.xml"
    saved.write_bytes(fixture_feed("pemprov-dki.rss"))
    portal.log.clear()
    as_json = invoke("preview", "dki-rss", "--file", str(saved), "--json", config=config)
    assert as_json.exit_code == 0, as_json.output
    items = json.loads(as_json.stdout)["items"]
    assert [i["views"] for i in items] == [1476, 2310, 845]
    assert portal.log == []  # --file reads the saved page, no fetch


def test_sources_and_top_after_a_poll(tmp_path: Path, portal: Portal) -> None:
    serve_good(portal)
    config = write_config(tmp_path, portal, GOOD)
    assert invoke("poll", "--all", config=config).exit_code == 0
    listing = invoke("sources", config=config)
    assert listing.exit_code == 0
    for line, count in (("dki-rss", 3), ("bandung-mysql", 2)):
        [row] = [x for x in listing.stdout.splitlines() if x.startswith(line)]
        assert " ok " in row and f"items={count}" in row, row
    top = invoke("top", "--explain", "--json", config=config)
    assert top.exit_code == 0, top.output
    ranked = json.loads(top.stdout)
    assert len(ranked) == 5
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all("parts" in r for r in ranked)
    unknown = invoke("sources", "show", "tidak-ada", config=config)
    assert unknown.exit_code == 2 and "tidak-ada" in unknown.stderr
