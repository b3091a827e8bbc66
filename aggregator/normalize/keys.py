"""Stable identities: an item's key within its source, its public id, a story's public id."""

from __future__ import annotations

import hashlib
import uuid

_NAMESPACE = uuid.UUID("6f1c4a52-3b0e-4f4e-9d8a-7f1e2b9c5a10")


def item_key(guid: str | None, guid_unique: bool, link: str | None, title: str,
             date_text: str | None) -> str:
    """GUID when present and unique in the page, else the canonical link, else a hash of the
    title and the date as written. Never anything that changes by itself (views, fetch time)."""
    if guid and guid.strip() and guid_unique:
        return "guid:" + guid.strip()
    if link:
        return "link:" + link
    digest = hashlib.sha1(f"{title}\n{date_text or ''}".encode()).hexdigest()
    return "hash:" + digest


def item_uid(source_id: str, key: str) -> str:
    """The public, never-changing id of an item (a UUID derived from source id and key)."""
    return str(uuid.uuid5(_NAMESPACE, f"item\n{source_id}\n{key}"))


def story_uid(first_item_uid: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"story\n{first_item_uid}"))


def content_hash(*parts: str | tuple[str, ...] | None) -> str:
    """A fingerprint of what a source said about an item: None, a string and a tuple of
    strings are tagged differently and every part is closed by a marker, so moving text from
    one field to the next changes the fingerprint."""
    h = hashlib.sha1()
    for part in parts:
        if part is None:
            h.update(b"\x01N")
        elif isinstance(part, tuple):
            h.update(b"\x01T")
            h.update("\x00".join(part).encode("utf-8", "surrogatepass"))
        else:
            h.update(b"\x01S")
            h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00\x02")
    return h.hexdigest()
