"""Items -> stories. Pure: the store finds candidates through the keys made here, this module
decides (README, "Deduplication").

An item joins a story when a stored item of another source
1. has the same canonical link (always), or
2. has the same normalized title within `title_window_hours`, and their texts agree when both
   have text (a recurring title such as "Jadwal SIM Keliling" is a new event every day; when
   one side has no text, such a schedule title must be within `SCHEDULE_HOURS`), or
3. is a near duplicate within `window_hours`: similar text (word-pair overlap) with a similar
   title, or, when one side has no text, a nearly identical title.
Whatever the tier, places, dates and numbers named by both must agree: "Kebakaran di Tambora"
and "Kebakaran di Cengkareng" are two events.

Candidates come from an index, never a scan: every item is filed under `blocking_keys`
(the normalized title, MinHash bands of its title words and of its text words), and only items
sharing a key within the window are compared.
"""

from __future__ import annotations

import functools
import html
import itertools
import marshal
import math
import re
import sys
import unicodedata
import zlib
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar, overload

from aggregator.types import DedupeSettings

# --- text normalization -------------------------------------------------------------------

def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words (and weekdays), then words that name the publisher rather than the event (an
# agency prefix such as "Sudin Kominfotik Jakpus" or "Pemprov DKI" must not make two copies
# look different).
FUNCTION_WORDS = _wordset("""
ada adalah agar akan akibat antara atas atau bagi bahwa baik banyak belum beberapa bersama
bisa dalam dan dari demikian dengan depan di dia hal hari harus hingga ia ini itu jika juga
kali kami kata karena ke kepada ketika kini kita lagi lain lalu lebih maka masih melalui
mereka mulai nya oleh pada para pula pun saat saja salah sebagai sebelum sedang sejak selama
serta setelah sudah supaya tak telah tengah tentang terhadap tersebut tidak untuk usai yaitu
yakni yang sebanyak sejumlah senin selasa rabu kamis jumat sabtu minggu
""")
STOP_WORDS = FUNCTION_WORDS | _wordset("""
baru besar satu pemprov pemkot pemkab pemda pemerintah provinsi kota kabupaten administrasi
adm sudin suku dinas badan kantor kepala kasudin kadis wali walikota wakil gubernur wagub
bupati camat lurah dki jakarta jakpus jakut jakbar jaksel jaktim pusat utara barat selatan
timur kominfotik kominfomas kominfo diskominfo humas berita beritajakarta id com go
""")

# Words after which the next word names a place (title and text).
PLACE_MARKERS = _wordset("""
kelurahan kel kecamatan kec jalan jl jln desa kampung kp kawasan pasar gang gg rw rt pulau
kabupaten kab
""")
TITLE_PLACE_MARKERS = PLACE_MARKERS | {"di"}
_GENERIC_PLACES = _wordset("""
lokasi wilayah sana sini tempat sekitar kawasan area rumah kantor lingkungan sejumlah beberapa
seluruh tiap setiap masing
""")

# on case-folded text: numbers, words (Latin letters, accents included), punctuation
_WORD = re.compile(r"[0-9]+(?:[.,][0-9]+)*|[a-z\u00df-\u024f]+|[.,;:!?()\"]")
_BREAK = "|"  # punctuation, as a token: a place phrase ends there
_PHRASE_ENDS = FUNCTION_WORDS | PLACE_MARKERS | _GENERIC_PLACES | {_BREAK}  # end a place phrase
_TAG = re.compile(r"<[^>]*>")
_DATE_MENTION = re.compile(r"\((\d{1,2})/(\d{1,2})(?:/\d{2,4})?\)")
TEXT_WORDS = 200  # the lede and first paragraphs carry the story; the rest is boilerplate
MIN_TEXT_WORDS = 20  # shorter text counts as no text (a listing's one-line teaser)
LEDE_WORDS = 25  # content words of the text that, with the title's, can be index keys
RARE_WORDS = 8  # an item is filed under this many of its rarest title and lede words: place
# names, people and specific nouns, the words two copies of a story share whatever else was
# edited (ties broken by a stable hash)
TOTAL = ""  # the word-count entry that counts the items themselves


def common_count(frequency: Mapping[str, int]) -> int:
    """A word that more stored items have is too common to be a key (its bucket would make
    many candidates): 50, plus one per thousand items stored (`frequency[TOTAL]`)."""
    return 50 + frequency.get(TOTAL, 0) // 1000
MAX_STORY_ITEMS = 30  # a story this big takes no more items by similarity (links still join)
MIN_KEY_WEIGHT = 2  # a shared title or band weighs 2, a shared rare word 1
MAX_CANDIDATES = 8  # compared per new item at most: those sharing the most keys (on real
# news a new item has under one candidate on average, 2 at the 95th percentile)


def _fold(text: str) -> str:
    if text.isascii():  # most text: NFKC changes nothing, case-folding is lower()
        return text.lower()
    text = unicodedata.normalize("NFKC", text).casefold()
    return text.replace("\u2019", "'")


@functools.lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A light Indonesian stemmer: enough that "Padamkan", "memadamkan" and "dipadamkan"
    meet. Applied to both sides alike, so over-stemming only costs a little precision."""
    if len(word) < 5 or word.isdigit():
        return word
    for suffix in ("nya", "kan", "lah", "an", "i"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    if word.startswith("meng") and len(word) > 6:
        rest = word[4:]
        return rest if rest[0] not in "aiueo" else "k" + rest
    if word.startswith("meny") and len(word) > 6:
        return "s" + word[4:]
    if word.startswith("mem") and len(word) > 5:
        rest = word[3:]
        return "p" + rest if rest[0] in "aiueo" else rest
    if word.startswith("men") and len(word) > 5:
        rest = word[3:]
        return "t" + rest if rest[0] in "aiueo" else rest
    if word.startswith("me") and len(word) > 5 and word[2] in "lrwy":
        return word[2:]
    for prefix in ("di", "ber", "per"):
        if word.startswith(prefix) and len(word) - len(prefix) >= 4:
            return word[len(prefix):]
    return word


def _number(token: str) -> str:
    return token.replace(".", "").replace(",", ".")


_PUNCTUATION = dict.fromkeys('.,;:!?()"', _BREAK)
_SEPARATED_NUMBER = re.compile(r"[0-9][.,][0-9]")


def words(text: str) -> list[str]:
    """Folded words and numbers ("1.000" -> "1000"), in order, stop words kept, punctuation
    as `_BREAK`."""
    folded = _fold(text)
    tokens = _WORD.findall(folded)
    if len(_TOKENS) > _CONTENT_LIMIT:
        _TOKENS.clear()
    # at C speed: one shared string per distinct token (remembered fingerprints hold 200
    # tokens each), punctuation -> _BREAK
    tokens = list(map(_TOKENS.setdefault, tokens, tokens))
    out: list[str] = list(map(_PUNCTUATION.get, tokens, tokens))
    if _SEPARATED_NUMBER.search(folded):
        out = [_number(w) if w[0].isdigit() else w for w in out]
    return out


_TOKENS: dict[str, str] = {}  # token -> the one string object used for it
_CONTENT: dict[str, str] = {}  # token -> its stemmed content word, "" for a stop word
_CONTENT_LIMIT = 300_000  # distinct tokens remembered (a long-running process sees more)


def _content_word(token: str) -> str:
    word = stem(token) if token not in STOP_WORDS and (len(token) > 1 or token.isdigit()) \
        else ""
    if len(_CONTENT) >= _CONTENT_LIMIT:
        _CONTENT.clear()
    _CONTENT[token] = word
    return word


def content_words(tokens: Iterable[str]) -> list[str]:
    """Stemmed words without stop words, single letters or punctuation, in order."""
    tokens = tokens if isinstance(tokens, list) else list(tokens)
    found = list(map(_CONTENT.get, tokens))
    if None in found:
        found = [_content_word(t) if w is None else w for w, t in zip(found, tokens, strict=True)]
    return list(filter(None, found))


def _places(tokens: Sequence[str], markers: frozenset[str]) -> frozenset[tuple[str, ...]]:
    """Place phrases: the words (as written) after a marker ("di", "Kelurahan", "Jalan"...)
    up to the next function word or marker, at most three: "di Muara Baru" -> ("muara",
    "baru"), "di Mangga Besar XIII" -> ("mangga", "besar", "xiii")."""
    found: set[tuple[str, ...]] = set()
    # the positions after a marker, found at C speed (a loop over 200 words in Python was 3%
    # of ingesting)
    for start in itertools.compress(range(1, len(tokens)), map(markers.__contains__,
                                                                  tokens[:-1])):
        phrase: list[str] = []
        for nxt in tokens[start:start + 3]:
            if nxt in _PHRASE_ENDS:
                break
            phrase.append(nxt)
        if phrase:
            found.add(tuple(phrase))
    return frozenset(found)


def _places_agree(a: Fingerprint, b: Fingerprint) -> bool:
    """A place one title names is the other's too: one phrase starts the other ("Kebon Kosong"
    and "Kebon Kosong Kemayoran"), or all its words are in the other item ("Tegal Alur" in the
    text of the other copy)."""
    for pa in a.title_places:
        for pb in b.title_places:
            if pa[:len(pb)] == pb or pb[:len(pa)] == pa:
                return True
    return any(_names_all(b, p) for p in a.title_places) or \
        any(_names_all(a, p) for p in b.title_places)


def _names_all(fp: Fingerprint, place_words: Iterable[str]) -> bool:
    """Every one of these words is a word of the item (title or text, as written). Place words
    are never function words or punctuation, so a substring test of the spaced text says it
    (a set of the item's 200 words cost 25-40 µs a compared pair: 8% of ingesting)."""
    spaced = fp.spaced
    return all(f" {w} " in spaced for w in place_words)


def _names_any(fp: Fingerprint, place_words: Iterable[str]) -> bool:
    spaced = fp.spaced
    return any(f" {w} " in spaced for w in place_words)


_NUMBER_WORDS = {
    "satu": "1", "dua": "2", "tiga": "3", "empat": "4", "lima": "5", "enam": "6",
    "tujuh": "7", "delapan": "8", "sembilan": "9", "sepuluh": "10", "pertama": "1",
    "kedua": "2", "ketiga": "3", "keempat": "4", "kelima": "5", "keenam": "6",
    "ketujuh": "7", "kedelapan": "8", "kesembilan": "9", "kesepuluh": "10",
}
_ROMAN = re.compile(r"^(?=[ivxlc]{2,}$)c{0,3}(xc|xl|l?x{0,3})(ix|iv|v?i{0,3})$")


def _roman(n: int) -> str:
    out = ""
    for value, letters in ((100, "c"), (90, "xc"), (50, "l"), (40, "xl"), (10, "x"), (9, "ix"),
                           (5, "v"), (4, "iv"), (1, "i")):
        while n >= value:
            out, n = out + letters, n - value
    return out


_ROMAN_NUMERALS = frozenset(r for n in range(2, 200) if _ROMAN.match(r := _roman(n)))


_MULTIPLIERS = {"ribu": 1_000, "juta": 1_000_000, "miliar": 1_000_000_000}


def _numbers(tokens: Sequence[str]) -> frozenset[str]:
    """Numbers named: digits ("10 ribu" is 10000), number words ("dua", "ketiga") and Roman
    numerals."""
    present = set(tokens)
    out = {w for w in present if w[0].isdigit()}
    if present & _MULTIPLIERS.keys():
        for i, w in enumerate(tokens[:-1]):
            if w[0].isdigit() and tokens[i + 1] in _MULTIPLIERS and w.count(".") <= 1:
                out.add(f"{float(w) * _MULTIPLIERS[tokens[i + 1]]:.0f}")
    out.update(_NUMBER_WORDS[w] for w in present & _NUMBER_WORDS.keys())
    out.update("roman:" + w for w in present & _ROMAN_NUMERALS)
    return frozenset(out)


def html_text(fragment: str) -> str:
    """Plain text of stored (sanitized) HTML."""
    if "<" in fragment:
        fragment = _TAG.sub(" ", fragment)
    return html.unescape(fragment) if "&" in fragment else fragment


_T = TypeVar("_T")


class _worked_out(Generic[_T]):
    """`functools.cached_property` without the lock Python 3.11 takes on each first use:
    worked out once per instance, then a plain attribute. Two threads working out the same
    value at once both get it right (a fingerprint's values depend on its fields only)."""

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _worked_out[_T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> _T | _worked_out[_T]:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """What near-duplicate detection compares, computed once per item. Its fields are what
    travels and is kept (`pack`): strings and an array, cheap to pack and unpack; the sets the
    comparisons use, the facts (places, numbers) and the index fields are worked out on first
    use, so an item that is never compared, or a candidate that is not alike, costs little."""

    title_key: str  # the normalized title: content words in order, joined by spaces
    has_text: bool  # False: no text of its own, or a teaser shorter than MIN_TEXT_WORDS
    # hashes of consecutive content words (shingles); an array once packed or remembered
    # (`compact`): 1.6 KB instead of 13 KB for 200 words
    text_pairs: frozenset[int] | array[int]
    dates: frozenset[tuple[int, int]]  # "(16/3)" day/month mentions in the text
    title_folded: str  # the title's tokens as written (folded), stop words kept, by spaces
    text_folded: str  # the first TEXT_WORDS tokens of the text, likewise

    def _same(self) -> tuple[object, ...]:
        return (self.title_key, self.has_text, frozenset(self.text_pairs), self.dates,
                self.title_folded, self.text_folded)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fingerprint) and self._same() == other._same()

    __hash__ = None  # type: ignore[assignment]  # mutable parts (an array)

    @_worked_out
    def title_words(self) -> frozenset[str]:
        return frozenset(self.title_key.split(" ")) if self.title_key else frozenset()

    @_worked_out
    def title_grams(self) -> frozenset[str]:
        """Character trigrams of the normalized title."""
        key = self.title_key
        if len(key) > 2:
            return frozenset(map("".join, zip(key, key[1:], key[2:], strict=False)))
        return frozenset((key,) if key else ())

    @_worked_out
    def title_tokens(self) -> tuple[str, ...]:
        return tuple(self.title_folded.split(" ")) if self.title_folded else ()

    @_worked_out
    def text_tokens(self) -> tuple[str, ...]:
        return tuple(self.text_folded.split(" ")) if self.text_folded else ()

    @_worked_out
    def text_content(self) -> tuple[str, ...]:
        """The text's content words, stemmed (a teaser's too)."""
        return tuple(content_words(list(self.text_tokens)))

    @_worked_out
    def title_numbers(self) -> frozenset[str]:
        return _numbers(self.title_tokens)

    @_worked_out
    def all_numbers(self) -> frozenset[str]:
        return self.title_numbers | _numbers(self.text_tokens)

    @_worked_out
    def title_places(self) -> frozenset[tuple[str, ...]]:
        return _places(self.title_tokens, TITLE_PLACE_MARKERS)

    @_worked_out
    def text_places(self) -> frozenset[tuple[str, ...]]:
        return _places(self.text_tokens, PLACE_MARKERS) if self.has_text else frozenset()

    @_worked_out
    def all_words(self) -> frozenset[str]:
        """Title and text (a teaser too), stemmed."""
        return self.title_words.union(self.text_content)

    @_worked_out
    def spaced(self) -> str:
        """Title and text as written, each word between spaces: " w " in it says whether the
        item has the word w."""
        return f" {self.title_folded} {self.text_folded} "

    @_worked_out
    def key_words(self) -> frozenset[str]:
        """Title and lede words: the candidates for rare-word index keys."""
        found = self.title_words.union(self.text_content[:LEDE_WORDS])
        return frozenset(w for w in found if len(w) > 2 and not w.isdigit())

    @_worked_out
    def strong_keys(self) -> frozenset[int]:
        """`blocking_keys`: its title and MinHash bands."""
        return frozenset(blocking_keys(self))

    @_worked_out
    def text_signature(self) -> tuple[int, ...]:
        """MinHash of the text's word pairs (index keys)."""
        return tuple(_text_signature(self.text_pairs)) if self.text_pairs else ()


_FIELDS = tuple(f.name for f in fields(Fingerprint))


def _fingerprint(**values: object) -> Fingerprint:
    """A fingerprint of these fields and worked-out values, without the dataclass's
    per-field checks (it is made for every item)."""
    fp = object.__new__(Fingerprint)
    fp.__dict__.update(values)
    return fp


def fingerprint(title: str, text: str) -> Fingerprint:
    """`text` is plain text (summary or content); an empty or teaser-length text counts as none.
    """
    t_tokens = words(title)
    t_words = content_words(t_tokens)
    x_tokens = words(text[:TEXT_WORDS * 10])[:TEXT_WORDS]
    x_all = content_words(x_tokens)
    x_words = x_all if len(x_tokens) >= MIN_TEXT_WORDS else []
    dates = frozenset((int(d), int(m)) for d, m in _DATE_MENTION.findall(text[:3000])
                      if 1 <= int(d) <= 31 and 1 <= int(m) <= 12) if x_words else frozenset()
    return _fingerprint(
        title_key=" ".join(t_words), has_text=bool(x_words),
        text_pairs=frozenset(_pair_hashes(x_words)), dates=dates,
        title_folded=" ".join(t_tokens), text_folded=" ".join(x_tokens),
        # worked out already
        title_words=frozenset(t_words), title_tokens=tuple(t_tokens),
        text_tokens=tuple(x_tokens), text_content=tuple(x_all))


# Worked-out values a remembered fingerprint keeps: small, and slow to work out again (places
# and numbers walk the tokens). The large ones (word sets, trigrams, tokens: about 14 KB for a
# compared item) are worked out again when needed.
_KEPT = ("title_words", "title_places", "text_places", "title_numbers", "all_numbers")


def compact(fp: Fingerprint) -> Fingerprint:
    """The same fingerprint in less memory, for keeping many (about 4 KB): its word pairs as
    an array, and of what was worked out only `_KEPT`."""
    have = fp.__dict__
    values = {name: have[name] for name in _FIELDS}
    if not isinstance(fp.text_pairs, array):
        values["text_pairs"] = array("q", fp.text_pairs)
    values.update((name, have[name]) for name in _KEPT if name in have)
    return _fingerprint(**values)


def item_fingerprint(title: str, summary: str, content: str) -> Fingerprint:
    """The fingerprint of a stored or parsed item (HTML content, else its summary)."""
    return fingerprint(title, html_text(content or summary))


# Bump when `fingerprint` or `pack` change what they make: fingerprints kept in the database
# (store/index.py) by another version are then dropped instead of being compared with.
PY_FORMAT = f"py{sys.version_info[0]}.{sys.version_info[1]}"  # marshal's format is Python's
PACK_VERSION = f"2/{PY_FORMAT}"


def pack(fp: Fingerprint) -> bytes:
    """A fingerprint as bytes, for another process of the same Python (the parse workers
    fingerprint a new source's items; rebuilding one is about 10 times cheaper than
    computing it) and for keeping (store/index.py). Its index fields travel with it. Strings
    and bytes only, no sets of strings: marshal makes one object of each (a fingerprint of
    200 words packed as sets and tuples of words took 60 µs to pack and 35 to unpack)."""
    return marshal.dumps((
        fp.title_key, fp.has_text, array("q", fp.text_pairs).tobytes(), fp.dates,
        fp.title_folded, fp.text_folded, tuple(fp.strong_keys), " ".join(fp.key_words)))


def unpack(data: bytes) -> Fingerprint:
    key, has_text, pairs, dates, t_folded, x_folded, strong, key_words = marshal.loads(data)
    text_pairs: array[int] = array("q")
    text_pairs.frombytes(pairs)
    return _fingerprint(
        title_key=key, has_text=has_text, text_pairs=text_pairs, dates=dates,
        title_folded=t_folded, text_folded=x_folded, strong_keys=frozenset(strong),
        key_words=frozenset(key_words.split(" ")) if key_words else frozenset())


# --- blocking keys (the index) ------------------------------------------------------------

_MASK = (1 << 63) - 1
# MinHash bands over word pairs: (bands, rows per band). Titles have none: their rare words are
# better keys. More rows: fewer chance collisions of unrelated items
# that share common words, at the cost of recall, which the rare-word keys carry.
TEXT_BANDS, TEXT_ROWS = 8, 2  # 16 bins: a power of two (see _text_signature)


@functools.lru_cache(maxsize=200_000)
def _h(value: str) -> int:
    """A stable 64-bit hash (Python's hash() is salted per process)."""
    x = zlib.crc32(value.encode()) | (zlib.adler32(value.encode()) << 32)
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 33
    return x


def _pair_hashes(words: Sequence[str]) -> list[int]:
    """A stable 64-bit hash of each pair of consecutive words. CPython's hash of a tuple of
    ints is not salted per process (only str and bytes hashes are), so it is stable across
    processes and runs; `tests/test_dedupe.py` pins known values, should a Python release
    change it."""
    hashes = list(map(_h, words))
    return list(map(hash, itertools.pairwise(hashes)))


def _text_signature(pairs: Iterable[int]) -> list[int]:
    """One-permutation MinHash over the text's word pairs (shingles: unrelated texts on one
    topic share words, rarely pairs): the smallest pair hash in each of 16 bins, a bin being
    a hash's top four bits (the best mixed)."""
    bins = TEXT_BANDS * TEXT_ROWS
    sig: list[int | None] = [None] * bins
    left = bins
    for x in sorted(pairs):
        slot = (x >> 59) & (bins - 1)
        if sig[slot] is None:
            sig[slot] = x
            left -= 1
            if not left:
                break
    # densify: an empty bin borrows from the next filled one, so short texts still band
    filled = [i for i in range(bins) if sig[i] is not None]
    out = [_MASK] * bins
    for i in range(bins):
        value = sig[i]
        if value is None:
            j = next((f for f in filled if f > i), filled[0])
            value = (sig[j] or 0) ^ (i * 0x9E3779B97F4A7C15 & _MASK)
        out[i] = value
    return out


def _band_keys(kind: int, sig: Sequence[int], rows: int) -> list[int]:
    """One key per band of `rows` values (a stable 64-bit mix), as a signed SQLite integer."""
    keys = []
    seed = kind * 0x9E3779B97F4A7C15
    for band in range(0, len(sig) - rows + 1, rows):
        x = seed + band * 0xC2B2AE3D27D4EB4F
        for v in sig[band:band + rows]:
            x = ((x ^ v) * 0xFF51AFD7ED558CCD) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
        x = (x * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
        keys.append((x & _MASK) - (1 << 62))
    return keys


@functools.lru_cache(maxsize=200_000)
def word_key(word: str) -> int:
    return (_h("word\n" + word) & _MASK) - (1 << 62)


class IndexKeys(NamedTuple):
    filing: list[int]  # the keys an item is stored under: its title, bands, rarest words
    query: list[int]  # the keys it looks up: its title, bands and every title and lede word
    strong: frozenset[int]  # its title and bands: one shared weighs MIN_KEY_WEIGHT


def index_keys(fp: Fingerprint, frequency: Mapping[str, int]) -> IndexKeys:
    """The keys of an item in the index: a stored item filed under one of the new item's
    query keys is a candidate."""
    bands = fp.strong_keys
    limit = common_count(frequency)
    ranked = sorted((w for w in fp.key_words if frequency.get(w, 0) <= limit),
                    key=lambda w: (frequency.get(w, 0), _h(w)))
    filing = sorted(bands.union(map(word_key, ranked[:RARE_WORDS])))
    query = sorted(bands.union(map(word_key, ranked)))
    return IndexKeys(filing, query, bands)


def blocking_keys(fp: Fingerprint) -> list[int]:
    """The similarity keys of an item: the normalized title and MinHash bands. Two items are
    compared only when one's query keys meet the other's filing keys."""
    keys: list[int] = []
    if fp.title_key:
        keys.append((_h("title\n" + fp.title_key) & _MASK) - (1 << 62))
    if TEXT_BANDS and fp.has_text:
        keys.extend(_band_keys(2, fp.text_signature, TEXT_ROWS))
    return sorted(set(keys))


# --- comparing two items ------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One side of a comparison: an item and where it came from."""

    item_id: int  # 0 for the item being stored
    source_id: str
    published: datetime
    fp: Fingerprint


@dataclass(frozen=True)
class Verdict:
    same: bool
    method: str  # "title", "near", or why not: "window", "conflict", "different", "source"
    title_similarity: float
    text_similarity: float | None  # None when either side has no text
    hours_apart: float
    conflict: str = ""  # what disagrees: "place", "date" or "number"

    def describe(self) -> str:
        text = "-" if self.text_similarity is None else f"{self.text_similarity:.2f}"

        extra = f", {self.conflict} differs" if self.conflict else ""
        return (f"{self.method}: title {self.title_similarity:.2f}, text {text}, "
                f"{self.hours_apart:.1f} h apart{extra}")


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def _overlap(a: frozenset[int] | array[int], b: frozenset[int] | array[int]) -> float:
    """Shared word pairs over the shorter text's pairs: an abridged copy scores high."""
    if not a or not b:
        return 0.0
    if not isinstance(a, frozenset):
        a, b = b, a
    shared = a.intersection(b) if isinstance(a, frozenset) else set(a).intersection(b)
    return len(shared) / min(len(a), len(b))


def _place_words(phrases: frozenset[tuple[str, ...]]) -> set[str]:
    return {w for phrase in phrases for w in phrase}


def _no_place_shared(a: Fingerprint, b: Fingerprint) -> bool:
    """Both name places (title or text), and no place word of either is a word of the other.
    A title's place word found in the other item settles it, so the text's places (a scan of
    its 200 words) are worked out only when the titles' do not (most copies share them)."""
    if _names_any(b, _place_words(a.title_places)) or _names_any(a, _place_words(b.title_places)):
        return False
    pa = _place_words(a.title_places | a.text_places)
    pb = _place_words(b.title_places | b.text_places)
    return bool(pa and pb) and not _names_any(b, pa) and not _names_any(a, pb)


def _numbers_differ(a: Fingerprint, b: Fingerprint) -> bool:
    """Each title has a number the other item never names. A text's numbers are worked out
    only for a title number the other title does not have."""
    if not (a.title_numbers and b.title_numbers):
        return False
    only_a = a.title_numbers - b.title_numbers
    if not only_a or not only_a - b.all_numbers:
        return False
    only_b = b.title_numbers - a.title_numbers
    return bool(only_b and only_b - a.all_numbers)


def _conflict(a: Fingerprint, b: Fingerprint) -> str:
    """Facts both name that disagree: then they are two events, however alike. Lenient where
    copies differ: a place or number of one found anywhere in the other is agreement (an
    abridged copy names fewer places, a title rounds "10.000" to "10 ribu")."""
    if a.title_places and b.title_places and not _places_agree(a, b):
        return "place"
    if _no_place_shared(a, b):
        return "place"
    if a.dates and b.dates and not a.dates & b.dates:
        return "date"
    if _numbers_differ(a, b):
        return "number"
    return ""


def _cover(a: Fingerprint, b: Fingerprint) -> float:
    """The share of the text-less item's title words found anywhere in the other item."""
    x, y = (a, b) if b.has_text else (b, a)
    if len(x.title_words) < 3:
        return 0.0
    return len(x.title_words & y.all_words) / len(x.title_words)


# A title naming a schedule or a list of places ("Jadwal SIM Keliling", "Lokasi Layanan
# Samsat Keliling") is used again for each day's event. When one side has no text, nothing
# can tell one day's listing from the next, so such copies must be published close together.
SCHEDULE_TITLE_WORDS = frozenset({"jadwal", "lokas", "keliling"})  # stemmed, as in titles
SCHEDULE_HOURS = 12.0


def compare(a: Probe, b: Probe, settings: DedupeSettings, figures: bool = True) -> Verdict:
    """Do two items of different sources report the same story? (README, "Deduplication")
    The cheap similarity comes first; facts are checked only for a pair that would group.
    With `figures` False (the store's planning), a pair that is not the same story may be
    decided without its title similarity, which the verdict then gives as NaN; the decision
    is the same either way."""
    hours = abs((a.published - b.published).total_seconds()) / 3600
    text_sim = (_overlap(a.fp.text_pairs, b.fp.text_pairs)
                if a.fp.has_text and b.fp.has_text else None)
    how = "title" if a.fp.title_key and a.fp.title_key == b.fp.title_key else "near"
    title_sim = math.nan

    def title_similarity() -> float:
        nonlocal title_sim
        if title_sim != title_sim:  # NaN: not worked out yet
            title_sim = max(_jaccard(a.fp.title_grams, b.fp.title_grams),
                            _jaccard(a.fp.title_words, b.fp.title_words))
        return title_sim

    def verdict(same: bool, method: str, conflict: str = "") -> Verdict:
        if same or figures:
            title_similarity()
        return Verdict(same, method, title_sim, text_sim, hours, conflict)

    if a.source_id == b.source_id:
        return verdict(False, "source")
    if hours > settings.window_hours:
        return verdict(False, "window")
    if text_sim is not None:
        if text_sim < settings.text_similarity and not (
                text_sim >= settings.text_similarity_with_title
                and title_similarity() >= settings.title_similarity):
            return verdict(False, "different")
        conflict = _conflict(a.fp, b.fp)
        # much of the same text outweighs a disagreeing detail, except for a recurring
        # listing: the same title over a template text ("Jadwal SIM Keliling")
        if conflict and (text_sim < settings.strong_text_similarity
                         or title_similarity() >= 0.8):
            return verdict(False, "conflict", conflict)
        return verdict(True, how)
    if hours > settings.title_window_hours:
        return verdict(False, "window")
    if hours >= SCHEDULE_HOURS and SCHEDULE_TITLE_WORDS & a.fp.title_words \
            & b.fp.title_words:
        return verdict(False, "recurring")
    if a.fp.has_text or b.fp.has_text:
        # a listing's title against an article: its words are all in the article
        alike = _cover(a.fp, b.fp) >= settings.title_cover
    else:
        alike = title_similarity() >= settings.title_only_similarity
    if not alike:
        return verdict(False, "different")
    conflict = _conflict(a.fp, b.fp)
    if conflict:
        return verdict(False, "conflict", conflict)
    return verdict(True, how)
