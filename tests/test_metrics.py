"""/metrics: the Prometheus text exposition of a real `aggregator serve` process after its
first poll, parsed line by line (every line valid, HELP and TYPE before each family, histogram
buckets cumulative and ending in +Inf = _count), and the counters' values checked against
what the poll did. The exposition writer itself is also checked on its own."""

from __future__ import annotations

import json
import math
import re
import time
from collections import defaultdict
from pathlib import Path

import pytest

from aggregator.metrics import Gauge, Metrics
from aggregator.types import SourceReport
from tests.portal import Portal, Route, Src, fixture_feed, start_serve, write_config
from tests.test_serve_process import free_port, get, wait_for

pytestmark = pytest.mark.slow

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf'^({_NAME})(\{{(?:{_NAME}="(?:[^"\\\n]|\\.)*",?)*\}})? (\S+)$')
_LABEL = re.compile(rf'({_NAME})="((?:[^"\\\n]|\\.)*)"')
_BASES = ("_bucket", "_sum", "_count")


def parse_exposition(text: str) -> dict[str, dict[str, object]]:
    """Families by name: type, help, samples [(name, labels, value)]. Fails on any line
    that is not valid text format 0.0.4, or a sample before its family's HELP and TYPE."""
    assert text.endswith("\n")
    families: dict[str, dict[str, object]] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert re.fullmatch(_NAME, name) and help_text, line
            families.setdefault(name, {"samples": []})["help"] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            family = families.setdefault(name, {"samples": []})
            assert "type" not in family and not family["samples"], f"TYPE late: {line}"
            family["type"] = kind
        else:
            match = _SAMPLE.match(line)
            assert match, f"not a valid sample line: {line!r}"
            name, labels, value = match.groups()
            float(value)  # a number, +Inf, -Inf or NaN
            base = name
            for suffix in _BASES:
                if name.endswith(suffix) and name[:-len(suffix)] in families:
                    base = name[:-len(suffix)]
            assert base in families, f"sample before HELP/TYPE: {line}"
            family = families[base]
            assert "help" in family and "type" in family, line
            family["samples"].append(  # type: ignore[attr-defined]
                (name, dict(_LABEL.findall(labels or "")), float(value)))
    return families


def check_histogram(family: dict[str, object], name: str) -> tuple[float, float]:
    """Buckets cumulative, the last +Inf equal to _count; returns (_count, _sum)."""
    samples = family["samples"]
    assert isinstance(samples, list)
    buckets = [(s[1]["le"], s[2]) for s in samples if s[0] == f"{name}_bucket"]
    assert buckets and buckets[-1][0] == "+Inf"
    bounds = [float(le) for le, _ in buckets]
    assert bounds == sorted(bounds) and math.isinf(bounds[-1])
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "buckets must be cumulative"
    [count] = [s[2] for s in samples if s[0] == f"{name}_count"]
    [total] = [s[2] for s in samples if s[0] == f"{name}_sum"]
    assert counts[-1] == count
    return count, total


def test_exposition_writer() -> None:
    m = Metrics()
    m.record_reports([SourceReport("a", "new", new=3, duration=0.2),
                      SourceReport("b", "error", error="500", duration=70.0),
                      SourceReport("a", "updated", updated=2, duration=0.05),
                      SourceReport("c", "skipped", warnings=("host paused",))])
    m.observe_render(0.3)
    text = m.exposition([Gauge("x_seconds", 'has "quotes" and \\ in help',
                               [((("source", 'we"ird\\id\n'),), 1.5)])])
    families = parse_exposition(text)
    assert families["aggregator_fetches_total"]["type"] == "counter"
    outcomes = {s[1]["outcome"]: s[2] for s in families["aggregator_fetches_total"]["samples"]}
    assert outcomes == {"new": 1, "error": 1, "updated": 1, "skipped": 1}
    count, total = check_histogram(families["aggregator_fetch_duration_seconds"],
                                   "aggregator_fetch_duration_seconds")
    assert (count, round(total, 2)) == (3, 70.25)  # a skipped source was not fetched
    buckets = {s[1]["le"]: s[2] for s in families["aggregator_fetch_duration_seconds"]["samples"]
               if s[0].endswith("_bucket")}
    assert (buckets["0.05"], buckets["0.25"], buckets["60"], buckets["+Inf"]) == (1, 2, 2, 3)
    items = {s[1]["kind"]: s[2] for s in families["aggregator_items_ingested_total"]["samples"]}
    assert items == {"new": 3, "updated": 2}
    assert 'source="we\\"ird\\\\id\\n"' in text


def test_metrics_of_a_real_serve_after_a_poll(portal: Portal, tmp_path: Path) -> None:
    portal.routes["/rss/pemprov-dki.xml"] = Route(fixture_feed("pemprov-dki.rss"))
    portal.routes["/rss/bpbd-jatim.xml"] = Route(b"<html>500</html>", "text/html", status=500)
    sources = [Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki"),
               Src("jatim-500", "/rss/bpbd-jatim.xml", "bpbd-jatim")]
    config = write_config(tmp_path, portal, sources)
    port = free_port()
    logs = tmp_path / "serve.log"
    proc = start_serve(config, port, logs)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30

        def polled() -> dict[str, object] | None:
            status, _, body = get(base + "/metrics")
            if status != 200:
                return None
            families = parse_exposition(body.decode())
            fetches = families["aggregator_fetches_total"]["samples"]
            renders = [s for s in families["aggregator_publish_duration_seconds"]["samples"]
                       if s[0].endswith("_count")]  # type: ignore[attr-defined]
            # both fetches counted, and the render after the poll done (one at start)
            done = len(fetches) == 2 and renders[0][2] >= 2  # type: ignore[arg-type]
            return families if done else None

        families = wait_for("the first poll in /metrics", polled, deadline, proc, logs)
        _, headers, _ = get(base + "/metrics")
        assert headers["content-type"].startswith("text/plain; version=0.0.4")

        values: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
        for family in families.values():
            for sample_name, labels, value in family["samples"]:  # type: ignore[attr-defined]
                values[sample_name][tuple(sorted(labels.items()))] = value
        assert values["aggregator_fetches_total"] == {(("outcome", "new"),): 1,
                                                      (("outcome", "error"),): 1}
        count, total = check_histogram(families["aggregator_fetch_duration_seconds"],
                                       "aggregator_fetch_duration_seconds")
        assert count == 2 and total > 0
        _, _, body = get(base + "/api/sources")
        stored = {r["id"]: r["item_count"] for r in json.loads(body)}
        assert values["aggregator_items_ingested_total"][(("kind", "new"),)] == \
            stored["dki-rss"] > 0
        count, _ = check_histogram(families["aggregator_publish_duration_seconds"],
                                   "aggregator_publish_duration_seconds")
        assert count >= 2  # at start, and after the poll that stored something
        assert families["aggregator_sources"]["type"] == "gauge"
        assert values["aggregator_sources"][(("state", "failing"),)] == 1
        assert values["aggregator_sources"][(("state", "ok"),)] == 1
        assert values["aggregator_source_failures"][(("source", "jatim-500"),)] == 1
        last = values["aggregator_last_success_timestamp_seconds"][()]
        assert abs(last - time.time()) < 300
        assert (("source", "jatim-500"),) not in \
            values["aggregator_source_last_success_timestamp_seconds"]
    finally:
        proc.kill()
        proc.wait(5)

