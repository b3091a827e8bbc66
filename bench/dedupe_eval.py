"""Precision and recall of deduplication on the labelled pairs in tests/data/dedupe/.

Each pair is stored, as two sources, in a fresh SQLite database through the real store, so the
figures include the index lookup as well as the comparison. Prints a table per kind and per
half ("dev": the half the thresholds were tuned on; "test": held out), then every error.

    python bench/dedupe_eval.py [--errors] [--set window_hours=72 ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.types import DedupeSettings  # noqa: E402
from tests.dedupe_labelled import evaluate, load_pairs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="list every wrong pair")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a [settings.dedupe] threshold")
    args = parser.parse_args()
    settings = DedupeSettings()
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        settings = dataclasses.replace(settings, **{name: float(value)})
    pairs = load_pairs()
    started = time.perf_counter()
    total, parts = evaluate(pairs, settings)
    elapsed = time.perf_counter() - started
    print(f"{len(pairs)} pairs ({sum(p.label for p in pairs)} duplicates), "
          f"{elapsed:.1f} s, settings {settings}")
    print()
    print("| part | pairs | tp | fp | fn | tn | precision | recall |")
    print("|---|---|---|---|---|---|---|---|")
    for name, score in [("all", total), *sorted(parts.items())]:
        n = score.tp + score.fp + score.fn + score.tn
        print(f"| {name} | {n} | {score.tp} | {score.fp} | {score.fn} | {score.tn} | "
              f"{score.precision:.3f} | {score.recall:.3f} |")
    if args.errors:
        print()
        for line in total.errors:
            print(line)


if __name__ == "__main__":
    main()
