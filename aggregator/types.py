"""Plain data passed between the stages of the pipeline (stdlib only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

SourceKind = Literal["feed", "html"]
DEFAULT_CONTACT = "https://example.invalid/set-contact_url-in-config"
UI_LANGUAGES = ("id", "en")  # languages of our own labels (`[settings] ui_language`)


@dataclass(frozen=True)
class RankSettings:
    """Weights of the ranking score (see README, "Ranking")."""

    half_life_hours: float = 36.0  # age after which the score halves
    views_weight: float = 1.0  # weight of the views term (views against the source's typical)
    growth_weight: float = 4.0  # weight of the growth term (views gained per day, likewise)
    candidates: int = 500  # newest stories considered for /feeds/top
    baseline_days: float = 7.0  # a source's typical values: from its items of these last days
    growth_hours: float = 24.0  # growth: from the samples of these last hours
    max_per_source: int = 10  # at most this many stories led by one source before the others


@dataclass(frozen=True)
class RetentionSettings:
    """How long items stay in the feeds and in the database (see README, "Retention")."""

    feed_max_age: int | None = None  # seconds; older items are left out of every feed
    prune_after: int | None = None  # seconds; older items are deleted (never when None)
    samples_raw_hours: float = 48.0  # every view sample kept this long (at least growth_hours)
    samples_hourly_days: float = 14.0  # then one per hour this long, then one per day
    fetches_per_source: int = 200  # fetch log rows kept per source (the newest)


@dataclass(frozen=True)
class DedupeSettings:
    """When items of different sources are one story (see README, "Deduplication")."""

    window_hours: float = 96.0  # near duplicates: at most this far apart
    title_window_hours: float = 48.0  # items without text: at most this far apart
    prefer_lead: tuple[str, ...] = ()  # agency slugs whose item represents a story, in order
    strong_text_similarity: float = 0.5  # text overlap that outweighs a disagreeing detail
    text_similarity: float = 0.3  # text overlap enough without a disagreeing detail
    text_similarity_with_title: float = 0.2  # text overlap enough with a similar title
    title_similarity: float = 0.5  # what "a similar title" means above
    title_only_similarity: float = 0.6  # neither has text: title similarity needed
    title_cover: float = 0.85  # one has text: share of the other's title words found in it


@dataclass(frozen=True)
class HostSettings:
    """Politeness towards one host: requests at once, and seconds between request starts."""

    concurrency: int | None = None  # None: settings.per_host_concurrency
    spacing: float | None = None  # None: schedule.host_spacing


@dataclass(frozen=True)
class ScheduleSettings:
    """`[settings.schedule]`: the bounds every next poll is clamped to (aggregator/policy.py)."""

    min_interval: int = 300  # seconds: no source is polled more often (unless its interval is)
    max_interval: int = 86400  # seconds: every source is polled at least this often when healthy
    backoff_cap: int = 6 * 3600  # seconds: the longest wait after failures (and Retry-After)
    broken_after: int = 5  # consecutive parse failures that make a source "broken"
    host_spacing: float = 0.0  # seconds between two request starts to one host
    max_host_spacing: float = 60.0  # what 429s can grow a host's spacing to
    shutdown_grace: float = 5.0  # seconds in-flight fetches get after a stop (SIGTERM)
    hosts: dict[str, HostSettings] = field(default_factory=dict)  # per-host overrides


@dataclass(frozen=True)
class Settings:
    database: str = "data/aggregator.db"
    base_url: str = "http://localhost:8080"
    timezone: str = "Asia/Jakarta"
    include: tuple[str, ...] = ()
    title: str = "Berita Pemerintah Daerah"
    description: str = "Berita resmi pemerintah provinsi, kota dan dinas, dalam satu feed."
    language: str = "id"
    ui_language: str = "id"  # labels of our pages and feed titles: "id" or "en"
    websub_hub: str | None = None  # WebSub hub the feeds declare and that is pinged
    contact_url: str = DEFAULT_CONTACT
    default_interval: int = 1800  # seconds
    timeout: float = 20.0  # seconds, whole request
    max_body_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    concurrency: int = 32
    per_host_concurrency: int = 2
    feed_size: int = 50  # entries per published feed
    output_dir: str = "public"
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    parse_workers: int = 0  # 0 = one per CPU
    rank: RankSettings = field(default_factory=RankSettings)
    dedupe: DedupeSettings = field(default_factory=DedupeSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    log_format: str = "text"  # "text" (key=value) or "json" (one JSON object a line)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    admin_token: str | None = None  # admin endpoints on a non-loopback address need it

    @property
    def user_agent(self) -> str:
        from aggregator import __version__

        return f"aggregator/{__version__} (+{self.contact_url})"


@dataclass(frozen=True)
class Region:
    slug: str
    name: str


@dataclass(frozen=True)
class Agency:
    slug: str
    name: str
    region: str
    url: str | None = None


@dataclass(frozen=True)
class FieldSpec:
    """How to read one field of an HTML item: the first element matching `css` inside the item
    (the item itself when empty), its text or an attribute, optionally cut by a regex."""

    css: str = ""
    attr: str = "text"  # "text", "html" (inner HTML) or an attribute name such as "href"
    regex: str | None = None  # keep group 1 (or the whole match) of the first match
    all: bool = False  # every match, joined by ", " (categories)

    def describe(self) -> str:
        out = self.css or "(the item itself)"
        if self.attr != "text":
            out += f" @{self.attr}"
        if self.regex:
            out += f" ~ /{self.regex}/"
        return out


HTML_FIELDS = ("title", "link", "date", "author", "views", "summary", "content", "image",
               "category")


@dataclass(frozen=True)
class ArticleSpec:
    """Fetch each new item's own page to fill fields the listing lacks."""

    fields: dict[str, FieldSpec]
    max_per_poll: int = 10
    root: str = ""  # optional container of the article on its page


@dataclass(frozen=True)
class HtmlSpec:
    item: str  # CSS selector of one item
    fields: dict[str, FieldSpec]
    container: str = ""  # optional: tells "layout changed" from "no items today"
    id: FieldSpec | None = None  # explicit item-id rule
    id_scope: str = ""  # sources sharing a scope share items (same id = same item)
    ignore: str = ""  # elements removed before extraction (icon ligatures, ads)
    date_format: str = ""  # strptime format tried before the general date parser
    language: str = "id"
    next_page: FieldSpec | None = None  # link to the next listing page
    page_template: str = ""  # or a URL template with {page}
    first_page: int = 1
    max_pages: int = 1
    article: ArticleSpec | None = None


@dataclass(frozen=True)
class Rule:
    """Assigns an agency to the items of multi-agency portals. Conditions of different kinds
    must all hold; within one kind, any listed value is enough. Rules are tried in order."""

    agency: str
    sources: tuple[str, ...] = ()  # source id globs; empty: every source
    title: tuple[str, ...] = ()  # words in the title (case-insensitive)
    category: tuple[str, ...] = ()  # category names (case-insensitive)
    url: tuple[str, ...] = ()  # substrings of the item's link
    file: str = ""


@dataclass(frozen=True)
class Source:
    id: str
    kind: SourceKind
    url: str
    agency: str
    interval: int  # seconds
    name: str = ""
    timezone: str | None = None  # None: settings.timezone
    enabled: bool = True
    views_field: str | None = None  # feedparser entry key holding a view count
    html: HtmlSpec | None = None
    file: str = ""  # the config file that declared it
    min_interval: int | None = None  # None: settings.schedule.min_interval (or interval)
    max_interval: int | None = None  # None: settings.schedule.max_interval (or interval)
    adaptive: bool = True  # learn the interval from how often the source publishes

    @property
    def scope(self) -> str:
        """Items are unique per scope: the source id, or a scope shared by a portal's pages."""
        return (self.html.id_scope if self.html and self.html.id_scope else "") or self.id

    @property
    def label(self) -> str:
        return self.name or self.id


@dataclass(frozen=True)
class StoryOverride:
    """An admin's decision about grouping, kept across polls: `merge` puts the items in one
    story; `split` keeps each listed item out of the others' stories. Items are named by their
    link or their item id (as `aggregator stories show` prints them)."""

    action: Literal["merge", "split"]
    items: tuple[str, ...]
    note: str = ""
    file: str = ""


@dataclass(frozen=True)
class Config:
    settings: Settings
    agencies: dict[str, Agency]
    regions: dict[str, Region]
    sources: tuple[Source, ...]
    files: tuple[str, ...]
    rules: tuple[Rule, ...] = ()
    overrides: tuple[StoryOverride, ...] = ()

    def source(self, source_id: str) -> Source | None:
        for s in self.sources:
            if s.id == source_id:
                return s
        return None


# --- fetching ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validators:
    """What we remember of the last good response, to ask conditionally next time."""

    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None


@dataclass(frozen=True)
class SourceState:
    """A source's fetch state as the store remembers it."""

    validators: Validators = Validators()
    failures: int = 0
    warnings: tuple[str, ...] = ()
    schedule: SourceSchedule | None = None


@dataclass(frozen=True)
class SourceSchedule:
    """A source's schedule state (aggregator/policy.py decides it, the store keeps it)."""

    interval: int | None = None  # the (adaptive) interval in use, seconds; None: not learnt yet
    activity: float = 0.0  # new items, exponentially decayed (policy.ACTIVITY_TAU)
    last_success: datetime | None = None  # when `activity` was last updated
    parse_failures: int = 0  # consecutive
    broken_reason: str | None = None  # why it is "broken" (404/410, parse failures), or None
    moved_to: str | None = None  # where a 301/308 says it moved


@dataclass(frozen=True)
class HostState:
    """One host's politeness state, kept across polls and restarts: `level` rises with each
    429 (or 503 with Retry-After) and falls with each success; until `slow_until` the host's
    sources are not fetched."""

    host: str
    level: int = 0
    slow_until: datetime | None = None
    reason: str = ""


@dataclass(frozen=True)
class FetchResult:
    url: str  # the URL asked for
    final_url: str  # after redirects
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes | None  # None on 304
    not_modified: bool  # 304, or the same body hash as last time
    body_hash: str | None
    duration: float
    redirects: int = 0
    moved_to: str | None = None  # where 301/308 redirects (only permanent ones) lead

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")


# --- parsing and normalizing ---------------------------------------------------------------


@dataclass(frozen=True)
class RawItem:
    """What a parser read for one entry, as strings, before any cleanup."""

    guid: str | None = None
    link: str | None = None
    title: str | None = None
    summary: str | None = None  # HTML
    content: str | None = None  # HTML
    author: str | None = None
    published: str | None = None  # the date as written
    updated: str | None = None
    views: str | None = None  # the count as written
    categories: tuple[str, ...] = ()
    image: str | None = None
    id: str | None = None  # from an explicit item-id rule
    problems: tuple[str, ...] = ()  # fields that failed, and why (for preview and drift)


@dataclass(frozen=True)
class ParsedPage:
    items: tuple[RawItem, ...]
    title: str | None = None
    link: str | None = None
    warnings: tuple[str, ...] = ()
    next_url: str | None = None  # pagination
    drift: str | None = None  # the page no longer looks like the config expects
    ttl: int | None = None  # RSS <ttl>: minutes the feed may be cached


@dataclass(frozen=True)
class Item:
    """One normalized item of one source."""

    source_id: str
    key: str  # identity within the source: "guid:...", "link:..." or "hash:..."
    link: str | None  # canonical absolute link
    title: str
    summary: str  # sanitized HTML
    content: str  # sanitized HTML
    author: str | None
    published: datetime  # UTC
    updated: datetime | None  # UTC
    dated_by: Literal["source", "first_seen", "clamped"]
    views: int | None
    categories: tuple[str, ...]
    image: str | None
    content_hash: str  # over what the source said, never views or fetch time
    problems: tuple[str, ...] = ()  # not stored: fields that failed, for preview


@dataclass(frozen=True)
class NormalizedPage:
    items: tuple[Item, ...]
    warnings: tuple[str, ...]
    drift: str | None = None
    fingerprints: tuple[bytes, ...] = ()  # per item, when the parser computed them (dedupe.pack)
    ttl: int | None = None  # RSS <ttl>, minutes


# --- storage and reporting -----------------------------------------------------------------


@dataclass(frozen=True)
class ViewSamples:
    """An item's stored view data as ranking reads it at some time: its latest count then,
    and the samples of the growth window ranking looks at, (at, views) oldest first."""

    latest: int | None
    window: tuple[tuple[datetime, int], ...] = ()

Outcome = Literal["new", "updated", "unchanged", "not_modified", "error", "skipped"]


@dataclass(frozen=True)
class SourceReport:
    source_id: str
    outcome: Outcome
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    status: int | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()
    duration: float = 0.0
    bytes: int = 0


@dataclass(frozen=True)
class FetchRecord:
    """What the store keeps of one fetch attempt."""

    report: SourceReport
    started: datetime
    next_due: datetime
    validators: Validators | None = None
    final_url: str | None = None
    schedule: SourceSchedule | None = None  # None: left as stored


@dataclass(frozen=True)
class StoredItem:
    """An item as read back from the store for publishing and ranking."""

    id: int
    uid: str  # stable public id
    source_id: str
    agency: str
    link: str | None
    title: str
    summary: str
    content: str
    author: str | None
    published: datetime
    updated: datetime
    views: int | None
    categories: tuple[str, ...]
    image: str | None
    story_id: str


@dataclass(frozen=True)
class Story:
    id: str  # stable public id
    items: tuple[StoredItem, ...]  # representative (lead) first, then by date

    @property
    def lead(self) -> StoredItem:
        return self.items[0]

    @property
    def agencies(self) -> tuple[str, ...]:
        seen: list[str] = []
        for it in self.items:
            if it.agency not in seen:
                seen.append(it.agency)
        return tuple(seen)

    @property
    def published(self) -> datetime:
        return min(it.published for it in self.items)

    @property
    def updated(self) -> datetime:
        return max(it.updated for it in self.items)

    @property
    def views(self) -> int | None:
        """The sum over the distinct sources of each one's latest count (a source with two
        items in the story counts its larger one), so a story read on three portals counts
        the readers of all three, and one portal's count is never added twice."""
        per_source: dict[str, int] = {}
        for it in self.items:
            if it.views is not None:
                per_source[it.source_id] = max(per_source.get(it.source_id, 0), it.views)
        return sum(per_source.values()) if per_source else None
