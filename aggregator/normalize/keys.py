"""Stable identities: an item's key within its source, its public id, a story's public id."""

from __future__ import annotations

import functools
import hashlib
import uuid
from datetime import datetime

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


def _uuid_text(bits: int) -> str:
    """`str(uuid.UUID(int=bits))` without making the object (two per stored item)."""
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_NAMESPACE_BYTES = _NAMESPACE.bytes


def item_uid(source_id: str, key: str) -> str:
    """The public, never-changing id of an item (a UUID derived from source id and key):
    `uuid.uuid5(_NAMESPACE, ...)`, worked out directly."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + f"item\n{source_id}\n{key}".encode()).digest()
    bits = int.from_bytes(digest[:16])
    bits = bits & ~(0xF << 76) | 0x5 << 76  # version 5
    bits = bits & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    return _uuid_text(bits)


@functools.lru_cache(maxsize=64)
def _minute(stored_time: str) -> int:
    """Minutes since the epoch of a stored time text (a batch's new stories share one)."""
    return int(datetime.fromisoformat(stored_time).timestamp()) // 60


def story_uid(first_item_uid: str, first_seen: str) -> str:
    """The public id of a story: a UUID (version 8) whose first 32 bits are the minute its first
    item was stored (`first_seen`, the stored time text) and whose other bits derive from that
    item's uid. Stories made together sort together, so the indexes over story ids take new
    ids at their end instead of on a random page each (at a million items that was a page
    written per index per item). Derived from what never changes about the first item, so a
    split (`store/stories.py`) can tell a story's own first item and make an item's own id."""
    minute = _minute(first_seen)
    digest = hashlib.sha1(f"story\n{first_item_uid}".encode()).digest()
    bits = (minute & 0xFFFFFFFF) << 96 | int.from_bytes(digest[:12])
    bits = bits & ~(0xF << 76) | 0x8 << 76  # version 8
    bits = bits & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    return _uuid_text(bits)


def legacy_story_uid(first_item_uid: str) -> str:
    """Story ids made before `story_uid` was time-ordered (stories stored then keep them)."""
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
