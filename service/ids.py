"""Comment ids: 26 characters, sortable by creation time, unguessable.

The layout is ULID's (48 bits of milliseconds, 80 random bits, Crockford base32), so the ids'
byte order is their time order and the indexes can be lexicographic sorted sets with cursors
that stay valid while comments come and go.

A comment's id carries its article's key bucket (service/store/keys.py, Keys.bucket) in the
top 8 of the 80 random bits, leaving 72 random: a moderator's request for one comment finds the
comment's keys (and on a cluster its node) from the id alone, without a lookup.
"""

from __future__ import annotations

import re
import secrets
import threading

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_PATTERN = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


BUCKET_BITS = 8
_RANDOM_BITS = 80 - BUCKET_BITS
_TIME_MASK = (1 << 48) - 1

_lock = threading.Lock()
# The last id made per bucket (None: ids that carry no bucket, e.g. webhook endpoints').
_last: dict[int | None, int] = {}


def new_id(now_ms: int, bucket: int | None = None) -> str:
    """A fresh id, carrying ``bucket`` when given; within one process, the ids of one bucket
    never go backwards even inside one millisecond (an article's ids are all in one bucket)."""
    time_part = (now_ms & _TIME_MASK) << 80
    with _lock:
        if bucket is None:
            value = time_part | secrets.randbits(80)
        else:
            value = time_part | _bucket_bits(bucket) | secrets.randbits(_RANDOM_BITS)
        last = _last.get(bucket, 0)
        if value <= last:
            # Same millisecond (or a clock step back): keep order by counting up from the last
            # id, as ULID's monotonic mode does; the randomness of the first id still stands.
            # 72 random bits do not run into the bucket's bits by counting.
            value = last + 1
        _last[bucket] = value
    return _encode(value)


def id_at(at_ms: int, seed: str, bucket: int | None = None) -> str:
    """The id of a comment made at ``at_ms`` whose random part is fixed by ``seed`` (at least
    20 hex digits, e.g. a keyed hash of an imported comment's source id): the same source
    gives the same id, and the id sorts by the comment's own time. With ``bucket``, the id
    carries it and 72 bits of the seed."""
    time_part = (at_ms & _TIME_MASK) << 80
    if bucket is None:
        return _encode(time_part | int(seed[:20], 16))
    return _encode(time_part | _bucket_bits(bucket) | int(seed[:18], 16))


def id_bucket(comment_id: str) -> int:
    """The bucket an id carries (for an id made before ids carried one: its random bits)."""
    high = _ALPHABET.index(comment_id[10]) << 5 | _ALPHABET.index(comment_id[11])
    return high >> (10 - BUCKET_BITS)


def _bucket_bits(bucket: int) -> int:
    if not 0 <= bucket < 1 << BUCKET_BITS:
        raise ValueError(f"bucket {bucket} is not in 0..{(1 << BUCKET_BITS) - 1}")
    return bucket << _RANDOM_BITS


# Every pair of characters (10 bits): an id is 13 lookups, not 26 (an import makes 100,000s).
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]
_SHIFTS = range(120, -1, -10)


def _encode(value: int) -> str:
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in _SHIFTS])


def is_valid_id(candidate: str) -> bool:
    return ID_PATTERN.fullmatch(candidate) is not None


def id_time_ms(comment_id: str) -> int:
    """The creation time (ms since the epoch) an id carries in its first ten characters."""
    value = 0
    for char in comment_id[:10]:
        value = value * 32 + _ALPHABET.index(char)
    return value
