"""Comment ids: 26 characters, sortable by creation time, unguessable.

The layout is ULID's (48 bits of milliseconds, 80 random bits, Crockford base32), so the ids'
byte order is their time order and the indexes can be lexicographic sorted sets with cursors
that stay valid while comments come and go.
"""

from __future__ import annotations

import re
import secrets
import threading

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_PATTERN = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


_lock = threading.Lock()
_last = 0


def new_id(now_ms: int) -> str:
    """A fresh id; within one process, ids never go backwards even inside one millisecond."""
    global _last
    with _lock:
        value = (now_ms & ((1 << 48) - 1)) << 80 | secrets.randbits(80)
        if value <= _last:
            # Same millisecond (or a clock step back): keep order by counting up from the last
            # id, as ULID's monotonic mode does; the randomness of the first id still stands.
            value = _last + 1
        _last = value
    return _encode(value)


def id_at(at_ms: int, seed: str) -> str:
    """The id of a comment made at ``at_ms`` whose random part is fixed by ``seed`` (at least
    20 hex digits, e.g. a keyed hash of an imported comment's source id): the same source
    gives the same id, and the id sorts by the comment's own time."""
    value = (at_ms & ((1 << 48) - 1)) << 80 | int(seed[:20], 16)
    return _encode(value)


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
