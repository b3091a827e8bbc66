"""Edits of the config files by `aggregator sources enable|disable|add|import-opml` that keep
every comment and all other formatting byte for byte.

Edits are made on the text, line by line: one value is replaced in place, one line is
inserted, or entries are appended at the end. Each edit is then checked by reading the old
and the new text as TOML: the data must differ exactly as intended, or the edit is refused
(so an unusual layout can never be mangled silently). Writing is atomic (a temporary file
in the same folder, fsync, rename) and refused when the file changed since it was read.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aggregator.errors import AggregatorError

_HEADER = re.compile(r"^\s*\[")
_SOURCE_HEADER = re.compile(r"^\s*\[\[\s*source\s*\]\]\s*(?:#.*)?$")
_ID_LINE = re.compile(r"""^\s*id\s*=\s*(["'])([^"'\\]*)\1\s*(?:#.*)?$""")
_ENABLED_LINE = re.compile(r"^(\s*enabled\s*=\s*)(true|false)(.*)$", re.S)
_ML_QUOTES = re.compile(r'"""|\'\'\'')


class EditError(AggregatorError):
    """An edit that cannot be made safely (the admin edits the file by hand instead)."""


def read_text(path: Path) -> str:
    """A config file's text exactly as stored (line endings included)."""
    return path.read_bytes().decode("utf-8")


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _headers(lines: Sequence[str]) -> list[int]:
    """Indexes of the table header lines, skipping lines inside multi-line strings."""
    out = []
    inside = False
    for n, line in enumerate(lines):
        if not inside and _HEADER.match(line):
            out.append(n)
        if len(_ML_QUOTES.findall(line.split("#", 1)[0] if not inside else line)) % 2:
            inside = not inside
    return out


def _source_block(lines: list[str], source_id: str) -> tuple[int, int]:
    """The [[source]] table defining `source_id`: from its header line to the next header
    (its own keys; a [source.html] subtable starts after)."""
    headers = _headers(lines)
    for i, start in enumerate(headers):
        if not _SOURCE_HEADER.match(lines[start]):
            continue
        end = headers[i + 1] if i + 1 < len(headers) else len(lines)
        for n in range(start + 1, end):
            m = _ID_LINE.match(lines[n])
            if m and m.group(2) == source_id:
                return start, end
    raise EditError(f"no [[source]] table with id = \"{source_id}\" written as a plain "
                    "`id = \"...\"` line; edit the file by hand")


def _source_tables(text: str) -> list[dict[str, Any]]:
    raw = tomllib.loads(text).get("source", [])
    return raw if isinstance(raw, list) else []


def set_enabled(text: str, source_id: str, enabled: bool) -> str:
    """`text` with `enabled = true|false` set in the [[source]] table of `source_id`: the
    value replaced in place when the line exists, else a line inserted after the `id` line.
    Returns `text` itself when the source already is so."""
    lines = _lines(text)
    start, end = _source_block(lines, source_id)
    value = "true" if enabled else "false"
    done = False
    for n in range(start + 1, end):
        m = _ENABLED_LINE.match(lines[n])
        if m:
            if m.group(2) == value:
                return text
            lines[n] = m.group(1) + value + m.group(3)
            done = True
            break
    if not done:
        if enabled:
            return text  # enabled is the default
        for n in range(start + 1, end):
            m = _ID_LINE.match(lines[n])
            if m and m.group(2) == source_id:
                line = lines[n]
                ending = line[len(line.rstrip("\r\n")):] or _newline(text)
                if not line.endswith(("\n", "\r")):
                    lines[n] = line + ending
                indent = line[:len(line) - len(line.lstrip())]
                lines.insert(n + 1, f"{indent}enabled = {value}{ending}")
                break
    new = "".join(lines)
    _check_only_enabled_changed(text, new, source_id, enabled)
    return new


def _check_only_enabled_changed(old: str, new: str, source_id: str, enabled: bool) -> None:
    try:
        before, after = tomllib.loads(old), tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise EditError(f"the edit would not be valid TOML ({exc}); edit the file by hand") \
            from None
    for table in before.get("source", []):
        if isinstance(table, dict) and table.get("id") == source_id:
            table["enabled"] = enabled
    if before != after:
        raise EditError("the file's layout is too unusual to edit safely; set "
                        f"`enabled = {str(enabled).lower()}` in source {source_id} by hand")


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def toml_string(value: str) -> str:
    """A TOML basic string."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def source_entry(comment: str, fields: Sequence[tuple[str, str | None]]) -> str:
    """A commented [[source]] table; fields with a None value are left out."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines.append("[[source]]")
    lines.extend(f"{name} = {toml_string(value)}" for name, value in fields if value is not None)
    return "\n".join(lines) + "\n"


def append_entries(text: str, entries: Sequence[str]) -> str:
    """`text` untouched, then a blank line and each entry (in the file's line endings)."""
    newline = _newline(text)
    out = text
    if out and not out.endswith(("\n", "\r")):
        out += newline
    for entry in entries:
        if out.strip():
            out += newline
        out += entry.replace("\n", newline)
    return out


def appended_sources(old: str, new: str) -> list[dict[str, Any]]:
    """The [[source]] tables `new` has after those of `old`; raises EditError when `new` is
    not `old` plus appended sources (a guard on append_entries)."""
    try:
        before, after = tomllib.loads(old) if old.strip() else {}, tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise EditError(f"the file is not valid TOML ({exc}); fix it first") from None
    rest_before = {k: v for k, v in before.items() if k != "source"}
    rest_after = {k: v for k, v in after.items() if k != "source"}
    old_sources = before.get("source", [])
    new_sources = after.get("source", [])
    if rest_before != rest_after or new_sources[:len(old_sources)] != old_sources:
        raise EditError("appending to this file would change what it already says (does it "
                        "end inside a table that [[source]] cannot follow?); use --file")
    return list(new_sources[len(old_sources):])


def write_atomic(path: Path, text: str, expected: str | None) -> None:
    """Replace `path` with `text` atomically, keeping its permissions; refused when the file's
    text is no longer `expected` (None: the file must not exist yet)."""
    current = read_text(path) if path.exists() else None
    if current != expected:
        raise EditError(f"{path} changed while it was being edited; nothing written, try again")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        if current is not None:
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def propose_id(title: str | None, host: str, taken: set[str]) -> str:
    """A source id from a title (or else the host name), unique among `taken`."""
    def slug(text: str) -> str:
        ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        words = re.findall(r"[a-z0-9]+", ascii_text.lower())
        out = ""
        for word in words:
            if len(out) + len(word) + 1 > 40:
                break
            out = f"{out}-{word}" if out else word
        return out

    host_words = [w for w in host.lower().split(".") if w not in ("www", "m")]
    base = slug(title or "") or slug(" ".join(host_words)) or "source"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate
