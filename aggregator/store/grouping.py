"""Story assignment inside the store: finds candidates through the dedupe index, asks
`dedupe.compare`, and plans joins, new stories and merges. Part of the store adapter.

Story ids never change: a new item joins the oldest matching story (by the time its id was
first stored); when it matches several stories, the younger ones merge into the oldest and
their ids are recorded in `story_merges`, never published again.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aggregator import dedupe
from aggregator.normalize.keys import story_uid
from aggregator.store.index import KeyIndex, WordCounts
from aggregator.store.sql import chunks, parse_ts
from aggregator.types import DedupeSettings, Item, StoryOverride

EPOCH_DAY = datetime(1970, 1, 1, tzinfo=UTC)
HOT_BUCKET = 50  # items under one key within a batch's days: more, and the key is ignored
_CACHE_SIZE = 3_000  # fingerprints of recent items (the likely candidates), about 4 KB each


def day_number(when: datetime) -> int:
    return (when.astimezone(UTC) - EPOCH_DAY).days


@dataclass
class Planned:
    """The story of one new item and why."""

    story_id: str
    method: str  # first, link, title, near
    matched: int | None = None  # stored item id
    matched_index: int | None = None  # or an earlier item of the same batch
    details: str = ""


@dataclass
class Plan:
    items: list[Planned] = field(default_factory=list)
    new_stories: dict[str, int] = field(default_factory=dict)  # story -> first batch index
    merges: list[tuple[str, str, str]] = field(default_factory=list)  # (from, into, reason)
    touched: set[str] = field(default_factory=set)  # stored stories that gained items

    def final(self, story_id: str) -> str:
        moved = {src: dst for src, dst, _ in self.merges}
        while story_id in moved:
            story_id = moved[story_id]
        return story_id


@dataclass(frozen=True)
class _Stored:
    item_id: int
    source_id: str
    published: datetime
    story_id: str
    story_age: tuple[str, str]  # (created_at, id): smaller is older
    story_size: int  # items in the story


class SplitGuard:
    """The admin's `split` decisions: which stories must not absorb which items."""

    def __init__(self, conn: sqlite3.Connection, overrides: Sequence[StoryOverride]) -> None:
        self.ref_groups: dict[str, set[int]] = {}
        for g, o in enumerate(overrides):
            if o.action == "split":
                for ref in o.items:
                    self.ref_groups.setdefault(ref, set()).add(g)
        self.story_groups: dict[str, set[int]] = {}
        refs = sorted(self.ref_groups)
        for chunk in chunks(refs, 400):
            marks = ",".join("?" * len(chunk))
            for uid, link, story in conn.execute(
                    f"SELECT uid, link, story_id FROM items WHERE uid IN ({marks}) OR link IN "
                    f"({marks})", (*chunk, *chunk)):
                for ref in (uid, link):
                    self.story_groups.setdefault(story, set()).update(
                        self.ref_groups.get(ref, ()))

    def item_groups(self, uid: str, link: str | None) -> set[int]:
        return self.ref_groups.get(uid, set()) | self.ref_groups.get(link or "", set())

    def allows(self, groups: set[int], story: str) -> bool:
        return not groups & self.story_groups.get(story, set())

    def add(self, story: str, groups: set[int]) -> None:
        if groups:
            self.story_groups.setdefault(story, set()).update(groups)

    def merge(self, src: str, dst: str) -> None:
        self.add(dst, self.story_groups.pop(src, set()))


class Grouper:
    """Lives as long as the store; keeps recent items' fingerprints in memory."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.settings = DedupeSettings()
        self.overrides: tuple[StoryOverride, ...] = ()
        self._fps: OrderedDict[int, dedupe.Fingerprint] = OrderedDict()
        self.hot: set[int] = set()  # keys seen with too many items (see _by_keys)
        self.index = KeyIndex(conn)
        self.words = WordCounts(conn)

    def remember(self, item_id: int, fp: dedupe.Fingerprint) -> None:
        self._fps[item_id] = dedupe.compact(fp)
        if len(self._fps) > _CACHE_SIZE:
            self._fps.popitem(last=False)

    def _fingerprints(self, ids: Sequence[int]) -> dict[int, dedupe.Fingerprint]:
        """From memory, else as kept in the database (recent items), else computed from the
        stored text."""
        found = {i: fp for i in ids if (fp := self._fps.get(i)) is not None}
        missing = [i for i in ids if i not in found]
        if missing:
            for item_id, data in self.index.fingerprints(missing).items():
                try:
                    found[item_id] = fp = dedupe.unpack(data)
                except (ValueError, TypeError, EOFError):  # unreadable: made from the text
                    continue
                self.remember(item_id, fp)
            missing = [i for i in missing if i not in found]
        found.update(self._from_text(missing))
        return found

    def _from_text(self, ids: Sequence[int]) -> dict[int, dedupe.Fingerprint]:
        """Fingerprints made from the stored text, remembered, and kept for the next process
        when the item is recent (its kept one was dropped by an upgrade)."""
        found: dict[int, dedupe.Fingerprint] = {}
        if not ids:
            return found
        made: list[tuple[int, int, bytes]] = []
        horizon = self.index.horizon()
        for chunk in chunks(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            for item_id, title, summary, content, published in self.conn.execute(
                    f"SELECT id, title, summary, content, published FROM items "
                    f"WHERE id IN ({marks})", chunk):
                found[item_id] = fp = dedupe.item_fingerprint(title, summary, content)
                self.remember(item_id, fp)
                if (day := day_number(parse_ts(published))) >= horizon:  # else not kept
                    made.append((item_id, day, dedupe.pack(fp)))
        self.index.keep(made)
        return found

    def fill_fingerprints(self) -> int:
        """Make and keep the fingerprints the recent items lack (otherwise each is made from
        its text when it is first a candidate, by every process until it is kept)."""
        missing = self.index.without_fingerprint()
        self._from_text(missing)
        return len(missing)

    def _stored(self, ids: Sequence[int]) -> dict[int, _Stored]:
        found: dict[int, _Stored] = {}
        for chunk in chunks(sorted(set(ids)), 500):
            marks = ",".join("?" * len(chunk))
            for item_id, source, published, story, created, size in self.conn.execute(
                    f"SELECT i.id, i.source_id, i.published, i.story_id, s.created_at, "
                    f"(SELECT COUNT(*) FROM items c WHERE c.story_id = i.story_id) "
                    f"FROM items i JOIN stories s ON s.id = i.story_id WHERE i.id IN ({marks})",
                    chunk):
                found[item_id] = _Stored(item_id, source, parse_ts(published), story,
                                         (created, story), size)
        return found

    def _by_link(self, links: Sequence[str]) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for chunk in chunks(sorted(set(links)), 500):
            marks = ",".join("?" * len(chunk))
            for link, item_id in self.conn.execute(
                    f"SELECT link, id FROM items WHERE link IN ({marks})", chunk):
                found.setdefault(link, []).append(item_id)
        return found

    def _by_keys(self, keys: Sequence[int], days: tuple[int, int],
                 older: dict[int, set[int]] | None) -> dict[int, list[tuple[int, int]]]:
        """key -> [(day, item id)] of the items filed under it within `days` (of the days
        before the recent ones, those in `older` with their keys). A key with more than
        `HOT_BUCKET` items there is not telling anything: it is dropped, and from then on
        neither asked nor filed by this process (synthetic or templated feeds, a boilerplate
        sentence every item of a portal carries)."""
        hot = self.hot
        if older is not None:
            older = {day: keys - hot for day, keys in older.items()}
        found = self.index.lookup(set(keys) - hot, *days, older=older)
        for key in [k for k, rows in found.items() if len(rows) > HOT_BUCKET]:
            self.hot.add(key)
            del found[key]
        return found

    def _size(self, story: str, sizes: dict[str, int], plan: Plan) -> int:
        """Items in a story, stored and planned so far in this batch (`sizes` starts with the
        candidates' stories, counted with them: a query each cost 1.5% of ingesting)."""
        if story not in sizes:
            sizes[story] = 0 if story in plan.new_stories else self.conn.execute(
                "SELECT COUNT(*) FROM items WHERE story_id=?", (story,)).fetchone()[0]
        return sizes[story]

    def plan(self, scope: str, entries: Sequence[Item], uids: Sequence[str],
             fps: Sequence[dedupe.Fingerprint], keys: Sequence[list[int]],
             index_keys: Sequence[dedupe.IndexKeys], at: str) -> Plan:
        """Decide the story of each new item of one batch (in order). `keys` are the items'
        filing keys (without hot ones)."""
        queries = [ik.query for ik in index_keys]
        settings = self.settings
        window = timedelta(hours=settings.window_hours)
        days = (day_number(min(i.published for i in entries) - window),
                day_number(max(i.published for i in entries) + window))
        by_link = self._by_link([i.link for i in entries if i.link])
        reach = int(settings.window_hours // 24) + 1
        older: dict[int, set[int]] | None = None  # days before the recent ones -> keys
        if days[0] < (horizon := self.index.horizon()):
            older = {}
            for n, item in enumerate(entries):
                day = day_number(item.published)
                for d in range(day - reach, min(day + reach + 1, horizon)):
                    older.setdefault(d, set()).update(queries[n])
        by_key = self._by_keys([k for ks in queries for k in ks], days, older)
        near: list[list[int]] = []  # per item: the stored candidates within its window
        for n, item in enumerate(entries):
            day = day_number(item.published)
            # a shared title or MinHash band is a candidate; rare words only when two meet
            strong = index_keys[n].strong
            hits: Counter[int] = Counter()
            for k in queries[n]:
                weight = 2 if k in strong else 1
                for d, i in by_key.get(k, ()):
                    if abs(d - day) <= reach:
                        hits[i] += weight
            near.append([i for i, w in hits.most_common(dedupe.MAX_CANDIDATES)
                         if w >= dedupe.MIN_KEY_WEIGHT])
        ids = {i for v in by_link.values() for i in v} | {i for c in near for i in c}
        stored = self._stored(sorted(ids))
        guard = SplitGuard(self.conn, self.overrides) if any(
            o.action == "split" for o in self.overrides) else None
        plan = Plan()
        sizes = {s.story_id: s.story_size for s in stored.values()}
        ages: dict[str, tuple[str, str]] = {s.story_id: s.story_age for s in stored.values()}
        batch_links: dict[str, list[int]] = {}
        batch_keys: dict[int, list[int]] = {}
        for n, item in enumerate(entries):
            probe = dedupe.Probe(0, item.source_id, item.published, fps[n])
            matches: list[tuple[str, Planned]] = []  # (story, how)
            for item_id in by_link.get(item.link or "", []) if item.link else []:
                if (s := stored.get(item_id)) is not None:
                    matches.append((s.story_id, Planned(s.story_id, "link", item_id)))
            for m in batch_links.get(item.link or "", []) if item.link else []:
                matches.append((plan.items[m].story_id, Planned("", "link", matched_index=m)))
            linked = {story for story, _ in matches}
            # only what can match is fingerprinted: another source, within the window, and
            # one item per story is enough once the story matched
            # a full story takes nothing more by similarity: not worth comparing
            cands = [i for i in near[n] if (s := stored.get(i)) is not None
                     and s.source_id != item.source_id and s.story_id not in linked
                     and abs(s.published - item.published) <= window
                     and self._size(plan.final(s.story_id), sizes, plan)
                     < dedupe.MAX_STORY_ITEMS]
            fp_of = self._fingerprints(cands) if cands else {}
            matched: set[str] = set()
            for item_id in cands:
                s = stored[item_id]
                if s.story_id in matched:
                    continue
                v = dedupe.compare(probe, dedupe.Probe(item_id, s.source_id, s.published,
                                                       fp_of[item_id]), settings, figures=False)
                if v.same:
                    matched.add(s.story_id)
                    matches.append((s.story_id, Planned(s.story_id, v.method, item_id,
                                                        details=_details(v))))
            for m in dict.fromkeys(m for k in queries[n] for m in batch_keys.get(k, [])):
                other = entries[m]
                v = dedupe.compare(probe, dedupe.Probe(0, other.source_id, other.published,
                                                       fps[m]), settings, figures=False)
                if v.same:
                    matches.append((plan.items[m].story_id,
                                    Planned("", v.method, matched_index=m, details=_details(v))))
            groups = guard.item_groups(uids[n], item.link) if guard else set()
            linked_only = {plan.final(story) for story, p in matches if p.method == "link"}
            stories = sorted({plan.final(story) for story, _ in matches},
                             key=lambda sid: ages.get(sid, (at, sid)))
            # a story that similarity keeps growing past MAX_STORY_ITEMS is a template
            # ("X Gelar Y Jelang Akhir Tahun"), not one release: it takes no more by similarity
            stories = [sid for sid in stories if sid in linked_only
                       or self._size(sid, sizes, plan) < dedupe.MAX_STORY_ITEMS]
            if guard:
                stories = [sid for sid in stories if guard.allows(groups, sid)]
            if not stories:
                story = story_uid(uids[n], at)
                plan.new_stories[story] = n
                ages.setdefault(story, (at + f"#{n:06d}", story))
                plan.items.append(Planned(story, "first"))
            else:
                story = stories[0]
                how = next(p for sid, p in matches if plan.final(sid) == story)
                plan.items.append(Planned(story, how.method, how.matched, how.matched_index,
                                          how.details))
                if story not in plan.new_stories:
                    plan.touched.add(story)
                for younger in stories[1:]:
                    if guard and not guard.allows(guard.story_groups.get(younger, set()), story):
                        continue
                    if self._size(story, sizes, plan) + self._size(younger, sizes, plan) \
                            > dedupe.MAX_STORY_ITEMS:
                        continue
                    sizes[story] += sizes[younger]
                    plan.merges.append((younger, story, f"item {uids[n]} matched both"))
                    if guard:
                        guard.merge(younger, story)
            sizes[story] = self._size(story, sizes, plan) + 1
            if guard:
                guard.add(story, groups)
            if item.link:
                batch_links.setdefault(item.link, []).append(n)
            for k in keys[n]:
                batch_keys.setdefault(k, []).append(n)
        for planned in plan.items:
            planned.story_id = plan.final(planned.story_id)
        return plan


def _details(v: dedupe.Verdict) -> str:
    """The figures of a match, as JSON (`story_links.details`)."""
    title, hours = round(v.title_similarity, 3), round(v.hours_apart, 1)
    text = None if v.text_similarity is None else round(v.text_similarity, 3)
    if not (math.isfinite(title) and math.isfinite(hours)
            and (text is None or math.isfinite(text))):
        return json.dumps({"title": title, "text": text, "hours": hours})
    # what json.dumps writes for finite floats (their repr), without its encoder: that was
    # 2% of ingesting
    return f'{{"title": {title!r}, "text": {"null" if text is None else repr(text)}, ' \
        f'"hours": {hours!r}}}'


