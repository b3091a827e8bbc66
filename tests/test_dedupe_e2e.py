"""Cross-source deduplication through the real thing: feeds served on 127.0.0.1, the CLI
polling into a real SQLite file, feeds published and read back with feedparser, and the
admin's [[split]] / [[merge]] decisions in the config."""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.utils import format_datetime
from html import escape
from pathlib import Path

import feedparser
import pytest

from tests.feedcheck import assert_valid_tree
from tests.portal import (
    BASE_URL,
    Portal,
    Route,
    invoke,
    query,
    toml_str,
    write_sources_config,
)

pytestmark = pytest.mark.slow

VAKSIN = ("Jakarta, Senin (16/3). Suku Dinas Kesehatan Jakarta Pusat menggelar vaksinasi "
          "massal bagi 300 warga di Kelurahan Kebon Kosong, Kecamatan Kemayoran. Kegiatan "
          "berlangsung di aula kantor kelurahan sejak pukul 08.00 WIB dan diikuti lansia serta "
          "anak sekolah. Kepala Suku Dinas Kesehatan Jakarta Pusat, Rismasari, mengatakan "
          "vaksinasi ini menyasar warga yang belum mendapat dosis lengkap. Petugas dari "
          "Puskesmas Kemayoran juga membuka layanan pemeriksaan tekanan darah gratis.")
VAKSIN_REWRITE = ("Sebanyak 300 warga Kelurahan Kebon Kosong, Kecamatan Kemayoran mengikuti "
                  "vaksinasi massal, Senin (16/3). Kegiatan berlangsung di aula kantor "
                  "kelurahan sejak pukul 08.00 WIB dan diikuti lansia serta anak sekolah. "
                  "Kepala Suku Dinas Kesehatan Jakarta Pusat, Rismasari, mengatakan vaksinasi "
                  "ini menyasar warga yang belum mendapat dosis lengkap.")
VAKSIN_SHORT = ("Suku Dinas Kesehatan Jakarta Pusat menggelar vaksinasi massal bagi 300 warga di "
                "Kelurahan Kebon Kosong, Kecamatan Kemayoran, Senin (16/3). Kegiatan "
                "berlangsung di aula kantor kelurahan sejak pukul 08.00 WIB.")
SIM_1 = ("Jakarta, Senin (16/3). Layanan SIM keliling hari ini tersedia di lima lokasi: Jalan "
         "Kramat Raya depan Pasar Senen, Taman Menteng, Mall Ciputra Grogol, Kantor Pos "
         "Fatmawati dan LTC Glodok. Layanan dibuka pukul 08.00 hingga 14.00 WIB untuk "
         "perpanjangan SIM A dan C yang masih berlaku.")
SIM_2 = ("Jakarta, Selasa (17/3). Layanan SIM keliling hari ini tersedia di lima lokasi: Jalan "
         "Pemuda Rawamangun, Kampus Trisakti Grogol, Mall Cijantung, Plaza Kalibata dan Pasar "
         "Minggu. Layanan dibuka pukul 08.00 hingga 14.00 WIB untuk perpanjangan SIM A dan C "
         "yang masih berlaku.")
TAMAN = ("Taman baca baru kini hadir di RPTRA Cikini, Kecamatan Menteng. Taman literasi itu "
         "menyediakan lebih dari 2.000 buku cerita anak, ruang baca terbuka dan pojok dongeng "
         "setiap akhir pekan. Wali Kota Jakarta Pusat Dhany Sukma berharap taman ini menjadi "
         "tempat belajar warga dan mendorong minat baca anak sejak dini.")
PASAR = ("Dinas Koperasi dan UKM menggelar bazar produk UMKM di halaman Balai Kota selama tiga "
         "hari. Sebanyak 80 pelaku usaha memamerkan kerajinan, batik dan makanan khas Betawi. "
         "Pengunjung dapat membayar dengan kode QRIS di setiap stan yang tersedia.")
BANJIR = ("Genangan setinggi 30 sentimeter sempat merendam Jalan Gunung Sahari Raya setelah "
          "hujan deras Senin sore. Petugas Dinas Sumber Daya Air mengerahkan pompa mobile dan "
          "genangan surut dalam dua jam. Lalu lintas kembali normal pada malam hari.")


@dataclass(frozen=True)
class Post:
    slug: str
    title: str
    text: str
    when: str  # ISO time with offset
    host: str = "www.jakarta.go.id"

    @property
    def link(self) -> str:
        return f"https://{self.host}/berita/{self.slug}"


A1 = Post("vaksinasi-kebon-kosong", "Pemprov DKI Gelar Vaksinasi Massal di Kebon Kosong",
          VAKSIN, "2026-03-16T09:00:00+07:00")
A2 = Post("vaksin-300-warga", "Dinkes DKI: 300 Warga Kebon Kosong Ikuti Vaksinasi Massal",
          VAKSIN_REWRITE, "2026-03-16T13:00:00+07:00", "dinkes.jakarta.go.id")
A3 = Post("vaksinasi-massal", "Vaksinasi Massal di Kebon Kosong Diikuti 300 Warga",
          VAKSIN_SHORT, "2026-03-16T15:30:00+07:00", "pusat.jakarta.go.id")
A4 = Post("vaksinasi-warga-kebon-kosong", "Sudin Kesehatan Vaksinasi 300 Warga Kebon Kosong",
          VAKSIN, "2026-03-16T18:00:00+07:00", "kemayoran.jakarta.go.id")
R1 = Post("sim-keliling-16", "Jadwal SIM Keliling Jakarta Hari Ini", SIM_1,
          "2026-03-16T06:00:00+07:00")
R2 = Post("sim-keliling-17", "Jadwal SIM Keliling Jakarta Hari Ini", SIM_2,
          "2026-03-17T06:00:00+07:00", "dinkes.jakarta.go.id")
B1 = Post("resmikan-taman", "Wali Kota Jakpus Resmikan Taman Literasi Cikini", "",
          "2026-03-16T10:00:00+07:00")
B2 = Post("taman-baca-menteng", "Taman Baca Baru Hadir untuk Warga Menteng", TAMAN,
          "2026-03-16T11:00:00+07:00", "dinkes.jakarta.go.id")
B3 = Post("taman-literasi-cikini", "Wali Kota Resmikan Taman Literasi Cikini", TAMAN,
          "2026-03-16T16:00:00+07:00", "pusat.jakarta.go.id")
U1 = Post("bazar-umkm", "Bazar UMKM Digelar di Balai Kota", PASAR, "2026-03-16T08:00:00+07:00")
U2 = Post("genangan-gunung-sahari", "Genangan di Gunung Sahari Surut Dua Jam", BANJIR,
          "2026-03-16T20:00:00+07:00", "pusat.jakarta.go.id")

AGENCIES = [("pemprov-dki", "Pemprov DKI Jakarta"), ("dinkes-dki", "Dinas Kesehatan DKI"),
            ("sudin-jakpus", "Sudin Kominfotik Jakarta Pusat"),
            ("kec-kemayoran", "Kecamatan Kemayoran")]
SOURCES = [("dki-rss", "/rss/dki.xml", "pemprov-dki"), ("dinkes-rss", "/rss/dinkes.xml",
                                                       "dinkes-dki"),
           ("jakpus-rss", "/rss/jakpus.xml", "sudin-jakpus"),
           ("kemayoran-rss", "/rss/kemayoran.xml", "kec-kemayoran")]


def rss(posts: list[Post]) -> bytes:
    from datetime import datetime

    items = "".join(
        f"<item><title>{escape(p.title)}</title><link>{p.link}</link><guid>{p.link}</guid>"
        f"<pubDate>{format_datetime(datetime.fromisoformat(p.when))}</pubDate>"
        + (f"<description>{escape(p.text)}</description>" if p.text else "") + "</item>"
        for p in posts)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>t</title><link>https://www.jakarta.go.id/</link><description>d"
            f"</description>{items}</channel></rss>").encode()


def serve(portal: Portal, feeds: dict[str, list[Post]]) -> None:
    for path, posts in feeds.items():
        portal.routes[path] = Route(rss(posts))


def config(tmp: Path, portal: Portal, extra: str = "", settings: str = "") -> Path:
    parts = ['[[region]]\nslug = "dki-jakarta"\nname = "DKI Jakarta"\n']
    parts += [f'[[agency]]\nslug = "{s}"\nname = "{n}"\nregion = "dki-jakarta"\n'
              for s, n in AGENCIES]
    parts += [f'[[source]]\nid = "{i}"\nkind = "feed"\nurl = {toml_str(portal.url(p))}\n'
              f'agency = "{a}"\ninterval = "15m"\n' for i, p, a in SOURCES]
    return write_sources_config(tmp, "\n".join(parts) + extra, settings)


def feed(tmp: Path, path: str) -> feedparser.FeedParserDict:
    parsed = feedparser.parse((tmp / "public" / path).read_bytes())
    assert not parsed.bozo, parsed.bozo_exception
    return parsed


def entries_by_link(parsed: feedparser.FeedParserDict) -> dict[str, feedparser.FeedParserDict]:
    return {e.link: e for e in parsed.entries}


def stories_of(conf: Path) -> dict[str, str]:
    """link -> story id, from the real database."""
    return {r["link"]: r["story_id"] for r in query(conf, "SELECT link, story_id FROM items")}


def poll_and_publish(conf: Path) -> None:
    result = invoke("poll", "--all", config=conf)
    assert result.exit_code == 0, result.output
    result = invoke("publish", config=conf)
    assert result.exit_code == 0, result.output
    assert_valid_tree(conf.parent.parent / "public", BASE_URL)


def test_one_story_in_combined_feeds_every_item_in_agency_feeds(portal: Portal,
                                                                tmp_path: Path) -> None:
    serve(portal, {"/rss/dki.xml": [A1, R1, U1, B1], "/rss/dinkes.xml": [A2, R2, B2],
                   "/rss/jakpus.xml": [A3, U2], "/rss/kemayoran.xml": []})
    conf = config(tmp_path, portal)
    poll_and_publish(conf)
    stories = stories_of(conf)
    # the edited, rewritten and abridged copies of one release are one story
    assert stories[A1.link] == stories[A2.link] == stories[A3.link]
    # a recurring title on two days, an unrelated item, a title-only listing: apart
    assert len({stories[R1.link], stories[R2.link], stories[U1.link], stories[A1.link],
                stories[B1.link], stories[B2.link]}) == 6

    combined = feed(tmp_path, "feeds/all.rss")
    titles = [e.title for e in combined.entries]
    vaksin = [e for e in combined.entries if "Vaksinasi" in e.title]
    assert len(vaksin) == 1, titles
    entry = vaksin[0]
    assert entry.link == A1.link  # the earliest item represents the story
    assert entry.id == f"urn:uuid:{stories[A1.link]}"
    assert "Dinas Kesehatan DKI" in entry.summary and "Sudin Kominfotik Jakarta Pusat" \
        in entry.summary  # "also published by", with links to their copies
    assert f'href="{A2.link}"' in entry.summary and f'href="{A3.link}"' in entry.summary
    atom = feed(tmp_path, "feeds/all.atom")
    assert sum("Vaksinasi" in e.title for e in atom.entries) == 1
    as_json = json.loads((tmp_path / "public" / "feeds" / "all.json").read_text())
    [item] = [i for i in as_json["items"] if "Vaksinasi" in i["title"]]
    assert item["_aggregator"]["also_published_by"] == [
        {"agency": "Dinas Kesehatan DKI", "url": A2.link},
        {"agency": "Sudin Kominfotik Jakarta Pusat", "url": A3.link}]
    # and, as in RSS and Atom, in the HTML a reader shows
    assert "Juga dipublikasikan oleh" in item["content_html"]
    assert f'href="{A2.link}"' in item["content_html"]
    [own] = [i for i in json.loads((tmp_path / "public" / "feeds" / "agency" / "dinkes-dki.json")
             .read_text())["items"] if "Vaksinasi" in i["title"]]
    assert "Juga dipublikasikan" not in own.get("content_html", "")  # an agency's own item
    assert titles.count("Jadwal SIM Keliling Jakarta Hari Ini") == 2
    region = feed(tmp_path, "feeds/region/dki-jakarta.rss")
    assert sum("Vaksinasi" in e.title for e in region.entries) == 1
    # each agency's own feed keeps its own items, the duplicates included
    assert set(entries_by_link(feed(tmp_path, "feeds/agency/pemprov-dki.rss"))) == {
        A1.link, R1.link, U1.link, B1.link}
    assert set(entries_by_link(feed(tmp_path, "feeds/agency/dinkes-dki.rss"))) == {
        A2.link, R2.link, B2.link}
    assert set(entries_by_link(feed(tmp_path, "feeds/agency/sudin-jakpus.rss"))) == {
        A3.link, U2.link}

    # `stories show --explain` says why, with the figures
    shown = invoke("stories", "show", A3.link, "--explain", config=conf)
    assert shown.exit_code == 0, shown.output
    assert f"story    {stories[A1.link]}" in shown.output
    assert "(lead)" in shown.output and "joined: first" in shown.output
    assert "joined: near" in shown.output and "title 0." in shown.output
    as_json = json.loads(invoke("stories", "show", stories[A1.link], "--explain", "--json",
                                config=conf).output)
    assert {i["source"] for i in as_json["items"]} == {"dki-rss", "dinkes-rss", "jakpus-rss"}
    reasons = [i["reason"]["method"] for i in as_json["items"]]
    assert reasons.count("first") == 1 and len(as_json["pairs"]) == 3
    assert all(p["verdict"]["text_similarity"] is not None for p in as_json["pairs"])
    missing = invoke("stories", "show", "https://nowhere.go.id/x", config=conf)
    assert missing.exit_code == 2 and "no story" in missing.output


def test_a_bridging_item_merges_two_stories_into_the_older_id(portal: Portal,
                                                              tmp_path: Path) -> None:
    serve(portal, {"/rss/dki.xml": [B1], "/rss/dinkes.xml": [B2], "/rss/jakpus.xml": [],
                   "/rss/kemayoran.xml": []})
    conf = config(tmp_path, portal)
    poll_and_publish(conf)
    before = stories_of(conf)
    assert before[B1.link] != before[B2.link]  # a title-only listing, a different title
    published_before = {e.id for e in feed(tmp_path, "feeds/all.rss").entries}
    age = {r["id"]: (r["created_at"], r["id"]) for r in query(
        conf, "SELECT id, created_at FROM stories")}
    older, younger = sorted([before[B1.link], before[B2.link]], key=age.__getitem__)

    serve(portal, {"/rss/jakpus.xml": [B3]})  # B1's title and B2's text
    poll_and_publish(conf)
    after = stories_of(conf)
    assert after[B1.link] == after[B2.link] == after[B3.link] == older
    merges = query(conf, "SELECT from_id, into_id FROM story_merges")
    assert [(m["from_id"], m["into_id"]) for m in merges] == [(younger, older)]
    ids = [e.id for e in feed(tmp_path, "feeds/all.rss").entries]
    assert ids == [f"urn:uuid:{older}"]  # the younger id is gone, nothing new appeared
    assert set(ids) <= published_before
    # the merged-away id still finds its story
    shown = invoke("stories", "show", younger, "--explain", config=conf)
    assert shown.exit_code == 0 and f"story    {older}" in shown.output
    assert f"merged   {younger}" in shown.output


def test_admin_split_and_merge_survive_polls(portal: Portal, tmp_path: Path) -> None:
    serve(portal, {"/rss/dki.xml": [A1, U1], "/rss/dinkes.xml": [A2],
                   "/rss/jakpus.xml": [A3, U2], "/rss/kemayoran.xml": []})
    conf = config(tmp_path, portal)
    poll_and_publish(conf)
    assert len({stories_of(conf)[p.link] for p in (A1, A2, A3)}) == 1
    a3_uid = query(conf, "SELECT uid FROM items WHERE link=?", (A3.link,))[0]["uid"]

    decisions = (f'\n[[split]]\nitems = [{toml_str(A1.link)}, "{a3_uid}"]\n'
                 'note = "Sudin Jakpus covered a second session"\n'
                 f'\n[[merge]]\nitems = [{toml_str(U1.link)}, {toml_str(U2.link)}]\n'
                 'note = "one Balai Kota event"\n')
    conf = config(tmp_path, portal, decisions)
    assert invoke("check", config=conf).exit_code == 0
    result = invoke("publish", config=conf)
    assert result.exit_code == 0, result.output
    s = stories_of(conf)
    assert s[A1.link] != s[A3.link]  # A2 stays with whichever of them the story began with
    assert s[A2.link] in (s[A1.link], s[A3.link])
    assert s[U1.link] == s[U2.link]
    vaksin = [e for e in feed(tmp_path, "feeds/all.rss").entries if "Vaksinasi" in e.title]
    assert len(vaksin) == 2

    # a new item that matches both sides joins the older story but cannot undo the split
    serve(portal, {"/rss/kemayoran.xml": [A4]})
    poll_and_publish(conf)
    poll_and_publish(conf)
    after = stories_of(conf)
    assert after[A1.link] != after[A3.link]
    assert {after[p.link] for p in (A1, A2, A3)} == {s[p.link] for p in (A1, A2, A3)}
    assert after[A4.link] in (after[A1.link], after[A3.link])
    assert after[U1.link] == after[U2.link]
    # the item split out is whichever of A1 and A3 did not begin the story, which depends on
    # the order the poll stored the feeds in; its own story explains why it is there
    shown = [invoke("stories", "show", p.link, "--explain", config=conf).output
             for p in (A1, A3)]
    assert sum("split (config)" in out for out in shown) == 1, shown


def test_bad_overrides_are_reported_by_check(portal: Portal, tmp_path: Path) -> None:
    conf = config(tmp_path, portal, '\n[[merge]]\nitems = ["not a link"]\n',
                  '[settings.dedupe]\nprefer_lead = ["dinkes"]\nwindow_hours = 0\n')
    result = invoke("check", config=conf)
    assert result.exit_code == 2
    out = result.output
    assert "merge #1" in out and "needs at least two items" in out
    assert "neither an item id" in out
    assert "dedupe.prefer_lead" in out and "dinkes-dki" in out
    assert "dedupe.window_hours" in out


def test_prefer_lead_makes_the_originating_agency_represent_the_story(
        portal: Portal, tmp_path: Path) -> None:
    serve(portal, {"/rss/dki.xml": [A1], "/rss/dinkes.xml": [A2], "/rss/jakpus.xml": [A3],
                   "/rss/kemayoran.xml": []})
    conf = config(tmp_path, portal, settings='[settings.dedupe]\nprefer_lead = ["dinkes-dki"]\n')
    poll_and_publish(conf)
    vaksin = [e for e in feed(tmp_path, "feeds/all.rss").entries if "Vaksinasi" in e.title]
    assert [e.link for e in vaksin] == [A2.link]
    assert vaksin[0].id == f"urn:uuid:{stories_of(conf)[A1.link]}"  # the id does not move


def test_one_feed_parsed_at_a_time_gives_the_same_stories(portal: Portal, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Parsing waits for the store (pipeline.PARSED_WAITING) to bound memory: at its
    tightest, a first poll through the parse workers still stores every item, grouped as
    usual, and does not stall."""
    import aggregator.pipeline

    serve(portal, {"/rss/dki.xml": [A1, R1, U1, B1], "/rss/dinkes.xml": [A2, R2, B2],
                   "/rss/jakpus.xml": [A3, U2], "/rss/kemayoran.xml": []})
    monkeypatch.setattr(aggregator.pipeline, "PARSED_WAITING", 1)
    conf = config(tmp_path, portal)
    poll_and_publish(conf)
    stories = stories_of(conf)
    assert len(stories) == 9
    assert stories[A1.link] == stories[A2.link] == stories[A3.link]
    assert len({stories[R1.link], stories[R2.link], stories[U1.link], stories[A1.link],
                stories[B1.link], stories[B2.link]}) == 6
