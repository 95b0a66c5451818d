"""Per client IP rate limits on the public routes, counted in Redis so all workers share them.

Built on ``limits``, the library flask-limiter itself runs on (same storage, same strategies),
called directly where a route needs it. flask-limiter's request hooks measured ~0.15 ms on
every request, limited or not, and halved the article page's throughput against the bare-Flask
ceiling (0.76 → 0.33, bench/http_bench.py); called directly, a limit costs one Redis round
trip where it applies and nothing where it does not. It also lets the counters be keyed by the
client IP's keyed hash: flask-limiter puts the raw address into its Redis keys.

Submissions go one step further: their limits are counted by the insert script itself, in the
same fixed windows under the same keys (:meth:`RateLimits.counters`), so a submission pays one
round trip in all instead of one more per limit.
"""

from __future__ import annotations

import logging
import math
import time
from typing import cast

from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter
from redis import Redis
from redis.exceptions import RedisError

from ..domain_errors import RateLimited
from ..store import WindowCounter

log = logging.getLogger(__name__)


class RateLimits:
    def __init__(self, redis: Redis, key_prefix: str, specs: dict[str, str], *,
                 enabled: bool = True) -> None:
        """``specs`` maps a scope (e.g. "submit") to limits like "20/minute;200/hour"; an empty
        spec leaves that scope unlimited. A spec that does not parse is a ValueError."""
        self.enabled = enabled
        self.items: dict[str, list[RateLimitItem]] = {
            scope: parse_many(spec) if spec else [] for scope, spec in specs.items()}
        # The app's own connection pool: its timeouts and retries apply here too.
        storage = RedisStorage("redis://", connection_pool=redis.connection_pool,
                               key_prefix=key_prefix)
        self.limiter = FixedWindowRateLimiter(storage)

    def counters(self, scope: str, client: str) -> tuple[WindowCounter, ...]:
        """The limits of ``scope`` as counters for a store script to count where it writes
        (the submission's insert), saving the round trip :meth:`check` costs. Same keys and
        fixed windows as ``limits`` keeps; none when limits are off."""
        if not self.enabled:
            return ()
        storage = cast(RedisStorage, self.limiter.storage)  # built as one in __init__
        return tuple(
            WindowCounter(key=storage.prefixed_key(item.key_for(scope, client)),
                          amount=item.amount, window_seconds=item.get_expiry(),
                          description=str(item))
            for item in self.items.get(scope, ()))

    def check(self, scope: str, client: str) -> None:
        """Count one request of ``client`` (a keyed hash, never a raw IP) against every limit
        of ``scope``; :class:`RateLimited` once one is exhausted."""
        if not self.enabled:
            return
        for item in self.items.get(scope, ()):
            try:
                allowed = self.limiter.hit(item, scope, client)
            except RedisError as error:
                # Fail open: with Redis away the route itself answers 503, and a limiter that
                # cannot count must not be what refuses the request.
                log.warning("rate limit not counted: %s", type(error).__name__)
                return
            if not allowed:
                reset_at = self.limiter.get_window_stats(item, scope, client).reset_time
                raise RateLimited(str(item), math.ceil(reset_at - time.time()))
