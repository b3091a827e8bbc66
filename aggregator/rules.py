"""Which agency an item belongs to (pure). A multi-agency portal's items are assigned by the
config's [[rule]]s (by source, title words, category or link); otherwise the source's agency.

A rule's assignment outranks a source default, so an article that the portal's "latest" page
and a region page both show keeps the agency the region page or a title rule gave it."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from aggregator.types import Item, Rule, Source

RULE_PRIORITY = 2
SOURCE_PRIORITY = 1


def _any_in(needles: Sequence[str], haystack: str) -> bool:
    low = haystack.casefold()
    return any(n.casefold() in low for n in needles)


def rule_matches(rule: Rule, item: Item, source: Source) -> bool:
    if rule.sources and not any(fnmatch.fnmatchcase(source.id, g) for g in rule.sources):
        return False
    if rule.title and not _any_in(rule.title, item.title):
        return False
    if rule.category and not any(c.casefold() == cat.casefold()
                                 for c in rule.category for cat in item.categories):
        return False
    return not (rule.url and not _any_in(rule.url, item.link or ""))


def assign_agency(item: Item, source: Source, rules: Sequence[Rule]) -> tuple[str, int]:
    """(agency slug, priority): the first matching rule, else the source's own agency."""
    for rule in rules:
        if rule_matches(rule, item, source):
            return rule.agency, RULE_PRIORITY
    return source.agency, SOURCE_PRIORITY
