"""Unit and property tests of the dedupe decisions (pure) and of story bookkeeping in a real
SQLite store: merges, chains of merges, stories stored before the index existed, views."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aggregator import dedupe
from aggregator.normalize.keys import content_hash
from aggregator.store import Store
from aggregator.types import DedupeSettings, Item, StoredItem, Story
from tests.dedupe_labelled import _item as labelled_item
from tests.dedupe_labelled import load_pairs

T0 = datetime(2026, 3, 16, 2, 0, tzinfo=UTC)
S = DedupeSettings()
_VOCABULARY = ("warga petugas kelurahan jalan banjir kebakaran vaksinasi pasar sekolah puskesmas "
         "bantuan sosial posyandu sampah taman jembatan lansia anak bazar pelatihan "
         "rumah mobil pompa genangan listrik korsleting unit relawan camat lurah tambora "
         "cengkareng menteng kemayoran gambir senen grogol cilincing koja")
WORDS = _VOCABULARY.split(" ")
TEXT = ("Jakarta, Senin (16/3). Petugas Suku Dinas Penanggulangan Kebakaran Jakarta Barat "
        "memadamkan kebakaran rumah tinggal di Jalan Angke Indah, Kelurahan Angke, Kecamatan "
        "Tambora. Sebanyak 12 unit mobil pemadam dikerahkan dan api padam dalam satu jam. "
        "Tidak ada korban jiwa; kebakaran diduga akibat korsleting listrik di lantai dua.")


def probe(title: str, text: str = "", source: str = "a", hours: float = 0.0) -> dedupe.Probe:
    return dedupe.Probe(0, source, T0 + timedelta(hours=hours), dedupe.fingerprint(title, text))


def test_agency_prefixes_case_and_punctuation_do_not_change_the_title_key() -> None:
    keys = {dedupe.fingerprint(t, "").title_key for t in (
        "Sudin Kominfotik Jakpus: Petugas Padamkan Kebakaran di Tambora",
        "Pemprov DKI - petugas padamkan kebakaran di Tambora!",
        "PETUGAS PADAMKAN KEBAKARAN DI TAMBORA")}
    assert len(keys) == 1 and keys != {""}


def test_places_dates_and_numbers_that_disagree_keep_events_apart() -> None:
    other_place = TEXT.replace("Angke Indah", "Daan Mogot").replace(
        "Kelurahan Angke, Kecamatan Tambora", "Kelurahan Kedaung, Kecamatan Cengkareng")
    cases = [
        (probe("Petugas Padamkan Kebakaran di Tambora"),
         probe("Petugas Padamkan Kebakaran di Cengkareng", source="b"), "place"),
        (probe("Petugas Padamkan Kebakaran di Mangga Besar XIII"),
         probe("Petugas Padamkan Kebakaran di Mangga Besar IX", source="b"), "place"),
        (probe("Damkar Jakut Padamkan Kebakaran Kapal di Muara Angke"),
         probe("Damkar Jakut Padamkan Kebakaran Kapal di Muara Baru", source="b"), "place"),
        (probe("Jadwal SIM Keliling Jakarta, Rabu 15 April 2026"),
         probe("Jadwal SIM Keliling Jakarta, Kamis 16 April 2026", source="b"), "number"),
        (probe("Vaksinasi Booster Dosis Kedua"),
         probe("Vaksinasi Booster Dosis Ketiga", source="b"), "number"),
        (probe("Kebakaran Rumah", TEXT),
         probe("Kebakaran Rumah", TEXT.replace("(16/3)", "(19/3)"), source="b"), "date"),
        (probe("Kebakaran Rumah Tinggal", TEXT),
         probe("Kebakaran Rumah Tinggal", other_place, source="b"), "place"),
    ]
    for a, b, why in cases:
        verdict = dedupe.compare(a, b, S)
        assert not verdict.same and verdict.conflict == why, (verdict, why)
    # the same facts written differently agree
    same = dedupe.compare(probe("Petugas Padamkan Kebakaran di Kelurahan Angke", TEXT),
                          probe("Kebakaran Rumah di Angke Dipadamkan 12 Unit Mobil",
                                TEXT.replace("Jakarta, Senin (16/3). ", ""), "b", 5), S)
    assert same.same and same.method == "near", same


def test_windows_and_sources() -> None:
    a = probe("Petugas Padamkan Kebakaran di Tambora", TEXT)
    assert dedupe.compare(a, probe("Petugas Padamkan Kebakaran di Tambora", TEXT, "b", 95),
                          S).same
    late = dedupe.compare(a, probe("Petugas Padamkan Kebakaran di Tambora", TEXT, "b", 97), S)
    assert not late.same and late.method == "window"
    # without text, titles must be close in time too
    t = probe("Petugas Padamkan Kebakaran di Tambora")
    assert dedupe.compare(t, probe("Petugas Padamkan Kebakaran di Tambora", "", "b", 47), S).same
    assert not dedupe.compare(t, probe("Petugas Padamkan Kebakaran di Tambora", "", "b", 49),
                              S).same
    # one source's two items are never grouped by similarity
    assert dedupe.compare(a, probe("Petugas Padamkan Kebakaran di Tambora", TEXT), S).method \
        == "source"


def test_recurring_title_with_different_text_is_two_stories() -> None:
    day1 = ("Layanan SIM keliling hari ini tersedia di Jalan Kramat Raya depan Pasar Senen, "
            "Taman Menteng, Mall Ciputra Grogol, Kantor Pos Fatmawati dan LTC Glodok mulai "
            "pukul 08.00 hingga 14.00 WIB untuk perpanjangan SIM A dan C.")
    day2 = ("Layanan SIM keliling hari ini tersedia di Jalan Pemuda Rawamangun, Kampus "
            "Trisakti, Mall Cijantung, Plaza Kalibata dan Pasar Minggu mulai pukul 08.00 "
            "hingga 14.00 WIB untuk perpanjangan SIM A dan C.")
    v = dedupe.compare(probe("Jadwal SIM Keliling Jakarta Hari Ini", day1),
                       probe("Jadwal SIM Keliling Jakarta Hari Ini", day2, "b", 24), S)
    assert not v.same, v


def test_a_schedule_listing_without_text_is_only_a_copy_when_published_close_by() -> None:
    """A schedule title ("Jadwal", "Lokasi", "Keliling") is reused for each day's event; a
    listing with no text cannot tell the days apart, so a day later it is another event,
    while a copy a few hours later is still the same story. Other titles are not affected."""
    text = ("Unit SIM keliling Polres Bogor hari ini melayani perpanjangan SIM A dan C di "
            "halaman Kantor Kecamatan Cibinong dan di depan Pasar Citeureup mulai pukul 08.00 "
            "hingga 12.00 WIB. Pemohon membawa KTP asli dan SIM lama yang masih berlaku.")
    title = "Lokasi SIM Keliling Kabupaten Bogor"
    article = probe(title, text)
    next_day = dedupe.compare(article, probe(title, "", "b", 24), S)
    assert not next_day.same and next_day.method == "recurring", next_day
    assert dedupe.compare(article, probe(title, "", "b", 3), S).same
    other = "Pemkab Bogor Resmikan Jembatan Cibinong"
    bridge = ("Bupati Bogor meresmikan jembatan baru di Kecamatan Cibinong yang menghubungkan "
              "dua desa. Jembatan sepanjang 40 meter itu dibangun dengan anggaran daerah dan "
              "bisa dilalui kendaraan roda empat mulai hari ini.")
    assert dedupe.compare(probe(other, bridge), probe(other, "", "b", 24), S).same


_title = st.lists(st.sampled_from(WORDS), min_size=3, max_size=9).map(" ".join)
_text = st.lists(st.sampled_from(WORDS), min_size=0, max_size=80).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(_title, _text, _title, _text, st.floats(0, 200))
def test_compare_is_symmetric(t1: str, x1: str, t2: str, x2: str, hours: float) -> None:
    a, b = probe(t1, x1, "a"), probe(t2, x2, "b", hours)
    assert dedupe.compare(a, b, S) == dedupe.compare(b, a, S)
    # a remembered (compact) fingerprint decides the same, on either side
    small = dedupe.Probe(b.item_id, b.source_id, b.published, dedupe.compact(b.fp))
    assert dedupe.compare(a, small, S) == dedupe.compare(a, b, S) == \
        dedupe.compare(small, a, S)


def _decision(v: dedupe.Verdict) -> tuple[object, ...]:
    return (v.same, v.method, v.conflict, v.text_similarity, v.hours_apart)


@settings(max_examples=200, deadline=None)
@given(_title, _text, _title, _text, st.floats(0, 200), st.booleans())
def test_planning_without_figures_decides_the_same(t1: str, x1: str, t2: str, x2: str,
                                                   hours: float, copy: bool) -> None:
    """The store's planning skips the title similarity of a pair it can reject on text
    alone (`figures=False`): the decision is the one made with every figure, and a pair
    that groups still has them all (they are stored with the story link)."""
    if copy:  # an edited copy: most of the text, so that the pairs that group are tested too
        t2, x2 = t1 + " " + t2.split(" ")[0], x1 + " " + x2[:40]
    a, b = probe(t1, x1, "a"), probe(t2, x2, "b", hours)
    full, lean = dedupe.compare(a, b, S), dedupe.compare(a, b, S, figures=False)
    assert _decision(lean) == _decision(full)
    if lean.same:
        assert lean == full
    else:
        assert lean.title_similarity == full.title_similarity or \
            math.isnan(lean.title_similarity)


def test_planning_without_figures_decides_the_same_on_the_labelled_pairs() -> None:
    decided: Counter[tuple[bool, bool]] = Counter()
    for pair in load_pairs():
        a, b = (dedupe.Probe(n, it.source_id, it.published,
                             dedupe.item_fingerprint(it.title, it.summary, it.content))
                for n, it in ((1, labelled_item(pair.a, "a", 1)),
                              (2, labelled_item(pair.b, "b", 2))))
        full, lean = dedupe.compare(a, b, S), dedupe.compare(a, b, S, figures=False)
        assert _decision(lean) == _decision(full), pair.id
        decided[(full.same, math.isnan(lean.title_similarity))] += 1
    assert decided[(True, False)] > 50 and decided[(False, True)] > 20  # both paths ran


@settings(max_examples=100, deadline=None)
@given(_title, _text, st.floats(0, 47))
def test_a_copy_in_the_window_is_the_same_story_and_shares_a_key(title: str, text: str,
                                                                hours: float) -> None:
    a, b = probe(title, text, "a"), probe(title, text, "b", hours)
    assume(len(a.fp.title_words) >= 2)  # a title of only stop or publisher words says nothing
    assert dedupe.compare(a, b, S).same
    assert set(dedupe.blocking_keys(a.fp)) & set(dedupe.blocking_keys(b.fp))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80), st.text(max_size=600), _title, _text)
def test_a_packed_fingerprint_is_the_same_fingerprint(t1: str, x1: str, t2: str,
                                                      x2: str) -> None:
    """What a parse worker sends the store (dedupe.pack) decides exactly as computed there."""
    for title, text in ((t1, x1), (t2, x2), (t2, TEXT + x2)):
        fp = dedupe.fingerprint(title, text)
        back = dedupe.unpack(dedupe.pack(fp))
        assert back == fp
        assert dedupe.blocking_keys(back) == dedupe.blocking_keys(fp)
        worked_out = ("key_words", "title_places", "text_places", "all_numbers", "title_words",
                      "title_grams", "title_tokens", "text_tokens", "text_content", "spaced",
                      "all_words")
        for name in worked_out:  # made again from what travelled: the same
            assert getattr(back, name) == getattr(fp, name), name
            assert getattr(dedupe.compact(fp), name) == getattr(fp, name), name


@settings(max_examples=200, deadline=None)
@given(_title, st.one_of(_text, st.text(max_size=300)),
       st.lists(st.one_of(st.sampled_from(WORDS), st.text(min_size=1, max_size=8).filter(
           lambda w: " " not in w)), max_size=4))
def test_a_word_test_on_the_spaced_text_is_a_test_on_the_item_s_words(
        title: str, text: str, asked: list[str]) -> None:
    """The place checks ask whether an item has a word by a substring test of its spaced
    title and text; that is the set test on its tokens, for any word without a space."""
    fp = dedupe.fingerprint(title, text)
    tokens = set(fp.title_tokens) | set(fp.text_tokens)
    for words in (asked, list(tokens)[:3], [*list(tokens)[:2], *asked[:1]]):
        assert dedupe._names_all(fp, words) == (set(words) <= tokens)
        assert dedupe._names_any(fp, words) == bool(set(words) & tokens)


def test_blocking_keys_are_the_same_in_every_process() -> None:
    """Keys are stored: Python's salted hash() must not leak into them."""
    code = ("from aggregator import dedupe; print(dedupe.blocking_keys(dedupe.fingerprint("
            f"{'Petugas Padamkan Kebakaran di Tambora'!r}, {TEXT!r})))")
    outs = set()
    for seed in ("1", "2", "random"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, check=True).stdout)
    assert len(outs) == 1 and outs.pop().count(",") >= 8


def test_blocking_keys_are_the_same_in_every_python_release() -> None:
    """Pinned: word-pair hashes use CPython's (unsalted) tuple-of-ints hash. Should a release
    change it, stored keys would stop meeting new ones until the recent days are re-filed."""
    assert dedupe.blocking_keys(dedupe.fingerprint("Petugas Padamkan Kebakaran di Tambora",
                                                   TEXT)) == [
        -4407250179292986252, -3356693049558130373, -1510835452601754989,
        -1495144858955587986, 359906088066203035, 1745977302850042148, 2451356463414420022,
        4368544810029220095, 4564314728286277760]


# --- the store ------------------------------------------------------------------------------

def item(source: str, link: str, title: str, text: str, hours: float = 0.0) -> Item:
    content = f"<p>{text}</p>" if text else ""
    return Item(source_id=source, key=f"link:{link}", link=link, title=title, summary="",
                content=content, author=None, published=T0 + timedelta(hours=hours),
                updated=None, dated_by="source", views=None, categories=(), image=None,
                content_hash=content_hash(title, content))


def story_of(store: Store, link: str) -> str:
    return str(store._rows("SELECT story_id FROM items WHERE link=?", (link,))[0]["story_id"])


def test_merge_chains_point_at_the_surviving_story(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db")
    now = T0
    store.ingest("s1", [(item("s1", "https://a/1", "Wali Kota Resmikan Taman Literasi Cikini",
                              ""), "x", 1)], now)
    store.ingest("s2", [(item("s2", "https://b/1", "Taman Baca Baru Hadir untuk Warga Menteng",
                              TEXT, 1), "x", 1)], now + timedelta(seconds=1))
    s1, s2 = story_of(store, "https://a/1"), story_of(store, "https://b/1")
    assert s1 != s2
    # B3 has s1's title and s2's text: the younger s2 merges into s1
    store.ingest("s3", [(item("s3", "https://c/1", "Wali Kota Resmikan Taman Literasi Cikini",
                              TEXT, 2), "x", 1)], now + timedelta(seconds=2))
    assert {story_of(store, f"https://{h}/1") for h in "abc"} == {s1}
    assert store.story_id_for(s2) == s1
    assert store._rows("SELECT COUNT(*) AS n FROM stories")[0]["n"] == 1
    store.close()


def test_items_stored_before_the_index_are_indexed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = Store(path)
    store.ingest("s1", [(item("s1", "https://a/1", "Petugas Padamkan Kebakaran di Tambora",
                              TEXT), "x", 1)], T0)
    store.db.execute("DELETE FROM dedupe_item_keys")  # as a database from before migration 2
    store.db.execute("UPDATE items SET indexed=0")
    store.close()
    store = Store(path)
    assert store.index_backlog() == 1 and store.index_backlog() == 0
    store.ingest("s2", [(item("s2", "https://b/1", "Kebakaran Rumah di Tambora", TEXT, 3),
                         "y", 1)], T0)
    assert story_of(store, "https://a/1") == story_of(store, "https://b/1")
    store.close()


def test_the_store_uses_fingerprints_computed_elsewhere(tmp_path: Path) -> None:
    """A parse worker's fingerprint is the one the store decides with: given a copy's
    fingerprint, an item that shares no words with the first groups with it."""
    store = Store(tmp_path / "a.db")
    store.ingest("s1", [(item("s1", "https://a/1", "Petugas Padamkan Kebakaran di Tambora",
                              TEXT), "x", 1)], T0)
    copy = dedupe.pack(dedupe.item_fingerprint("Kebakaran Rumah di Tambora", "",
                                               f"<p>{TEXT}</p>"))
    other = item("s2", "https://b/1", "Pelatihan Kader Posyandu", "Jadwal pelatihan " * 30, 1)
    store.ingest("s2", [(other, "y", 1)], T0, fingerprints={other.key: copy})
    assert story_of(store, "https://a/1") == story_of(store, "https://b/1")
    store.close()


def test_an_edited_item_is_filed_under_its_new_keys(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db")
    store.ingest("s1", [(item("s1", "https://a/1", "Judul Sementara", ""), "x", 1)], T0)
    store.ingest("s1", [(item("s1", "https://a/1", "Petugas Padamkan Kebakaran di Tambora",
                              TEXT), "x", 1)], T0)  # the article's text arrived
    store.ingest("s2", [(item("s2", "https://b/1", "Kebakaran Rumah di Tambora", TEXT, 2),
                         "y", 1)], T0)
    assert story_of(store, "https://a/1") == story_of(store, "https://b/1")
    store.close()


def _stored(n: int, source: str, views: int | None) -> StoredItem:
    return StoredItem(id=n, uid=str(n), source_id=source, agency="x", link=None, title="t",
                      summary="", content="", author=None, published=T0, updated=T0,
                      views=views, categories=(), image=None, story_id="s")


def test_story_views_sum_each_sources_latest_count_once() -> None:
    story = Story("s", (_stored(1, "a", 100), _stored(2, "b", 40), _stored(3, "b", 55),
                        _stored(4, "c", None)))
    assert story.views == 155  # a's 100 + b's larger item 55; c has no count
    assert Story("s", (_stored(1, "a", None),)).views is None


def test_a_story_stops_growing_by_similarity_at_the_cap(tmp_path: Path) -> None:
    """A template repeated by many sources ("X Gelar Y Jelang Akhir Tahun") is not one
    release: past MAX_STORY_ITEMS a story takes new items by link only."""
    store = Store(tmp_path / "a.db")
    title = "Petugas Padamkan Kebakaran di Tambora"
    cap = dedupe.MAX_STORY_ITEMS
    for n in range(cap + 2):
        store.ingest(f"s{n}", [(item(f"s{n}", f"https://h{n}/1", title, TEXT, n / 10), "x", 1)],
                     T0)
    stories = [story_of(store, f"https://h{n}/1") for n in range(cap + 2)]
    assert len(set(stories[:cap])) == 1 and stories[cap] != stories[0]
    # a copy with the link of an item in the full story still joins it
    store.ingest("late", [(item("late", "https://h0/1", title, TEXT, 1), "x", 1)], T0)
    rows = store._rows("SELECT story_id FROM items WHERE source_id='late'")
    assert rows[0]["story_id"] == stories[0]
    store.close()


def test_split_works_whichever_item_began_the_story(tmp_path: Path) -> None:
    from aggregator.types import StoryOverride

    for first, second in (("a", "b"), ("b", "a")):
        store = Store(tmp_path / f"{first}.db")
        title = "Petugas Padamkan Kebakaran di Tambora"
        for n, src in enumerate((first, second)):  # the story begins with the later item
            store.ingest(src, [(item(src, f"https://{src}/1", title, TEXT, 1 - n), "x", 1)],
                         T0)
        assert story_of(store, "https://a/1") == story_of(store, "https://b/1")
        split = StoryOverride("split", ("https://a/1", "https://b/1"))
        assert store.configure_dedupe(S, [split])  # something was done
        assert story_of(store, "https://a/1") != story_of(store, "https://b/1")
        assert store.configure_dedupe(S, [split]) == []  # and it is done once
        store.close()


def test_story_ids_are_uuids_ordered_by_when_their_first_item_was_stored(
        tmp_path: Path) -> None:
    """New stories take ids at the end of the story-id indexes (keys.story_uid)."""
    import uuid

    store = Store(tmp_path / "ids.db")
    ids = []
    for n in range(5):  # unrelated items, stored an hour apart
        link = f"https://s{n}/1"
        store.ingest(f"s{n}", [(item(f"s{n}", link, f"Rapat Koordinasi Nomor {n} Wilayah {n}",
                                    f"Teks berbeda {n} tentang hal lain {n * 7}.", 0), "x", 1)],
                     T0 + timedelta(hours=n))
        ids.append(story_of(store, link))
    assert all(uuid.UUID(i).version == 8 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 5
    store.close()


def test_split_of_a_story_with_an_id_from_before_time_ordered_ids(tmp_path: Path) -> None:
    """A story stored with a legacy (uuid5) id still knows its own first item: a split keeps
    that item in the story (though another item was published earlier) and gives the other
    its own new id."""
    from aggregator.normalize.keys import legacy_story_uid
    from aggregator.types import StoryOverride

    store = Store(tmp_path / "legacy.db")
    title = "Petugas Padamkan Kebakaran di Tambora"
    for src, hours in (("a", 1.0), ("b", 0.0)):  # a begins the story; b was published first
        store.ingest(src, [(item(src, f"https://{src}/1", title, TEXT, hours), "x", 1)], T0)
    sid = story_of(store, "https://a/1")
    first = store._rows("SELECT uid FROM items WHERE link='https://a/1'")[0]["uid"]
    legacy = legacy_story_uid(first)  # the id session-3 code gave a story begun by a
    with store.transaction():
        store.db.conn.execute("UPDATE stories SET id=? WHERE id=?", (legacy, sid))
        store.db.conn.execute("UPDATE items SET story_id=? WHERE story_id=?", (legacy, sid))
    store.configure_dedupe(S, [StoryOverride("split", ("https://a/1", "https://b/1"))])
    assert story_of(store, "https://a/1") == legacy
    assert story_of(store, "https://b/1") not in (legacy, sid)
    store.close()


def _story_rows_as_worked_out(store: Store) -> tuple[list[tuple[object, ...]], ...]:
    """Each story's lead, first and last time as stored, and as worked out from its items."""
    stored = store.db.conn.execute(
        "SELECT id, lead_item, published, updated FROM stories ORDER BY id").fetchall()
    worked_out = store.db.conn.execute(
        "SELECT s.id, (SELECT id FROM items WHERE story_id=s.id ORDER BY published, id LIMIT 1), "
        "(SELECT MIN(published) FROM items WHERE story_id=s.id), "
        "(SELECT MAX(updated) FROM items WHERE story_id=s.id) FROM stories s ORDER BY s.id"
    ).fetchall()
    return stored, worked_out


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["s1", "s2", "s3"]), st.integers(0, 3),
                          st.integers(0, 2), st.integers(-40, 40)), min_size=1, max_size=25))
def test_a_story_that_items_join_keeps_its_earliest_item_as_lead(
        tmp_path_factory: pytest.TempPathFactory,
        arrivals: list[tuple[str, int, int, int]]) -> None:
    """Items join stories by their link, from several sources, some in the same batch (two
    entries of one source with one link), in any order of publication: after each ingest
    every story's lead is its earliest item (of equal times the first stored) and its dates
    span its items, as worked out from all of them."""
    store = Store(tmp_path_factory.mktemp("lead") / "a.db")
    for n, (source, link, copies, hours) in enumerate(arrivals):
        url = f"https://portal/{link}"
        batch = [(Item(source_id=source, key=f"guid:{n}-{c}", link=url, title=f"Judul {link}",
                       summary="", content="", author=None,
                       published=T0 + timedelta(hours=hours + c), updated=None,
                       dated_by="source", views=None, categories=(), image=None,
                       content_hash=content_hash(f"Judul {link}", str(n))), "x", 1)
                 for c in range(copies + 1)]
        store.ingest(source, batch, T0 + timedelta(hours=n))
        stored, worked_out = _story_rows_as_worked_out(store)
        assert stored == worked_out
    store.close()


_figure = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=300, deadline=None)
@given(_figure, st.none() | _figure, _figure)
def test_a_match_s_figures_are_written_as_json_dumps_writes_them(
        title: float, text: float | None, hours: float) -> None:
    """`story_links.details` is written without the JSON encoder (it cost 2% of ingesting):
    the same text, which explain and the status pages read back."""
    from aggregator.store.grouping import _details
    written = _details(dedupe.Verdict(True, "near", title, text, hours, ""))
    expected = json.dumps({"title": round(title, 3) if math.isfinite(title) else title,
                           "text": None if text is None else
                           round(text, 3) if math.isfinite(text) else text,
                           "hours": round(hours, 1) if math.isfinite(hours) else hours})
    assert written == expected


def _places_by_loop(tokens: tuple[str, ...], markers: frozenset[str]) -> frozenset[tuple[str, ...]]:
    """`dedupe._places` as first written: each word, then the next three after a marker."""
    found = set()
    for i, word in enumerate(tokens[:-1]):
        if word in markers:
            phrase = []
            for nxt in tokens[i + 1:i + 4]:
                if nxt in dedupe.FUNCTION_WORDS or nxt in dedupe.PLACE_MARKERS \
                        or nxt in dedupe._GENERIC_PLACES or nxt == dedupe._BREAK:
                    break
                phrase.append(nxt)
            if phrase:
                found.add(tuple(phrase))
    return frozenset(found)


_place_words = st.sampled_from(sorted(dedupe.TITLE_PLACE_MARKERS | {"muara", "baru", "xiii", ",",
                                                                     "tempat", "yang", "kebon"}))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_place_words, st.sampled_from(WORDS)), max_size=40).map(" ".join))
def test_place_phrases_are_those_of_a_plain_loop(text: str) -> None:
    fp = dedupe.fingerprint(text, text)
    for tokens, markers in ((fp.title_tokens, dedupe.TITLE_PLACE_MARKERS),
                            (fp.text_tokens, dedupe.PLACE_MARKERS)):
        assert dedupe._places(tokens, markers) == _places_by_loop(tokens, markers)


_placed_text = st.lists(st.one_of(_place_words, st.sampled_from(WORDS)), max_size=40).map(
    " ".join)


@settings(max_examples=300, deadline=None)
@given(_placed_text, _placed_text, _placed_text, _placed_text)
def test_the_place_check_settles_on_titles_as_it_would_on_everything(
        t1: str, x1: str, t2: str, x2: str) -> None:
    """`_no_place_shared` works out the texts' places only when the titles' do not settle
    it; the answer is the one over all the places of both, as first written."""
    a, b = dedupe.fingerprint(t1, TEXT + x1), dedupe.fingerprint(t2, x2)

    def words_of(fp: dedupe.Fingerprint) -> set[str]:
        return set(fp.title_tokens) | set(fp.text_tokens)

    def place_words(fp: dedupe.Fingerprint) -> set[str]:
        return {w for p in fp.title_places | fp.text_places for w in p}

    pa, pb = place_words(a), place_words(b)
    expected = bool(pa and pb) and not pa & words_of(b) and not pb & words_of(a)
    assert dedupe._no_place_shared(a, b) == expected
    assert dedupe._no_place_shared(b, a) == expected


_numbered_text = st.lists(st.one_of(
    st.sampled_from(["10", "12", "10.000", "ribu", "dua", "ketiga", "xiii", "2026", "3"]),
    st.sampled_from(WORDS)), max_size=30).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(_numbered_text, _numbered_text, _numbered_text, _numbered_text)
def test_the_number_check_is_the_one_over_all_numbers(t1: str, x1: str, t2: str,
                                                      x2: str) -> None:
    """`_numbers_differ` works out a text's numbers only for a title number the other title
    lacks; the answer is the one over both items' numbers, as first written."""
    a, b = dedupe.fingerprint(t1, TEXT + x1), dedupe.fingerprint(t2, TEXT + x2)
    expected = bool(a.title_numbers and b.title_numbers and a.title_numbers - b.all_numbers
                    and b.title_numbers - a.all_numbers)
    fresh_a, fresh_b = dedupe.fingerprint(t1, TEXT + x1), dedupe.fingerprint(t2, TEXT + x2)
    assert dedupe._numbers_differ(fresh_a, fresh_b) == expected
    assert dedupe._numbers_differ(fresh_b, fresh_a) == expected
