"""A fast local HTTP server of synthetic feeds for the poll benchmark (stdlib only).

    python bench/feedserver.py --n 500 [--port 0] [--slow-delay 10] [--manifest FILE]

Serves N feeds (see feedserver_content.py) from memory with a small asyncio HTTP/1.1 server:
keep-alive, pre-rendered and pre-gzipped bodies, ETag/If-None-Match and
Last-Modified/If-Modified-Since -> 304. "slow" feeds answer only after --slow-delay seconds
(longer than the client's timeout), "error500" feeds answer 500. On start it prints
`READY <port>` on stdout and writes a JSON manifest of the feeds. Control endpoints, for the
benchmark driver:
  GET /_bench/mutate?fraction=0.1&seed=1   change that share of the healthy feeds (new and
                                           edited items)
  GET /_bench/stats                        counters since the last reset, and the server's CPU time
  GET /_bench/reset                        reset the counters
  GET /_bench/quit                         stop
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from feedserver_content import Feed, Generator, render

CONTENT_TYPES = {"wp": "application/rss+xml; charset=UTF-8",
                 "wp-summary": "application/rss+xml; charset=UTF-8",
                 "blogger": "application/atom+xml; charset=UTF-8",
                 "cms": "text/xml; charset=utf-8"}


class Body:
    __slots__ = ("etag", "gzipped", "last_modified", "modified", "plain")

    def __init__(self, feed: Feed, level: int) -> None:
        self.plain = render(feed)
        self.gzipped = gzip.compress(self.plain, level, mtime=0) if level else None
        self.etag = '"' + hashlib.sha1(self.plain).hexdigest()[:20] + '"'
        self.modified = feed.modified.replace(microsecond=0)
        self.last_modified = format_datetime(self.modified, usegmt=True)


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.gen = Generator(args.seed)
        self.feeds = self.gen.feeds(args.n, args.slow, args.errors, args.no_validators,
                                    args.lm_only)
        self.by_path = {f.path: f for f in self.feeds}
        self.bodies = {f.path: Body(f, args.gzip_level) for f in self.feeds}
        self.mutations = 0
        self.reset()

    def reset(self) -> None:
        self.stats = {"requests": 0, "status": {}, "bytes": 0, "cpu_at_reset": time.process_time(),
                      "max_open_connections": 0, "first_at": None, "last_at": None,
                      "slow_at": []}

    def count(self, status: int | str, size: int) -> None:
        """One answered request; the times (epoch seconds) are when requests arrived."""
        now = time.time()
        if self.stats["first_at"] is None:
            self.stats["first_at"] = now
        self.stats["last_at"] = now
        if status == "slow":
            self.stats["slow_at"].append(now)
        self.stats["requests"] += 1
        key = str(status)
        self.stats["status"][key] = self.stats["status"].get(key, 0) + 1
        self.stats["bytes"] += size

    def mutate(self, fraction: float, seed: int) -> dict[str, object]:
        rng = random.Random(seed * 7919 + self.mutations)
        self.mutations += 1
        healthy = [f for f in self.feeds if f.behaviour == "ok"]
        chosen = rng.sample(healthy, max(1, round(len(self.feeds) * fraction)))
        now = datetime.now(UTC)
        new = edited = 0
        for f in chosen:
            n, e = self.gen.mutate(f, rng, now)
            new += n
            edited += e
            self.bodies[f.path] = Body(f, self.args.gzip_level)
        return {"changed": [f.id for f in chosen], "new_items": new, "edited_items": edited}

    def manifest(self, port: int) -> dict[str, object]:
        return {
            "port": port, "seed": self.args.seed, "slow_delay": self.args.slow_delay,
            "feeds": [{"id": f.id, "path": f.path, "url": f"http://127.0.0.1:{port}{f.path}",
                       "flavour": f.flavour, "behaviour": f.behaviour,
                       "validators": f.validators, "agency": f.agency_slug,
                       "agency_name": f.agency_name, "region": f.region,
                       "site": f.site_name, "bytes": len(self.bodies[f.path].plain),
                       "gzip_bytes": len(self.bodies[f.path].gzipped or b"")}
                      for f in self.feeds],
        }


_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, format_datetime(datetime.fromtimestamp(now, UTC),
                                            usegmt=True).encode())
    return _date_cache[1]


class FeedProtocol(asyncio.Protocol):
    state: State
    open_connections = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""
        FeedProtocol.open_connections += 1
        st = self.state.stats
        st["max_open_connections"] = max(st["max_open_connections"],
                                         FeedProtocol.open_connections)

    def connection_lost(self, exc: Exception | None) -> None:
        FeedProtocol.open_connections -= 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > 65536:
                    self.transport.close()
                return
            head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4:]
            lines = head.split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                self.transport.close()
                return
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            self.handle(method, target, headers, keep)

    def send(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes,
             keep: bool, head_only: bool = False, count: bool = True) -> None:
        if count:  # slow feeds are counted when asked ("slow"), not when answered late
            self.state.count(status, len(body))
        if self.transport.is_closing():
            return
        out = [f"HTTP/1.1 {status} {reason}".encode(), b"Server: bench-feedserver",
               b"Date: " + http_date()]
        out += [f"{k}: {v}".encode("latin-1") for k, v in headers]
        if status != 304:
            out.append(b"Content-Length: " + str(len(body)).encode())
        out.append(b"Connection: keep-alive" if keep else b"Connection: close")
        self.transport.write(b"\r\n".join(out) + b"\r\n\r\n")
        if body and status != 304 and not head_only:
            self.transport.write(body)
        if not keep:
            self.transport.close()

    def handle(self, method: str, target: str, headers: dict[str, str], keep: bool) -> None:
        url = urlsplit(target)
        if url.path.startswith("/_bench/"):
            self.control(url.path, parse_qs(url.query), keep)
            return
        feed = self.state.by_path.get(url.path)
        if feed is None or method not in ("GET", "HEAD"):
            self.send(404, "Not Found", [("Content-Type", "text/plain")], b"not found\n", keep)
            return
        if feed.behaviour == "error500":
            page = (b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>"
                    b"<body><h1>Internal Server Error</h1><p>Database connection failed.</p>"
                    b"</body></html>")
            self.send(500, "Internal Server Error", [("Content-Type", "text/html")], page, keep)
            return
        if feed.behaviour == "slow":
            self.state.count("slow", 0)
            loop = asyncio.get_running_loop()
            loop.call_later(self.state.args.slow_delay, self.respond, feed, method, headers,
                            keep, False)
            return
        self.respond(feed, method, headers, keep)

    def respond(self, feed: Feed, method: str, headers: dict[str, str], keep: bool,
                count: bool = True) -> None:
        body = self.state.bodies[feed.path]
        validators: list[tuple[str, str]] = []
        if feed.validators in ("both",):
            validators.append(("ETag", body.etag))
        if feed.validators in ("both", "lm"):
            validators.append(("Last-Modified", body.last_modified))
        if validators and _not_modified(feed, body, headers):
            self.send(304, "Not Modified", validators, b"", keep, count=count)
            return
        out = [("Content-Type", CONTENT_TYPES[feed.flavour]), ("Vary", "Accept-Encoding"),
               *validators]
        data = body.plain
        if body.gzipped is not None and "gzip" in headers.get("accept-encoding", ""):
            out.append(("Content-Encoding", "gzip"))
            data = body.gzipped
        self.send(200, "OK", out, data, keep, head_only=method == "HEAD", count=count)

    def control(self, path: str, query: dict[str, list[str]], keep: bool) -> None:
        st = self.state
        if path == "/_bench/mutate":
            result = st.mutate(float(query.get("fraction", ["0.1"])[0]),
                               int(query.get("seed", ["1"])[0]))
        elif path == "/_bench/stats":
            result = dict(st.stats, cpu_s=round(time.process_time() - st.stats["cpu_at_reset"], 3))
        elif path == "/_bench/reset":
            st.reset()
            result = {"ok": True}
        elif path == "/_bench/quit":
            self.send(200, "OK", [("Content-Type", "application/json")], b"{}", False)
            asyncio.get_running_loop().call_soon(asyncio.get_running_loop().stop)
            return
        else:
            self.send(404, "Not Found", [], b"", keep)
            return
        data = json.dumps(result).encode()
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(data)).encode() + b"\r\nConnection: close\r\n\r\n" + data)
        self.transport.close()


def _not_modified(feed: Feed, body: Body, headers: dict[str, str]) -> bool:
    inm = headers.get("if-none-match")
    if inm is not None and feed.validators == "both":
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return "*" in tags or body.etag in tags
    ims = headers.get("if-modified-since")
    if ims:
        try:
            return body.modified <= parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
    return False


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=500, help="number of feeds (default 500)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = any free port (default)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--slow", type=int, default=None,
                   help="feeds that time out (default 1%%, min 1)")
    p.add_argument("--errors", type=int, default=None,
                   help="feeds that answer 500 (default 1%%, min 1)")
    p.add_argument("--slow-delay", type=float, default=10.0, help="seconds a slow feed waits")
    p.add_argument("--no-validators", type=float, default=0.10,
                   help="share of feeds sending neither ETag nor Last-Modified (default 0.10)")
    p.add_argument("--lm-only", type=float, default=0.25,
                   help="share of feeds sending Last-Modified only (default 0.25)")
    p.add_argument("--gzip-level", type=int, default=6, help="0 = never gzip (default 6)")
    p.add_argument("--manifest", help="write the feed list (JSON) here")
    args = p.parse_args(argv)
    args.slow = max(1, round(args.n / 100)) if args.slow is None else args.slow
    args.errors = max(1, round(args.n / 100)) if args.errors is None else args.errors

    started = time.monotonic()
    state = State(args)
    FeedProtocol.state = state
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(FeedProtocol, args.host, args.port,
                                                        backlog=1024, reuse_address=True))
    port = server.sockets[0].getsockname()[1]
    if args.manifest:
        with open(args.manifest, "w") as fh:
            json.dump(state.manifest(port), fh)
    sizes = sorted(len(b.plain) for b in state.bodies.values())
    print(f"READY {port}", flush=True)
    print(f"{args.n} feeds generated in {time.monotonic() - started:.1f} s; body sizes "
          f"{sizes[0] // 1024}-{sizes[-1] // 1024} KB, total {sum(sizes) / 1e6:.1f} MB",
          file=sys.stderr, flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
