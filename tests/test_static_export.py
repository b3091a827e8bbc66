"""Static export removes the files of feeds that no longer exist, and only files it wrote
itself (listed in its manifest); a crash half-way leaves a manifest the next export finishes
from; a manifest edited by hand cannot make it delete anything outside the directory."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.core import OUTPUT_LOCK
from aggregator.errors import AggregatorError
from aggregator.publish import MANIFEST, Rendered, write_static
from aggregator.publish.render_cache import RENDER_CACHE
from aggregator.publish.static import plan_manifests, read_manifest, safe_relative
from tests.feedcheck import assert_valid_tree
from tests.portal import BASE_URL, Portal, Src, run_cli, serve_standard_feeds, write_config

WHEN = datetime(2024, 6, 25, tzinfo=UTC)
DKI = Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki")
BALI = Src("bali-etag", "/rss/bali.xml", "pemprov-bali")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_files(out: Path) -> dict[str, list[str]]:
    data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert data["version"] == 1
    files: dict[str, list[str]] = data["files"]
    return files


def stamp(path: Path) -> tuple[int, int, bytes]:
    info = path.stat()
    return info.st_ino, info.st_mtime_ns, path.read_bytes()


@pytest.mark.slow
def test_removed_agency_loses_its_files_and_nothing_else(portal: Portal,
                                                         tmp_path: Path) -> None:
    serve_standard_feeds(portal)
    config = write_config(tmp_path, portal, [DKI, BALI])
    out = tmp_path / "public"
    assert run_cli("poll", "--all", config=config).returncode == 0
    first = run_cli("publish", "--out", str(out), config=config)
    assert first.returncode == 0, first.stderr

    bali = ["feeds/agency/pemprov-bali.rss", "feeds/agency/pemprov-bali.atom",
            "feeds/agency/pemprov-bali.json", "feeds/region/bali.rss",
            "feeds/region/bali.atom", "feeds/region/bali.json"]
    listed = manifest_files(out)
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*")
               if p.is_file() and p.name not in (MANIFEST, RENDER_CACHE, OUTPUT_LOCK)}
    assert set(listed) == on_disk  # every file it wrote, and only those
    assert set(bali) <= on_disk and "index.html" in on_disk and "opml" in on_disk
    for name, hashes in listed.items():
        assert hashes == [sha((out / name).read_bytes())], name
    assert assert_valid_tree(out, BASE_URL) > 0

    # files of someone else: beside ours, in our folders, one with a feed's name
    foreign = {out / "robots.txt": b"User-agent: *\n",
               out / "feeds" / "agency" / "own.rss": b"<rss>mine</rss>",
               out / "feeds" / "index.html": b"<p>hand-made</p>"}
    for path, body in foreign.items():
        path.write_bytes(body)
    before = {path: stamp(path) for path in foreign}
    # a stale file someone edited after we wrote it is theirs now
    edited = out / "feeds" / "region" / "bali.json"
    edited.write_bytes(b'{"edited": true}')

    config = write_config(tmp_path, portal, [DKI])  # the Bali agency leaves the config
    second = run_cli("publish", "--out", str(out), "--json", config=config)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    gone = [name for name in bali if name != "feeds/region/bali.json"]
    assert sorted(report["removed"]) == sorted(str(out / name) for name in gone)
    assert report["kept"] == [str(edited)]
    for name in gone:
        assert not (out / name).exists(), name
    assert edited.read_bytes() == b'{"edited": true}'
    assert {path: stamp(path) for path in foreign} == before
    assert not any(name in manifest_files(out) for name in bali)
    assert "pemprov-bali" not in (out / "opml").read_text(encoding="utf-8")

    # nothing changed: no file written or removed, the manifest untouched too
    manifest_before = stamp(out / MANIFEST)
    third = run_cli("publish", "--out", str(out), config=config)
    assert third.returncode == 0, third.stderr
    assert "0 written" in third.stdout and "removed" not in third.stdout
    assert stamp(out / MANIFEST) == manifest_before
    assert "no longer published" not in third.stderr  # the edited file is not ours anymore


def site(**bodies: bytes) -> dict[str, Rendered]:
    return {f"/feeds/{name}.rss": Rendered(f"/feeds/{name}.rss", body, "application/rss+xml",
                                           WHEN) for name, body in bodies.items()}


def test_a_crash_half_way_is_finished_by_the_next_export(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_static(site(a=b"a1", b=b"b1"), tmp_path)
    real_replace = os.replace

    def fail_on_c(src: str, dst: str) -> None:
        if Path(dst).name == "c.rss":
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_c)
    with pytest.raises(AggregatorError, match="cannot write static files"):
        write_static(site(a=b"a2", c=b"c1"), tmp_path)
    monkeypatch.undo()
    # the manifest already listed c (before writing it) and still lists b (not yet removed)
    during = read_manifest(tmp_path)
    assert during["feeds/a.rss"] == [sha(b"a1"), sha(b"a2")]
    assert set(during) == {"feeds/a.rss", "feeds/b.rss", "feeds/c.rss"}
    assert (tmp_path / "feeds" / "b.rss").exists() and not (tmp_path / "feeds/c.rss").exists()

    report = write_static(site(a=b"a2"), tmp_path)
    assert report.removed == (str(tmp_path / "feeds" / "b.rss"),) and report.kept == ()
    assert sorted(p.name for p in (tmp_path / "feeds").iterdir()) == ["a.rss"]
    assert read_manifest(tmp_path) == {"feeds/a.rss": [sha(b"a2")]}


@pytest.mark.slow
def test_a_publish_waits_for_another_writing_the_same_folder(portal: Portal,
                                                             tmp_path: Path) -> None:
    """Two exports into one folder never write at once (they would race on the manifest): a
    publish started while another holds the folder's lock writes nothing until it is free,
    then does its whole job. The lock is an flock, so a killed holder frees it."""
    import subprocess
    import sys
    import time

    from aggregator.lock import RunLock
    from tests.portal import cli_env

    serve_standard_feeds(portal)
    config = write_config(tmp_path, portal, [DKI])
    out = tmp_path / "public"
    assert run_cli("poll", "--all", config=config).returncode == 0
    with RunLock(out / OUTPUT_LOCK):  # as another publish holds it
        proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "publish", "--out",
             str(out)], env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        time.sleep(1.5)  # long enough for an unlocked publish to have written something
        assert proc.poll() is None  # still waiting
        assert not (out / MANIFEST).exists() and not (out / "feeds").exists()
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "written" in stdout
    assert "feeds/all.rss" in manifest_files(out)
    assert_valid_tree(out, BASE_URL)


def test_a_lock_held_too_long_is_reported(tmp_path: Path) -> None:
    from aggregator.lock import RunLock

    path = tmp_path / OUTPUT_LOCK
    with RunLock(path), pytest.raises(AggregatorError) as caught, \
            RunLock(path, wait=0.2, holder="another publish"):
        pass
    assert "another publish holds" in str(caught.value)
    assert f"pid {os.getpid()}" in str(caught.value) and "after waiting 0.2 s" in str(caught.value)
    with RunLock(path, note_pid=False), pytest.raises(AggregatorError) as caught, \
            RunLock(path, wait=0.1):
        pass
    assert "pid" not in str(caught.value)  # a holder that does not note its pid
    with RunLock(path, wait=0.2):  # free again
        pass


def test_a_hand_edited_manifest_cannot_reach_outside(tmp_path: Path) -> None:
    out = tmp_path / "out"
    outside = tmp_path / "precious.txt"
    outside.write_bytes(b"keep")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.rss").write_bytes(b"x")
    write_static(site(a=b"a"), out)
    (out / "linked").symlink_to(elsewhere)  # a folder that leads out of the directory
    (out / "feeds" / "link.rss").symlink_to(outside)
    files = {"feeds/a.rss": [sha(b"a")], "../precious.txt": [sha(b"keep")],
             str(outside): [sha(b"keep")], "linked/x.rss": [sha(b"x")],
             "feeds/link.rss": [sha(b"keep")], MANIFEST: [sha(b"")]}
    (out / MANIFEST).write_text(json.dumps({"version": 1, "files": files}), encoding="utf-8")

    report = write_static(site(), out)
    assert report.removed == (str(out / "feeds" / "a.rss"),)
    assert sorted(report.kept) == [str(out / "feeds" / "link.rss"), str(out / "linked/x.rss")]
    assert outside.read_bytes() == b"keep" and (elsewhere / "x.rss").read_bytes() == b"x"
    assert (out / "feeds" / "link.rss").is_symlink()
    assert read_manifest(out) == {}


def test_unreadable_manifest_deletes_nothing(tmp_path: Path) -> None:
    write_static(site(a=b"a", b=b"b"), tmp_path)
    (tmp_path / MANIFEST).write_text("{not json", encoding="utf-8")
    report = write_static(site(a=b"a"), tmp_path)
    assert report.removed == () and (tmp_path / "feeds" / "b.rss").exists()
    assert read_manifest(tmp_path) == {"feeds/a.rss": [sha(b"a")]}


def test_plan_lists_every_file_before_it_is_written() -> None:
    old = {"index.html": ["h1"], "feeds/x.rss": ["x1"]}
    during, final, stale = plan_manifests(old, {"index.html": "h2", "feeds/y.rss": "y1"})
    assert during == {"index.html": ["h1", "h2"], "feeds/x.rss": ["x1"], "feeds/y.rss": ["y1"]}
    assert final == {"index.html": ["h2"], "feeds/y.rss": ["y1"]}
    assert stale == ["feeds/x.rss"]
    assert old == {"index.html": ["h1"], "feeds/x.rss": ["x1"]}  # not modified


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../b", "./a", "a//b", "", "a\\b",
                                  MANIFEST, 3])
def test_unsafe_names_are_refused(name: object) -> None:
    assert safe_relative(name) is None


def test_safe_names_pass() -> None:
    assert safe_relative("feeds/agency/x.rss") == "feeds/agency/x.rss"
    assert safe_relative("index.html") == "index.html"
