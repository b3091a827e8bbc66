"""`aggregator sources ...` through the real CLI: health (list/show), enable/disable keeping
every comment and byte of the file, add by URL (a feed, or a page announcing feeds), OPML
import (hostile files refused) and export (read back by import). Every edit leaves a config
that `aggregator check` accepts, or writes nothing."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from aggregator.core import read_config
from tests.portal import (
    HTML_TYPE,
    Portal,
    Route,
    Src,
    fixture_feed,
    invoke,
    run_cli,
    toml_str,
    write_config,
)

DKI = Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki")
JATENG = Src("jateng-atom", "/atom/diskominfo-jateng.xml", "diskominfo-jateng")


def serve_feeds(portal: Portal) -> None:
    portal.routes[DKI.path] = Route(fixture_feed("pemprov-dki.rss"))
    portal.routes[JATENG.path] = Route(fixture_feed("diskominfo-jateng.atom"),
                                       "application/atom+xml; charset=utf-8")


def commented_config(tmp_path: Path, portal: Portal) -> tuple[Path, Path]:
    """A config whose included file is full of comments and odd spacing."""
    main = write_config(tmp_path, portal, [])
    included = main.parent / "sources" / "portal.toml"
    included.write_text(textwrap.dedent(f"""\
        # Sumber berita: Jakarta dan Jawa Tengah.
        # Jangan hapus komentar ini.

        [[agency]]
        slug = "pemprov-dki"   # pemerintah provinsi
        name = "Pemerintah Provinsi DKI Jakarta"
        region = "dki-jakarta"

        [[agency]]
        slug = "diskominfo-jateng"
        name = "Diskominfo Provinsi Jawa Tengah"
        region = "jawa-tengah"
        url = {toml_str(portal.url("/"))}

        [[source]]
        # the province's own feed
        id    =   "dki-rss"     # keep this id: feeds link to it
        kind = "feed"
        url = {toml_str(portal.url(DKI.path))}
        agency = "pemprov-dki"
        interval = "15m"        # they publish often

        [[source]]
        id = "jateng-atom"
        kind = "feed"
        url = {toml_str(portal.url(JATENG.path))}
        agency = "diskominfo-jateng"
        enabled = true   # turned back on 2026-11-01
        """), encoding="utf-8")
    return main, included


def check_ok(config: Path) -> None:
    result = invoke("check", config=config)
    assert result.exit_code == 0, result.output


# --- enable / disable -------------------------------------------------------------------------


def test_disable_and_enable_change_one_line_and_keep_every_other_byte(tmp_path: Path,
                                                                      portal: Portal) -> None:
    config, included = commented_config(tmp_path, portal)
    original = included.read_bytes()
    main_before = config.read_bytes()

    result = invoke("sources", "disable", "dki-rss", config=config)
    assert result.exit_code == 0, result.output
    assert f"disabled source dki-rss in {included}" in result.output
    id_line = b'id    =   "dki-rss"     # keep this id: feeds link to it\n'
    assert included.read_bytes() == original.replace(id_line, id_line + b"enabled = false\n")
    assert config.read_bytes() == main_before
    check_ok(config)
    assert not read_config(str(config)).source("dki-rss").enabled  # type: ignore[union-attr]

    result = invoke("sources", "disable", "jateng-atom", config=config)
    assert result.exit_code == 0, result.output
    assert b"enabled = false   # turned back on 2026-11-01\n" in included.read_bytes()

    result = invoke("sources", "list", "--json", config=config)
    states = {r["id"]: r["state"] for r in json.loads(result.output)}
    assert states == {"dki-rss": "disabled", "jateng-atom": "disabled"}

    assert invoke("sources", "enable", "dki-rss", config=config).exit_code == 0
    assert invoke("sources", "enable", "jateng-atom", config=config).exit_code == 0
    assert included.read_bytes() == original.replace(id_line, id_line + b"enabled = true\n")
    check_ok(config)
    result = invoke("sources", "enable", "jateng-atom", config=config)
    assert result.exit_code == 0 and "already enabled" in result.output


def test_disable_keeps_windows_line_endings(tmp_path: Path, portal: Portal) -> None:
    config, included = commented_config(tmp_path, portal)
    crlf = included.read_bytes().replace(b"\n", b"\r\n")
    included.write_bytes(crlf)
    result = run_cli("sources", "disable", "dki-rss", config=config)  # the real process
    assert result.returncode == 0, result.stderr
    line = b'id    =   "dki-rss"     # keep this id: feeds link to it\r\n'
    assert included.read_bytes() == crlf.replace(line, line + b"enabled = false\r\n")


def test_enable_of_an_unknown_source_or_an_invalid_config_writes_nothing(
        tmp_path: Path, portal: Portal) -> None:
    config, included = commented_config(tmp_path, portal)
    before = included.read_bytes()
    result = invoke("sources", "disable", "nope", config=config)
    assert result.exit_code == 2 and "unknown source id 'nope'" in result.output
    included.write_bytes(before.replace(b'kind = "feed"', b'kind = "fed"', 1))
    result = invoke("sources", "disable", "jateng-atom", config=config)
    assert result.exit_code == 2
    assert "field 'kind'" in result.output and "fix them first" in result.output
    assert b"enabled = true   # turned back on" in included.read_bytes()


# --- add ----------------------------------------------------------------------------------------


PAGE = """<!DOCTYPE html>
<html lang="id"><head><meta charset="utf-8"><title>Diskominfo Jateng</title>
<link rel="alternate" type="application/rss+xml" title="Komentar" href="/comments/feed">
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/atom+xml" title="Berita" href="atom/diskominfo-jateng.xml">
<link rel="alternate" type="application/json" href="/wp-json/wp/v2/pages/12">
</head><body><h1>Berita</h1></body></html>
"""


def test_add_a_feed_url_appends_a_commented_entry(tmp_path: Path, portal: Portal) -> None:
    serve_feeds(portal)
    config, included = commented_config(tmp_path, portal)
    included.write_text(included.read_text().split("[[source]]\nid = \"jateng-atom\"")[0])
    main_before = config.read_bytes()
    url = portal.url(JATENG.path)

    # no --agency: the agency whose url is on the feed's host
    result = invoke("sources", "add", url, "--interval", "30m", config=config)
    assert result.exit_code == 0, result.output
    text = config.read_bytes()
    assert text.startswith(main_before)  # the existing text, byte for byte
    added = text[len(main_before):].decode()
    assert added.startswith("\n# Diskominfo Provinsi Jawa Tengah: added by `aggregator "
                            "sources add` on ")
    assert "# the URL is a feed\n[[source]]\n" in added
    source = read_config(str(config)).source("diskominfo-provinsi-jawa-tengah")
    assert source is not None
    assert (source.url, source.agency, source.interval) == (url, "diskominfo-jateng", 1800)
    assert source.name == "Diskominfo Provinsi Jawa Tengah"
    check_ok(config)

    # the same URL again: refused, nothing written
    result = invoke("sources", "add", url, config=config)
    assert result.exit_code == 2 and "already configured as source" in result.output
    assert config.read_bytes() == text
    result = invoke("sources", "add", portal.url(DKI.path), "--id", "dki-rss", config=config)
    assert result.exit_code == 2 and "'dki-rss' is already defined" in result.output


def test_add_a_page_discovers_its_feed(tmp_path: Path, portal: Portal) -> None:
    serve_feeds(portal)
    portal.routes["/berita"] = Route(PAGE.encode(), HTML_TYPE)
    config, included = commented_config(tmp_path, portal)
    included.write_text(included.read_text().split("[[source]]\nid = \"jateng-atom\"")[0])
    before = config.read_bytes()

    result = invoke("sources", "add", portal.url("/berita"), "--agency", "diskominfo-jateng",
                    "--id", "jateng-berita", "--dry-run", config=config)
    assert result.exit_code == 0, result.output
    assert f'url = "{portal.url(JATENG.path)}"' in result.output  # relative href resolved
    assert f"discovered in the <link rel=\"alternate\"> of {portal.url('/berita')}" \
        in result.output
    assert f"also announced by the page (rss): {portal.url('/comments/feed')}" in result.output
    assert "wp-json" not in result.output
    assert config.read_bytes() == before  # a dry run writes nothing

    new_file = config.parent / "sources" / "jateng.toml"
    result = invoke("sources", "add", portal.url("/berita"), "--agency", "diskominfo-jateng",
                    "--file", "sources/jateng.toml", config=config)
    assert result.exit_code == 0, result.output
    assert config.read_bytes() == before
    assert new_file.read_text().startswith("# Diskominfo Provinsi Jawa Tengah: added by")
    loaded = read_config(str(config))
    assert str(new_file) in loaded.files
    assert [s.url for s in loaded.sources if s.file == str(new_file)] == [
        portal.url(JATENG.path)]
    check_ok(config)


def test_add_that_would_not_pass_check_writes_nothing(tmp_path: Path, portal: Portal) -> None:
    serve_feeds(portal)
    portal.routes["/kosong"] = Route(b"<html><head><title>x</title></head></html>", HTML_TYPE)
    config, _ = commented_config(tmp_path, portal)
    before = config.read_bytes()
    result = invoke("sources", "add", portal.url(DKI.path) + "?v=2", "--agency",
                    "no-such-agency", config=config)
    assert result.exit_code == 2
    assert "field 'agency'" in result.output and "nothing was written" in result.output
    result = invoke("sources", "add", portal.url(DKI.path) + "?v=3", "--agency",
                    "pemprov-dki", "--interval", "10s", config=config)
    assert result.exit_code == 2 and "field 'interval'" in result.output
    stray = tmp_path / "elsewhere.toml"
    result = invoke("sources", "add", portal.url(DKI.path) + "?v=4", "--agency",
                    "pemprov-dki", "--file", str(stray), config=config)
    assert result.exit_code == 2 and "not read by the config" in result.output
    assert not stray.exists()
    result = invoke("sources", "add", portal.url("/kosong"), "--agency", "pemprov-dki",
                    config=config)
    assert result.exit_code == 1 and "announces no feed" in result.output
    result = invoke("sources", "add", portal.url("/missing"), "--agency", "pemprov-dki",
                    config=config)
    assert result.exit_code == 1 and "404" in result.output
    assert config.read_bytes() == before


# --- OPML -------------------------------------------------------------------------------------


def test_import_opml_appends_entries_and_skips_known_feeds(tmp_path: Path,
                                                           portal: Portal) -> None:
    config, _ = commented_config(tmp_path, portal)
    before = config.read_bytes()
    opml = tmp_path / "langganan.opml"
    opml.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>Langganan</title></head><body>
  <outline text="Diskominfo Provinsi Jawa Tengah">
    <outline type="rss" text="Berita Jateng" xmlUrl="https://jatengprov.go.id/feed/"/>
    <outline type="rss" text="Berita Jateng" xmlUrl="https://jatengprov.go.id/feed/atom"/>
    <outline type="rss" text="Sudah ada" xmlUrl="{portal.url(JATENG.path)}"/>
  </outline>
  <outline type="rss" text="Pemprov &amp; DKI" xmlUrl="https://jakarta.go.id/rss"
           category="/pemprov-dki"/>
  <outline text="no feed here"/>
</body></opml>
""", encoding="utf-8")
    result = invoke("sources", "import-opml", str(opml), config=config)
    assert result.exit_code == 0, result.output
    assert f"skipped {portal.url(JATENG.path)} (already configured as source jateng-atom)" \
        in result.output
    assert "imported 3 source(s)" in result.output
    assert config.read_bytes().startswith(before)
    loaded = read_config(str(config))
    new = {s.id: (s.url, s.agency) for s in loaded.sources if s.file == str(config)}
    assert new == {"berita-jateng": ("https://jatengprov.go.id/feed/", "diskominfo-jateng"),
                   "berita-jateng-2": ("https://jatengprov.go.id/feed/atom",
                                       "diskominfo-jateng"),
                   "pemprov-dki": ("https://jakarta.go.id/rss", "pemprov-dki")}
    assert "# Pemprov & DKI: imported from langganan.opml" in config.read_text()
    check_ok(config)
    result = invoke("sources", "import-opml", str(opml), config=config)  # again: all known
    assert result.exit_code == 0 and "nothing to import" in result.output


@pytest.mark.parametrize("hostile", [
    """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<opml version="2.0"><body><outline text="&lol3;" xmlUrl="https://x.go.id/rss"/></body></opml>
""",
    """<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<opml version="2.0"><body><outline text="&xxe;" xmlUrl="https://x.go.id/rss"/></body></opml>
""",
    "<html><body>not opml</body></html>",
], ids=["billion-laughs", "external-entity", "not-opml"])
def test_import_opml_refuses_hostile_or_wrong_files(tmp_path: Path, portal: Portal,
                                                    hostile: str) -> None:
    config, _ = commented_config(tmp_path, portal)
    before = config.read_bytes()
    opml = tmp_path / "bad.opml"
    opml.write_text(hostile)
    result = invoke("sources", "import-opml", str(opml), "--agency", "pemprov-dki",
                    config=config)
    assert result.exit_code == 2
    assert ("DTD" in result.output) or ("not an OPML file" in result.output)
    assert config.read_bytes() == before


def test_export_opml_is_read_back_by_import(tmp_path: Path, portal: Portal) -> None:
    config, _ = commented_config(tmp_path / "a", portal)
    out = tmp_path / "sources.opml"
    result = invoke("sources", "export-opml", "--out", str(out), config=config)
    assert result.exit_code == 0 and "wrote 2 feed(s)" in result.output
    printed = invoke("sources", "export-opml", config=config).output
    assert printed.encode() == out.read_bytes()

    fresh, included = commented_config(tmp_path / "b", portal)
    included.write_text(included.read_text().split("[[source]]")[0])  # agencies only
    result = invoke("sources", "import-opml", str(out), config=fresh)
    assert result.exit_code == 0, result.output
    original = {(s.url, s.agency) for s in read_config(str(config)).sources}
    imported = {(s.url, s.agency) for s in read_config(str(fresh)).sources}
    assert imported == original
    check_ok(fresh)


# --- health -------------------------------------------------------------------------------------


def test_list_and_show_print_state_errors_and_fetches(tmp_path: Path, portal: Portal) -> None:
    serve_feeds(portal)
    portal.routes["/rss/rusak.xml"] = Route(b"gone", "text/plain", status=500)
    config, included = commented_config(tmp_path, portal)
    included.write_text(included.read_text() + textwrap.dedent(f"""
        [[source]]
        id = "dki-rusak"
        kind = "feed"
        url = {toml_str(portal.url("/rss/rusak.xml"))}
        agency = "pemprov-dki"
        """))
    assert invoke("poll", "--all", config=config).exit_code == 1
    result = invoke("sources", config=config)  # no subcommand: the list
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "ok" in lines["dki-rss"] and "items=3" in lines["dki-rss"]
    assert "failing" in lines["dki-rusak"] and "error at 20" in lines["dki-rusak"]
    assert "HTTP 500" in lines["dki-rusak"] or "500" in lines["dki-rusak"]

    # removed from the config: still listed, as such
    included.write_text(included.read_text().split("[[source]]\nid = \"dki-rusak\"")[0])
    rows = {r["id"]: r for r in json.loads(invoke("sources", "--json",
                                                  config=config).output)}
    assert rows["dki-rusak"]["state"] == "not in config"
    assert "not in config" in invoke("sources", "list", config=config).output

    result = invoke("sources", "show", "dki-rss", config=config)
    assert result.exit_code == 0
    assert "state            ok" in result.output
    assert f"file             {included}" in result.output
    assert "last 1 fetches:" in result.output and "new=3" in result.output
    detail = json.loads(invoke("sources", "show", "dki-rss", "--json", config=config).output)
    assert detail["item_count"] == 3 and len(detail["fetches"]) == 1
    assert invoke("sources", "show", "nope", config=config).exit_code == 2


def test_discover_feeds_resolves_base_and_puts_comment_feeds_last() -> None:
    from aggregator.parse.html import discover_feeds

    page = b"""<html><head><base href="https://pemkot.example.go.id/id/">
<link rel="alternate" type="application/rss+xml" title="Komentar" href="komentar/feed">
<link rel="alternate" type="application/rss+xml" title="Komentar" href="komentar/feed">
<link rel="Alternate feed" type="application/atom+xml; charset=utf-8" href="/atom.xml">
<link rel="alternate" type="application/feed+json" title="JSON" href="feed.json">
<link rel="alternate" hreflang="en" href="https://pemkot.example.go.id/en/">
<link rel="alternate" type="application/rss+xml" href="javascript:void(0)">
</head><body></body></html>"""
    feeds = discover_feeds(page, {"content-type": "text/html"}, "https://pemkot.example.go.id/")
    assert feeds == [("https://pemkot.example.go.id/atom.xml", "atom", ""),
                     ("https://pemkot.example.go.id/id/feed.json", "json", "JSON"),
                     ("https://pemkot.example.go.id/id/komentar/feed", "rss", "Komentar")]
