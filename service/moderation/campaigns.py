"""Campaign detection: near-duplicate texts from different authors, by a MinHash sketch.

Pure functions, no I/O: the store keeps the sketches (store/campaigns.py) and the submission
decides (service/submissions.py). A text is normalised (as the policy compares texts: NFKC,
case folded, invisible characters and punctuation dropped, whitespace collapsed) and cut into
character 5-grams; its sketch is a one-permutation MinHash (Li, Owen, Zhang 2012): each
shingle is hashed once (CRC-32, in C), the hash picks one of :data:`SLOTS` slots and the
slot keeps its smallest value; empty slots borrow from the next filled one (rotation
densification, Shrivastava and Li 2014), so the fraction of equal slots estimates the Jaccard
similarity of two shingle sets. Candidates are found by LSH banding: :data:`BANDS` bands of
:data:`ROWS` slots, one Redis set per band value, so a text meets the earlier ones sharing at
least one band (likely from a similarity of about (1/BANDS)^(1/ROWS) = 0.59 up).

One hash per shingle instead of one per shingle and permutation keeps the sketch at tens of
microseconds for a comment (bench/campaign_bench.py measures it against the submission), where
datasketch's MinHash costs SLOTS hash permutations per shingle and needs numpy.
"""

from __future__ import annotations

import re
import zlib

from .policy import normalize

SLOTS = 32
BANDS = 8
ROWS = SLOTS // BANDS
SHINGLE = 5
# Estimated Jaccard similarity from which two texts count as the same campaign text.
SIMILAR = 0.5
# Texts shorter than this (normalised) are never a campaign: "Great article!" is no campaign.
MIN_LENGTH = 40
_NOT_WORD = re.compile(r"[^\w\s]+")
_EMPTY = 1 << 32


def canonical(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", normalize(text)).split())


def sketch(text: str) -> tuple[int, ...] | None:
    """The text's MinHash sketch; None when it is too short to judge."""
    flat = canonical(text)
    if len(flat) < MIN_LENGTH:
        return None
    data = flat.encode()
    crc = zlib.crc32
    values = {crc(data[i : i + SHINGLE]) for i in range(len(data) - SHINGLE + 1)}
    # Largest first, so that each slot ends with its smallest value (all in C but the dict).
    smallest = {v % SLOTS: v for v in sorted(values, reverse=True)}
    slots = [smallest.get(i, _EMPTY) for i in range(SLOTS)]
    filled = [i for i, v in enumerate(slots) if v != _EMPTY]
    for i in range(SLOTS):
        if slots[i] == _EMPTY:
            j = next((f for f in filled if f > i), filled[0])
            # A borrowed value is marked by how far it was borrowed from, so that two
            # sketches only agree on it when they borrowed alike.
            slots[i] = slots[j] + ((j - i) % SLOTS) * _EMPTY
    return tuple(slots)


def bands(signature: tuple[int, ...]) -> list[str]:
    """One short label per band: the Redis sets a sketch joins and looks into."""
    return [
        f"{band}-{zlib.crc32(repr(signature[band * ROWS : (band + 1) * ROWS]).encode()):08x}"
        for band in range(BANDS)
    ]


def similarity(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / SLOTS


def encode(signature: tuple[int, ...]) -> str:
    return ",".join(map(str, signature))


def decode(stored: str) -> tuple[int, ...]:
    return tuple(int(v) for v in stored.split(","))


def similar_encoded(a: list[str], b: list[str]) -> bool:
    """:func:`similarity` at least :data:`SIMILAR`, on sketches as stored (split, not parsed:
    a lookup compares up to 8 x 20 of them)."""
    return sum(map(str.__eq__, a, b)) >= SIMILAR * SLOTS
