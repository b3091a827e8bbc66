"""Canonical URLs: absolute, lower-case scheme and host, no default port, no fragment, no
tracking parameters. `canonical_url` is idempotent (tested with Hypothesis)."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit, urlunsplit

# Query parameters that only track the reader; removed from every link we store or publish.
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
    "igshid", "igsh", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok",
    "oly_anon_id", "oly_enc_id", "vero_id", "rb_clickid", "s_cid", "wt_mc", "__twitter_impression",
    "at_medium", "at_campaign", "ref_src", "ref_url", "spm", "share", "amp",
})
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hmb_", "ga_")
DEFAULT_PORTS = {"http": 80, "https": 443}
_WS = re.compile(r"\s+")
_ABSOLUTE = re.compile(r"https?://", re.I)


def _is_tracking(pair: str) -> bool:
    name = pair.split("=", 1)[0].lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


def canonical_url(url: str, base: str | None = None) -> str | None:
    """The canonical absolute form of `url` (resolved against `base`), or None when it is not
    an http(s) URL with a host."""
    url = _WS.sub("", url or "")
    if not url:
        return None
    if base and not _ABSOLUTE.match(url):
        try:
            url = urljoin(base, url)
        except ValueError:
            return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if not host:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    path = parts.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    if "/." in path:
        path = _remove_dot_segments(path)
    query = "&".join(p for p in parts.query.split("&") if p and not _is_tracking(p))
    return urlunsplit((scheme, netloc, path, query, ""))


def _remove_dot_segments(path: str) -> str:
    if "." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
            continue
        if seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
            continue
        out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def absolute_url(url: str | None, base: str) -> str | None:
    """`url` resolved against `base`, keeping everything else as written (for images)."""
    if not url or not url.strip():
        return None
    url = url.strip()
    if _ABSOLUTE.match(url):
        return url
    try:
        full = urljoin(base, url)
    except ValueError:
        return None
    return full if urlsplit(full).scheme in DEFAULT_PORTS else None
