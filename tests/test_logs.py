"""One structured log line per fetch, read from the stderr of a real CLI poll: `key=value`
text by default, JSON lines with `--log-format json` or `[settings] log_format = "json"`.
The keys are stable (README, "Logs")."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from tests.portal import Portal, Route, Src, fixture_feed, run_cli, write_config

KEYS = {"event", "source", "url", "outcome", "status", "duration", "new", "updated",
        "unchanged", "bytes", "next_poll", "error", "interval", "broken", "moved_to"}
SOURCES = [Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki"),
           Src("jatim-500", "/rss/bpbd-jatim.xml", "bpbd-jatim")]


def serve(portal: Portal) -> None:
    portal.routes["/rss/pemprov-dki.xml"] = Route(fixture_feed("pemprov-dki.rss"))
    portal.routes["/rss/bpbd-jatim.xml"] = Route(b"<h1>500</h1>", "text/html", status=500)


def check(lines: dict[str, dict[str, Any]], portal: Portal) -> None:
    assert set(lines) == {"dki-rss", "jatim-500"}
    ok, bad = lines["dki-rss"], lines["jatim-500"]
    assert ok["url"] == portal.url("/rss/pemprov-dki.xml")
    assert (ok["outcome"], str(ok["status"]), str(ok["new"])) == ("new", "200", "3")
    assert ok["error"] in (None, "-") and float(ok["duration"]) >= 0
    assert (bad["outcome"], str(bad["status"]), bad["error"]) == ("error", "500", "HTTP 500")


def test_text_log_lines_have_stable_keys(portal: Portal, tmp_path: Path) -> None:
    serve(portal)
    config = write_config(tmp_path, portal, SOURCES)
    done = run_cli("poll", "--all", config=config)
    assert done.returncode == 1  # one source failed
    lines: dict[str, dict[str, Any]] = {}
    for line in done.stderr.splitlines():
        if " aggregator.fetch event=fetch " not in line:
            continue
        _, level, _, rest = line.split(" ", 3)
        fields = dict(part.split("=", 1) for part in shlex.split(rest))
        assert set(fields) == KEYS, line
        assert level == ("WARNING" if fields["outcome"] == "error" else "INFO")
        lines[fields["source"]] = fields
    check(lines, portal)
    assert "HTTP Request:" not in done.stderr  # httpx's own line per request is off


def test_json_log_lines_from_the_option_or_the_setting(portal: Portal, tmp_path: Path) -> None:
    serve(portal)
    config = write_config(tmp_path, portal, SOURCES)
    for argv, cfg in ((["--log-format", "json", "poll", "--all"], config),
                      (["poll", "--all"], write_config(tmp_path / "b", portal, SOURCES,
                                                       settings='log_format = "json"\n'))):
        done = run_cli(*argv, config=cfg)
        assert done.returncode == 1
        records = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
        fetches = {r["source"]: r for r in records if r.get("event") == "fetch"}
        for r in fetches.values():
            assert set(r) == KEYS | {"ts", "level", "logger"}
            assert r["logger"] == "aggregator.fetch"
        check(fetches, portal)
        assert isinstance(fetches["dki-rss"]["new"], int)
