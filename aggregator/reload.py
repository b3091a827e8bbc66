"""Config reload inside `aggregator serve`: watch the config files, validate an edit, and put
it in force only when it is valid.

`ConfigWatcher` looks at the main config file and at every file its `include` globs match (a
file that starts or stops matching counts as a change) once a second, by content hash; a
change is reloaded once the files have stayed the same for one more look (an editor that
writes a file in two steps is not caught half way). SIGHUP asks for a reload at once.

A new config is read exactly as `aggregator check` reads it. If it is invalid, the config in
force stays, the errors (file, section, field) are logged and kept in `ReloadStatus` for
`/status` and `/api/config`, and they clear at the next valid reload. If it is valid,
`diff_configs` says what changed and the caller's `apply` puts it in force (see
Scheduler.apply_config): added sources are due at once, removed ones are no longer polled
(their items stay), changed intervals are rescheduled. Settings that only take effect at
start (`RESTART_SETTINGS`) keep their running values and are reported as needing a restart.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from aggregator.errors import ConfigError, ConfigIssue
from aggregator.types import Config

log = logging.getLogger("aggregator.reload")

POLL = 1.0  # seconds between looks at the config files
RESTART_SETTINGS = ("database", "listen_host", "listen_port")


@dataclass(frozen=True)
class ConfigChange:
    """What a new config changes against the one in force."""

    added: tuple[str, ...] = ()  # source ids
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()  # sources defined differently (any field)
    intervals: dict[str, int] = field(default_factory=dict)  # id -> new interval, changed
    agencies: tuple[str, ...] = ()  # agency or region slugs added, removed or changed
    settings: tuple[str, ...] = ()  # settings that changed and apply now
    restart: tuple[str, ...] = ()  # settings that changed but need a restart
    rules: bool = False  # [[rule]], [[merge]] or [[split]] changed

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.agencies
                    or self.settings or self.restart or self.rules)

    def describe(self) -> str:
        parts = []
        for label, ids in (("added", self.added), ("removed", self.removed),
                           ("changed", self.changed)):
            if ids:
                parts.append(f"{label} {len(ids)} source(s): {', '.join(ids)}")
        if self.intervals:
            parts.append("new interval for " + ", ".join(self.intervals))
        if self.agencies:
            parts.append("agencies/regions changed: " + ", ".join(self.agencies))
        if self.settings:
            parts.append("settings changed: " + ", ".join(self.settings))
        if self.rules:
            parts.append("rules or story overrides changed")
        if self.restart:
            parts.append("needs a restart: " + ", ".join(self.restart))
        return "; ".join(parts) or "no change that matters (comments or formatting)"


def diff_configs(old: Config, new: Config) -> ConfigChange:
    """What `new` changes against `old` (pure)."""
    before = {s.id: s for s in old.sources}
    after = {s.id: s for s in new.sources}
    common = [sid for sid in after if sid in before]
    changed = tuple(sid for sid in common if before[sid] != after[sid])
    intervals = {sid: after[sid].interval for sid in common
                 if before[sid].interval != after[sid].interval}
    agencies = sorted({slug for slug in {*old.agencies, *new.agencies}
                       if old.agencies.get(slug) != new.agencies.get(slug)}
                      | {slug for slug in {*old.regions, *new.regions}
                         if old.regions.get(slug) != new.regions.get(slug)})
    names = [f.name for f in fields(old.settings)]
    differ = [n for n in names if getattr(old.settings, n) != getattr(new.settings, n)]
    return ConfigChange(
        added=tuple(sid for sid in after if sid not in before),
        removed=tuple(sid for sid in before if sid not in after),
        changed=changed,
        intervals=intervals,
        agencies=tuple(agencies),
        settings=tuple(n for n in differ if n not in RESTART_SETTINGS),
        restart=tuple(n for n in differ if n in RESTART_SETTINGS),
        rules=(old.rules, old.overrides) != (new.rules, new.overrides),
    )


def in_force(running: Config, new: Config) -> Config:
    """`new` as it can be applied while running: the RESTART_SETTINGS keep their running
    values."""
    kept = {n: getattr(running.settings, n) for n in RESTART_SETTINGS}
    return replace(new, settings=replace(new.settings, **kept))


def include_patterns(main: Path, fallback: tuple[str, ...]) -> tuple[str, ...]:
    """The main file's `include` globs as written now (so a new glob is watched at once), or
    `fallback` (the config in force) when the file cannot be read as TOML."""
    try:
        raw = tomllib.loads(main.read_text(encoding="utf-8")).get("settings", {}).get("include")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
        return fallback
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        return fallback
    return tuple(raw)


def watched_files(main: Path, patterns: tuple[str, ...]) -> list[Path]:
    """The main file and every file the include globs match now, as load_config finds them."""
    files = [main]
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else str(main.parent / pattern)
        files.extend(Path(m) for m in sorted(glob.glob(full, recursive=True))
                     if os.path.isfile(m))
    return list(dict.fromkeys(files))


Fingerprint = tuple[tuple[str, str | None], ...]


def fingerprint(files: list[Path]) -> Fingerprint:
    """Each file's content hash (None: missing or unreadable)."""
    out = []
    for path in files:
        try:
            digest: str | None = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            digest = None
        out.append((str(path), digest))
    return tuple(out)


@dataclass
class ReloadStatus:
    """What `/status` and `/api/config` show about the config in force and the last try."""

    file: str
    files: tuple[str, ...]
    loaded_at: datetime  # when the config in force was read
    reloads: int = 0  # valid reloads since start
    errors: tuple[ConfigIssue, ...] = ()  # of the config on disk, when it is invalid
    error_at: datetime | None = None
    restart: tuple[str, ...] = ()  # settings changed on disk that need a restart
    last_change: str | None = None
    last_change_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "ok": not self.errors, "file": self.file, "files": list(self.files),
            "loaded_at": when(self.loaded_at), "reloads": self.reloads,
            "errors": [{"file": i.file, "section": i.section, "field": i.field,
                        "message": i.message, "text": str(i)} for i in self.errors],
            "error_at": when(self.error_at), "needs_restart": list(self.restart),
            "last_change": self.last_change, "last_change_at": when(self.last_change_at),
        }

    def banner(self) -> list[str]:
        """Lines for the top of `/status` (empty when all is well)."""
        lines = []
        if self.errors:
            lines.append(f"The config on disk is invalid (since {self.error_at:%Y-%m-%d %H:%M:%S}"
                         " UTC); the last valid config stays in force until it is fixed:")
            lines.extend(str(i) for i in self.errors)
        if self.restart:
            lines.append("Changed in the config but only applied at start, restart to use: "
                         + ", ".join(self.restart))
        return lines


class ConfigWatcher:
    """Polls the config files in a daemon thread and reloads on a (settled) change or on
    `request()` (SIGHUP). `apply(config, change)` puts a valid config in force; it may raise,
    and the watcher keeps going."""

    def __init__(self, path: str, config: Config, load: Callable[[str], Config],
                 apply: Callable[[Config, ConfigChange], None],
                 clock: Callable[[], datetime], poll: float = POLL) -> None:
        self.path = Path(path)
        self.config = config
        self.load = load
        self.apply = apply
        self.clock = clock
        self.poll = poll
        self.status = ReloadStatus(str(self.path), config.files, clock())
        self._lock = threading.Lock()  # one reload at a time; status read whole
        self._current = self._look()  # what was last read (valid or not)
        self._pending: Fingerprint | None = None
        self._forced = False
        self._stopping = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def _look(self) -> Fingerprint:
        patterns = include_patterns(self.path, self.config.settings.include)
        return fingerprint(watched_files(self.path, patterns))

    def snapshot(self) -> ReloadStatus:
        with self._lock:
            return replace(self.status)

    def check(self) -> bool:
        """One look at the files; reloads when they changed and have settled since the
        last look. Returns whether a reload was tried."""
        seen = self._look()
        if seen == self._current:
            self._pending = None
            return False
        if seen != self._pending:
            self._pending = seen  # changed: reload at the next look if it stays so
            return False
        self._pending = None
        self.reload("files changed")
        return True

    def reload(self, why: str) -> bool:
        """Read the config now; put it in force if valid. Returns whether it was valid."""
        with self._lock:
            seen = self._look()
            try:
                new = self.load(str(self.path))
            except ConfigError as exc:
                self._reject(why, exc.issues, seen)
                return False
            except Exception as exc:  # unreadable in some other way: still not in force
                self._reject(why, [ConfigIssue(str(self.path), "file", "", str(exc))], seen)
                return False
            change = diff_configs(self.config, new)
            config = in_force(self.config, new)
            try:
                if not change.empty:
                    self.apply(config, change)
            except Exception as exc:
                log.exception("config reload (%s) could not be applied", why)
                self._reject(why, [ConfigIssue(str(self.path), "reload", "",
                                               f"could not be applied: {exc}")], seen)
                return False
            self._current, self.config = seen, config
            now = self.clock()
            if self.status.errors:
                log.info("config is valid again; the error is cleared")
            self.status = replace(self.status, files=config.files, loaded_at=now,
                                  reloads=self.status.reloads + 1, errors=(), error_at=None,
                                  restart=change.restart)
            if not change.empty:
                self.status.last_change, self.status.last_change_at = change.describe(), now
            log.info("config reloaded (%s): %s", why, change.describe())
            if change.restart:
                log.warning("config: %s changed; restart `aggregator serve` to apply",
                             ", ".join(change.restart))
            return True

    def _reject(self, why: str, issues: list[ConfigIssue], seen: Fingerprint) -> None:
        self._current = seen
        log.error("config reload (%s) rejected: %d error(s); the config in force is "
                  "unchanged", why, len(issues))
        for issue in issues:
            log.error("config error: %s", issue)
        self.status = replace(self.status, errors=tuple(issues), error_at=self.clock())

    # --- the thread ---------------------------------------------------------------------------

    def request(self) -> None:
        """Reload at once (SIGHUP); safe to call from a signal handler."""
        self._forced = True
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="config-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.poll)
            self._wake.clear()
            if self._stopping:
                return
            try:
                if self._forced:
                    self._forced = False
                    self.reload("SIGHUP")
                else:
                    self.check()
            except Exception:  # the watcher must survive anything one look does
                log.exception("config watch failed")
