"""The words our pages and feed titles use, in Indonesian (the default) or English
(`[settings] ui_language`). Only our own labels: the news itself stays as published."""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.types import UI_LANGUAGES

__all__ = ["ENGLISH", "INDONESIAN", "UI_LANGUAGES", "Labels", "labels"]


@dataclass(frozen=True)
class Labels:
    lang: str
    newest: str  # suffix of the combined newest feed's title
    newest_about: str
    top: str
    top_about: str
    agency_about: str  # "{name}"
    region_title: str  # "{name}"
    region_about: str  # "{name}"
    agencies: str
    regions: str
    combined: str
    top_stories: str
    no_stories: str
    views: str  # "{n}"
    also_published_by: str
    opml: str
    subscribe: str
    source_status: str
    status_columns: tuple[str, ...]
    fetch_columns: tuple[str, ...]
    recent_fetches: str
    not_found: str  # "{path}"
    did_you_mean: str  # "{url}"
    known_feeds: str
    search_title: str  # "{words}"
    search_about: str  # "{words}"


INDONESIAN = Labels(
    lang="id",
    newest="terbaru",
    newest_about="Berita terbaru dari semua instansi, tiap berita sekali.",
    top="terpopuler",
    top_about="Berita teratas menurut jumlah pembaca dan kebaruan.",
    agency_about="Berita dari {name}.",
    region_title="Wilayah {name}",
    region_about="Berita dari instansi di {name}.",
    agencies="Instansi",
    regions="Wilayah",
    combined="Feed gabungan",
    top_stories="Berita teratas",
    no_stories="Belum ada berita.",
    views="{n} kali dilihat",
    also_published_by="Juga dipublikasikan oleh",
    opml="OPML: semua feed sekaligus",
    subscribe="Langganan",
    source_status="Status sumber",
    status_columns=("Sumber", "Status", "Item", "Baru/hari", "Terakhir berhasil",
                    "Galat terakhir", "Berikutnya"),
    fetch_columns=("Mulai", "Hasil", "HTTP", "Durasi (s)", "Bita", "Baru", "Berubah",
                   "Galat"),
    recent_fetches="20 pengambilan terakhir",
    not_found="404: tidak ada feed di {path}.",
    did_you_mean="Mungkin maksud Anda: {url}",
    known_feeds="Semua feed yang diterbitkan ada di /opml dan di halaman /.",
    search_title="Pencarian: {words}",
    search_about="Berita yang memuat {words}, terbaru dahulu.",
)

ENGLISH = Labels(
    lang="en",
    newest="newest",
    newest_about="The newest news of every agency, each story once.",
    top="top",
    top_about="The top stories by readers and recency.",
    agency_about="News from {name}.",
    region_title="Region {name}",
    region_about="News from the agencies of {name}.",
    agencies="Agencies",
    regions="Regions",
    combined="Combined feeds",
    top_stories="Top stories",
    no_stories="No stories yet.",
    views="{n} views",
    also_published_by="Also published by",
    opml="OPML: every feed at once",
    subscribe="Subscribe",
    source_status="Source status",
    status_columns=("Source", "State", "Items", "New/day", "Last success", "Last error",
                    "Next poll"),
    fetch_columns=("Started", "Outcome", "HTTP", "Duration (s)", "Bytes", "New", "Updated",
                   "Error"),
    recent_fetches="The last 20 fetches",
    not_found="404: no feed at {path}.",
    did_you_mean="Did you mean: {url}",
    known_feeds="Every published feed is listed at /opml and on /.",
    search_title="Search: {words}",
    search_about="Stories with {words}, newest first.",
)


def labels(lang: str) -> Labels:
    """The labels of `lang` ("id" or "en"; the config rejects anything else)."""
    return ENGLISH if lang == "en" else INDONESIAN
