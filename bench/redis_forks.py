"""The background forks (AOF rewrites, RDB saves) of the Redis a bench run writes to.

A submission appends 3-4 KB to the append-only file, so a few runs of the submit scenario grow
it past ``auto-aof-rewrite-min-size`` and Redis forks a child that rewrites the whole dataset:
seconds of one core's CPU, on a 2-core machine, landing in whichever run is going. In an A/B of
alternated runs that is noise of the size of the effect measured (seen on 2026-12-03: two
rewrites during one campaign-cost comparison). So a run starts once no fork is running, and
counts the forks that began during it, which the report shows next to the run.
"""

from __future__ import annotations

import time
from typing import Any

# How long a run waits for a running rewrite or save to finish before it starts anyway.
SETTLE_LIMIT_S = 60.0


class ForkWatch:
    """One Redis's forks, through its own connection (the bench's, not the service's)."""

    def __init__(self, url: str) -> None:
        from redis import Redis

        self.client: Any = Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)

    def busy(self) -> bool:
        persistence = self.client.info("persistence")
        return bool(
            int(persistence.get("aof_rewrite_in_progress", 0))
            or int(persistence.get("rdb_bgsave_in_progress", 0))
            or int(persistence.get("aof_rewrite_scheduled", 0))
        )

    def settle(self, limit_s: float = SETTLE_LIMIT_S) -> float:
        """Wait until no fork is running or scheduled (at most ``limit_s``); seconds waited."""
        started = time.monotonic()
        while self.busy() and time.monotonic() - started < limit_s:
            time.sleep(0.1)
        return time.monotonic() - started

    def forks(self) -> int:
        """Forks since the server started (INFO stats ``total_forks``, Redis 6.2 and 7)."""
        return int(self.client.info("stats").get("total_forks", 0))

    def close(self) -> None:
        self.client.close()
