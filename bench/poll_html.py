"""Cost of polling many HTML sources: N listing pages (beritajakarta.id markup, 20 items and
about 30 KB each) on a local server, polled by the real CLI with the shipped scraper.

    python bench/poll_html.py [--n 200] [--articles 0|10]

Phases: cold (empty database), unchanged (the server answers 304 to the ETag), views (every
page changed only in its view counts: parsed and stored again, no new items). With
`--articles K`, each source also fetches the pages of up to K new articles per poll (the
shipped beritajakarta.id scraper uses 10). Wall, CPU (with every descendant) and peak memory
come from bench/poll_measure.py. The server runs in its own process.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import multiprocessing
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "tests" / "fixtures" / "html" / "beritajakarta" / "generate.py"


def load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bj_generate", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_site(n: int, views_round: int, base: str) -> dict[str, bytes]:
    """N listings of 20 articles each (ids unique per listing), robots.txt, article pages.
    Every link points at this server (`base`), never at the real portal."""
    gen = load_generator()
    gen.HOST = base
    rng = random.Random(1)
    articles = gen.ARTICLES
    pages: dict[str, bytes] = {"/robots.txt": b"User-agent: *\nDisallow: /admin/\n"}
    for i in range(n):
        listing = []
        for j in range(20):
            _, title, stamp, views, author, regions = articles[(i + j) % len(articles)]
            uid = 200000 + i * 20 + j
            views = views + rng.randint(0, 50) + 7 * views_round
            listing.append((uid, f"{title} ({i}-{j})", stamp, views, author, regions))
        html = gen.page(f"Berita {i}", f"Berita {i}", listing, listing[:5])
        pages[f"/wilayah/w{i}"] = html.encode()
        for a in listing:
            pages[f"/read/{a[0]}/{gen.slug(a[1])}"] = (
                f"<html><body><ul class='breadcrumbs'><li class='active'>Pemerintahan</li></ul>"
                f"<div class='news-read'><div class='content-info'><span>"
                f"<i class='material-icons'>person</i>Reporter : {a[4]}</span></div>"
                f"<div class='content-body'><p>{a[1]}. " + "Isi berita. " * 200 +
                "</p></div></div></body></html>").encode()
    return pages


def serve(n: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    state: dict[str, object] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            pages: dict[str, bytes] = state["pages"]  # type: ignore[assignment]
            if self.path.startswith("/read/"):
                state["articles"] = int(state.get("articles", 0)) + 1  # type: ignore[call-overload]
            if self.path == "/_bench/articles":
                body = str(state.get("articles", 0)).encode()
                state["articles"] = 0
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if self.path == "/_bench/views":
                state["round"] = int(state["round"]) + 1  # type: ignore[call-overload]
                state["pages"] = build_site(n, int(state["round"]), str(state["base"]))  # type: ignore[call-overload]
                body = b"ok"
            else:
                body = pages.get(self.path, b"")
                if not body:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    state.update(round=0, base=base, pages=build_site(n, 0, base))
    queue.put(server.server_address[1])
    server.serve_forever()


def write_config(path: Path, port: int, n: int, articles: int, db: Path) -> None:
    scraper = (ROOT / "config" / "sources" / "jakarta.toml").read_text(encoding="utf-8")
    start = scraper.index("[scraper.beritajakarta-wilayah]")
    end = scraper.index("[scraper.beritajakarta-wilayah.article]")
    block = scraper[start:end]
    article = "" if not articles else (
        "[scraper.beritajakarta-wilayah.article]\n"
        "content = \"div.news-read div.content-body @html\"\n"
        "category = \"ul.breadcrumbs li.active\"\n"
        f"max_per_poll = {articles}\n")
    sources = "".join(
        f'[[source]]\nid = "w{i}"\nkind = "html"\nurl = "http://127.0.0.1:{port}/wilayah/w{i}"\n'
        f'agency = "bench"\nscraper = "beritajakarta-wilayah"\n\n' for i in range(n))
    path.write_text(
        f'[settings]\ndatabase = "{db}"\ncontact_url = "mailto:bench@example.go.id"\n'
        f"concurrency = 32\nper_host_concurrency = 32\ntimeout = 10\n\n"
        f'[[agency]]\nslug = "bench"\nname = "Bench"\nregion = "bench"\n\n'
        f"{block}{article}\n{sources}", encoding="utf-8")


def measure(cfg: Path, workdir: Path, name: str) -> dict[str, float]:
    out = workdir / f"{name}.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "poll_measure.py"), "--out", str(out),
                    "--stdout", str(workdir / f"{name}.out"), "--",
                    sys.executable, "-m", "aggregator", "--config", str(cfg), "poll", "--all",
                    "--json"], check=False)
    result: dict[str, float] = json.loads(out.read_text())
    reports = json.loads((workdir / f"{name}.out").read_text() or "[]")
    result["new"] = sum(r["new"] for r in reports)
    result["updated"] = sum(r["updated"] for r in reports)
    result["errors"] = sum(r["outcome"] == "error" for r in reports)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--articles", type=int, default=0)
    args = parser.parse_args()
    queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.n, queue), daemon=True)
    server.start()
    port = queue.get(timeout=120)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cfg = workdir / "aggregator.toml"
        write_config(cfg, port, args.n, args.articles, workdir / "db.sqlite")
        rows = []
        for phase in ("cold", "unchanged", "views"):
            if phase == "views":
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_bench/views", timeout=300)
            time.sleep(0.2)
            r = measure(cfg, workdir, phase)
            cpu = r["cpu_user_s"] + r["cpu_sys_s"]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_bench/articles") as answer:
                articles = int(answer.read())
            rows.append((phase, r["wall_s"], cpu, r["peak_tree_rss_mb"], r["new"], r["updated"],
                         r["errors"], articles))
    server.terminate()
    print(f"{args.n} HTML sources (20 items, ~30 KB each), articles per source: {args.articles}")
    print(f"{'phase':<10}{'wall s':>8}{'CPU s':>8}{'ms CPU/src':>12}{'peak MB':>9}"
          f"{'new':>7}{'updated':>9}{'errors':>8}{'articles':>10}")
    for phase, wall, cpu, mem, new, updated, errors, articles in rows:
        print(f"{phase:<10}{wall:>8.2f}{cpu:>8.2f}{1000 * cpu / args.n:>12.1f}{mem:>9.0f}"
              f"{new:>7}{updated:>9}{errors:>8}{articles:>10}")


if __name__ == "__main__":
    main()
