"""The rate-limit counters in Redis, kept as the ``limits`` library keeps them.

``limits`` (the engine of flask-limiter) counts fixed windows in Redis under keys it names
below our prefix (see Keys.rate_limits). It is given the app's own connection pool, so its
timeouts and retries apply here too. The insert script counts a submission's limits itself,
under the same keys and windows (:meth:`RateLimitCounters.window_counters`), so a
submission pays one round trip in all instead of one more per limit.

Only this module hands ``limits`` a Redis: what to limit (the parsed specs) and what to answer
when a limit is exhausted are the HTTP side's (service/api/ratelimit.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

from limits import RateLimitItem
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter
from redis import Redis
from redis.exceptions import RedisError

from .inserts import WindowCounter
from .keys import Keys

log = logging.getLogger(__name__)


class RateLimitCounters:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        storage = RedisStorage(
            "redis://", connection_pool=redis.connection_pool, key_prefix=keys.rate_limits()
        )
        self.limiter = FixedWindowRateLimiter(storage)

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
                # Fail open: with Redis away the route itself answers 503, and a limiter that
                # cannot count must not be what refuses the request.
                log.warning("rate limit not counted: %s", type(error).__name__)
                return None
            if not allowed:
                return item, self.limiter.get_window_stats(item, scope, client).reset_time
        return None
