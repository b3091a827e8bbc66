"""Property tests: URL canonicalization is idempotent and strips what it must; item keys and
public ids are stable and never depend on views or fetch time."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.normalize import normalize_item
from aggregator.normalize.keys import _NAMESPACE as NAMESPACE
from aggregator.normalize.keys import item_uid, story_uid
from aggregator.normalize.text import plain_text
from aggregator.normalize.urls import TRACKING_PARAMS, canonical_url
from aggregator.store.sql import parse_ts, ts
from aggregator.types import RawItem

segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~%", min_size=0, max_size=8)
param_name = st.one_of(
    st.sampled_from(["id", "p", "page", "q", "utm_source", "utm_medium", "UTM_Campaign",
                     "fbclid", "gclid", "ref", "amp"]),
    st.text(alphabet="abcdefghij_", min_size=1, max_size=6),
)
param = st.tuples(param_name, st.text(alphabet="abc123%=+ ", max_size=5))
urls = st.builds(
    lambda scheme, host, port, path, params, frag: (
        f"{scheme}://{host}{port}/{'/'.join(path)}"
        + ("?" + "&".join(f"{k}={v}" for k, v in params) if params else "")
        + (f"#{frag}" if frag else "")
    ),
    st.sampled_from(["http", "https", "HTTP", "Https"]),
    st.sampled_from(["example.go.id", "WWW.Jakarta.GO.ID", "beritajakarta.id.", "127.0.0.1"]),
    st.sampled_from(["", ":80", ":443", ":8080"]),
    st.lists(segment, max_size=4),
    st.lists(param, max_size=4),
    st.text(alphabet="abc", max_size=3),
)


@given(urls)
@settings(max_examples=500)
def test_canonical_url_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert once is not None
    assert canonical_url(once) == once


@given(urls)
@settings(max_examples=500)
def test_canonical_url_strips_tracking_fragment_default_port_and_case(url: str) -> None:
    result = canonical_url(url)
    assert result is not None
    parts = urlsplit(result)
    assert parts.scheme in ("http", "https")
    assert parts.netloc == parts.netloc.lower()
    assert not parts.fragment and "#" not in result
    default = {"http": 80, "https": 443}[parts.scheme]
    assert parts.port != default
    for pair in filter(None, parts.query.split("&")):
        name = pair.split("=", 1)[0].lower()
        assert not name.startswith("utm_") and name not in TRACKING_PARAMS


@given(urls)
def test_relative_links_resolve_against_the_page(url: str) -> None:
    base = "https://portal.go.id/berita/index.html"
    relative = "/" + urlsplit(url)._replace(scheme="", netloc="").geturl().lstrip("/")
    result = canonical_url(relative, base)
    assert result is not None and result.startswith("https://portal.go.id/")
    assert canonical_url(result) == result


def test_canonical_url_examples() -> None:
    assert canonical_url("HTTPS://WWW.Example.GO.ID:443/berita/1?utm_source=fb&id=3#top") == \
        "https://www.example.go.id/berita/1?id=3"
    assert canonical_url("/read/19952/x?fbclid=abc", "http://m.beritajakarta.id:80/a/") == \
        "http://m.beritajakarta.id/read/19952/x"
    assert canonical_url("javascript:alert(1)") is None
    assert canonical_url("mailto:humas@jakarta.go.id") is None
    assert canonical_url("http://a.go.id/x/../y/./z") == "http://a.go.id/y/z"


# a title with something to show once markup is stripped ("<?" is none: such an item, without a
# link either, is dropped as unusable, which test_unusable_items_are_dropped covers)
titles = st.text(min_size=1, max_size=60).filter(lambda t: plain_text(t).strip())
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Jakarta")


@given(
    guid=st.one_of(st.none(), st.text(min_size=1, max_size=30)),
    link=st.one_of(st.none(), urls),
    title=titles,
    date=st.one_of(st.none(), st.sampled_from(
        ["Tue, 25 Jun 2024 10:00:00 +0700", "2024-06-25 10:00:00", "Kamis, 06 Februari 2025",
         "2 jam yang lalu", "kemarin"])),
    views=st.one_of(st.none(), st.integers(0, 10**7).map(str)),
    views2=st.one_of(st.none(), st.integers(0, 10**7).map(str)),
    later=st.integers(0, 10**6),
)
@settings(max_examples=300)
def test_item_key_is_stable_across_polls_and_view_counts(
    guid: str | None, link: str | None, title: str, date: str | None, views: str | None,
    views2: str | None, later: int,
) -> None:
    raw = RawItem(guid=guid, link=link, title=title, published=date, views=views)
    first, _ = normalize_item(raw, "src", "https://portal.go.id/", ZONE, NOW)
    again, _ = normalize_item(
        RawItem(guid=guid, link=link, title=title, published=date, views=views2),
        "src", "https://portal.go.id/", ZONE, NOW + timedelta(seconds=later))
    assert first is not None and again is not None
    assert first.key == again.key
    assert first.content_hash == again.content_hash
    assert item_uid("src", first.key) == item_uid("src", again.key)


def test_unusable_items_are_dropped() -> None:
    """No visible title and no link: nothing a reader could show or follow."""
    for title in ("<?", "<b></b>", "   "):
        item, _ = normalize_item(RawItem(guid="g-1", title=title), "src",
                                 "https://portal.go.id/", ZONE, NOW)
        assert item is None, title


def test_item_key_prefers_guid_then_link_then_hash() -> None:
    def key(**kw: object) -> str:
        item, _ = normalize_item(RawItem(**kw), "s", "https://p.go.id/", ZONE, NOW)  # type: ignore[arg-type]
        assert item is not None
        return item.key

    assert key(guid="abc", link="https://p.go.id/1", title="T") == "guid:abc"
    assert key(link="https://p.go.id/1?utm_source=x", title="T") == "link:https://p.go.id/1"
    hashed = key(title="Judul", published="2024-06-25 10:00:00")
    assert hashed.startswith("hash:")
    assert hashed != key(title="Judul", published="2024-06-26 10:00:00")
    # a relative date changes from poll to poll, so it is not part of the hash
    assert key(title="Judul", published="2 jam yang lalu") == key(title="Judul",
                                                                  published="3 jam yang lalu")


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9000, 1, 1),
                    timezones=st.timezones()))
def test_stored_times_keep_their_format(value: datetime) -> None:
    """`ts` (the stored form of every time, compared as text in SQL) is the strftime form, and
    reads back as the same instant."""
    utc = value.astimezone(UTC)
    assert ts(value) == utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert parse_ts(ts(value)) == utc


_UTF8 = st.characters(blacklist_categories=("Cs",))  # no lone surrogates


@settings(max_examples=300, deadline=None)
@given(st.text(_UTF8, max_size=40), st.text(_UTF8, max_size=200), st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_ids_are_the_uuids_they_always_were(source: str, key: str, first_seen: datetime
                                             ) -> None:
    """Item and story ids, worked out without the uuid module's objects, are the text of the
    UUIDs it makes: an id published once never changes with the implementation."""
    uid = item_uid(source, key)
    assert uid == str(uuid.uuid5(NAMESPACE, f"item\n{source}\n{key}"))
    story = story_uid(uid, ts(first_seen))
    minute = int(first_seen.timestamp()) // 60
    digest = hashlib.sha1(f"story\n{uid}".encode()).digest()
    as_made = uuid.UUID(int=(minute & 0xFFFFFFFF) << 96 | int.from_bytes(digest[:12]))
    fields = list(as_made.fields)  # version 8 and the RFC 4122 variant
    fields[2] = fields[2] & 0x0FFF | 0x8000
    fields[3] = fields[3] & 0x3F | 0x80
    assert story == str(uuid.UUID(fields=tuple(fields)))  # type: ignore[arg-type]
    assert uuid.UUID(story).version == 8 and uuid.UUID(uid).version == 5
