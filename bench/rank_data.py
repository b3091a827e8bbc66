"""Generate the recorded ranking set in tests/data/rank/ (seeded: the same file every run).

    python bench/rank_data.py [--seed 20261201] [--out tests/data/rank]

What it models, and why (a synthetic set: no recording of the real portals exists, see
bench/README.md, "Ranking quality"):

- **Seven sources** whose traffic differs about 100x: a busy portal (a typical story ends
  near 3,000 views) down to a small kabupaten site (near 30), each with its own number of
  stories a day and its own poll interval (2 to 6 h, jittered, 3% of polls failed); two feeds
  carry no view counts at all (Setkab, BNPB), like most feeds.
- **A story's audience** is its source's scale x an appeal drawn log-normally (sigma 0.9); 3%
  of stories are viral (appeal x 15-50). Its readers arrive at a rate that decays
  exponentially with a lifetime of its own (log-normal around 16 h: a flash report fades in
  hours, a service announcement reads for days), times the daily cycle of Indonesian traffic
  (nights at 15% of the day, peaks in the morning and evening, WIB). 6% of stories get a
  second wave one to three days later (shared on messaging apps), which no score can foresee.
- **Counts as recorded**: each poll of a source samples every item it has published so far
  (the article pages show the count); counts carry +-3% noise (caches, bots) and never go
  down. Counts start at 0 when the story is published.
- **Stories on several portals**: some Setkab releases are republished by jakarta.go.id,
  some beritajakarta.id stories by jakarta.go.id, some Pemprov Kalsel stories by
  MC Kotabaru, one to six hours later, each copy with its own readers.

Output: `stories.jsonl` (one story a line: its items, each with its source, published time
and samples `[time, views]`) and `meta.json` (seed, period, sources).
"""

from __future__ import annotations

import argparse
import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 11, 2, tzinfo=UTC)
PUBLISH_DAYS = 7  # stories are published over these days
RECORD_DAYS = 8  # samples go on one more day, so every story has its t+24h
STEP_MINUTES = 15  # resolution of the simulated audience


@dataclass(frozen=True)
class SourceModel:
    id: str
    scale: float  # views of a typical story after a few days
    per_day: float  # stories a day
    poll_hours: float  # 0: no view counts
    republished_by: str = ""  # another source that republishes some of its stories
    republish_share: float = 0.0


SOURCES = (
    SourceModel("beritajakarta-terkini", 3000, 14, 2, "jakarta-go-id", 0.10),
    SourceModel("jakarta-go-id", 900, 6, 3),
    SourceModel("kalselprov-berita", 250, 4, 4, "mc-kotabaru", 0.15),
    SourceModel("mc-kotabaru", 80, 3, 4),
    SourceModel("kuningankab-rss", 30, 2, 6),
    SourceModel("setkab-berita", 0, 5, 0, "jakarta-go-id", 0.12),
    SourceModel("bnpb-berita", 0, 2, 0),
)
BY_ID = {s.id: s for s in SOURCES}


def daily_cycle(at: datetime) -> float:
    """Relative traffic by hour of day in WIB (UTC+7); averages about 1."""
    hour = (at.hour + 7) % 24 + at.minute / 60
    if hour < 5:
        return 0.15
    if hour < 6:
        return 0.5
    if hour < 10:
        return 1.6
    if hour < 18:
        return 1.1
    if hour < 22:
        return 1.4
    return 0.5


@dataclass
class Audience:
    """Readers of one copy of a story: waves of exponentially decaying attention."""

    published: datetime
    waves: list[tuple[float, float, float]]  # (start age h, total readers, lifetime h)

    def curve(self, end: datetime) -> list[float]:
        """Cumulative readers at each STEP from publication to `end`."""
        steps = max(int((end - self.published).total_seconds() // (STEP_MINUTES * 60)), 0)
        out, total, dt = [], 0.0, STEP_MINUTES / 60
        for n in range(steps + 1):
            age = n * dt
            rate = sum(size / life * math.exp(-(age - begin) / life)
                       for begin, size, life in self.waves if age >= begin)
            total += rate * dt * daily_cycle(self.published + timedelta(hours=age))
            out.append(total)
        return out


def publish_time(rng: random.Random, day: int) -> datetime:
    """Working hours, WIB: 07-20 (00-13 UTC), a little more in the morning."""
    hour = min(rng.triangular(0, 13, 3), 12.99)
    return START + timedelta(days=day, hours=hour, minutes=rng.randrange(60))


def generate(seed: int) -> tuple[list[dict[str, object]], dict[str, object]]:
    rng = random.Random(seed)
    end = START + timedelta(days=RECORD_DAYS)
    copies: list[tuple[str, SourceModel, Audience]] = []  # (story id, source, audience)
    n_story = 0
    for day in range(PUBLISH_DAYS):
        for source in SOURCES:
            count = int(source.per_day + rng.uniform(-0.5, 0.5) * source.per_day * 0.6 + 0.5)
            for _ in range(max(count, 0)):
                n_story += 1
                story_id = f"story-{n_story:04d}"
                appeal = rng.lognormvariate(0, 0.9)
                if rng.random() < 0.03:
                    appeal *= rng.uniform(15, 50)
                life = rng.lognormvariate(math.log(16), 0.6)
                second = ((rng.uniform(20, 72), rng.uniform(0.5, 2.0), 10.0)
                          if rng.random() < 0.06 else None)
                published = publish_time(rng, day)
                targets = [(source, published)]
                if source.republished_by and rng.random() < source.republish_share:
                    targets.append((BY_ID[source.republished_by],
                                    published + timedelta(hours=rng.uniform(1, 6))))
                for model, at in targets:
                    size = model.scale * appeal * rng.lognormvariate(0, 0.4)
                    waves = [(0.0, size, life)]
                    if second:
                        waves.append((second[0], size * second[1], second[2]))
                    copies.append((story_id, model, Audience(at, waves)))
    stories: dict[str, list[dict[str, object]]] = {}
    polls = {s.id: poll_times(rng, s, end) for s in SOURCES if s.poll_hours}
    for n_item, (story_id, model, audience) in enumerate(copies, 1):
        samples: list[tuple[str, int]] = []
        if model.poll_hours:
            curve = audience.curve(end)
            shown = 0
            for at in polls[model.id]:
                if at < audience.published:
                    continue
                step = int((at - audience.published).total_seconds() // (STEP_MINUTES * 60))
                true = curve[min(step, len(curve) - 1)]
                shown = max(shown, int(true * rng.uniform(0.97, 1.03)))
                samples.append((at.strftime("%Y-%m-%dT%H:%MZ"), shown))
        stories.setdefault(story_id, []).append({
            "id": n_item, "source": model.id,
            "published": audience.published.strftime("%Y-%m-%dT%H:%MZ"),
            "samples": samples})
    lines = [{"id": sid, "items": items} for sid, items in stories.items()]
    meta: dict[str, object] = {
        "seed": seed, "start": START.isoformat(), "end": end.isoformat(),
        "generator": "bench/rank_data.py",
        "sources": [{"id": s.id, "typical_views": s.scale, "stories_per_day": s.per_day,
                     "poll_hours": s.poll_hours or None} for s in SOURCES]}
    return lines, meta


def poll_times(rng: random.Random, source: SourceModel, end: datetime) -> list[datetime]:
    at, out = START + timedelta(minutes=rng.randrange(60)), []
    while at < end:
        if rng.random() >= 0.03:  # a failed poll stores nothing
            out.append(at.replace(second=0, microsecond=0))
        at += timedelta(hours=source.poll_hours * rng.uniform(0.8, 1.2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "rank")
    args = parser.parse_args()
    lines, meta = generate(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "stories.jsonl").open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line, separators=(",", ":")) + "\n")
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    items = sum(len(x["items"]) for x in lines)  # type: ignore[arg-type]
    print(f"{len(lines)} stories, {items} items -> {args.out}")


if __name__ == "__main__":
    main()
