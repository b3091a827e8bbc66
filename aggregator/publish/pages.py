"""The HTML index page: top stories, every feed with subscribe links, autodiscovery.
Works without JavaScript and reads well on a phone."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from aggregator.publish.model import Entry, FeedDoc

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:0 auto;padding:1rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
ol,ul{padding-left:1.2rem}li{margin:.4rem 0}.meta{color:#666;font-size:.85rem}
a{color:#0645ad}.feeds a{margin-right:.5rem;font-size:.85rem}
"""


def _feed_links(doc: FeedDoc) -> str:
    links = " ".join(f'<a href="{escape(doc.url(ext))}">{label}</a>'
                     for ext, label in (("rss", "RSS"), ("atom", "Atom"), ("json", "JSON")))
    return f'<span class="feeds">{links}</span>'


def render_index(title: str, description: str, top: Sequence[Entry],
                 combined: Sequence[FeedDoc], groups: Sequence[tuple[str, Sequence[FeedDoc]]],
                 opml_url: str, language: str) -> bytes:
    head_links = "\n".join(
        f'<link rel="alternate" type="application/{kind}" title="{escape(doc.title)}" '
        f'href="{escape(doc.url(ext))}">'
        for doc in combined
        for ext, kind in (("rss", "rss+xml"), ("atom", "atom+xml"), ("json", "feed+json")))
    stories = "\n".join(
        f'<li><a href="{escape(e.link or "#")}">{escape(e.title)}</a><br>'
        f'<span class="meta">{escape(e.agency_name)} · '
        f'{e.published.strftime("%d-%m-%Y %H:%M")} UTC'
        + (f" · {e.views} kali dilihat" if e.views is not None else "")
        + "</span></li>"
        for e in top)
    feeds = "\n".join(f"<li>{escape(d.title)} {_feed_links(d)}</li>" for d in combined)
    sections = []
    for group_title, docs in groups:
        rows = "\n".join(f"<li>{escape(d.title)} {_feed_links(d)}</li>" for d in docs)
        sections.append(f"<h2>{escape(group_title)}</h2>\n<ul>\n{rows}\n</ul>")
    page = f"""<!DOCTYPE html>
<html lang="{escape(language)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
{head_links}
<style>{_STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p>{escape(description)}</p>
<h2>Berita teratas</h2>
<ol>
{stories or "<li>Belum ada berita.</li>"}
</ol>
<h2>Feed gabungan</h2>
<ul>
{feeds}
<li><a href="{escape(opml_url)}">OPML: semua feed sekaligus</a></li>
</ul>
{chr(10).join(sections)}
</body>
</html>
"""
    return page.encode()
