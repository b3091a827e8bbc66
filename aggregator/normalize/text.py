"""Text cleanup and HTML sanitizing (the nh3 adapter: the only module that imports nh3).

Republished HTML keeps structure and images but loses scripts, styles, event attributes,
`javascript:`/`data:` links and unknown tags; relative `href`/`src` are made absolute.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import nh3

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl",
    "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u", "ul",
}
_ALLOWED_ATTRS = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "time": {"datetime"},
}
_SCHEMES = {"http", "https", "mailto"}
_URL_ATTR = re.compile(r'(\s(?:href|src|cite)=")([^"]*)(")')
_TAG = re.compile(r"<[^>]*>")
_WS = re.compile(r"\s+")


def sanitize_html(fragment: str | None, base_url: str) -> str:
    """Safe HTML for republishing; relative links resolved against `base_url`."""
    if not fragment or not fragment.strip():
        return ""
    if "<" not in fragment:  # plain text (an excerpt): no markup to clean, only to escape
        return html.escape(html.unescape(fragment), quote=False).strip()
    cleaned = nh3.clean(
        fragment,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRS,
        url_schemes=_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )

    def absolute(m: re.Match[str]) -> str:
        value = html.unescape(m.group(2))
        if re.match(r"^[a-z][a-z0-9+.-]*:", value, re.I):
            return m.group(0)
        try:
            full = urljoin(base_url, value)
        except ValueError:
            return m.group(1) + m.group(3)
        return m.group(1) + html.escape(full, quote=True) + m.group(3)

    return _URL_ATTR.sub(absolute, cleaned).strip()


def plain_text(fragment: str | None) -> str:
    """Markup-free, entity-decoded, whitespace-collapsed text (titles, authors, excerpts)."""
    if not fragment:
        return ""
    if "<" in fragment:
        fragment = nh3.clean(fragment, tags=set(), clean_content_tags={"script", "style"})
        fragment = _TAG.sub(" ", fragment)
    return _WS.sub(" ", html.unescape(fragment)).strip()


def excerpt(fragment: str | None, limit: int = 300) -> str:
    text = plain_text(fragment)
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + "…"
