"""The HTML pages: the index (top stories, every feed with subscribe links) and the source
status page. Both carry feed autodiscovery, work without JavaScript and read well on a phone;
their labels are Indonesian or English (`labels.py`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from aggregator.publish.labels import Labels
from aggregator.publish.model import Entry, FeedDoc

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:0 auto;padding:1rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
ol,ul{padding-left:1.2rem}li{margin:.4rem 0}.meta{color:#666;font-size:.85rem}
a{color:#0645ad}.feeds a{display:inline-block;margin-right:.6rem;padding:.1rem 0;font-size:.85rem}
table{border-collapse:collapse;display:block;overflow-x:auto}td,th{padding:.2rem .5rem;
text-align:left;vertical-align:top}.failing,.drifting,.broken{color:#b00}
"""
_KINDS = (("rss", "application/rss+xml", "RSS"), ("atom", "application/atom+xml", "Atom"),
          ("json", "application/feed+json", "JSON"))


def autodiscovery(feeds: Sequence[tuple[str, str]]) -> str:
    """`<link rel="alternate">` for each (title, URL without extension) in every format."""
    return "\n".join(
        f'<link rel="alternate" type="{kind}" title="{escape(title)} ({label})" '
        f'href="{escape(url)}.{ext}">'
        for title, url in feeds for ext, kind, label in _KINDS)


def _page(title: str, labels: Labels, head: str, body: str) -> bytes:
    return f"""<!DOCTYPE html>
<html lang="{labels.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
{head}
<style>{_STYLE}</style>
</head>
<body>
{body}
</body>
</html>
""".encode()


def _feed_links(doc: FeedDoc, labels: Labels) -> str:
    links = " ".join(f'<a href="{escape(doc.url(ext))}" type="{kind}">{label}</a>'
                     for ext, kind, label in _KINDS)
    return f'<span class="feeds" aria-label="{escape(labels.subscribe)}">{links}</span>'


def _base(doc: FeedDoc) -> str:
    return f"{doc.base_url}/{doc.path}"


def render_index(title: str, description: str, top: Sequence[Entry],
                 combined: Sequence[FeedDoc], groups: Sequence[tuple[str, Sequence[FeedDoc]]],
                 opml_url: str, labels: Labels) -> bytes:
    head = autodiscovery([(d.title, _base(d)) for d in combined])
    stories = "\n".join(
        f'<li><a href="{escape(e.link or "#")}">{escape(e.title)}</a><br>'
        f'<span class="meta">{escape(e.agency_name)} · '
        f'<time datetime="{e.published.isoformat()}">'
        f'{e.published.strftime("%d-%m-%Y %H:%M")} UTC</time>'
        + (" · " + labels.views.format(n=e.views) if e.views is not None else "")
        + "</span></li>"
        for e in top)
    feeds = "\n".join(f"<li>{escape(d.title)} {_feed_links(d, labels)}</li>" for d in combined)
    sections = []
    for group_title, docs in groups:
        rows = "\n".join(f"<li>{escape(d.title)} {_feed_links(d, labels)}</li>" for d in docs)
        sections.append(f"<h2>{escape(group_title)}</h2>\n<ul>\n{rows}\n</ul>")
    body = f"""<h1>{escape(title)}</h1>
<p>{escape(description)}</p>
<h2>{escape(labels.top_stories)}</h2>
<ol>
{stories or f"<li>{escape(labels.no_stories)}</li>"}
</ol>
<h2>{escape(labels.combined)}</h2>
<ul>
{feeds}
<li><a href="{escape(opml_url)}" type="text/x-opml">{escape(labels.opml)}</a></li>
</ul>
{chr(10).join(sections)}"""
    return _page(title, labels, head, body)


def _when(value: str | None) -> str:
    """A stored UTC time, shortened for a table: 2026-11-27 01:38:12Z."""
    if not value:
        return "-"
    return escape(value.replace("T", " ")[:19] + "Z")


def render_status(rows: Sequence[Mapping[str, Any]], labels: Labels,
                  feeds: Sequence[tuple[str, str]], banner: Sequence[str] = ()) -> bytes:
    """The source health page (`/status`): one row per source, in the order given (those
    that need the admin first); each source id links to its detail page `/status/{id}`;
    `feeds` for autodiscovery; `banner`: lines shown first, in a box (the config on disk is
    invalid, needs a restart)."""
    def error(r: Mapping[str, Any]) -> str:
        if not r.get("last_error"):
            return ""
        return (f"{escape(r['last_error'])}<br><span class='meta'>"
                f"{_when(r.get('last_error_at'))}</span>")

    cells = "".join(
        f"<tr><td><a href='/status/{quote(str(r['id']), safe='')}'>{escape(r['id'])}</a></td>"
        f"<td class='{escape(_css(r['state']))}'>{escape(r['state'])}</td>"
        f"<td>{r['item_count']}</td><td>{r.get('new_per_day', 0):g}</td>"
        f"<td>{_when(r['last_success_at'])}</td><td>{error(r)}</td>"
        f"<td>{_when(r['next_due_at'])}</td></tr>" for r in rows)
    header = "".join(f"<th>{escape(c)}</th>" for c in labels.status_columns)
    body = (f"<h1>{escape(labels.source_status)}</h1>\n"
            f"<table><tr>{header}</tr>{cells}</table>")
    if banner:
        lines = "".join(f"<li>{escape(line)}</li>" for line in banner[1:])
        body = (f"<div class='config-error' role='alert' style='border:2px solid #b00;"
                f"padding:0 1em;margin-bottom:1em'><p><strong>{escape(banner[0])}</strong>"
                f"</p>{f'<ul>{lines}</ul>' if lines else ''}</div>\n" + body)
    return _page(labels.source_status, labels, autodiscovery(feeds), body)


def render_source(row: Mapping[str, Any], fetches: Sequence[Mapping[str, Any]],
                  labels: Labels) -> bytes:
    """One source's detail page (`/status/{id}`): its state and the last fetches."""
    facts = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(_text(v))}</td></tr>"
                    for k, v in row.items())
    cells = "".join(
        f"<tr><td>{_when(f['started_at'])}</td>"
        f"<td class='{escape(_css(f['outcome']))}'>{escape(f['outcome'])}</td>"
        f"<td>{f['status'] or '-'}</td><td>{f['duration']:.2f}</td><td>{f['bytes']}</td>"
        f"<td>{f['new']}</td><td>{f['updated']}</td><td>{escape(f['error'] or '')}</td></tr>"
        for f in fetches)
    header = "".join(f"<th>{escape(c)}</th>" for c in labels.fetch_columns)
    title = f"{labels.source_status}: {row['id']}"
    body = (f"<h1>{escape(title)}</h1>\n<p><a href='/status'>{escape(labels.source_status)}"
            f"</a></p>\n<table>{facts}</table>\n<h2>{escape(labels.recent_fetches)}</h2>\n"
            f"<table><tr>{header}</tr>{cells}</table>")
    return _page(title, labels, "", body)


def _css(state: str) -> str:
    return "failing" if state in ("broken", "error") else state.replace(" ", "-")


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value) or "-"
    return str(value)
