"""Dates as Indonesian (and English) government sites write them, to UTC.

`parse_date(text, zone, now)` understands RFC 822 and ISO 8601 (with or without a zone),
MySQL-style `2024-06-25 10:00:00`, Indonesian and English month names (full and short,
`Agt`, `Okt`, `Des`, `Nopember`), weekday prefixes (`Kamis, 06 Februari 2025 14:50 WIB`),
`DD-MM-YYYY`, `DD/MM/YYYY`, `YYYY/MM/DD`, a day and month without a year (`(25/8)`, `25 Agustus`:
the nearest date not in the future), relative forms (`2 jam yang lalu`, `kemarin`, `baru saja`,
`3 hours ago`) and the zones WIB/WITA/WIT (UTC+7/+8/+9). A date without a zone is read in `zone`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from email.utils import parsedate_tz

MONTHS = {
    "januari": 1, "january": 1, "jan": 1,
    "februari": 2, "pebruari": 2, "february": 2, "feb": 2, "peb": 2,
    "maret": 3, "march": 3, "mar": 3,
    "april": 4, "apr": 4,
    "mei": 5, "may": 5,
    "juni": 6, "june": 6, "jun": 6,
    "juli": 7, "july": 7, "jul": 7,
    "agustus": 8, "august": 8, "agu": 8, "agt": 8, "ags": 8, "agst": 8, "agus": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9,
    "oktober": 10, "october": 10, "okt": 10, "oct": 10,
    "november": 11, "nopember": 11, "nov": 11, "nop": 11,
    "desember": 12, "december": 12, "des": 12, "dec": 12,
}
WEEKDAYS = (
    "senin", "selasa", "rabu", "kamis", "jumat", "jum'at", "jum’at", "sabtu", "minggu", "ahad",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun",
)
ZONE_OFFSETS = {"wib": 7, "wita": 8, "wit": 9, "utc": 0, "gmt": 0, "z": 0}
_UNITS = {
    "detik": "seconds", "second": "seconds", "sec": "seconds",
    "menit": "minutes", "mnt": "minutes", "minute": "minutes", "min": "minutes",
    "jam": "hours", "hour": "hours", "hr": "hours",
    "hari": "days", "day": "days",
    "minggu": "weeks", "pekan": "weeks", "week": "weeks",
    "bulan": "months", "month": "months",
    "tahun": "years", "year": "years",
}

_MONTH_ALT = "|".join(sorted(MONTHS, key=len, reverse=True))
_WEEKDAY_RE = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in WEEKDAYS) + r")\b\.?,?")
_ZONE_RE = re.compile(
    r"(?<![\w+-])(wita|wib|wit|utc|gmt|z)(?![\w])|(?:(?<=\s)|(?<=:\d\d))([+-])(\d{2}):?(\d{2})\b"
)
_RFC_ZONE = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?\s*([+-]\d{2}:?\d{2}|[a-z]{1,5})\s*$", re.I)
_RELATIVE_RE = re.compile(
    r"(\d+|se|satu|an?)\s*(detik|menit|mnt|jam|hari|minggu|pekan|bulan|tahun|"
    r"seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)\s*"
    r"(?:yang\s+|yg\s+)?(?:lalu|ago|lalu\.)"
)
_DMY_NAME = re.compile(
    r"(?<!\d)(\d{1,2})(?:st|nd|rd|th)?[\s./-]*(" + _MONTH_ALT + r")\b\.?[\s.,/-]*(\d{4})?"
)
_MDY_NAME = re.compile(r"\b(" + _MONTH_ALT + r")\b\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})")
_YMD = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_DMY = re.compile(r"(?<!\d)(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})(?!\d)")
_DM = re.compile(r"\(?(?<!\d)(\d{1,2})/(\d{1,2})(?!\d)\)?")
_TIME = re.compile(r"(?<!\d)(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?(?:\s*([ap])\.?m\.?)?")


@dataclass(frozen=True)
class ParsedDate:
    value: datetime | None  # aware, UTC
    relative: bool = False  # "2 jam yang lalu": not stable from poll to poll
    error: str | None = None


def parse_date(text: str | None, zone: tzinfo, now: datetime, fmt: str = "",
               language: str = "id") -> ParsedDate:
    """Parse one date string; never raises. `now` must be aware. `fmt`, a strptime format,
    is tried first when given (a source's `date_format`). `language` "en-us" reads numeric
    dates month first (06/25/2024); every other language reads them day first (25/06/2024)."""
    if text is None or not text.strip():
        return ParsedDate(None, error="empty")
    raw = " ".join(text.split())
    if fmt:
        try:
            exact = datetime.strptime(raw, fmt)
        except ValueError:
            pass
        else:
            exact = exact if exact.tzinfo else exact.replace(tzinfo=zone)
            return ParsedDate(exact.astimezone(UTC))
    for attempt in (_iso, _rfc822):
        value = attempt(raw, zone)
        if value is not None:
            return ParsedDate(value.astimezone(UTC))
    low = raw.lower()
    relative = _relative(low, zone, now)
    if relative is not None:
        return ParsedDate(relative.astimezone(UTC), relative=True)
    try:
        value = _free_form(low, zone, now, month_first=language.lower() == "en-us")
    except ValueError as exc:
        return ParsedDate(None, error=f"'{raw}': {exc}")
    if value is None:
        return ParsedDate(None, error=f"'{raw}' is not a date this parser knows")
    return ParsedDate(value.astimezone(UTC))


def _iso(text: str, zone: tzinfo) -> datetime | None:
    if not text[:4].isdigit():
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=zone)


def _rfc822(text: str, zone: tzinfo) -> datetime | None:
    if not re.search(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\b", text, re.I):
        return None
    if not re.search(r"\d{1,2}:\d{2}", text):
        return None
    zone_match = _RFC_ZONE.search(text)
    named = zone_match.group(1).lower() if zone_match else None
    if named in ("am", "pm"):
        return None
    cleaned = text
    if named in ("wib", "wita", "wit"):
        cleaned = text[: zone_match.start(1)] + f"+0{ZONE_OFFSETS[named]}00"  # type: ignore[union-attr]
    parts = parsedate_tz(cleaned)
    if parts is None:
        return None
    year, month, day, hour, minute, second = parts[:6]
    if year < 1970:
        return None
    try:
        value = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    offset = parts[9]
    if offset is None or zone_match is None:
        return value.replace(tzinfo=zone)
    return value.replace(tzinfo=timezone(timedelta(seconds=offset)))


def _relative(low: str, zone: tzinfo, now: datetime) -> datetime | None:
    if re.search(r"\b(baru saja|barusan|just now|sekarang)\b", low):
        return now
    m = _RELATIVE_RE.search(low)
    if m:
        count_text, unit_text = m.group(1), m.group(2)
        count = 1 if count_text in ("se", "satu", "a", "an") else int(count_text)
        unit = _UNITS.get(unit_text) or _UNITS[unit_text.removesuffix("s")]
        if unit == "months":
            return now - timedelta(days=30 * count)
        if unit == "years":
            return now - timedelta(days=365 * count)
        return now - timedelta(**{unit: count})
    for word, days in (("kemarin", 1), ("yesterday", 1), ("hari ini", 0), ("today", 0)):
        if word in low:
            day = now.astimezone(zone).date() - timedelta(days=days)
            t = _TIME.search(low)
            clock = _clock(t) if t else time(0, 0)
            return datetime.combine(day, clock, tzinfo=zone)
    return None


def _clock(m: re.Match[str]) -> time:
    hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    ampm = m.group(4)
    if ampm == "p" and hour < 12:
        hour += 12
    elif ampm == "a" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{hour:02d}:{minute:02d} is not a time of day")
    return time(hour, minute, second)


def _free_form(low: str, zone: tzinfo, now: datetime, month_first: bool = False
               ) -> datetime | None:
    text = _WEEKDAY_RE.sub(" ", low)
    tz: tzinfo = zone
    zm = _ZONE_RE.search(text)
    if zm:
        if zm.group(1):
            tz = timezone(timedelta(hours=ZONE_OFFSETS[zm.group(1)]))
        else:
            sign = 1 if zm.group(2) == "+" else -1
            tz = timezone(sign * timedelta(hours=int(zm.group(3)), minutes=int(zm.group(4))))
        text = text[: zm.start()] + " " + text[zm.end():]
    text = re.sub(r"\b(pukul|jam|pkl\.?|at)\b", " ", text)

    day_value: date | None = None
    year_known = True
    m: re.Match[str] | None
    if m := _DMY_NAME.search(text):
        day, month = int(m.group(1)), MONTHS[m.group(2)]
        if m.group(3):
            day_value = date(int(m.group(3)), month, day)
        else:
            year_known = False
            day_value = _nearest_past(day, month, now.astimezone(tz).date())
    elif m := _MDY_NAME.search(text):
        day_value = date(int(m.group(3)), MONTHS[m.group(1)], int(m.group(2)))
    elif m := _YMD.search(text):
        day_value = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    elif m := _DMY.search(text):
        year = int(m.group(3))
        year = year + 2000 if year < 100 else year
        first, second = int(m.group(1)), int(m.group(2))
        day, month = (second, first) if month_first else (first, second)
        day_value = date(year, month, day)
    elif m := _DM.search(text):
        year_known = False
        first, second = int(m.group(1)), int(m.group(2))
        day, month = (second, first) if month_first else (first, second)
        day_value = _nearest_past(day, month, now.astimezone(tz).date())
    if m is None or day_value is None:
        return None
    rest = text[: m.start()] + " " + text[m.end():]
    t = _TIME.search(rest)
    clock = _clock(t) if t else time(0, 0)
    value = datetime.combine(day_value, clock, tzinfo=tz)
    if not year_known and value > now:
        value = value.replace(year=value.year - 1)
    return value


def _nearest_past(day: int, month: int, today: date) -> date:
    """The date with this day and month that is nearest to `today` without being after it."""
    for year in (today.year, today.year - 1, today.year - 2, today.year - 3, today.year - 4):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue  # 29/2 in a year without it
        if candidate <= today:
            return candidate
    raise ValueError(f"{day}/{month} is not a day of the year")
