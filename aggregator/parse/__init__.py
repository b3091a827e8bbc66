"""Parsers: bytes of one fetched page -> raw items (see feed.py and html.py)."""
