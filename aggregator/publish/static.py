"""Static export: write rendered documents as files, atomically, and remove the files of
documents that no longer exist (a removed agency's feeds), but only files this export wrote.

What it wrote is listed in a manifest in the output directory (`MANIFEST`): each file's path
(relative, `/`-separated) with the SHA-256 of the bytes written. A stale file (in the
manifest, no longer in the site) is deleted only when it is still a regular file with those
bytes; any other file in the directory is never touched. The order makes a crash at any
point safe:

1. the manifest is extended with every file about to be written (with both its old and its
   new hash), so a file is listed before it exists;
2. the files are written (temporary file, then rename);
3. the stale files are deleted;
4. the manifest is replaced by exactly the files of the site.

After a crash the manifest lists a superset of what is on disk, so the next export finishes
the clean-up. A manifest is rewritten only when its content changes, so an export that
changes nothing touches no file at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aggregator.errors import AggregatorError
from aggregator.publish.model import Rendered

MANIFEST = ".aggregator-manifest"  # JSON; no .json suffix: it is not a feed
MANIFEST_VERSION = 1

Manifest = dict[str, list[str]]  # relative file -> the hashes its bytes may have


@dataclass(frozen=True)
class WriteReport:
    written: tuple[str, ...]  # files
    unchanged: tuple[str, ...]
    changed: tuple[str, ...] = ()  # URL paths of the written files ("/feeds/all.rss")
    pinged: tuple[str, ...] = ()  # feed URLs announced to the WebSub hub
    hub_problems: tuple[str, ...] = ()  # pings that failed
    removed: tuple[str, ...] = ()  # stale files deleted (feeds that no longer exist)
    kept: tuple[str, ...] = ()  # stale files left alone: changed or replaced by someone else


def file_for(path: str) -> str:
    """The file (relative to the output directory) of a URL path: `/` is `index.html`."""
    return "index.html" if path == "/" else path.lstrip("/")


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def safe_relative(name: object) -> str | None:
    """`name` when it is a plain relative path inside the output directory (no `..`, not
    absolute, not the manifest itself), else None: a manifest edited by hand can never make
    the export delete anything outside the directory."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        return None
    pure = PurePosixPath(name)
    if pure.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")):
        return None
    return None if pure.as_posix() == MANIFEST else pure.as_posix()


def read_manifest(root: Path) -> Manifest:
    """The files a previous export wrote; empty when there is no manifest or it cannot be
    read (then nothing is deleted: unknown files are never ours)."""
    try:
        data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION \
            or not isinstance(data.get("files"), dict):
        return {}
    files: Manifest = {}
    for name, hashes in data["files"].items():
        rel = safe_relative(name)
        if rel is not None and isinstance(hashes, list) \
                and all(isinstance(h, str) for h in hashes):
            files[rel] = list(hashes)
    return files


def manifest_bytes(files: Manifest) -> bytes:
    data = {"version": MANIFEST_VERSION,
            "about": "files written by `aggregator publish`; stale ones are deleted",
            "files": {name: files[name] for name in sorted(files)}}
    return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def plan_manifests(old: Manifest, new: Mapping[str, str]) -> tuple[Manifest, Manifest,
                                                                  list[str]]:
    """Pure: from the previous manifest and the site's files (file -> hash), the manifest
    to hold while writing (every file listed before it is written, with its possible
    hashes), the final manifest, and the stale files (listed before, not in the site)."""
    during: Manifest = {name: list(hashes) for name, hashes in old.items()}
    for name, h in new.items():
        hashes = during.setdefault(name, [])
        if h not in hashes:
            hashes.append(h)
    final: Manifest = {name: [h] for name, h in new.items()}
    stale = sorted(name for name in old if name not in new)
    return during, final, stale


def _atomic_write(target: Path, body: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_manifest(root: Path, files: Manifest, current: Manifest) -> Manifest:
    if files != current:
        root.mkdir(parents=True, exist_ok=True)
        _atomic_write(root / MANIFEST, manifest_bytes(files))
    return files


def _remove_if_ours(root: Path, name: str, hashes: list[str]) -> bool | None:
    """Delete `root/name` when it is a regular file (not a link, not reached through a
    linked directory that leads out of `root`) holding bytes we wrote: True when deleted,
    None when already gone, False when kept."""
    target = root / name
    try:
        info = target.lstat()
    except FileNotFoundError:
        return None
    inside = root.resolve()
    parent = target.parent.resolve()
    if not stat.S_ISREG(info.st_mode) or (parent != inside and inside not in parent.parents):
        return False
    if digest(target.read_bytes()) not in hashes:
        return False
    target.unlink(missing_ok=True)
    return True


def write_static(site: Mapping[str, Rendered], out_dir: str | os.PathLike[str]) -> WriteReport:
    """Write every document under `out_dir` atomically (temporary file, then rename); a file
    whose bytes are already right is left alone so its mtime and a web server's ETag stay.
    Files of documents no longer in `site` that an earlier export wrote are deleted (see the
    module's docstring)."""
    root = Path(out_dir)
    written: list[str] = []
    unchanged: list[str] = []
    changed: list[str] = []
    removed: list[str] = []
    kept: list[str] = []
    bodies = {file_for(path): (path, site[path].body) for path in sorted(site)}
    try:
        old = read_manifest(root)
        during, final, stale = plan_manifests(
            old, {name: digest(body) for name, (_, body) in bodies.items()})
        current = _write_manifest(root, during, old)
        for name, (path, body) in bodies.items():
            target = root / name
            if target.is_file() and target.stat().st_size == len(body) \
                    and target.read_bytes() == body:
                unchanged.append(str(target))
                continue
            _atomic_write(target, body)
            written.append(str(target))
            changed.append(path)
        for name in stale:
            outcome = _remove_if_ours(root, name, old[name])
            if outcome:
                removed.append(str(root / name))
            elif outcome is False:
                kept.append(str(root / name))
        _write_manifest(root, final, current)
    except OSError as exc:
        raise AggregatorError(f"cannot write static files to {root}: {exc}") from exc
    return WriteReport(tuple(written), tuple(unchanged), tuple(changed),
                       removed=tuple(removed), kept=tuple(kept))
