"""The yardstick: one update of every feed with lemon24/reader (run by bench/poll.py).

    python bench/poll_reader.py --db DB --urls URLS.txt [--add] [--workers 16] [--timeout 5]

With --add (the cold phase) the feeds are added first, as the aggregator's cold poll mirrors its
config into an empty database. Every feed is updated, due or not (`scheduled=False`; reader
3.21+ otherwise skips feeds it updated less than an hour ago), with `workers` threads
retrieving. Prints a JSON summary of the results on stdout.
"""

from __future__ import annotations

import argparse
import json
import time

from reader import make_reader


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--urls", required=True)
    p.add_argument("--add", action="store_true")
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args()
    with open(args.urls) as fh:
        urls = [line.strip() for line in fh if line.strip()]
    started = time.perf_counter()
    reader = make_reader(args.db, session_timeout=args.timeout)
    if args.add:
        for url in urls:
            reader.add_feed(url, exist_ok=True)
    summary = {"feeds": 0, "updated": 0, "not_modified": 0, "errors": 0, "new": 0,
               "modified": 0, "unmodified": 0, "error_kinds": {}}
    for result in reader.update_feeds_iter(scheduled=False, workers=args.workers):
        summary["feeds"] += 1
        value = result.value
        if value is None:
            summary["not_modified"] += 1
        elif isinstance(value, Exception):
            summary["errors"] += 1
            cause = value.__cause__
            kind = type(cause).__name__ if cause is not None else type(value).__name__
            summary["error_kinds"][kind] = summary["error_kinds"].get(kind, 0) + 1
        else:
            summary["updated"] += 1
            summary["new"] += value.new
            summary["modified"] += value.modified
            summary["unmodified"] += value.unmodified
    reader.close()
    summary["seconds"] = round(time.perf_counter() - started, 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
