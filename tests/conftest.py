"""Shared fixtures: the fake government portal on 127.0.0.1 (see tests/portal.py).

Only loopback is ever contacted: every source URL points at the portal on 127.0.0.1, and
`base_url` uses the reserved `.test` domain, which nothing fetches.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # `tests.portal` importable however pytest was started
    sys.path.insert(0, _ROOT)

from tests.portal import Portal, serve_standard_feeds  # noqa: E402


@pytest.fixture
def portal() -> Iterator[Portal]:
    with Portal() as p:
        yield p


@pytest.fixture
def standard_portal(portal: Portal) -> Portal:
    serve_standard_feeds(portal)
    return portal


