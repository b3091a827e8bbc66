"""WebSub: with `websub_hub` set, every feed declares the hub, and `publish` pings the hub for
the feeds it changed, and only those. The hub is a real HTTP server on 127.0.0.1 (port 0)
that records each POST; the feeds come from the fake portal, through the real CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from lxml import etree

from aggregator.core import Aggregator
from aggregator.web import SiteHolder, publisher
from tests.feedcheck import ATOM, assert_valid_tree
from tests.portal import (
    BASE_URL,
    ETAG_V1,
    Portal,
    Route,
    Src,
    fixture_feed,
    invoke,
    serve_standard_feeds,
    write_config,
)

pytestmark = pytest.mark.slow

SOURCES = (
    Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki"),
    Src("bali-etag", "/rss/bali.xml", "pemprov-bali"),
)


class Hub:
    """A stand-in WebSub hub: answers every POST with `status` and keeps its form fields."""

    def __init__(self) -> None:
        self.pings: list[dict[str, list[str]]] = []
        self.status = 204
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                hub.pings.append({**form, "content-type": [self.headers["content-type"]]})
                self.send_response(hub.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def topics(self) -> set[str]:
        return {url for ping in self.pings for url in ping["hub.url"]}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub()
    try:
        yield h
    finally:
        h.close()


def publish(config: Path, out: Path) -> tuple[dict[str, Any], str]:
    result = invoke("publish", "--out", str(out), "--json", config=config)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def test_feeds_declare_the_hub_and_publish_pings_what_changed(hub: Hub,
                                                              tmp_path: Path) -> None:
    with Portal() as portal:
        serve_standard_feeds(portal)
        config = write_config(tmp_path, portal, SOURCES,
                              settings=f'websub_hub = "{hub.url}"\n')
        out = tmp_path / "public"
        assert invoke("poll", "--all", config=config).exit_code == 0

        # first publish: every feed is new, so each is announced, once
        report, _ = publish(config, out)
        feeds = {f"{BASE_URL}/{p.relative_to(out).as_posix()}" for p in out.rglob("*")
                 if p.suffix in (".rss", ".atom", ".json")}
        assert hub.topics() == feeds == set(report["pinged"])
        assert len(hub.pings) == len(feeds)
        assert all(p["hub.mode"] == ["publish"] for p in hub.pings)
        assert all("application/x-www-form-urlencoded" in p["content-type"][0]
                   for p in hub.pings)

        # ...and each declares the hub, and stays valid
        rss = etree.fromstring((out / "feeds/all.rss").read_bytes())
        assert [ln.get("href") for ln in rss.iter(f"{ATOM}link")
                if ln.get("rel") == "hub"] == [hub.url]
        atom = etree.fromstring((out / "feeds/all.atom").read_bytes())
        assert [ln.get("href") for ln in atom.findall(f"{ATOM}link")
                if ln.get("rel") == "hub"] == [hub.url]
        doc = json.loads((out / "feeds/all.json").read_text(encoding="utf-8"))
        assert doc["hubs"] == [{"type": "WebSub", "url": hub.url}]
        assert_valid_tree(out, BASE_URL)

        # nothing changed: no ping
        hub.pings.clear()
        report, _ = publish(config, out)
        assert report["written"] == [] and hub.pings == []

        # Bali edits its feed: the feeds that hold Bali's items are announced, no others
        portal.routes["/rss/bali.xml"] = Route(fixture_feed("pemprov-bali-etag-v2.rss"),
                                               etag=ETAG_V1 + "2")
        assert invoke("poll", "--source", "bali-etag", config=config).exit_code == 0
        report, _ = publish(config, out)
        written = {f"{BASE_URL}/{Path(p).relative_to(out).as_posix()}"
                   for p in report["written"]}
        assert hub.topics() == {u for u in written if u.startswith(f"{BASE_URL}/feeds/")}
        assert f"{BASE_URL}/feeds/agency/pemprov-bali.rss" in hub.topics()
        assert not any("pemprov-dki" in t for t in hub.topics())


def test_a_failing_hub_is_a_warning_not_a_failed_publish(hub: Hub, tmp_path: Path) -> None:
    hub.status = 503
    config = write_config(tmp_path, None, SOURCES[:1], settings=f'websub_hub = "{hub.url}"\n')
    out = tmp_path / "public"
    report, stderr = publish(config, out)
    assert (out / "feeds/all.rss").is_file()
    assert hub.pings and len(report["hub_errors"]) == len(hub.pings)
    assert "WebSub ping failed" in stderr and "503" in stderr

    # a hub that cannot be reached: one warning, the rest skipped, publish still succeeds
    hub.close()
    (out / "feeds/all.rss").unlink()
    report, stderr = publish(config, out)
    [problem] = report["hub_errors"]
    assert "cannot reach the hub" in problem and "1 feed(s) not announced" in problem


def test_without_a_hub_nothing_is_declared_or_pinged(hub: Hub, tmp_path: Path) -> None:
    config = write_config(tmp_path, None, SOURCES[:1])
    out = tmp_path / "public"
    report, _ = publish(config, out)
    assert report["pinged"] == [] and hub.pings == []
    for name in ("all.rss", "all.atom", "all.json"):
        assert b"hub" not in (out / "feeds" / name).read_bytes(), name


def test_serve_announces_what_a_poll_changed(hub: Hub, tmp_path: Path) -> None:
    """Under `serve`, the scheduler hands each new render to `publisher`: the holder serves
    it and the hub hears of the feeds whose bytes changed; the render at start-up is not
    announced."""
    with Portal() as portal:
        serve_standard_feeds(portal)
        config = write_config(tmp_path, portal, SOURCES,
                              settings=f'websub_hub = "{hub.url}"\n')
        assert invoke("poll", "--all", config=config).exit_code == 0
        agg = Aggregator.open(str(config))
        try:
            holder = SiteHolder()
            holder.update(agg.render())
            publish = publisher(agg, holder)
            publish(agg.render())
            assert hub.pings == []  # same bytes: nothing to announce
            before = holder.site
            portal.routes["/rss/bali.xml"] = Route(fixture_feed("pemprov-bali-etag-v2.rss"),
                                                   etag=ETAG_V1 + "2")
            assert invoke("poll", "--source", "bali-etag", config=config).exit_code == 0
            publish(agg.render())
        finally:
            agg.close()
    changed = {BASE_URL + path for path, doc in holder.site.items()
               if path.startswith("/feeds/") and before[path].etag != doc.etag}
    assert changed and hub.topics() == changed
    assert f"{BASE_URL}/feeds/agency/pemprov-bali.atom" in changed
