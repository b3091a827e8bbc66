"""Which documents the service publishes, and what goes in each: the data side of publishing.
Reads the store, ranks, and hands plain FeedDocs to `publish` to render."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import datetime

from aggregator.normalize.text import plain_text
from aggregator.publish import (
    EPOCH,
    Entry,
    FeedDoc,
    FeedRenderer,
    Rendered,
    render_index,
    render_opml,
)
from aggregator.publish.labels import labels
from aggregator.rank import ScoreParts, baselines, cap, item_views, score_stories
from aggregator.retention import feed_horizon
from aggregator.store import Store
from aggregator.store.views import ViewReader
from aggregator.types import Config, StoredItem, Story

Site = dict[str, Rendered]


def fresh(stories: list[Story], horizon: datetime | None) -> list[Story]:
    """The stories first published at or after the feeds' age limit (`[settings.retention]
    feed_max_age`); `stories` come newest first, so this is the newest that remain."""
    if horizon is None:
        return stories
    return [st for st in stories if st.published >= horizon]

# The same summaries come back at every render (a feed shows the newest 50 items); their
# plain text (sanitizer) is about a quarter of building the entries.
_plain_text = functools.lru_cache(maxsize=20_000)(plain_text)


class SiteBuilder:
    def __init__(self, config: Config, store: Store, renderer: FeedRenderer | None = None
                 ) -> None:
        """`renderer`: keep one across builds (the daemon does) so that feeds whose content
        did not change are not rendered again."""
        self.config = config
        self.store = store
        self.s = config.settings
        self.labels = labels(config.settings.ui_language)
        self.renderer = renderer or FeedRenderer()

    # --- entries ----------------------------------------------------------------------------

    def _agency_names(self, slug: str) -> tuple[str, str, str]:
        """The agency's name, its region's name and slug ("" when the agency is unknown)."""
        agency = self.config.agencies.get(slug)
        if agency is None:
            return slug, "", ""
        region = self.config.regions.get(agency.region)
        return agency.name, region.name if region else agency.region, agency.region

    def item_entry(self, item: StoredItem, entry_id: str | None = None,
                   also: tuple[str, ...] = (), also_links: tuple[str | None, ...] = (),
                   views: int | None = None,
                   updated: datetime | None = None, score: float | None = None) -> Entry:
        agency_name, region_name, region_slug = self._agency_names(item.agency)
        source = self.config.source(item.source_id)
        return Entry(
            id=entry_id or f"urn:uuid:{item.uid}",
            title=item.title,
            link=item.link,
            published=item.published,
            updated=max(updated or item.updated, item.published),
            author=item.author,
            summary=item.summary,
            content=item.content,
            categories=item.categories,
            agency_slug=item.agency,
            agency_name=agency_name,
            region_name=region_name,
            source_id=item.source_id,
            source_name=source.label if source else item.source_id,
            source_url=source.url if source else self.s.base_url + "/",
            views=item.views if views is None else views,
            image=item.image,
            also_published_by=also,
            also_links=also_links,
            score=score,
            summary_text=_plain_text(item.summary),
            source_is_feed=source.kind == "feed" if source else False,
            region_slug=region_slug,
        )

    def story_entry(self, story: Story, score: float | None = None) -> Entry:
        lead = story.lead
        others: dict[str, str | None] = {}  # agency -> the link of its first copy
        for it in story.items:
            if it.agency != lead.agency and not others.get(it.agency):
                others[it.agency] = it.link
        also = tuple(self._agency_names(a)[0] for a in others)
        return self.item_entry(lead, f"urn:uuid:{story.id}", also, tuple(others.values()),
                               story.views, story.updated, score)

    # --- documents --------------------------------------------------------------------------

    def _doc(self, path: str, title: str, description: str, entries: list[Entry]) -> FeedDoc:
        return FeedDoc(path, title, description, self.s.base_url + "/", self.s.base_url,
                       self.s.language, tuple(entries), self.s.ui_language, self.s.websub_hub)

    def ranked(self, now: datetime, agency: str | None = None,
               limit: int | None = None) -> list[tuple[Story, ScoreParts]]:
        """The top stories at `now`: the newest `rank.candidates` scored against each
        source's baseline (its items of the last `rank.baseline_days`), best first, with at
        most `rank.max_per_source` stories led by one source ahead of the others."""
        settings = self.s.rank
        agencies = [agency] if agency else None
        candidates = fresh(self.store.recent_stories(settings.candidates, agencies),
                           feed_horizon(now, self.s.retention))
        reader = ViewReader(self.store.db.conn)
        population = reader.baseline_items(now, settings.baseline_days)
        ids = {i for ids in population.values() for i in ids}
        ids.update(it.id for story in candidates for it in story.items)
        views = {i: item_views(stored, now, settings)
                 for i, stored in reader.samples(ids, now, settings.growth_hours).items()}
        base = baselines({source: [views[i] for i in item_ids]
                          for source, item_ids in population.items()})
        scored = score_stories(candidates, now, settings, views, base)
        return cap(scored, limit or self.s.feed_size, settings.max_per_source)

    def search(self, words: str, agencies: list[str] | None, since: datetime | None,
               limit: int, query: str) -> FeedDoc:
        """A search feed: stories with all of `words`, newest first. `query` is the request's
        query string, part of the feed's own URL."""
        stories = self.store.search_stories(words, agencies, since, limit)
        doc = self._doc("feeds/search", f"{self.s.title}: "
                        + self.labels.search_title.format(words=words),
                        self.labels.search_about.format(words=words),
                        [self.story_entry(st) for st in stories])
        return replace(doc, query=query)

    def build(self, now: datetime) -> Site:
        s, lab = self.s, self.labels
        horizon = feed_horizon(now, s.retention)
        combined = [
            self._doc("feeds/all", f"{s.title}: {lab.newest}", lab.newest_about,
                      [self.story_entry(st) for st in fresh(
                          self.store.recent_stories(s.feed_size), horizon)]),
            self._doc("feeds/top", f"{s.title}: {lab.top}", lab.top_about,
                      [self.story_entry(st, parts.score) for st, parts in self.ranked(now)]),
        ]
        agency_docs = [
            self._doc(f"feeds/agency/{a.slug}", a.name, lab.agency_about.format(name=a.name),
                      [self.item_entry(it) for it in self.store.agency_items(a.slug,
                                                                           s.feed_size)
                       if horizon is None or it.published >= horizon])
            for a in sorted(self.config.agencies.values(), key=lambda a: a.name)
        ]
        region_docs = []
        for region in sorted(self.config.regions.values(), key=lambda r: r.name):
            members = [a.slug for a in self.config.agencies.values() if a.region == region.slug]
            if not members:
                continue
            stories = fresh(self.store.recent_stories(s.feed_size, members), horizon)
            region_docs.append(self._doc(f"feeds/region/{region.slug}",
                                         lab.region_title.format(name=region.name),
                                         lab.region_about.format(name=region.name),
                                         [self.story_entry(st) for st in stories]))
        site: Site = {rendered.path: rendered for rendered in
                      self.renderer.render([*combined, *agency_docs, *region_docs])}
        groups = [(lab.agencies, agency_docs), (lab.regions, region_docs)]
        updated = max((d.updated for d in (*combined, *agency_docs, *region_docs)),
                      default=EPOCH)
        opml = render_opml(s.title, [(lab.combined, combined), *groups], updated)
        site["/opml"] = Rendered("/opml", opml, "text/x-opml; charset=utf-8", updated)
        index = render_index(s.title, s.description, combined[1].entries[:20], combined,
                             groups, s.base_url + "/opml", lab)
        site["/"] = Rendered("/", index, "text/html; charset=utf-8", updated)
        return site
