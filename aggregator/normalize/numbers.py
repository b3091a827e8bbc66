"""View counts as Indonesian and English sites write them."""

from __future__ import annotations

import re

_MULTIPLIERS = {
    "rb": 1_000, "ribu": 1_000, "k": 1_000,
    "jt": 1_000_000, "juta": 1_000_000, "m": 1_000_000, "mn": 1_000_000,
    "miliar": 1_000_000_000, "b": 1_000_000_000,
}
_NUMBER = re.compile(
    r"(\d[\d.,\s]*\d|\d)(?:\s*(rb|ribu|k|jt|juta|miliar|mn|m|b)(?![a-z]))?", re.I
)


def parse_count(text: str | None) -> int | None:
    """'1.476' -> 1476, '1,2 rb' / '1,2K' -> 1200, '2 jt' -> 2000000, 'Dilihat 1.234 kali' ->
    1234, '1,476' -> 1476. None when the text holds no number."""
    if text is None:
        return None
    match = _NUMBER.search(text.replace("\xa0", " "))
    if not match:
        return None
    digits, suffix = match.group(1).replace(" ", ""), (match.group(2) or "").lower()
    multiplier = _MULTIPLIERS.get(suffix, 1)
    if multiplier == 1:
        # Without a suffix both '.' and ',' are thousands separators (1.476 / 1,476),
        # unless the last group is not three digits long (a decimal nobody counts views in).
        groups = re.split(r"[.,]", digits)
        if len(groups) > 1 and any(len(g) != 3 for g in groups[1:]):
            return int(groups[0])
        return int("".join(groups))
    # With a suffix a single separator followed by 1-2 digits is a decimal (1,2 rb; 1.5K).
    normalized = digits
    if re.fullmatch(r"\d+[.,]\d{1,2}", digits):
        normalized = digits.replace(",", ".")
    else:
        normalized = digits.replace(".", "").replace(",", "")
    try:
        return round(float(normalized) * multiplier)
    except ValueError:
        return None
