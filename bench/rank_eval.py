"""Ranking quality on the recorded set in tests/data/rank/: how well the score at time t
predicts the views of the next 24 hours, against plain "newest first" and "most viewed".

    python bench/rank_eval.py [--data DIR] [--set half_life_hours=24 ...]

The replay and the targets are described in tests/rank_replay.py; the set, and how it was
made, in bench/rank_data.py. Prints a Markdown table of mean Spearman rank correlations
(bench/README.md, "Ranking quality").
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.types import RankSettings  # noqa: E402
from tests.rank_replay import DATA, RANKINGS, TARGETS, evaluate, load_set  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA,
                        help="a directory with stories.jsonl and meta.json")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a [settings.rank] field")
    args = parser.parse_args()
    settings = RankSettings()
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        kind = type(getattr(settings, name))
        settings = dataclasses.replace(settings, **{name: kind(float(value))})
    stories, meta = load_set(args.data)
    started = time.perf_counter()
    result = evaluate(stories, meta, settings)
    elapsed = time.perf_counter() - started
    items = sum(len(s.items) for s in stories)
    print(f"{args.data}: {len(stories)} stories, {items} items (seed {meta['seed']}); "
          f"{result.times} evaluation times, {result.stories:.0f} judged stories each; "
          f"{elapsed:.1f} s")
    print(f"settings: {settings}")
    print()
    print("| ranking | " + " | ".join(f"`{t}`" for t in TARGETS) + " |")
    print("|---|" + "---:|" * len(TARGETS))
    for name in RANKINGS:
        print(f"| {name} | " + " | ".join(f"{result.rho[name][t]:.3f}" for t in TARGETS)
              + " |")


if __name__ == "__main__":
    main()
