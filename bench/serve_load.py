"""Serving feeds at 100k stored stories: the time to re-render every feed after a poll, and
`aggregator serve`'s throughput and latency for `/feeds/top.rss` under load (wrk, loopback),
beside nginx serving the same file from disk on the same machine.

    python bench/serve_load.py                      # 100k stories, 100 agencies, 10 s per run
    python bench/serve_load.py --stories 20000 --duration 5      # a quicker look
    python bench/serve_load.py --skip-load          # only the render and publish timings

Needs `wrk` and `nginx` on PATH for the load part (Debian: `apt-get install nginx wrk`); the
project's tests never need them.

Steps:

1. **Database** (`--workdir`, default /tmp/serve-load; reused when the generator version,
   the sizes, the schema version and the build day match; `--rebuild` forces): N stories
   (`--stories`) for A agencies (`--agencies`) in A/10 regions, one feed source per agency,
   written straight into the store's tables with SQL after `Store` created the schema. The
   rows are what `Store.ingest` writes for the columns publishing reads (`items`, `stories`,
   `view_samples`; uids, story ids and timestamps in the store's own formats; the schema's
   triggers keep their indexes, the search index included); what it skips is the dedupe
   index and word counts (`dedupe_item_keys`, `dedupe_words`, `story_links`), which rendering
   never reads, and which cost about 2 ms per item to build (`bench/dedupe_scale.py`): 4
   minutes instead of half a minute. Items are marked indexed, so opening the store does not
   start indexing them. Stories span N/1000 days up to the build time (1,000 a day), 20% of
   them have 2-4 items from other agencies ("also published by"), half of the sources report
   views, and the items of the last 8 days have 3 view samples each (ranking reads them).
   Each item has a 300-byte summary and a 2-3 KB HTML text from a pool of
   Indonesian-looking paragraphs, so `/feeds/top.rss` is about 190 KB, like a busy real feed.
2. **Re-render after a poll**, in this process through the real `Aggregator`: a first
   render (cold: empty caches), then R times (`--renders`) a poll-like change (5 sources get
   10 new items each through `Store.ingest`, the real write path) followed by
   `Aggregator.render()` (every feed, OPML and index, as `serve` does after a poll), the
   gzip of the changed documents (`SiteHolder.update`, as `serve` does before serving them)
   and `write_static` of the result (`publish --out`). Then the CLI itself, `aggregator publish
   --out DIR` in a subprocess (start-up and imports included), twice: the second writes
   nothing.
3. **Load**: `aggregator serve` (the real CLI, sources disabled so the scheduler polls
   nothing) on 127.0.0.1; `wrk -t2 -c50 -d10s --latency` on `/feeds/top.rss`, once plain
   (the 200 KB body; wrk sends no Accept-Encoding) and once with `If-None-Match: ETAG` (304).
   Then nginx (a temporary config: `worker_processes auto`, `sendfile`, access log off,
   `keepalive_requests 100000`, no gzip) serving the file `publish --out` wrote, with the
   same two runs (its own ETag). A first request checks each server's status (200 / 304)
   and that both serve the same bytes.

Prints the tables; `--json FILE` writes every number.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aggregator.core import Aggregator, read_config  # noqa: E402
from aggregator.normalize.keys import content_hash, item_uid, story_uid  # noqa: E402
from aggregator.publish import write_static  # noqa: E402
from aggregator.store import Store, ts  # noqa: E402
from aggregator.store.schema import MIGRATIONS  # noqa: E402
from aggregator.types import Item  # noqa: E402
from aggregator.web import SiteHolder  # noqa: E402

GEN_VERSION = 1  # bump when the generator changes: cached databases are rebuilt
PER_DAY = 1000
SEED = 20261127

WORDS = textwrap.dedent("""\
    warga masyarakat kegiatan pelayanan program petugas layanan wilayah tahun pelaksanaan
    peningkatan pembangunan kerja sosialisasi koordinasi bantuan upaya lingkungan fasilitas
    data informasi publik lokasi anggaran pengawasan penanganan rapat kebijakan sarana
    prasarana terpadu digital aplikasi daerah kualitas target capaian realisasi evaluasi hasil
    dukungan partisipasi kolaborasi sinergi komitmen jajaran aparatur pegawai posko dokumen
    pendaftaran penghargaan peresmian kunjungan puskesmas vaksinasi posyandu genangan pompa
    saluran sekolah siswa guru jalan trotoar jembatan umkm pasar pedagang sampah pohon taman
    bus halte kebakaran bansos ktp musrenbang festival masjid petani""").split()
GLUE = ["yang", "di", "dan", "dari", "untuk", "dengan", "ini", "dalam", "pada", "akan", "ke",
        "juga", "itu", "oleh", "telah", "para"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the database -----------------------------------------------------------------------------


def sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) if rng.random() < 0.7 else rng.choice(GLUE) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def paragraph_pool(rng: random.Random, size: int = 600) -> list[str]:
    return [f"<p>{' '.join(sentence(rng, rng.randint(10, 22)) for _ in range(4))}</p>"
            for _ in range(size)]


def agency_slug(a: int) -> str:
    return f"dinas-{a:03d}"


def write_config(workdir: Path, agencies: int, db: Path) -> Path:
    """Regions of 10 agencies, one disabled feed source per agency (serve polls nothing)."""
    conf = workdir / "config"
    (conf / "sources").mkdir(parents=True, exist_ok=True)
    main = conf / "aggregator.toml"
    main.write_text(textwrap.dedent(f"""\
        [settings]
        database = "{db}"
        output_dir = "{workdir / 'public'}"
        base_url = "http://127.0.0.1:8080"
        contact_url = "mailto:bench@example.test"
        feed_size = 50
        include = ["sources/*.toml"]
        """), encoding="utf-8")
    parts = []
    for r in range((agencies + 9) // 10):
        parts.append(f'[[region]]\nslug = "wilayah-{r:02d}"\nname = "Wilayah {r:02d}"\n')
    for a in range(agencies):
        parts.append(f'[[agency]]\nslug = "{agency_slug(a)}"\nname = "Dinas Nomor {a:03d}"\n'
                     f'region = "wilayah-{a // 10:02d}"\n')
        parts.append(f'[[source]]\nid = "src-{a:03d}"\nkind = "feed"\n'
                     f'url = "http://127.0.0.1:9/feed/{a}.xml"\nagency = "{agency_slug(a)}"\n'
                     f'interval = "15m"\nenabled = false\n')
    (conf / "sources" / "bench.toml").write_text("\n".join(parts), encoding="utf-8")
    return main


def build_database(db: Path, stories: int, agencies: int, end: datetime) -> dict[str, Any]:
    """The synthetic store (see the module docstring): rows as `Store.ingest` writes them."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    Store(db).close()  # the schema, through the store's own migrations
    rng = random.Random(SEED)
    pool = paragraph_pool(rng)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    step = timedelta(seconds=86400 / PER_DAY)
    start = end - step * stories
    sample_from = end - timedelta(days=8)
    item_rows: list[tuple[Any, ...]] = []
    story_rows: list[tuple[Any, ...]] = []
    samples: list[tuple[int, str, int]] = []
    item_id = 0
    views_of = [a % 2 == 0 for a in range(agencies)]  # half of the sources report views
    started = time.perf_counter()

    def flush() -> None:
        conn.executemany(
            "INSERT INTO items (id, uid, scope, source_id, key, agency, agency_priority, link, "
            "title, summary, content, author, categories, image, published, updated, dated_by, "
            "first_seen, last_seen, content_hash, story_id, views, views_max, views_at, indexed) "
            "VALUES (?,?,?,?,?,?,1,?,?,?,?,?,?,?,?,?,'source',?,?,?,?,?,?,?,1)", item_rows)
        conn.executemany("INSERT INTO stories (id, lead_item, published, updated, created_at) "
                         "VALUES (?,?,?,?,?)", story_rows)
        conn.executemany("INSERT INTO view_samples (item_id, at, views) VALUES (?,?,?)",
                         samples)
        item_rows.clear()
        story_rows.clear()
        samples.clear()

    for n in range(stories):
        published = start + step * n + timedelta(seconds=rng.randint(0, 80))
        copies = 1 if rng.random() < 0.8 else rng.randint(2, 4)
        chosen = rng.sample(range(agencies), copies)
        title = sentence(rng, rng.randint(6, 11))[:-1]
        summary = sentence(rng, rng.randint(30, 40))
        content = "".join(rng.sample(pool, rng.randint(3, 5)))
        sid = ""
        lead = 0
        for c, a in enumerate(chosen):
            item_id += 1
            source = f"src-{a:03d}"
            key = f"guid:{n}-{c}"
            uid = item_uid(source, key)
            at = published + timedelta(minutes=rng.randint(0, 360) if c else 0)
            at_text = ts(at)
            if c == 0:
                sid, lead = story_uid(uid, at_text), item_id
            views = rng.randint(20, 5000) if views_of[a] else None
            item_rows.append((
                item_id, uid, source, source, key, agency_slug(a),
                f"https://dinas{a:03d}.example.go.id/berita/{n}-{c}", title,
                f"<p>{summary}</p>", content, f"Humas Dinas {a:03d}", '["Berita"]',
                f"https://dinas{a:03d}.example.go.id/img/{n}.jpg", at_text, at_text, at_text,
                at_text, content_hash(title, summary, content), sid, views, views,
                at_text if views is not None else None))
            if views is not None and at >= sample_from:
                for k in range(3):  # three polls' samples, growing (none in the future)
                    when = at + timedelta(hours=2 + 8 * k)
                    if when <= end:
                        samples.append((item_id, ts(when), views * (k + 2) // 4))
        story_rows.append((sid, lead, ts(published), ts(published), ts(published)))
        if len(story_rows) >= 5000:
            flush()
    flush()
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {"stories": stories, "items": item_id, "build_s": time.perf_counter() - started,
            "db_mb": db.stat().st_size / 1e6}


def database(workdir: Path, stories: int, agencies: int, rebuild: bool) -> tuple[Path,
                                                                                 dict[str, Any]]:
    db = workdir / f"serve-{stories}-{agencies}.db"
    meta_path = db.with_suffix(".json")
    today = datetime.now(UTC).date().isoformat()
    schema = max(number for number, _ in MIGRATIONS)  # a newer schema: build again
    want = {"gen": GEN_VERSION, "schema": schema, "stories": stories, "agencies": agencies,
            "day": today}
    if not rebuild and db.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in want} == want:
            print(f"reusing {db} (built {meta['built']})")
            return db, meta
    print(f"building {db}: {stories:,} stories, {agencies} agencies ...", flush=True)
    end = datetime.now(UTC).replace(microsecond=0)
    meta = {**want, **build_database(db, stories, agencies, end), "built": end.isoformat()}
    meta_path.write_text(json.dumps(meta))
    print(f"  {meta['items']:,} items in {meta['build_s']:.1f} s, {meta['db_mb']:.0f} MB")
    return db, meta


# --- re-render after a poll ------------------------------------------------------------------


def poll_like_change(store: Store, round_: int, agencies: int, now: datetime) -> int:
    """5 sources each get 10 new items through the real write path (`Store.ingest`)."""
    rng = random.Random(round_)
    new = 0
    for a in rng.sample(range(agencies), 5):
        source = f"src-{a:03d}"
        entries = []
        for k in range(10):
            title = sentence(rng, 8)[:-1]
            summary, content = f"<p>{sentence(rng, 30)}</p>", f"<p>{sentence(rng, 200)}</p>"
            entries.append((Item(
                source_id=source, key=f"guid:poll-{round_}-{k}",
                link=f"https://dinas{a:03d}.example.go.id/berita/poll-{round_}-{k}",
                title=title, summary=summary, content=content, author=None,
                published=now - timedelta(minutes=k), updated=None, dated_by="source",
                views=rng.randint(10, 500) if a % 2 == 0 else None, categories=("Berita",),
                image=None, content_hash=content_hash(title, summary, content)),
                agency_slug(a), 1))
        new += store.ingest(source, entries, now)[0]
    return new


def time_renders(config_path: Path, workdir: Path, rounds: int, agencies: int
                 ) -> dict[str, Any]:
    agg = Aggregator(read_config(str(config_path)))
    holder = SiteHolder(agg.clock)  # what serve does with a render: gzip, then swap
    out = workdir / "render-out"
    shutil.rmtree(out, ignore_errors=True)
    try:
        t = time.perf_counter()
        site = agg.render()
        cold = time.perf_counter() - t
        t = time.perf_counter()
        holder.update(site)
        cold_gzip = time.perf_counter() - t
        write_static(site, out)
        docs = len(site)
        feed_bytes = sum(len(d.body) for d in site.values())
        renders, gzips, writes, ingests, reused = [], [], [], [], []
        for r in range(rounds):
            t = time.perf_counter()
            poll_like_change(agg.store, 1000 + r, agencies, agg.clock())
            ingests.append(time.perf_counter() - t)
            t = time.perf_counter()
            site = agg.render()
            renders.append(time.perf_counter() - t)
            renderer = getattr(agg, "renderer", None)  # None before commit 1c4c618
            reused.append(renderer.reused if renderer else 0)
            t = time.perf_counter()
            holder.update(site)
            gzips.append(time.perf_counter() - t)
            t = time.perf_counter()
            report = write_static(site, out)
            writes.append(time.perf_counter() - t)
        top = site["/feeds/top.rss"]
        return {"documents": docs, "total_mb": feed_bytes / 1e6, "cold_s": cold,
                "cold_gzip_s": cold_gzip, "render_s": renders, "gzip_s": gzips,
                "write_s": writes, "ingest_s": ingests, "reused_feeds": reused,
                "written_last": len(report.written), "top_rss_kb": len(top.body) / 1000}
    finally:
        agg.close()


def time_cli_publish(config_path: Path, out: Path, db: Path, agencies: int
                     ) -> list[dict[str, Any]]:
    """`aggregator publish --out` as a cron run does it: into an empty directory, again with
    nothing changed, then after a poll-like change (a new process each time, which reads the
    unchanged feeds back from the last export)."""
    runs = []
    for n in range(3):
        if n == 2:
            store = Store(db)
            try:
                poll_like_change(store, 99, agencies, datetime.now(UTC))
            finally:
                store.close()
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "aggregator", "--config", str(config_path),
                               "publish", "--out", str(out), "--json"],
                              capture_output=True, text=True, check=False, cwd=ROOT)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"publish failed:\n{proc.stderr}")
        data = json.loads(proc.stdout)
        runs.append({"wall_s": wall, "written": len(data["written"]),
                     "unchanged": len(data["unchanged"]), "after_change": n == 2})
    return runs


# --- load ------------------------------------------------------------------------------------


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def wait_up(url: str, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds} s")


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, latency percentiles (ms), errors and transfer rate from wrk's report."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not rps:
        raise SystemExit(f"cannot read wrk's output:\n{output}")
    result: dict[str, Any] = {"rps": float(rps.group(1))}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", output, re.M)
        result[f"p{pct}_ms"] = _ms(m.group(1)) if m else None
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", output)
    result["requests"] = int(total.group(1)) if total else None
    errors = re.search(r"Socket errors: (.*)", output)
    result["socket_errors"] = errors.group(1).strip() if errors else ""
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["bad_status"] = int(non2xx.group(1)) if non2xx else 0
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", output)
    if transfer:
        scale = {"B": 1e-6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}.get(transfer.group(2), 0)
        result["mb_per_s"] = float(transfer.group(1)) * scale * 1.048576
    return result


def run_wrk(url: str, headers: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
           "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    proc = subprocess.run([*cmd, url], capture_output=True, text=True, check=True)
    return parse_wrk(proc.stdout)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def process_tree_cpu(pid: int) -> float:
    total = 0.0
    for child in Path("/proc").iterdir():
        if not child.name.isdigit():
            continue
        try:
            stat = (child / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if int(child.name) == pid or ppid == pid:
                total += cpu_seconds(int(child.name))
        except (OSError, ValueError, IndexError):
            continue
    return total


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    base: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_aggregator(config_path: Path, workdir: Path) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    log = (workdir / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "aggregator", "--config", str(config_path),
                             "serve", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    server = Server("aggregator serve", proc, f"http://127.0.0.1:{port}")
    wait_up(server.base + "/feeds/top.rss", proc)
    return server


def start_nginx(root: Path, workdir: Path) -> Server:
    port = free_port()
    conf_dir = workdir / "nginx"
    shutil.rmtree(conf_dir, ignore_errors=True)
    conf_dir.mkdir(parents=True)
    conf = conf_dir / "nginx.conf"
    conf.write_text(textwrap.dedent(f"""\
        worker_processes auto;
        daemon off;
        pid {conf_dir}/nginx.pid;
        error_log {conf_dir}/error.log warn;
        events {{ worker_connections 1024; }}
        http {{
            types {{ application/rss+xml rss; application/atom+xml atom; text/html html; }}
            default_type application/octet-stream;
            access_log off;
            sendfile on;
            tcp_nopush on;
            keepalive_requests 100000;
            client_body_temp_path {conf_dir}/body;
            proxy_temp_path {conf_dir}/proxy;
            fastcgi_temp_path {conf_dir}/fastcgi;
            uwsgi_temp_path {conf_dir}/uwsgi;
            scgi_temp_path {conf_dir}/scgi;
            server {{
                listen 127.0.0.1:{port};
                root {root};
            }}
        }}
        """), encoding="utf-8")
    proc = subprocess.Popen(["nginx", "-p", str(conf_dir), "-c", str(conf), "-e",
                             str(conf_dir / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = Server("nginx", proc, f"http://127.0.0.1:{port}")
    wait_up(server.base + "/feeds/top.rss", proc)
    return server


def load(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    url = server.base + "/feeds/top.rss"
    status, headers, body = get(url)
    etag = headers.get("etag", "")
    assert status == 200 and etag, (status, headers)
    status304, _, _ = get(url, {"If-None-Match": etag})
    if status304 != 304:
        raise SystemExit(f"{server.name}: If-None-Match {etag} answered {status304}, not 304")
    results: dict[str, Any] = {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                               "etag": etag}
    for kind, extra in (("full", {}), ("304", {"If-None-Match": etag})):
        cpu = process_tree_cpu(server.proc.pid)
        results[kind] = run_wrk(url, extra, args)
        results[kind]["server_cpu_s"] = process_tree_cpu(server.proc.pid) - cpu
        print(f"  {server.name} {kind}: {results[kind]['rps']:,.0f} req/s, "
              f"p50 {results[kind]['p50_ms']:.2f} ms, p99 {results[kind]['p99_ms']:.2f} ms, "
              f"server CPU {results[kind]['server_cpu_s']:.1f} s", flush=True)
        time.sleep(1)
    return results


# --- report ----------------------------------------------------------------------------------


def print_tables(meta: dict[str, Any], renders: dict[str, Any], cli: list[dict[str, Any]],
                 served: dict[str, dict[str, Any]]) -> None:
    r = renders
    print(f"\nDatabase: {meta['stories']:,} stories, {meta['items']:,} items, "
          f"{meta['agencies']} agencies, {meta['db_mb']:.0f} MB; {r['documents']} documents "
          f"({r['total_mb']:.1f} MB), /feeds/top.rss {r['top_rss_kb']:.0f} KB\n")
    print("| step | seconds |")
    print("|---|---:|")
    med = statistics.median
    print(f"| first render (cold), `Aggregator.render` | {r['cold_s']:.2f} |")
    print(f"| its gzip (serve's `SiteHolder.update`) | {r['cold_gzip_s']:.2f} |")
    print(f"| poll-like change: 50 new items (`Store.ingest`), median | "
          f"{med(r['ingest_s']):.2f} |")
    print(f"| re-render after it (`Aggregator.render`), median of {len(r['render_s'])} "
          f"(min-max {min(r['render_s']):.2f}-{max(r['render_s']):.2f}; "
          f"{med(r['reused_feeds']):.0f} feeds reused) | {med(r['render_s']):.2f} |")
    print(f"| gzip of the changed documents (`SiteHolder.update`), median | "
          f"{med(r['gzip_s']):.2f} |")
    print(f"| writing the changed files (`write_static`), median | {med(r['write_s']):.2f} |")
    for n, run in enumerate(cli):
        what = "after a poll-like change, " if run.get("after_change") else ""
        print(f"| `aggregator publish --out` (CLI, start-up included), run {n + 1}: "
              f"{what}{run['written']} written | {run['wall_s']:.2f} |")
    if not served:
        return
    print()
    print("| server | responses | requests/s | p50 ms | p99 ms | ratio to nginx | "
          "server CPU s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for kind in ("full", "304"):
        ngx = served.get("nginx", {}).get(kind)
        for name, res in served.items():
            row = res[kind]
            ratio = f"{row['rps'] / ngx['rps']:.3f}" if ngx else "-"
            label = (f"200, {res['bytes'] / 1000:.0f} KB" if kind == "full"
                     else "304 (If-None-Match)")
            errors = f" ({row['socket_errors']})" if row["socket_errors"] else ""
            print(f"| {name}{errors} | {label} | {row['rps']:,.0f} | {row['p50_ms']:.2f} | "
                  f"{row['p99_ms']:.2f} | {ratio} | {row['server_cpu_s']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=100_000)
    parser.add_argument("--agencies", type=int, default=100)
    parser.add_argument("--renders", type=int, default=5, help="re-renders after a change")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/serve-load"))
    parser.add_argument("--rebuild", action="store_true", help="build the database anew")
    parser.add_argument("--skip-load", action="store_true", help="no wrk, no servers")
    parser.add_argument("--json", type=Path, help="write every number to this file")
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(args.workdir, 0o755)  # nginx's workers (nobody) read the published files
    db, meta = database(args.workdir, args.stories, args.agencies, args.rebuild)
    # every run starts from the built database: the poll-like changes go into a copy
    work_db = args.workdir / "work.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{work_db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(db, work_db)
    config_path = write_config(args.workdir, args.agencies, work_db)

    print(f"rendering ({args.renders} poll-like changes) ...", flush=True)
    renders = time_renders(config_path, args.workdir, args.renders, args.agencies)
    out = Path(tempfile.mkdtemp(prefix="public-", dir=args.workdir))
    os.chmod(out, 0o755)
    cli = time_cli_publish(config_path, out, work_db, args.agencies)

    served: dict[str, dict[str, Any]] = {}
    if not args.skip_load:
        for tool in ("wrk", "nginx"):
            if shutil.which(tool) is None:
                raise SystemExit(f"{tool} is not on PATH (apt-get install nginx wrk), or use "
                                 "--skip-load")
        starters: list[Callable[[], Server]] = [
            lambda: start_aggregator(config_path, args.workdir),
            lambda: start_nginx(out, args.workdir)]
        for start in starters:
            server = start()
            try:
                print(f"load on {server.name} ...", flush=True)
                served[server.name] = load(server, args)
            finally:
                server.stop()
        digests = {res["sha256"] for res in served.values()}
        if len(digests) != 1:
            print("WARNING: the servers sent different bytes for /feeds/top.rss")
    shutil.rmtree(out, ignore_errors=True)
    print_tables(meta, renders, cli, served)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "renders": renders, "cli": cli,
                                         "served": served, "args": vars(args)},
                                        default=str, indent=1))


if __name__ == "__main__":
    main()
