"""Campaign detection: near-duplicate texts from different authors, by a MinHash sketch.

Pure functions, no I/O: the submission's insert script keeps the sketches in Redis and decides
there, atomically with the insert (store/scripts.py, INSERT_COMMENT); :func:`detect` is the
rule it is held to. A text is normalised (as the policy compares texts: NFKC, case folded,
invisible characters and punctuation dropped, whitespace collapsed) and cut into shingles, its
words and its pairs of adjacent words; its sketch is a one-permutation MinHash (Li, Owen, Zhang
2012): each shingle is hashed once (CRC-32, in C), the hash picks one of :data:`SLOTS` slots
and the slot keeps its smallest value; empty slots borrow from the next filled one (rotation
densification, Shrivastava and Li 2014), so the fraction of equal slots estimates the Jaccard
similarity of two shingle sets. Candidates are found by LSH banding: :data:`BANDS` bands of
:data:`ROWS` slots, each band value (:func:`band_fields`) a field of one hash per time bucket,
so a text meets the earlier ones sharing at least one band (likely from a similarity of about
(1/BANDS)^(1/ROWS) = 0.59 up).

What the insert script reads and writes per comment is kept small, because Redis runs the
script alone and a submission waits for its writes to be fsync'd to the append-only file. One
hash per time bucket holds both: under each band value (:func:`band_fields`) the ids of its most
recent comments (:func:`band_value`: at most :data:`CANDIDATES_PER_BAND`, oldest first), and
under each id its sketch (author tag and encoded sketch, :func:`sketch_entry`). A comment reads
its eight bands in one HMGET of the current bucket and one of the bucket before, and writes its
eight band values and its sketch in one HSET, with a TTL only on a bucket's first write (which
also writes :data:`BUCKET_MARK`, read with the bands: no TTL read per comment). (Band
sets scored by band value cost sixteen range reads and a trim per comment: 170-220 us of Redis
time on a day's worth of comments, bench/campaign_warm.py.) A bucket is :func:`bucket` of the
time, as wide as the window; the current bucket and the one before hold the whole window.

One hash per shingle instead of one per shingle and permutation keeps the sketch at tens of
microseconds for a comment (bench/campaign_bench.py measures it against the submission), where
datasketch's MinHash costs SLOTS hash permutations per shingle and needs numpy. Words and word
pairs rather than character 5-grams: a fifth of the shingles (one hash each: the sketch's whole
cost) and, measured on the generated set (devtools/campaign_texts.py, seeds 7, 11, 23, 31, 43),
a recall of 0.92-0.96 against 0.87-0.93, precision 1.00 for both.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat

from ..ids import id_at
from .policy import normalize

SLOTS = 32
BANDS = 8
ROWS = SLOTS // BANDS
# Estimated Jaccard similarity from which two texts count as the same campaign text.
SIMILAR = 0.5
# Texts shorter than this (normalised) are never a campaign: "Great article!" is no campaign.
MIN_LENGTH = 40
_NOT_WORD = re.compile(r"[^\w\s]+")
# The canonical text's words: the runs of word characters (what is left between the spaces
# once the rest is a space).
_WORD = re.compile(r"\w+")
# An ASCII text's bytes with every byte that is not a word character (\w on ASCII:
# [A-Za-z0-9_]) made a space: its words are then what bytes.split gives (one translate and one
# split, a quarter of a regex's findall).
_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_SPACE_NON_WORD = bytes(b if b in _WORD_BYTES else 0x20 for b in range(256))
_EMPTY = 1 << 32
_UNSET = 1 << 40  # above any value: a slot no shingle hashed to
_SLOT_MASK = SLOTS - 1  # (SLOTS is a power of two: a hash mod SLOTS)


def canonical(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", normalize(text)).split())


def sketch(text: str) -> tuple[int, ...] | None:
    """The text's MinHash sketch; None when it is too short to judge."""
    return sketch_normalized(normalize(text))


def sketch_normalized(flat: str) -> tuple[int, ...] | None:
    """:func:`sketch` of a text already normalised (policy.normalize; whitespace may be
    collapsed, as policy.duplicate_fingerprint does: the words are the same)."""
    # The canonical text's words (:func:`canonical` joins them), as UTF-8: an ASCII text's
    # straight from its bytes (the same words: \w and \s agree with str's on ASCII), one
    # encode in place of one per word.
    if flat.isascii():
        words = flat.encode().translate(_SPACE_NON_WORD).split()
        length = sum(map(len, words)) + len(words) - 1
    else:
        found = _WORD.findall(flat)
        length = sum(map(len, found)) + len(found) - 1
        words = list(map(str.encode, found))
    if length < MIN_LENGTH:
        return None
    crc = zlib.crc32
    word_hashes = list(map(crc, words))
    values = set(word_hashes)
    # A pair's CRC continues its first word's with the space and the second word: no pair
    # string made (all in C).
    values.update(map(crc, words[1:], map(crc, repeat(b" "), word_hashes)))
    # Each slot's smallest value, in one pass (a sort and a dict cost more).
    slots = [_UNSET] * SLOTS
    for v in values:
        i = v & _SLOT_MASK
        if v < slots[i]:
            slots[i] = v
    if _UNSET not in slots:  # a comment's usual case: every slot filled, nothing to borrow
        return tuple(slots)
    # An empty slot borrows from the next filled one (wrapping round): walking down from the
    # last slot, the next filled one is known at each step (one pass, where a search per
    # empty slot cost a 30-word comment a sixth of its sketch).
    nearest = next(i for i, v in enumerate(slots) if v != _UNSET) + SLOTS
    for i in range(SLOTS - 1, -1, -1):
        if slots[i] == _UNSET:
            # A borrowed value is marked by how far it was borrowed from, so that two
            # sketches only agree on it when they borrowed alike.
            slots[i] = slots[nearest % SLOTS] + ((nearest - i) % SLOTS) * _EMPTY
        else:
            nearest = i
    return tuple(slots)


def band_fields(encoded: str) -> list[str]:
    """Each band's field in a bucket's hash, from an encoded sketch (:func:`encode`): the
    band's position, a colon and its components as encoded (never as long as an id, the
    sketches' fields). The insert script cuts the same from the sketch it is given."""
    width = BAND_WIDTH
    return [f"{band}:{encoded[band * width : (band + 1) * width]}" for band in range(BANDS)]


def similarity(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / SLOTS


# A sketch as kept in Redis: each component as CODE_WIDTH characters of a 64-letter alphabet,
# its value modulo a prime below 12 bits (the prime folds in the marks of borrowed values), so
# that a stored sketch is short (the insert script writes one per comment to the
# append-only file, whose fsync'd bytes a submission waits for); two different components code
# alike with a chance of 1 in 4093, which the similarity estimate does not notice (0.008 of the
# 16 equal slots that make two sketches similar, on average).
CODE_WIDTH = 2
BAND_WIDTH = ROWS * CODE_WIDTH  # a band's characters in an encoded sketch
_CODE_MODULUS = 4093
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
_CODES = [a + b for a in _ALPHABET for b in _ALPHABET]


def encode(signature: tuple[int, ...]) -> str:
    codes = _CODES
    return "".join([codes[v % _CODE_MODULUS] for v in signature])


def components(encoded: str) -> list[str]:
    return [encoded[i : i + CODE_WIDTH] for i in range(0, len(encoded), CODE_WIDTH)]


def author_tag(email_hash: str) -> str:
    """The part of an author's email hash a stored sketch keeps: enough to tell authors apart
    (two authors alike by 1 in 4 billion would count as one: a campaign missed, never one
    made up)."""
    return email_hash[:8]


def similar_encoded(a: list[str], b: list[str]) -> bool:
    """:func:`similarity` at least :data:`SIMILAR`, on encoded sketches' :func:`components`."""
    return sum(map(str.__eq__, a, b)) >= MIN_EQUAL


# How many of a band's most recent members a new sketch meets: enough for a campaign's recent
# texts, bounded, so that a flood of similar texts costs the same.
CANDIDATES_PER_BAND = 20
# The components two sketches must share to be similar (:func:`similar_encoded`).
MIN_EQUAL = math.ceil(SIMILAR * SLOTS)
# How long a campaign's set of members lives after its last new member.
CAMPAIGN_TTL_SECONDS = 7 * 86_400
# The field a bucket's hash holds from its first write on: a new comment that does not find it
# among its band fields gives the bucket its TTL (no band value or id is this short).
BUCKET_MARK = "mark"


def band_value(ids: Iterable[str]) -> str:
    """What a bucket's hash keeps under a band value: the ids of its comments (ids sort by
    time, all as long), oldest first, the :data:`CANDIDATES_PER_BAND` most recent."""
    return "".join(sorted(ids)[-CANDIDATES_PER_BAND:])


def sketch_entry(author: str, encoded: str) -> str:
    """What a bucket's hash keeps under a comment's id: all a later comment needs to
    compare with it (``author``: the :func:`author_tag` of its email hash)."""
    return f"{author}|{encoded}"


def bucket(at_ms: int, window_ms: int) -> int:
    """The time bucket ``at_ms`` falls in: buckets are as wide as the window, so the current
    one and the one before hold every time within the window."""
    return at_ms // window_ms


def since_id(since_ms: int) -> str:
    """The smallest comment id made at ``since_ms``: ids at or after it are within the window
    (ids sort by time, service/ids.py)."""
    return id_at(since_ms, "0" * 20)


@dataclass(frozen=True)
class Found:
    """A campaign the new comment completes: the earlier similar comments of other authors."""

    campaign_id: str  # its first comment's id (ids sort by time)
    members: tuple[str, ...]  # the earlier comments, sorted
    authors: int  # distinct authors, the new comment's included

    @property
    def comments(self) -> int:
        return len(self.members) + 1


def recent(band: Iterable[str], since: str, limit: int) -> list[str]:
    """What a new sketch meets in one band (the ids the buckets keep under its value): the
    ``limit`` most recent ids from ``since`` (:func:`since_id`) on. The script reads the
    current bucket's most recent, then as many more as are missing from the bucket before."""
    return sorted((i for i in band if i >= since), reverse=True)[:limit]


def detect(
    comment_id: str,
    author: str,
    encoded: str,
    met: Sequence[Sequence[str]],
    sketches: Mapping[str, str],
    threshold: int,
) -> Found | None:
    """The rule: the new comment (its id, author tag and encoded sketch) completes a campaign when
    the comments it met in its bands (``met``, ids per band as :func:`recent` gives them) whose
    sketches (``sketches``: id -> :func:`sketch_entry`) are similar to its own come from at least
    ``threshold - 1`` other authors.

    The insert script (INSERT_COMMENT in store/scripts.py) decides this in Redis, atomically
    with the insert; this is its definition, and tests/test_campaign_property.py holds the
    script to it: change both together."""
    if threshold <= 0:
        return None
    mine = components(encoded)
    seen: set[str] = set()
    similar: list[str] = []
    authors: set[str] = set()
    for band in met:
        for other in band:
            if other in seen or other == comment_id:
                continue
            seen.add(other)
            entry = sketches.get(other)
            if entry is None:
                continue
            other_author, other_sketch = entry.split("|", 1)
            if other_author == author:
                continue
            if similar_encoded(mine, components(other_sketch)):
                similar.append(other)
                authors.add(other_author)
    # A campaign needs an earlier similar text, whatever the threshold (1 would make every
    # comment one).
    if not similar or len(authors) + 1 < threshold:
        return None
    members = tuple(sorted(similar))
    return Found(members[0], members, len(authors) + 1)
