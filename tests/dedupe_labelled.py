"""The labelled pair set for deduplication (tests/data/dedupe/*.jsonl) and its evaluation
through the real store: each pair's two items are stored, as two sources, in a fresh SQLite
database, and the pair counts as grouped when they end up in one story. So the measure covers
the index lookup (blocking keys, day window) as well as `dedupe.compare`.

Used by tests/test_dedupe_quality.py (thresholds) and bench/dedupe_eval.py (the report).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from aggregator import dedupe
from aggregator.normalize.keys import content_hash
from aggregator.store import Store
from aggregator.types import DedupeSettings, Item

DATA = Path(__file__).resolve().parent / "data" / "dedupe"


@dataclass(frozen=True)
class Pair:
    id: str
    label: bool  # True: the same story
    kind: str
    a: dict[str, Any]
    b: dict[str, Any]

    @property
    def split(self) -> str:
        """A fixed half of the set for tuning ("dev"); the other half is held out ("test")."""
        return "dev" if zlib.crc32(self.id.encode()) % 2 == 0 else "test"


def load_pairs() -> list[Pair]:
    pairs = []
    for path in sorted(DATA.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                d = json.loads(line)
                pairs.append(Pair(d["id"], bool(d["label"]), d["kind"], d["a"], d["b"]))
    return pairs


def _item(d: dict[str, Any], source: str, n: int) -> Item:
    text = d.get("text") or ""
    content = "".join(f"<p>{escape(p)}</p>" for p in text.split("\n") if p.strip())
    published = datetime.fromisoformat(d["published"]).astimezone(UTC)
    return Item(source_id=source, key=f"link:{d['link']}#{n}", link=d["link"],
                title=d["title"], summary="", content=content, author=None,
                published=published, updated=None, dated_by="source", views=None,
                categories=(), image=None, content_hash=content_hash(d["title"], content))


def word_counts(pairs: list[Pair]) -> dict[str, int]:
    """How many items of the whole set have each title or lede word: the word counts a store
    holding such news would have (they pick the rare words an item is indexed under)."""
    counts: dict[str, int] = {}
    for pair in pairs:
        for d in (pair.a, pair.b):
            for word in dedupe.fingerprint(d["title"], d.get("text") or "").key_words:
                counts[word] = counts.get(word, 0) + 1
    return counts


def grouped(pair: Pair, settings: DedupeSettings, counts: dict[str, int] | None = None) -> bool:
    """Store a, then b (as two sources) in a fresh database that already has `counts`: are
    they one story?"""
    store = Store(":memory:")
    try:
        store.configure_dedupe(settings, ())
        if counts:  # the counts of the rest of the set: this pair's own words do not count
            own: dict[str, int] = {}
            for d in (pair.a, pair.b):
                for word in dedupe.fingerprint(d["title"], d.get("text") or "").key_words:
                    own[word] = own.get(word, 0) + 1
            store.db.conn.executemany(
                "INSERT INTO dedupe_words (word, n) VALUES (?, ?)",
                [(w, n - own.get(w, 0)) for w, n in sorted(counts.items())
                 if n > own.get(w, 0)])
        now = datetime(2026, 11, 1, tzinfo=UTC)
        source_a = pair.a.get("source") or "a"
        source_b = pair.b.get("source") or "b"
        if source_b == source_a:
            source_b += "-2"
        first, second = sorted([(pair.a, source_a, 0), (pair.b, source_b, 1)],
                               key=lambda t: t[0]["published"])
        for d, source, n in (first, second):
            store.ingest(source, [(_item(d, source, n), d.get("agency") or "x", 1)], now)
        stories = {r["story_id"] for r in store._rows("SELECT story_id FROM items")}
        return len(stories) == 1
    finally:
        store.close()


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, pair: Pair, predicted: bool) -> None:
        if pair.label and predicted:
            self.tp += 1
        elif pair.label:
            self.fn += 1
            self.errors.append(f"missed  {pair.id} ({pair.kind})")
        elif predicted:
            self.fp += 1
            self.errors.append(f"wrongly grouped {pair.id} ({pair.kind})")
        else:
            self.tn += 1

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def evaluate(pairs: list[Pair], settings: DedupeSettings | None = None
             ) -> tuple[Score, dict[str, Score]]:
    """The overall score, and scores per half ("dev", "test") and per label and kind."""
    settings = settings or DedupeSettings()
    total = Score()
    parts: dict[str, Score] = {}
    counts = word_counts(pairs)
    for pair in pairs:
        predicted = grouped(pair, settings, counts)
        total.add(pair, predicted)
        for key in (pair.split, f"{'dup' if pair.label else 'distinct'}:{pair.kind}"):
            parts.setdefault(key, Score()).add(pair, predicted)
    return total, parts
