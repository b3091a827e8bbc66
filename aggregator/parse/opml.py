"""OPML (a subscription list from another reader) -> the feeds it lists, parsed safely.

Read with the stdlib's expat parser directly (the only module that does): a document with a
DTD (`<!DOCTYPE`, entity declarations) is refused before any entity could be expanded, so a
hostile file ("billion laughs", external entities) costs nothing and reads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.parsers import expat

from aggregator.errors import ParseError

MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Outline:
    """One subscription: its title, feed URL, site URL, `category` attribute and the titles
    of the outlines it is nested in (readers use them as folders)."""

    title: str
    xml_url: str
    html_url: str | None
    category: str | None
    folders: tuple[str, ...]


class _Refused(Exception):
    pass


def parse_opml(data: bytes) -> list[Outline]:
    """Every outline with an xmlUrl, in document order. Raises ParseError (not OPML,
    ill-formed, or it has a DTD)."""
    if len(data) > MAX_BYTES:
        raise ParseError(f"OPML file is over {MAX_BYTES} bytes")
    parser = expat.ParserCreate()
    out: list[Outline] = []
    stack: list[str | None] = []  # the title of each open element (None: not an outline)
    root: list[str] = []

    def refuse(*args: object) -> None:
        raise _Refused("the file has a DTD or entity declarations, which OPML does not need; "
                       "refused (they can be used to attack the parser)")

    def start(name: str, attrs: dict[str, str]) -> None:
        if not root:
            root.append(name)
        if name != "outline":
            stack.append(None)
            return
        title = (attrs.get("title") or attrs.get("text") or "").strip()
        url = (attrs.get("xmlUrl") or attrs.get("xmlurl") or "").strip()
        if url:
            folders = tuple(t for t in stack if t)
            out.append(Outline(title, url, (attrs.get("htmlUrl") or "").strip() or None,
                               (attrs.get("category") or "").strip() or None, folders))
        stack.append(title if not url else None)

    def end(name: str) -> None:
        stack.pop()

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except _Refused as exc:
        raise ParseError(str(exc)) from None
    except expat.ExpatError as exc:
        raise ParseError(f"not well-formed XML: {exc}") from None
    if root != ["opml"]:
        raise ParseError(f"not an OPML file (its root element is <{root[0] if root else ''}>,"
                         " not <opml>)")
    return out
