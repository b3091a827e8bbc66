"""HTML listing and article pages -> raw items, by declarative selectors (the selectolax
adapter: the only module importing selectolax).

The page is parsed by lexbor, an HTML5 parser, so malformed real-world markup (unclosed tags,
`<ol>` closed by `</ul>`, nested `<p>`) becomes the tree a browser would build. Selectors are
CSS plus `:contains("text")`, which matches elements whose own text contains `text` (so
`span:has(i:contains("access_time"))` is the span that an `access_time` icon names).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from aggregator.errors import ParseError
from aggregator.types import ArticleSpec, FieldSpec, HtmlSpec, ParsedPage, RawItem

_CONTAINS = re.compile(r":contains\(")
_CHARSET_HEADER = re.compile(r"charset=[\"']?([\w:.-]+)", re.I)
_CHARSET_META = re.compile(rb"<meta[^>]+charset=[\"']?([\w:.-]+)", re.I)
_WS = re.compile(r"\s+")
_EMPTY_DOC = LexborHTMLParser("<html><body><div></div></body></html>")


@functools.lru_cache(maxsize=1024)
def _css(selector: str) -> str:
    return _CONTAINS.sub(":lexbor-contains(", selector)


def selector_problem(selector: str) -> str | None:
    """Why a selector cannot be used, or None. Used by `aggregator check`."""
    if not selector.strip():
        return "is empty"
    try:
        _EMPTY_DOC.css(_css(selector))
    except (SelectolaxError, ValueError) as exc:
        return f"selector '{selector}' does not parse ({exc})"
    return None


def decode(body: bytes, headers: Mapping[str, str]) -> str:
    """Bytes -> text: the charset from Content-Type, else a <meta> charset, else UTF-8."""
    charset = None
    match = _CHARSET_HEADER.search(headers.get("content-type", ""))
    if match:
        charset = match.group(1)
    else:
        meta = _CHARSET_META.search(body[:4096])
        if meta:
            charset = meta.group(1).decode("ascii", "replace")
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return body.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("utf-8", errors="replace")


def _text(node: Any) -> str:
    return _WS.sub(" ", node.text(deep=True, separator=" ", strip=True)).strip()


def _without(node: Any, ignore: str) -> Any:
    """A copy of `node` without the descendants matching `ignore` (icon ligatures, ads)."""
    if not ignore or not node.css_first(_css(ignore)):
        return node
    copy = node.clone()
    for child in copy.css(_css(ignore)):
        child.decompose()
    return copy


def _targets(node: Any, spec: FieldSpec) -> list[Any]:
    if not spec.css:
        return [node]
    if spec.all:
        return list(node.css(_css(spec.css)))
    first = node.css_first(_css(spec.css))
    return [] if first is None else [first]


def _values(targets: list[Any], spec: FieldSpec, ignore: str) -> tuple[str | None, str | None]:
    if not targets:
        return None, f"selector '{spec.css}' matched nothing"
    values: list[str] = []
    for target in targets:
        if spec.attr == "text":
            value = _text(_without(target, ignore))
        elif spec.attr == "html":
            value = _without(target, ignore).inner_html or ""
        else:
            value = (target.attributes.get(spec.attr) or "").strip()
        if spec.regex:
            match = re.search(spec.regex, value)
            if match is None:
                if spec.all:
                    continue
                return None, f"/{spec.regex}/ did not match '{value[:60]}'"
            value = match.group(1) if match.groups() else match.group(0)
        if value:
            values.append(value)
    if not values:
        what = "text" if spec.attr == "text" else f"@{spec.attr}"
        return None, f"{what} of '{spec.describe()}' is empty"
    return (", ".join(dict.fromkeys(values)) if spec.all else values[0]), None


def extract(node: Any, spec: FieldSpec, ignore: str = "") -> tuple[str | None, str | None]:
    """One field from one element: (value, None) or (None, why it failed)."""
    return _values(_targets(node, spec), spec, ignore)


def _tree(body: bytes, headers: Mapping[str, str]) -> Any:
    try:
        return LexborHTMLParser(decode(body, headers))
    except Exception as exc:  # lexbor parses anything; guard the adapter border anyway
        raise ParseError(f"HTML parser failed: {exc}") from exc


def _raw_item(values: dict[str, str | None], problems: list[str], item_id: str | None
              ) -> RawItem:
    categories = tuple(c.strip() for c in (values.get("category") or "").split(",") if c.strip())
    return RawItem(
        guid=None,
        link=values.get("link"),
        title=values.get("title"),
        summary=values.get("summary"),
        content=values.get("content"),
        author=values.get("author"),
        published=values.get("date"),
        views=values.get("views"),
        categories=categories,
        image=values.get("image"),
        id=item_id,
        problems=tuple(problems),
    )


def parse_listing(body: bytes, headers: Mapping[str, str], spec: HtmlSpec) -> ParsedPage:
    """A listing page -> one raw item per `spec.item` element, with each field's problems."""
    tree = _tree(body, headers)
    root = tree.root if tree.root is not None else tree.body
    title_node = tree.css_first("title")
    page_title = _text(title_node) if title_node is not None else None
    if spec.container and tree.css_first(_css(spec.container)) is None:
        return ParsedPage((), page_title, drift=f"container '{spec.container}' not found: "
                                                f"the page layout has changed")
    nodes = tree.css(_css(spec.item))
    items: list[RawItem] = []
    fields = list(spec.fields.items())
    if spec.id is not None:
        fields.append(("id", spec.id))
    ignore = _css(spec.ignore) if spec.ignore else ""
    for node in nodes:
        # find every field's elements first (selectors may need the ignored elements, as in
        # span:has(i:contains("access_time"))), then drop the ignored elements of this item
        # once, then read the values
        targets = [(name, field, _targets(node, field)) for name, field in fields]
        if ignore:
            for child in node.css(ignore):
                child.decompose()
        values: dict[str, str | None] = {}
        problems: list[str] = []
        for name, field, found in targets:
            value, problem = _values(found, field, "")
            values[name] = value
            if problem:
                suffix = "; the link is used instead" if name == "id" else ""
                problems.append(f"{name}: {problem}{suffix}")
        item_id = values.pop("id", None)
        items.append(_raw_item(values, problems, item_id))
    next_url = None
    if spec.next_page is not None and root is not None:
        next_url, _ = extract(root, spec.next_page)
    drift = None
    warnings: tuple[str, ...] = ()
    if not nodes:
        if spec.container:
            warnings = (f"no items under '{spec.container}' today",)
        else:
            drift = f"item selector '{spec.item}' matched nothing: the page layout has changed"
    return ParsedPage(tuple(items), page_title, warnings=warnings, next_url=next_url,
                      drift=drift)


def parse_article(body: bytes, headers: Mapping[str, str], spec: ArticleSpec,
                  ignore: str = "") -> tuple[dict[str, str], list[str]]:
    """An article's own page -> the fields found on it, and the problems of the others."""
    tree = _tree(body, headers)
    root = tree.css_first(_css(spec.root)) if spec.root else (tree.root or tree.body)
    if root is None:
        return {}, [f"article root '{spec.root}' not found"]
    found: dict[str, str] = {}
    problems: list[str] = []
    for name, field in spec.fields.items():
        value, problem = extract(root, field, ignore)
        if value is not None:
            found[name] = value
        elif problem:
            problems.append(f"article {name}: {problem}")
    return found, problems


FEED_TYPES = {"application/rss+xml": "rss", "application/atom+xml": "atom",
              "application/feed+json": "json"}
_NOT_MAIN = re.compile(r"koment|comment|tanggapan", re.I)


def discover_feeds(body: bytes, headers: Mapping[str, str], url: str
                   ) -> list[tuple[str, str, str]]:
    """The feeds a page announces with `<link rel="alternate" type="application/rss+xml">`
    (or atom+xml, feed+json): (absolute URL, "rss"/"atom"/"json", title), the page's main
    feed first (comment feeds last), each URL once. Relative hrefs are resolved against the
    page's `<base href>` or its URL."""
    tree = _tree(body, headers)
    base = url
    for node in tree.css("base[href]"):
        base = urljoin(url, (node.attributes.get("href") or "").strip())
        break
    found: list[tuple[str, str, str]] = []
    for node in tree.css("link[href]"):
        attrs = node.attributes
        rel = (attrs.get("rel") or "").lower().split()
        kind = FEED_TYPES.get((attrs.get("type") or "").split(";")[0].strip().lower())
        href = (attrs.get("href") or "").strip()
        if "alternate" not in rel or kind is None or not href:
            continue
        link = urljoin(base, href)
        if link.startswith(("http://", "https://")) and all(link != f[0] for f in found):
            found.append((link, kind, _WS.sub(" ", attrs.get("title") or "").strip()))
    return sorted(found, key=lambda f: bool(_NOT_MAIN.search(f[2] + " " + f[0])))
