"""The rate-limit counters in Redis, kept as the ``limits`` library keeps them.

``limits`` (the engine of flask-limiter) counts fixed windows in Redis under keys it names
below our prefix (see Keys.rate_limits). It is given the app's own client (one server, the
Sentinel master or the cluster), so its timeouts and retries apply here too, on every
topology: its own cluster and sentinel storages would open a second set of connections per
worker from the URL, with settings of their own. The insert script counts a submission's
limits itself, under the same keys and windows (:meth:`RateLimitCounters.window_counters`),
so a submission pays one round trip in all instead of one more per limit.

Only this module hands ``limits`` a Redis: what to limit (the parsed specs) and what to answer
when a limit is exhausted are the HTTP side's (service/api/ratelimit.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

from limits import RateLimitItem
from limits.storage import RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter
from redis.exceptions import RedisError

from .. import metrics
from .client import RedisClient, is_unavailable
from .inserts import WindowCounter
from .keys import Keys

log = logging.getLogger(__name__)


class SharedClientStorage(RedisStorage):
    """``limits``' Redis storage over a client we built (a ``RedisCluster`` too: it has no
    connection pool to hand over). Its commands are single-key scripts, valid on a cluster."""

    def __init__(self, client: RedisClient, key_prefix: str) -> None:
        # What RedisStorage.__init__ and RedisClusterStorage.__init__ do after making their
        # own client (limits 5.8): keep it, register the scripts, then the base's own set-up.
        self.key_prefix = key_prefix
        self.target_server = "redis"
        self.dependency = self.dependencies["redis"].module
        self.storage = client
        self.initialize_storage("redis://")
        Storage.__init__(self, "redis://")


class RateLimitCounters:
    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        storage = SharedClientStorage(redis, keys.rate_limits())
        self.limiter = FixedWindowRateLimiter(storage)
        # Requests let through uncounted because the store could not count them (logged each
        # time, and counted in rate_limits_not_counted_total too).
        self.not_counted = 0

    def window_counters(
        self, items: Sequence[RateLimitItem], scope: str, client: str
    ) -> tuple[WindowCounter, ...]:
        """``items`` as counters for a store script to count where it writes (the
        submission's insert): the same keys and fixed windows as ``limits`` keeps."""
        storage = cast(RedisStorage, self.limiter.storage)  # built as one in __init__
        return tuple(
            WindowCounter(
                key=storage.prefixed_key(item.key_for(scope, client)),
                amount=item.amount,
                window_seconds=item.get_expiry(),
                description=str(item),
            )
            for item in items
        )

    def first_exhausted(
        self, items: Sequence[RateLimitItem], scope: str, client: str
    ) -> tuple[RateLimitItem, float] | None:
        """Count one request of ``client`` against each of ``items`` in turn; the first one
        exhausted, with the time (epoch seconds) its window resets, or None."""
        for item in items:
            try:
                allowed = self.limiter.hit(item, scope, client)
            except RedisError as error:
                # Fail open, and say so: with Redis away (or failing over) the route itself
                # answers 503, and a limiter that cannot count must not be what refuses the
                # request. Any other error is a bug and is not swallowed.
                if not is_unavailable(error):
                    raise
                self.not_counted += 1
                metrics.count_rate_limit_not_counted(scope)
                log.warning(
                    "rate limit not counted, request let through (fail open): %s",
                    type(error).__name__,
                )
                return None
            if not allowed:
                return item, self.limiter.get_window_stats(item, scope, client).reset_time
        return None
