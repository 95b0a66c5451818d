"""Which servers the cache must hear from, and how it notices that this changed.

A server sends invalidations only for the keys it owns, and a replica only once replication
brought them (too late for read-your-writes), so the cache tracks every **primary**:

- one server (``redis://``, ``rediss://``, ``unix://``): that one;
- a Redis Cluster (``redis+cluster://``): every primary that ``CLUSTER SLOTS`` names, one
  invalidation stream each, polled together. A slot moving between them needs nothing (the new
  owner reports its keys, the old one the keys it gives away), yet a changed slot map, a new
  primary, a failover or a lost connection flushes the cache and re-tracks all of them: the
  heartbeat compares the slot map with the one tracked (:meth:`Sources.still_current`);
- Sentinel (``redis+sentinel://``): the master the sentinels name, never a replica. Every
  sentinel is also subscribed to its failover events (``+switch-master``,
  ``+failover-state-reconf-slaves``, ``+promoted-slave``), read with the invalidations: one
  arriving flushes the cache and re-tracks the new master before a read is served from memory
  (the heartbeat also checks that the tracked server is still a master).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from ..store.client import RedisTarget, parse_redis_url

# Sentinel's events that mean "the master is changing": a read must not be served from what
# the old one told us.
SENTINEL_EVENTS = ("+switch-master", "+failover-state-reconf-slaves", "+promoted-slave")


@dataclass(frozen=True)
class Sources:
    """The servers to track now, and what to watch for a change of them."""

    kind: str
    servers: tuple[str, ...]  # one URL a primary
    slot_map: tuple[tuple[int, int, str, int], ...] = ()  # cluster: (start, end, host, port)
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_password: str | None = None
    cluster_nodes: tuple[tuple[str, int], ...] = ()
    username: str | None = None
    password: str | None = None

    def still_current(self, control: Any, command: Any) -> bool:
        """Whether the topology is the one tracked, asked on a tracked server's control
        connection (``command(connection, *args)`` sends and reads one command)."""
        if self.kind == "cluster":
            return _slot_map(command(control, "CLUSTER", "SLOTS")) == self.slot_map
        if self.kind == "sentinel":
            role = command(control, "ROLE")
            return bool(role) and str(role[0]) == "master"
        return True


def discover(
    redis_url: str, *, connect_timeout: float = 1.0, sentinel_password: str | None = None
) -> Sources:
    """The primaries ``redis_url`` leads to now (raises redis errors while none answers)."""
    target = parse_redis_url(redis_url)
    if target.kind == "single":
        return Sources("single", (redis_url,))
    if target.kind == "sentinel":
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes),
            sentinel_kwargs={
                "password": sentinel_password,
                "socket_timeout": connect_timeout,
                "socket_connect_timeout": connect_timeout,
                "retry": no_retry(),
            },
            socket_timeout=connect_timeout,
        )
        host, port = sentinel.discover_master(target.service)  # type: ignore[no-untyped-call]
        for client in sentinel.sentinels:
            client.close()
        return Sources(
            "sentinel",
            (_server_url(target, str(host), int(port)),),
            sentinels=target.nodes,
            sentinel_password=sentinel_password,
            username=target.username,
            password=target.password,
        )
    return _cluster_sources(target, connect_timeout)


def _cluster_sources(target: RedisTarget, connect_timeout: float) -> Sources:
    last_error: Exception | None = None
    for host, port in target.nodes:
        node = Redis(
            host=host,
            port=port,
            username=target.username,
            password=target.password,
            socket_timeout=connect_timeout,
            socket_connect_timeout=connect_timeout,
            decode_responses=True,
            protocol=2,
            retry=no_retry(),
        )
        try:
            slots = _slot_map(node.execute_command("CLUSTER", "SLOTS"))  # type: ignore[no-untyped-call]
        except Exception as error:  # noqa: BLE001 (the next startup node may answer)
            last_error = error
            continue
        finally:
            node.close()
        primaries = sorted({(h, p) for _, _, h, p in slots})
        return Sources(
            "cluster",
            tuple(_server_url(target, h, p) for h, p in primaries),
            slot_map=slots,
            cluster_nodes=target.nodes,
            username=target.username,
            password=target.password,
        )
    assert last_error is not None
    raise last_error


def no_retry() -> Retry:
    """The listener retries on its own (with back-off, and it stops when told): a connection
    that sleeps between its own retries would keep it from stopping."""
    return Retry(NoBackoff(), 0)


def _slot_map(reply: Any) -> tuple[tuple[int, int, str, int], ...]:
    """CLUSTER SLOTS as (start, end, primary host, primary port), sorted."""
    return tuple(
        sorted(
            (int(entry[0]), int(entry[1]), str(entry[2][0]), int(entry[2][1])) for entry in reply
        )
    )


def _server_url(target: RedisTarget, host: str, port: int) -> str:
    credentials = ""
    if target.password is not None:
        user = quote(target.username or "", safe="")
        credentials = f"{user}:{quote(target.password, safe='')}@"
    elif target.username is not None:
        credentials = f"{quote(target.username, safe='')}@"
    return f"redis://{credentials}{host}:{port}/{target.db}"
