"""Per client IP rate limits on the public routes, counted in Redis so all workers share them.

Built on ``limits``, the library flask-limiter itself runs on (same storage, same strategies),
called directly where a route needs it. flask-limiter's request hooks measured ~0.15 ms on
every request, limited or not, and halved the article page's throughput against the bare-Flask
ceiling (0.76 → 0.33, bench/http_bench.py); called directly, a limit costs one Redis round
trip where it applies and nothing where it does not. It also lets the counters be keyed by the
client IP's keyed hash: flask-limiter puts the raw address into its Redis keys.

This is the HTTP side: which limits apply to which scope, and the answer once one is
exhausted. The counters themselves are the store's (service/store/ratelimits.py), which also
hands a submission's limits to the insert script, so a submission pays one round trip in all.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many

from ..domain_errors import RateLimited
from ..store import RateLimitCounters, WindowCounter


class RateLimits:
    def __init__(
        self, store: RateLimitCounters, specs: dict[str, str], *, enabled: bool = True
    ) -> None:
        """``specs`` maps a scope (e.g. "submit") to limits like "20/minute;200/hour"; an empty
        spec leaves that scope unlimited. A spec that does not parse is a ValueError."""
        self.enabled = enabled
        self.items: dict[str, list[RateLimitItem]] = {
            scope: parse_many(spec) if spec else [] for scope, spec in specs.items()
        }
        self.store = store

    def counters(self, scope: str, client: str) -> tuple[WindowCounter, ...]:
        """The limits of ``scope`` as counters for a store script to count where it writes
        (the submission's insert), saving the round trip :meth:`check` costs; none when
        limits are off."""
        if not self.enabled:
            return ()
        return self.store.window_counters(self.items.get(scope, ()), scope, client)

    def check(self, scope: str, client: str) -> None:
        """Count one request of ``client`` (a keyed hash, never a raw IP) against every limit
        of ``scope``; :class:`RateLimited` once one is exhausted. Not counted (Redis away)
        is not exhausted: see RateLimitCounters.first_exhausted."""
        if not self.enabled:
            return
        exhausted = self.store.first_exhausted(self.items.get(scope, ()), scope, client)
        if exhausted is not None:
            item, reset_at = exhausted
            raise RateLimited(str(item), math.ceil(reset_at - time.time()))
