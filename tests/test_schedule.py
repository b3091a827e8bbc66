"""The schedule through the real pipeline: a real SQLite file, the fake portal over HTTP on
127.0.0.1, and the aggregator's clock under the test's control. Each "restart" is a fresh
Aggregator on the same database, as a new `serve` or cron `run` process would be."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from aggregator.core import Aggregator, read_config
from aggregator.store.sql import parse_ts
from tests.portal import Portal, Route, Src, fixture_feed, invoke, query, write_config

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
DKI = fixture_feed("pemprov-dki.rss")


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def poll_at(config: Path, at: datetime, everything: bool = False) -> dict[str, Any]:
    """One poll by a fresh Aggregator (a new process) at `at`: the reports by source id."""
    agg = Aggregator(read_config(str(config)), Clock(at))
    try:
        return {r.source_id: r for r in agg.poll(agg.select_sources(everything=everything))}
    finally:
        agg.close()


def rows(config: Path, at: datetime = T0) -> dict[str, dict[str, Any]]:
    agg = Aggregator(read_config(str(config)), Clock(at))
    try:
        return {r["id"]: r for r in agg.source_status()}
    finally:
        agg.close()


def due_in(row: dict[str, Any], at: datetime) -> float:
    return (parse_ts(row["next_due_at"]) - at).total_seconds()


def test_a_fresh_process_continues_the_stored_schedule(portal: Portal, tmp_path: Path) -> None:
    portal.routes["/rss/dki.xml"] = Route(DKI)
    config = write_config(tmp_path, portal, [Src("dki", "/rss/dki.xml", "pemprov-dki")])
    assert poll_at(config, T0)["dki"].outcome == "new"
    row = rows(config)["dki"]
    assert 0.9 * 900 <= due_in(row, T0) <= 1.1 * 900  # interval "15m", +-10% jitter
    assert row["effective_interval"] == 900
    due = parse_ts(row["next_due_at"])
    # a new process before the due time polls nothing, and asks nothing of the portal
    portal.clear_log()
    assert poll_at(config, due - timedelta(seconds=1)) == {}
    assert portal.requests_for("/rss/dki.xml") == []
    # at the due time it polls the source, conditionally
    assert poll_at(config, due)["dki"].outcome in ("not_modified", "unchanged")
    assert len(portal.requests_for("/rss/dki.xml")) == 1


def test_a_429_slows_the_whole_host_across_polls_and_restarts(portal: Portal,
                                                              tmp_path: Path) -> None:
    until = T0 + timedelta(hours=2)
    portal.routes["/rss/a.xml"] = Route(b"slow down", "text/plain", status=429,
                                        extra_headers={"Retry-After": format_datetime(
                                            until, usegmt=True)})
    portal.routes["/rss/b.xml"] = Route(DKI)
    portal.routes["/rss/c.xml"] = Route(fixture_feed("pemprov-bali-etag.rss"))
    host = '[settings.schedule.hosts."127.0.0.1"]\nconcurrency = 1\n'
    config = write_config(tmp_path, portal, [Src("a", "/rss/a.xml", "pemprov-dki"),
                                             Src("b", "/rss/b.xml", "pemprov-dki"),
                                             Src("c", "/rss/c.xml", "pemprov-bali")],
                          settings=host)
    # one request at a time to the host, in config order: a's 429 comes first, so b and c
    # are not asked at all in this poll; they are skipped, not failing
    first = poll_at(config, T0)
    assert first["a"].outcome == "error" and first["a"].status == 429
    assert (first["b"].outcome, first["c"].outcome) == ("skipped", "skipped")
    assert portal.requests_for("/rss/b.xml") == [] == portal.requests_for("/rss/c.xml")
    state = rows(config)
    assert state["a"]["state"] == "failing" and due_in(state["a"], T0) == 7200  # Retry-After
    for sid in ("b", "c"):
        assert state[sid]["state"] == "new" and state[sid]["failures"] == 0
        assert 7200 < due_in(state[sid], T0) <= 7200 + 66
        # the status rows say why: the host's pause, and the answer that caused it
        assert parse_ts(state[sid]["host_slow_until"]) == until
        assert state[sid]["host_reason"] == f"HTTP 429 from {portal.url('/rss/a.xml')}"
    hosts = query(config, "SELECT host, level, slow_until FROM hosts")
    assert [(h["host"], h["level"]) for h in hosts] == [("127.0.0.1", 1)]
    assert parse_ts(hosts[0]["slow_until"]) == until
    # a restart within the pause: nothing is due, and forcing a poll still spares the host
    assert poll_at(config, T0 + timedelta(minutes=30)) == {}
    forced = poll_at(config, T0 + timedelta(minutes=30), everything=True)
    assert {r.outcome for r in forced.values()} == {"skipped"}
    assert portal.requests_for("/rss/b.xml") == []
    # after the pause the host is asked again; successes bring it back to normal
    portal.routes["/rss/a.xml"] = Route(fixture_feed("diskominfo-jateng.atom"),
                                        "application/atom+xml")
    later = poll_at(config, until + timedelta(minutes=5))
    assert {r.outcome for r in later.values()} == {"new"}
    assert query(config, "SELECT * FROM hosts") == []
    after = rows(config, until + timedelta(minutes=5)).values()
    assert {r["state"] for r in after} == {"ok"}
    assert {r["host_slow_until"] for r in after} == {None}


def test_a_503_with_retry_after_in_seconds_is_honoured(portal: Portal, tmp_path: Path) -> None:
    portal.routes["/rss/a.xml"] = Route(b"maintenance", "text/plain", status=503,
                                        extra_headers={"Retry-After": "5400"})
    config = write_config(tmp_path, portal, [Src("a", "/rss/a.xml", "pemprov-dki")])
    poll_at(config, T0)
    assert due_in(rows(config)["a"], T0) == 5400
    # a 503 without Retry-After is a plain failure: backoff, the host is not slowed
    portal.routes["/rss/a.xml"] = Route(b"down", "text/plain", status=503)
    poll_at(config, T0 + timedelta(seconds=5400))
    assert 0.9 * 1800 <= due_in(rows(config)["a"], T0 + timedelta(seconds=5400)) <= 1.1 * 1800
    assert query(config, "SELECT level FROM hosts")[0]["level"] == 1  # only the first one


def test_404_and_repeated_parse_failures_are_broken_and_still_retried(portal: Portal,
                                                                     tmp_path: Path) -> None:
    portal.routes["/rss/ok.xml"] = Route(DKI)
    portal.routes["/rss/html.xml"] = Route(b"<html><body>Beranda</body></html>",
                                           "text/html; charset=utf-8")
    config = write_config(tmp_path, portal, [Src("gone", "/rss/gone.xml", "pemprov-dki"),
                                             Src("html", "/rss/html.xml", "pemprov-dki")],
                          settings="[settings.schedule]\nbroken_after = 2\n")
    poll_at(config, T0)
    state = rows(config)
    assert state["gone"]["state"] == "broken"
    assert "HTTP 404" in state["gone"]["broken_reason"]
    assert state["html"]["state"] == "failing" and state["html"]["broken_reason"] is None
    at = T0 + timedelta(hours=1)
    poll_at(config, at, everything=True)
    state = rows(config)
    assert state["html"]["state"] == "broken"
    assert "2 parse failures in a row" in state["html"]["broken_reason"]
    # broken sources keep their backoff schedule (never dropped) ...
    for sid in ("gone", "html"):
        assert 0 < due_in(state[sid], at) <= 6 * 3600
    # ... the CLI shows them so ...
    listed = json.loads(invoke("sources", "list", "--json", config=config).output)
    assert {r["id"]: r["state"] for r in listed} == {"gone": "broken", "html": "broken"}
    # ... and a success clears it
    portal.routes["/rss/gone.xml"] = Route(DKI)
    poll_at(config, at + timedelta(hours=6))
    state = rows(config)
    assert state["gone"]["state"] == "ok" and state["gone"]["broken_reason"] is None
    assert state["html"]["state"] == "broken"


def test_permanent_redirects_are_reported_temporary_ones_not(portal: Portal,
                                                            tmp_path: Path) -> None:
    portal.routes["/new/dki.xml"] = Route(DKI)
    portal.routes["/old/dki.xml"] = Route(b"", status=301, extra_headers={
        "Location": portal.url("/new/dki.xml")})
    portal.routes["/tmp/bali.xml"] = Route(b"", status=302, extra_headers={
        "Location": portal.url("/new/bali.xml")})
    portal.routes["/new/bali.xml"] = Route(fixture_feed("pemprov-bali-etag.rss"))
    config = write_config(tmp_path, portal, [Src("dki", "/old/dki.xml", "pemprov-dki"),
                                             Src("bali", "/tmp/bali.xml", "pemprov-bali")])
    reports = poll_at(config, T0)
    assert reports["dki"].outcome == reports["bali"].outcome == "new"
    new_url = portal.url("/new/dki.xml")
    assert reports["dki"].warnings == (
        f"moved permanently (301/308) to {new_url}; update the source's url",)
    assert reports["bali"].warnings == ()
    state = rows(config)
    assert state["dki"]["moved_to"] == new_url and state["bali"]["moved_to"] is None
    assert state["dki"]["state"] == "ok"


def test_cache_control_and_rss_ttl_lengthen_the_next_poll(portal: Portal,
                                                         tmp_path: Path) -> None:
    portal.routes["/rss/cached.xml"] = Route(DKI, extra_headers={
        "Cache-Control": "public, max-age=7200"})
    portal.routes["/rss/ttl.xml"] = Route(fixture_feed("pemprov-bali-etag.rss").replace(
        b"<channel>", b"<channel><ttl>240</ttl>", 1))
    portal.routes["/rss/forever.xml"] = Route(fixture_feed("diskominfo-jateng.atom"),
                                              "application/atom+xml", extra_headers={
                                                  "Cache-Control": "max-age=31536000"})
    config = write_config(tmp_path, portal, [Src("cached", "/rss/cached.xml", "pemprov-dki"),
                                             Src("ttl", "/rss/ttl.xml", "pemprov-bali"),
                                             Src("forever", "/rss/forever.xml",
                                                 "diskominfo-jateng")])
    poll_at(config, T0)
    state = rows(config)
    assert 0.9 * 7200 <= due_in(state["cached"], T0) <= 1.1 * 7200
    assert 0.9 * 14400 <= due_in(state["ttl"], T0) <= 1.1 * 14400
    assert due_in(state["forever"], T0) == 86400  # a server cannot make us stop polling


def test_a_quiet_source_is_polled_less_often(portal: Portal, tmp_path: Path) -> None:
    portal.routes["/rss/dki.xml"] = Route(DKI)
    portal.routes["/rss/fixed.xml"] = Route(fixture_feed("pemprov-bali-etag.rss"))
    config = write_config(tmp_path, portal, [Src("dki", "/rss/dki.xml", "pemprov-dki"),
                                             Src("fixed", "/rss/fixed.xml", "pemprov-bali")])
    sources = config.parent / "sources" / "portal.toml"
    sources.write_text(sources.read_text().replace(
        'id = "fixed"', 'id = "fixed"\nadaptive = false'), encoding="utf-8")
    poll_at(config, T0)
    at = T0 + timedelta(days=5)
    poll_at(config, at)  # nothing new for five days
    state = rows(config, at)
    assert state["dki"]["effective_interval"] > 3600  # 15 minutes at first
    assert due_in(state["dki"], at) >= 0.9 * state["dki"]["effective_interval"]
    assert state["fixed"]["effective_interval"] == 900
    assert due_in(state["fixed"], at) <= 1.1 * 900
    # an admin who changes the interval (a config reload) restarts the learning from it
    sources.write_text(sources.read_text().replace('interval = "15m"', 'interval = "2h"', 1),
                       encoding="utf-8")
    agg = Aggregator(read_config(str(config)), Clock(at))
    try:
        agg.reload(read_config(str(config)), (), {"dki": 7200})
        assert {r["id"]: r["effective_interval"] for r in agg.source_status()}["dki"] == 7200
    finally:
        agg.close()
    out = invoke("sources", "show", "dki", config=config).output
    assert "effective_interval 2h" in out, out


def test_check_names_the_field_of_each_schedule_mistake(tmp_path: Path) -> None:
    settings = ('log_format = "xml"\n'
                '[settings.schedule]\nmin_interval = "2h"\nmax_interval = "1h"\n'
                'broken_after = 0\nhost_spacing = -1\n'
                '[settings.schedule.hosts."https://jatengprov.go.id"]\nspacing = 1\n'
                '[settings.schedule.hosts."jatengprov.go.id"]\nconcurency = 2\n')
    config = write_config(tmp_path, None, [Src("dki", "/rss/dki.xml", "pemprov-dki")],
                          settings=settings)
    sources = config.parent / "sources" / "portal.toml"
    sources.write_text(sources.read_text().replace(
        'interval = "15m"', 'interval = "15m"\nmin_interval = "1h"\nmax_interval = "10m"\n'
        'adaptive = "yes"'), encoding="utf-8")
    result = invoke("check", config=config)
    assert result.exit_code == 2
    out = result.output
    for expected in (
        "settings, field 'log_format': 'xml' must be one of: text, json",
        "settings, field 'schedule.max_interval': max_interval (1h) must not be below "
        "min_interval (2h)",
        "settings, field 'schedule.broken_after': must be at least 1, got 0",
        "settings, field 'schedule.host_spacing': must be at least 0, got -1",
        "settings, field 'schedule.hosts.https://jatengprov.go.id': must be a host name",
        "settings, field 'schedule.hosts.jatengprov.go.id.concurency': is not a known field "
        "(did you mean 'concurrency'?)",
        "source dki, field 'min_interval': 1h is above the source's interval (15m)",
        "source dki, field 'max_interval': 10m is below the source's interval (15m)",
        "source dki, field 'adaptive': must be true or false, not a string",
    ):
        assert expected in out, out
