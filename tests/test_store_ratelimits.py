"""The store's rate-limit counters: counted in Redis as `limits` counts them, failing open."""

from __future__ import annotations

import time

from limits import parse_many
from redis import Redis

from devtools.processes import free_port
from service.store import Keys, RateLimitCounters, make_redis


def test_the_first_exhausted_limit_comes_back_with_its_reset(redis_client: Redis) -> None:
    counters = RateLimitCounters(redis_client, Keys("cm"))
    items = parse_many("5/minute;2/hour")
    assert counters.first_exhausted(items, "read", "client-hash") is None
    assert counters.first_exhausted(items, "read", "client-hash") is None
    exhausted = counters.first_exhausted(items, "read", "client-hash")
    assert exhausted is not None
    item, reset_at = exhausted
    assert str(item) == str(items[1])
    assert 3500 < reset_at - time.time() <= 3600
    # Counted under the store's prefix, per client: another client is not limited.
    assert all(k.startswith(Keys("cm").rate_limits()) for k in redis_client.scan_iter("*"))
    assert counters.first_exhausted(items, "read", "other-hash") is None


def test_a_limit_that_cannot_be_counted_lets_the_request_through() -> None:
    # A real client to a port nobody listens on: Redis away, not a mock.
    away = make_redis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2, retries=0)
    counters = RateLimitCounters(away, Keys("cm"))
    assert counters.first_exhausted(parse_many("1/minute"), "read", "client-hash") is None
