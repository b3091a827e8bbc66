"""Config reload in process: what changed between two configs (diff_configs), the watcher's
decisions on real files (settling, include globs, invalid edits kept out), and a reload put
in force on a real database by the scheduler (added due now, removed no longer selected,
intervals rescheduled, agencies re-rendered). The same through a real `serve` process is in
test_reload_process.py."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.core import Aggregator, read_config
from aggregator.reload import ConfigChange, ConfigWatcher, diff_configs
from aggregator.scheduler import Scheduler
from aggregator.site import Site
from aggregator.types import Config
from tests.portal import Portal, Route, Src, fixture_feed, query, write_config

DKI = Src("dki-rss", "/rss/pemprov-dki.xml", "pemprov-dki")
JATENG = Src("jateng-atom", "/atom/diskominfo-jateng.xml", "diskominfo-jateng")
BALI = Src("bali-rss", "/rss/bali.xml", "pemprov-bali")


def serve_feeds(portal: Portal) -> None:
    portal.routes[DKI.path] = Route(fixture_feed("pemprov-dki.rss"))
    portal.routes[JATENG.path] = Route(fixture_feed("diskominfo-jateng.atom"),
                                       "application/atom+xml; charset=utf-8")
    portal.routes[BALI.path] = Route(fixture_feed("pemprov-bali-etag.rss"))


def included(config: Path) -> Path:
    return config.parent / "sources" / "portal.toml"


class Recorder:
    def __init__(self) -> None:
        self.applied: list[tuple[Config, ConfigChange]] = []

    def __call__(self, config: Config, change: ConfigChange) -> None:
        self.applied.append((config, change))


def watcher_for(config: Path, apply: Recorder) -> ConfigWatcher:
    return ConfigWatcher(str(config), read_config(str(config)), read_config, apply,
                         lambda: datetime(2026, 11, 27, 2, 0, tzinfo=UTC), poll=0.05)


# --- diff_configs -----------------------------------------------------------------------------


def test_diff_names_added_removed_changed_sources_and_restart_settings(tmp_path: Path) -> None:
    old_path = write_config(tmp_path / "old", None, [DKI, JATENG])
    new_path = write_config(tmp_path / "new", None, [JATENG, BALI],
                            settings="listen_port = 9999\nfeed_size = 7\n")
    text = included(new_path).read_text().replace('interval = "15m"', 'interval = "1h"', 1)
    included(new_path).write_text(text)
    old, new = read_config(str(old_path)), read_config(str(new_path))
    change = diff_configs(old, new)
    assert change.added == ("bali-rss",)
    assert change.removed == ("dki-rss",)
    assert change.changed == ("jateng-atom",)  # its interval (and its file's path)
    assert change.intervals == {"jateng-atom": 3600}
    assert set(change.agencies) >= {"pemprov-dki", "pemprov-bali"}
    assert "feed_size" in change.settings and "database" in change.restart
    assert "listen_port" in change.restart and "listen_port" not in change.settings
    assert not change.empty
    assert "added 1 source(s): bali-rss" in change.describe()
    assert diff_configs(old, old).empty


# --- the watcher --------------------------------------------------------------------------------


def test_a_valid_edit_is_applied_once_it_has_settled(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, [DKI])
    apply = Recorder()
    watcher = watcher_for(config, apply)
    assert watcher.check() is False  # nothing changed
    write_config(tmp_path, None, [DKI, JATENG])
    assert watcher.check() is False  # changed: wait one more look (a half-written file)
    assert apply.applied == []
    assert watcher.check() is True
    [(new, change)] = apply.applied
    assert change.added == ("jateng-atom",) and change.removed == ()
    assert [s.id for s in new.sources] == ["dki-rss", "jateng-atom"]
    assert watcher.config is new and watcher.status.reloads == 1
    assert watcher.check() is False  # nothing new since


def test_an_edit_still_moving_is_not_read_until_it_stops(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, [DKI])
    apply = Recorder()
    watcher = watcher_for(config, apply)
    path = included(config)
    path.write_text(path.read_text() + "\n[[source]]\nid = ")  # half way through a save
    assert watcher.check() is False
    write_config(tmp_path, None, [DKI, JATENG])  # the save completes before the next look
    assert watcher.check() is False and watcher.status.errors == ()
    assert watcher.check() is True
    assert apply.applied[0][1].added == ("jateng-atom",)
    assert watcher.status.errors == ()


def test_an_invalid_edit_keeps_the_old_config_and_says_where(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, [DKI])
    apply = Recorder()
    watcher = watcher_for(config, apply)
    before = watcher.config
    path = included(config)
    good = path.read_text()
    path.write_text(good.replace('interval = "15m"', 'interval = "soon"'))
    watcher.check()
    assert watcher.check() is True
    assert apply.applied == [] and watcher.config is before
    [issue] = watcher.status.errors
    assert (issue.file, issue.section, issue.field) == (str(path), "source dki-rss", "interval")
    snapshot = watcher.snapshot().as_dict()
    assert snapshot["ok"] is False and snapshot["errors"][0]["field"] == "interval"
    banner = watcher.snapshot().banner()
    assert "invalid" in banner[0] and str(path) in banner[1] and "interval" in banner[1]
    assert watcher.check() is False  # the same bad files are not read again and again

    path.write_text(good)  # fixed: back to what is in force
    watcher.check()
    assert watcher.check() is True
    assert watcher.status.errors == () and watcher.snapshot().as_dict()["ok"] is True
    assert apply.applied == []  # nothing changed against the config in force
    assert watcher.snapshot().banner() == []


def test_files_that_start_or_stop_matching_an_include_glob_count(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, [DKI])
    apply = Recorder()
    watcher = watcher_for(config, apply)
    extra = config.parent / "sources" / "bali.toml"
    extra.write_text('[[agency]]\nslug = "pemprov-bali"\nname = "Pemprov Bali"\n'
                     'region = "bali"\n\n[[source]]\nid = "bali-rss"\nkind = "feed"\n'
                     'url = "http://127.0.0.1:9/rss/bali.xml"\nagency = "pemprov-bali"\n')
    watcher.check()
    assert watcher.check() is True
    assert apply.applied[-1][1].added == ("bali-rss",)
    assert str(extra) in watcher.status.files
    extra.unlink()
    watcher.check()
    assert watcher.check() is True
    assert apply.applied[-1][1].removed == ("bali-rss",)
    assert set(apply.applied[-1][1].agencies) == {"pemprov-bali", "bali"}


def test_restart_settings_keep_their_running_values(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, [DKI])
    apply = Recorder()
    watcher = watcher_for(config, apply)
    running_db = watcher.config.settings.database
    config.write_text(config.read_text().replace("aggregator.db", "other.db")
                      + "listen_port = 9999\nfeed_size = 7\n")
    watcher.check()
    watcher.check()
    [(new, change)] = apply.applied
    assert new.settings.database == running_db and new.settings.listen_port == 8080
    assert new.settings.feed_size == 7
    assert set(change.restart) == {"database", "listen_port"}
    assert watcher.status.restart == change.restart
    assert "restart" in watcher.snapshot().banner()[0]


def test_sighup_request_reloads_at_once_in_the_thread(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, [DKI])
    apply = Recorder()
    watcher = ConfigWatcher(str(config), read_config(str(config)), read_config, apply,
                            lambda: datetime.now(UTC), poll=60)  # no look would come soon
    watcher.start()
    try:
        write_config(tmp_path, None, [DKI, JATENG])
        watcher.request()
        deadline = time.monotonic() + 10
        while not apply.applied and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.stop()
    assert apply.applied and apply.applied[0][1].added == ("jateng-atom",)


def test_an_apply_that_fails_keeps_the_old_config_and_the_watcher(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, [DKI])

    def broken(config: Config, change: ConfigChange) -> None:
        raise RuntimeError("disk full")

    watcher = ConfigWatcher(str(config), read_config(str(config)), read_config, broken,
                            lambda: datetime.now(UTC))
    before = watcher.config
    write_config(tmp_path, None, [DKI, JATENG])
    assert watcher.reload("test") is False
    assert watcher.config is before
    assert "disk full" in watcher.status.errors[0].message


# --- put in force on a real database ----------------------------------------------------------


@pytest.fixture
def feeds(portal: Portal) -> Portal:
    serve_feeds(portal)
    return portal


def test_scheduler_applies_a_reload_to_the_store_and_the_render(tmp_path: Path,
                                                                 feeds: Portal) -> None:
    config = write_config(tmp_path, feeds, [DKI, JATENG])
    now = datetime.now(UTC)
    agg = Aggregator.open(str(config), clock=lambda: now)
    published: list[Site] = []
    scheduler = Scheduler(agg, published.append)
    try:
        agg.poll(agg.select_sources(everything=True))
        assert agg.select_sources() == []  # both polled: nothing due
        path = included(config)
        write_config(tmp_path, feeds, [JATENG, BALI])
        path.write_text(path.read_text().replace('interval = "15m"', 'interval = "1h"', 1))
        new = read_config(str(config))
        change = diff_configs(agg.config, new)
        assert change.intervals == {"jateng-atom": 3600}
        scheduler.apply_config(new, change)

        assert agg.config is new
        assert [s.id for s in agg.select_sources()] == ["bali-rss"]  # added: due at once
        assert agg.select_sources(["jateng-atom"])[0].interval == 3600
        [row] = query(config, "SELECT last_fetch_at, next_due_at FROM sources WHERE id=?",
                      ("jateng-atom",))
        last = datetime.fromisoformat(row["last_fetch_at"])
        assert datetime.fromisoformat(row["next_due_at"]) == max(last + timedelta(hours=1),
                                                                now)
        # the removed source is not polled any more; its items stay and stay in the feeds
        assert "dki-rss" not in {s.id for s in agg.select_sources(everything=True)}
        states = {r["id"]: r["state"] for r in agg.source_status()}
        assert states["dki-rss"] == "not in config"
        [site] = published
        assert "/feeds/agency/pemprov-bali.rss" in site
        assert "/feeds/agency/pemprov-dki.rss" not in site
        links = [r["link"] for r in query(config, "SELECT link FROM items WHERE source_id=?",
                                          ("dki-rss",))]
        assert len(links) == 3
        for link in links:  # the removed source's items are still stored and served
            assert link.encode() in site["/feeds/all.rss"].body
    finally:
        agg.close()


def test_a_broken_or_missing_main_file_keeps_the_old_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, [DKI])
    apply = Recorder()
    watcher = watcher_for(config, apply)
    before = watcher.config
    good = config.read_bytes()
    config.write_bytes(b"[settings\n\xff\xfe")  # not TOML, not even UTF-8
    watcher.check()
    assert watcher.check() is True
    assert watcher.config is before and watcher.status.errors[0].section == "file"
    config.unlink()  # deleted (an editor's rename, or a mistake)
    watcher.check()
    assert watcher.check() is True
    assert "file not found" in str(watcher.status.errors[0])
    assert watcher.config is before and apply.applied == []
    config.write_bytes(good)
    watcher.check()
    assert watcher.check() is True and watcher.status.errors == ()
