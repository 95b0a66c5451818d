"""A per-process cache that Redis itself keeps honest (server-assisted client-side caching).

A general component, not part of the comment domain: it knows key prefixes, not what the
keys hold. cache.py is the cache and its correctness rules; stream.py the two Redis
connections it listens on, the one place that relies on redis-py and hiredis internals (see
its "What this relies on", checked by tests/test_tracked_cache_assumptions.py).
"""

from .cache import TrackedCache
from .stream import CHANNEL, InvalidationStream

__all__ = ["CHANNEL", "InvalidationStream", "TrackedCache"]
