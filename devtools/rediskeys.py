"""Cleaning a shared Redis (REDIS_URL) after a test or a benchmark run."""

from __future__ import annotations

from service.store.client import RedisClient
from service.store.keys import Keys, glob_escape
from service.store.layout import LegacyKeys


def delete_prefix(redis: RedisClient, prefix: str) -> int:
    """Delete every key of ``prefix``, in the current layout and in layout 1 (a migration
    test's); how many there were.

    That is all of them: the comment keys and the limiter's counters too
    (``Keys.rate_limits()`` lies under the prefix).
    """
    batch = [
        key
        for pattern in (Keys(prefix).scan_pattern(), LegacyKeys(prefix).scan_pattern())
        for key in redis.scan_iter(match=pattern, count=1000)
    ]
    for start in range(0, len(batch), 500):
        redis.delete(*batch[start : start + 500])
    return len(batch)


__all__ = ["delete_prefix", "glob_escape"]
