"""Admin decisions on stories ([[merge]] / [[split]] in the config) and the explanations of
`aggregator stories show --explain`. Part of the store adapter; `Store` delegates here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aggregator.normalize.keys import legacy_story_uid, story_uid
from aggregator.types import StoryOverride

if TYPE_CHECKING:
    from aggregator.store import Store


def apply_overrides(store: Store, overrides: Sequence[StoryOverride], at: str) -> list[str]:
    """Merges first, then splits (a split wins over a merge naming the same items). Call
    inside a transaction."""
    done: list[str] = []
    for o in overrides:
        if o.action == "merge":
            done.extend(_force_merge(store, o, at))
    for o in overrides:
        if o.action == "split":
            done.extend(_force_split(store, o, at))
    return done


def _resolve(store: Store, refs: Sequence[str]) -> list[dict[str, Any]]:
    marks = ",".join("?" * len(refs))
    return store._rows(f"SELECT id, uid, link, story_id, published, first_seen FROM items "
                       f"WHERE uid IN ({marks}) OR link IN ({marks}) ORDER BY published, id",
                       (*refs, *refs))


def _story_age(store: Store, story_id: str) -> tuple[str, str]:
    rows = store._rows("SELECT created_at FROM stories WHERE id=?", (story_id,))
    return (rows[0]["created_at"] if rows else "~", story_id)


def _force_merge(store: Store, o: StoryOverride, at: str) -> list[str]:
    ids = sorted({r["story_id"] for r in _resolve(store, o.items)},
                 key=lambda sid: _story_age(store, sid))
    for src in ids[1:]:
        store._merge_story(src, ids[0], f"config: merge ({o.note or o.file})", at)
        store.db.conn.execute(
            "UPDATE story_links SET method='merge (config)', details=? WHERE item_id IN "
            "(SELECT id FROM items WHERE story_id=?) AND method != 'first'",
            (o.note, ids[0]))
    if len(ids) > 1:
        store._refresh_story(ids[0])
        return [f"merged stories {', '.join(ids[1:])} into {ids[0]}"]
    return []


def _force_split(store: Store, o: StoryOverride, at: str) -> list[str]:
    """Of the listed items in one story, one stays: the item the story's id derives from (its
    first item), else the earliest listed. Every other leaves for a story of its own."""
    done: list[str] = []
    rows = _resolve(store, o.items)
    kept: dict[str, int] = {}
    for r in rows:  # the story's own first item, when it is listed
        if r["story_id"] in (story_uid(r["uid"], r["first_seen"]), legacy_story_uid(r["uid"])):
            kept[r["story_id"]] = r["id"]
    for r in rows:  # else the earliest
        kept.setdefault(r["story_id"], r["id"])
    execute = store.db.conn.execute
    for r in rows:
        if kept[r["story_id"]] == r["id"]:
            continue
        own = story_uid(r["uid"], r["first_seen"])
        execute("DELETE FROM story_merges WHERE from_id=?", (own,))
        execute("INSERT OR IGNORE INTO stories (id, lead_item, published, updated, "
                "created_at) VALUES (?, ?, ?, ?, ?)", (own, r["id"], r["published"],
                                                       r["published"], at))
        execute("UPDATE items SET story_id=? WHERE id=?", (own, r["id"]))
        execute("INSERT OR REPLACE INTO story_links (item_id, method, matched_item, "
                "details, at) VALUES (?, 'split (config)', NULL, ?, ?)",
                (r["id"], o.note, at))
        store._refresh_story(own)
        store._refresh_story(r["story_id"])
        done.append(f"split item {r['uid']} out of story {r['story_id']} into {own}")
    return done


def story_id_for(store: Store, ref: str) -> str | None:
    rows = store._rows("SELECT id FROM stories WHERE id=?", (ref,))
    if rows:
        return str(rows[0]["id"])
    rows = store._rows("SELECT into_id FROM story_merges WHERE from_id=?", (ref,))
    if rows:
        return str(rows[0]["into_id"])
    rows = _resolve(store, [ref])
    return str(rows[0]["story_id"]) if rows else None


def story_explain(store: Store, story_id: str) -> dict[str, Any]:
    links = {r["item_id"]: r for r in store._rows(
        "SELECT l.item_id, l.method, l.details, l.at, m.uid AS matched_uid "
        "FROM story_links l LEFT JOIN items m ON m.id = l.matched_item "
        "WHERE l.item_id IN (SELECT id FROM items WHERE story_id=?)", (story_id,))}
    merged = store._rows("SELECT from_id, at, reason FROM story_merges WHERE into_id=? "
                         "ORDER BY at", (story_id,))
    created = store._rows("SELECT created_at FROM stories WHERE id=?", (story_id,))
    return {"links": links, "merged": merged,
            "created_at": created[0]["created_at"] if created else None}
