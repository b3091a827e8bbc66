"""Run one command and measure it with all its descendants (Linux, stdlib only).

    python bench/poll_measure.py --out result.json [--stdout F] [--stderr F] -- CMD ARGS...

What is measured (written as JSON to --out):
- wall_s: from start until the command itself exits (what a user waits for); started_epoch:
  time.time() at the start;
- cpu_user_s / cpu_sys_s: user and system CPU of the command and every descendant, from
  getrusage(RUSAGE_CHILDREN) of this wrapper. This process makes itself a child subreaper
  (prctl PR_SET_CHILD_SUBREAPER), so descendants orphaned by their parent (e.g. the
  multiprocessing forkserver and the pool workers it forks, which the command never waits for)
  are re-parented here and reaped here, and their CPU is counted too;
- main_cpu_s: the command's own CPU plus the children it reaped itself (os.wait4);
- max_rss_mb: ru_maxrss of RUSAGE_CHILDREN = the largest peak RSS of any single process;
- peak_tree_rss_mb / peak_tree_pss_mb: the largest sum, over the process tree, of RSS (from
  /proc/PID/statm) and of PSS (/proc/PID/smaps_rollup; shared pages split among the sharers),
  sampled every --interval seconds (default 0.05): a sample can miss a peak shorter than that;
- peak_processes: the most processes seen in the tree at once;
- others_cpu_s: CPU seconds the rest of the machine used while the command ran (from
  /proc/stat; includes the feed server and this wrapper), to spot runs disturbed by other load.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import threading
import time

PR_SET_CHILD_SUBREAPER = 36
PAGE = os.sysconf("SC_PAGE_SIZE")


def set_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(c) for c in fh.read().split())
        except OSError:
            pass
    return out


def tree(root: int) -> list[int]:
    todo, found = children_of(root), []
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children_of(pid))
    return found


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class Sampler(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.stop = threading.Event()
        self.peak_rss = self.peak_pss = self.peak_procs = self.samples = 0
        self.pss_ok = os.path.exists(f"/proc/{os.getpid()}/smaps_rollup")

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            pids = tree(me)
            if pids:
                self.samples += 1
                self.peak_procs = max(self.peak_procs, len(pids))
                self.peak_rss = max(self.peak_rss, sum(rss_bytes(p) for p in pids))
                if self.pss_ok:
                    self.peak_pss = max(self.peak_pss, sum(pss_bytes(p) for p in pids))
            self.stop.wait(self.interval)


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--stdout")
    p.add_argument("--stderr")
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--reap-timeout", type=float, default=60.0)
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    args = p.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        p.error("no command given")
    subreaper = set_subreaper()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = Sampler(args.interval)
    out = open(args.stdout, "wb") if args.stdout else subprocess.DEVNULL  # noqa: SIM115
    err = open(args.stderr, "wb") if args.stderr else subprocess.DEVNULL  # noqa: SIM115
    sampler.start()
    busy_before = busy_seconds()
    started = time.perf_counter()
    started_epoch = time.time()
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    _, status, main_usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    busy = busy_seconds() - busy_before
    proc.returncode = os.waitstatus_to_exitcode(status)
    # Reap what the command left behind (forkserver, pool workers) so their CPU counts.
    orphans_left = 0
    deadline = time.monotonic() + args.reap_timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if time.monotonic() > deadline:
                orphans_left = len(tree(os.getpid()))
                break
            time.sleep(0.01)
    linger = time.perf_counter() - started - wall
    sampler.stop.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = {
        "cmd": cmd,
        "returncode": proc.returncode,
        "wall_s": wall,
        "started_epoch": started_epoch,
        "descendants_exit_s": linger,
        "cpu_user_s": after.ru_utime - before.ru_utime,
        "cpu_sys_s": after.ru_stime - before.ru_stime,
        "cpu_s": cpu,
        # CPU the rest of the machine used meanwhile (other processes, the feed server, this
        # wrapper): with 2 cores, anything much above 0 slows the measured run down.
        "machine_busy_s": busy,
        "others_cpu_s": max(0.0, busy - cpu) if busy else None,
        "main_cpu_s": main_usage.ru_utime + main_usage.ru_stime,
        "max_rss_mb": after.ru_maxrss / 1024,
        "peak_tree_rss_mb": sampler.peak_rss / 2**20,
        "peak_tree_pss_mb": sampler.peak_pss / 2**20 if sampler.pss_ok else None,
        "peak_processes": sampler.peak_procs,
        "samples": sampler.samples,
        "subreaper": subreaper,
        "orphans_left": orphans_left,
    }
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    sys.exit(0)


if __name__ == "__main__":
    main()
