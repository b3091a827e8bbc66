"""Profile one `aggregator poll --all` (run by `bench/poll.py --profile`, or alone).

    python bench/poll_profile.py --config CFG --out FILE [--sampler auto|py-spy|cprofile]

py-spy (used when it is installed: `pip install py-spy`) samples the real CLI run, with its
parse worker processes and its threads (the store thread too), at --rate per second and
writes the raw stacks to FILE; samples of idle threads are left out, so they measure CPU time.
The summary printed gives each process role's share of the samples and the hottest functions
by inclusive share (a function's own time plus what it calls).

cProfile (the fallback) runs the CLI in this process with the parse pool switched off
(`aggregator.core.make_pool` patched to return None) so that parsing shows up; it profiles only
the main thread (work the aggregator hands to other threads is missing), and parsing in process
blocks the event loop, so give the config a long timeout. FILE gets the pstats data.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import io
import os
import pstats
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path


def find_py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def run_py_spy(py_spy: str, args: argparse.Namespace) -> None:
    cmd = [py_spy, "record", "--subprocesses", "--rate", str(args.rate), "--format", "raw",
           "-o", args.out, "--", sys.executable, "-m", "aggregator", "--config", args.config,
           "poll", "--all", "--json"]
    started = time.perf_counter()
    with open(os.devnull, "w") as null:
        done = subprocess.run(cmd, stdout=null, stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - started
    if not Path(args.out).exists():
        raise SystemExit(f"py-spy failed:\n{done.stderr[-2000:]}")
    summarize_raw(args.out, args.rate, args.top, wall)


def _role(head: str) -> str:
    if "forkserver" in head:
        return "parse workers (forkserver children)"
    if "resource_tracker" in head:
        return "multiprocessing resource tracker"
    return "main process"


def summarize_raw(path: str, rate: int, top: int, wall: float | None = None) -> None:
    """Inclusive and self sample counts per function from py-spy's raw (collapsed) output."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    roles: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as fh:
        for line in fh:
            m = re.match(r"(.*) (\d+)$", line.rstrip("\n"))
            if not m:
                continue
            frames, n = m.group(1).split(";"), int(m.group(2))
            # --subprocesses nests a child's stacks under its parents' "process PID:cmd" frames
            procs = [f for f in frames if f.startswith("process ")]
            head = procs[-1] if procs else ""
            stack = [re.sub(r":\d+\)$", ")", f) for f in frames if not f.startswith("process ")]
            total += n
            roles[_role(head)] += n
            for f in set(stack):
                inclusive[f] += n
            if stack:
                own[stack[-1]] += n
    if not total:
        print("no samples")
        return
    print(f"py-spy: {total} samples of busy threads at {rate}/s per process"
          + (f", {wall:.1f} s wall (sampling slows the run)" if wall else "")
          + "; shares of all samples:")
    for role, n in roles.most_common():
        print(f"  {100 * n / total:5.1f}%  {role}")

    def show(title: str, counter: collections.Counter[str], keep: re.Pattern[str] | None) -> None:
        print(f"\n== {title} ==")
        shown = 0
        for name, n in counter.most_common():
            if keep is not None and not keep.search(name):
                continue
            print(f"{100 * n / total:5.1f}%  {name}")
            shown += 1
            if shown >= top:
                break

    show("aggregator functions, inclusive (share of all CPU samples)", inclusive,
         re.compile(r"\(aggregator/"))
    show("third-party and stdlib functions, inclusive", inclusive,
         re.compile(r"\((?!aggregator/|<frozen|asyncio/|concurrent/|multiprocessing/|threading"
                    r"|click/|runpy|<string>)[^)]*\)$"))
    show("functions by own time", own, None)


def run_cprofile(args: argparse.Namespace) -> None:
    import aggregator.core as core
    from aggregator.cli import main as cli_main

    patched = False
    if hasattr(core, "make_pool"):
        core.make_pool = lambda *a, **k: None  # type: ignore[assignment]
        patched = True
    profiler = cProfile.Profile()
    started = time.perf_counter()
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        profiler.enable()
        try:
            cli_main(["--config", args.config, "poll", "--all", "--json"])
        except SystemExit:
            pass
        finally:
            profiler.disable()
    wall = time.perf_counter() - started
    profiler.dump_stats(args.out)
    print(f"cProfile: {wall:.1f} s wall, parse pool "
          f"{'off (parsing in process)' if patched else 'on (main process only)'}; "
          f"main thread only; stats in {args.out}")
    for title, key, restrict in (("aggregator functions by cumulative time", "cumulative",
                                  "aggregator/"),
                                 ("all functions by internal time", "tottime", "")):
        buf = io.StringIO()
        stats = pstats.Stats(args.out, stream=buf)
        stats.sort_stats(key)
        if restrict:
            stats.print_stats(restrict, args.top)
        else:
            stats.print_stats(args.top)
        text = buf.getvalue()
        start = text.find("   ncalls")
        print(f"\n== {title} ==")
        print(text[start:] if start >= 0 else text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="aggregator config to poll with (unless --summarize)")
    p.add_argument("--out", required=True)
    p.add_argument("--sampler", choices=("auto", "py-spy", "cprofile"), default="auto")
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--summarize", action="store_true",
                   help="only summarize an existing py-spy raw file given as --out")
    args = p.parse_args()
    if args.summarize:
        summarize_raw(args.out, args.rate, args.top)
        return
    if not args.config:
        p.error("--config is required")
    py_spy = find_py_spy() if args.sampler in ("auto", "py-spy") else None
    if args.sampler == "py-spy" and py_spy is None:
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    if py_spy:
        run_py_spy(py_spy, args)
    else:
        run_cprofile(args)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
