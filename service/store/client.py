"""Construction of the Redis client, with every timeout and retry stated explicitly.

``REDIS_URL`` takes four forms (README, "Redis topologies"):

- ``redis://[user:pass@]host:port/db``, ``rediss://...`` and ``unix:///path?db=N``: one server;
- ``redis+cluster://[user:pass@]host1:port1,host2:port2``: a Redis Cluster (any reachable
  nodes; the client learns the rest), db 0 only (Cluster has no other);
- ``redis+sentinel://[user:pass@]s1:26379,s2:26379/<service>[/db]``: the master Sentinel names
  for ``<service>`` (the ``limits`` library's format), followed across failovers; the
  sentinels' own password comes from ``SENTINEL_PASSWORD``, the URL's from the data servers.

Errors that mean "the store cannot take this request now" (a connection or timeout, a cluster
that is resharding, failing over or down, a replica answering, too few replicas to write) are
listed here once, :func:`is_unavailable`; service/errors.py answers them 503 with Retry-After.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union, cast
from urllib.parse import unquote, urlsplit

from redis import Redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from .command_packing import PACKER

# What the store's rooms hold: a single server's client (also what Sentinel's master_for
# gives) or a cluster's. Both speak the same commands for keys of one slot.
RedisClient = Union[Redis, RedisCluster]  # noqa: UP007 (a runtime alias mypy reads)

CLUSTER_SCHEME = "redis+cluster"
SENTINEL_SCHEME = "redis+sentinel"


@dataclass(frozen=True)
class RedisTarget:
    """A parsed REDIS_URL."""

    kind: Literal["single", "cluster", "sentinel"]
    url: str
    nodes: tuple[tuple[str, int], ...] = ()  # cluster startup nodes, or the sentinels
    service: str = ""  # the Sentinel service name
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_redis_url(url: str) -> RedisTarget:
    """The topology a REDIS_URL names; ValueError (with the reason) when it is unusable."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss", "unix"):
        return RedisTarget("single", url)
    if scheme not in (CLUSTER_SCHEME, SENTINEL_SCHEME):
        raise ValueError(
            "REDIS_URL must start with redis://, rediss://, unix://, redis+cluster:// or "
            f"redis+sentinel://, got {scheme or 'no scheme'}"
        )
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    nodes = tuple(
        _host_port(entry, 26379 if scheme == SENTINEL_SCHEME else 6379)
        for entry in hosts.split(",")
        if entry
    )
    if not nodes:
        raise ValueError(f"REDIS_URL ({scheme}) names no host")
    path = [p for p in parts.path.split("/") if p]
    user, secret = unquote(username) or None, unquote(password) or None
    if scheme == CLUSTER_SCHEME:
        db = path[0] if path else _query_db(parts.query)
        if db not in (None, "0"):
            raise ValueError(
                f"REDIS_URL: a Redis Cluster has only db 0, the URL asks for db {db} "
                "(use KEY_PREFIX to keep installations apart)"
            )
        return RedisTarget("cluster", url, nodes, username=user, password=secret)
    if not path:
        raise ValueError("REDIS_URL (redis+sentinel://) must end with /<service-name>")
    db_text = path[1] if len(path) > 1 else (_query_db(parts.query) or "0")
    if not db_text.isdigit():
        raise ValueError(f"REDIS_URL: the db must be a number, got {db_text!r}")
    return RedisTarget(
        "sentinel", url, nodes, unquote(path[0]), int(db_text), username=user, password=secret
    )


def _host_port(entry: str, default_port: int) -> tuple[str, int]:
    host, sep, port = entry.rpartition(":")
    if not sep:
        return entry, default_port
    if not port.isdigit():
        raise ValueError(f"REDIS_URL: not a port: {port!r}")
    return host.strip("[]"), int(port)


def _query_db(query: str) -> str | None:
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "db":
            return value
    return None


def _retry(retries: int) -> Retry:
    # Two quick retries ride out a reconnect (or a cluster's slot-map refresh after a
    # failover) without holding a request long when Redis is really away.
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries)


def make_redis(
    url: str,
    *,
    timeout: float = 2.0,
    retries: int = 2,
    sentinel_password: str | None = None,
) -> RedisClient:
    target = parse_redis_url(url)
    # RESP2 keeps reply shapes identical on the embedded 6.2 and on 7.x. No health-check PING:
    # it retries on its own inside each command's retries, which stretched a hung Redis's wait
    # to (retries+1)² × timeout (measured: 18.8 s, not 6).
    common = {
        "protocol": 2,
        "decode_responses": True,
        "socket_timeout": timeout,
        "socket_connect_timeout": min(timeout, 1.0),
        "health_check_interval": 0,
    }
    if target.kind == "cluster":
        # (RedisCluster passes only its own list of connection settings on to its nodes, and
        # command_packer is not among them: a cluster's commands are packed by redis-py.)
        return RedisCluster(
            startup_nodes=[
                ClusterNode(host, port)  # type: ignore[no-untyped-call]
                for host, port in target.nodes
            ],
            username=target.username,
            password=target.password,
            retry=_retry(retries),
            # A slot not served by any primary is an error at once (503), not a guess.
            require_full_coverage=True,
            max_connections=64,
            **common,  # type: ignore[arg-type]
        )
    if target.kind == "sentinel":
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes),
            sentinel_kwargs={
                "password": sentinel_password,
                "socket_timeout": min(timeout, 1.0),
                "socket_connect_timeout": min(timeout, 1.0),
            },
        )
        master: Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service,
            db=target.db,
            username=target.username,
            password=target.password,
            retry=_retry(retries),
            max_connections=64,
            command_packer=PACKER,
            **common,
        )
        return master
    # from_url() would otherwise retry nothing; the library's own default for Redis(host=...)
    # is 10 retries (seconds of waiting).
    return Redis.from_url(
        url, retry=_retry(retries), max_connections=64, command_packer=PACKER, **common
    )


def is_cluster(client: RedisClient) -> bool:
    return isinstance(client, RedisCluster)


def queue_xreadgroup(
    client: RedisClient, pipe: Any, group: str, consumer: str, stream: str, start: str, count: int
) -> None:
    """Queue in ``pipe`` one XREADGROUP of one stream, without BLOCK. On a cluster it names
    the node of the stream's slot itself: XREADGROUP's keys are "movable", and redis-py would
    otherwise ask a node for them (COMMAND GETKEYS, twice, each a round trip of its own) for
    every stream before sending the pipeline. A redirect still reroutes it as usual."""
    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(stream)  # type: ignore[no-untyped-call]
        pieces = ["GROUP", group, consumer, "COUNT", count, "STREAMS", stream, start]
        pipe.execute_command("XREADGROUP", *pieces, target_nodes=node)
    else:
        pipe.xreadgroup(group, consumer, {stream: start}, count=count)


def slot_groups(client: RedisClient, keys: Sequence[str]) -> list[list[int]]:
    """The positions of ``keys`` that one command or script may name together, in first-seen
    order: all of them on a single server (it checks no slots: one round trip, as before
    sharding), those of one Cluster slot on a cluster."""
    if not isinstance(client, RedisCluster):
        return [list(range(len(keys)))] if keys else []
    groups: dict[int, list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(client.keyslot(key), []).append(position)  # type: ignore[no-untyped-call]
    return list(groups.values())


def mget(client: RedisClient, keys: Sequence[str]) -> list[Any]:
    """The values of ``keys`` in order (None where missing): one MGET on a single server; on a
    cluster one MGET per slot, pipelined (one round trip per node, in parallel), since one
    MGET over several slots is refused. Atomic only per slot there: callers that compare
    keys of several slots re-read as they would after any concurrent change."""
    if not keys:
        return []
    if isinstance(client, RedisCluster):
        return list(client.mget_nonatomic(list(keys)))
    return list(cast(list[Any], client.mget(list(keys))))


def primaries(client: RedisClient) -> list[Redis]:
    """One client a primary: the cluster's, or the one server (for SCAN, whose cursor is one
    server's, and other per-server commands)."""
    if isinstance(client, RedisCluster):
        return [
            client.get_redis_connection(node)
            for node in client.get_primaries()  # type: ignore[no-untyped-call]
        ]
    return [client]


class ReplicasBehind(RedisError):
    """A write the primary applied that fewer replicas than asked confirmed in time
    (durability.py)."""


# "The store cannot take this request now; retry shortly": answered 503 with Retry-After.
# MovedError is an AskError; both reach us only when the client gave up following them (it
# gives up with ClusterError "TTL exhausted"). A RedisClusterException otherwise is a request
# the client refused to send (keys of several slots in one script): a bug, left a 500.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    AskError,
    TryAgainError,
    ClusterDownError,
    ClusterError,
    ReadOnlyError,
    SlotNotCoveredError,
    MasterNotFoundError,
    ReplicasBehind,
)
# Replies redis-py does not give a class of their own (also what a script's failing write
# carries inside its error text).
_UNAVAILABLE_REPLIES = (
    "NOREPLICAS",
    "READONLY",
    "MASTERDOWN",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "LOADING",
)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the store is (briefly) unable to serve, not a bug."""
    if isinstance(error, UNAVAILABLE_ERRORS):
        return True
    if isinstance(error, ResponseError):
        text = str(error)
        return any(reply in text for reply in _UNAVAILABLE_REPLIES)
    return False


__all__ = [
    "RedisClient",
    "RedisError",
    "RedisTarget",
    "ReplicasBehind",
    "UNAVAILABLE_ERRORS",
    "is_cluster",
    "mget",
    "primaries",
    "slot_groups",
    "is_unavailable",
    "make_redis",
    "parse_redis_url",
]
