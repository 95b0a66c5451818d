"""Cleaning a shared Redis (REDIS_URL) after a test or a benchmark run."""

from __future__ import annotations

import re

from service.store.client import RedisClient
from service.store.keys import Keys


def delete_prefix(redis: RedisClient, prefix: str) -> int:
    """Delete every key of ``prefix``'s hash tag; how many there were.

    That is all of them: the comment keys and the limiter's counters too
    (``Keys.rate_limits()`` lies under the tag).
    """
    pattern = glob_escape(Keys(prefix).tag) + ":*"
    batch = list(redis.scan_iter(match=pattern, count=1000))
    for start in range(0, len(batch), 500):
        redis.delete(*batch[start : start + 500])
    return len(batch)


def glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern (SCAN MATCH, KEYS)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
