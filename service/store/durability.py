"""Acknowledged means on a replica too: ``WAIT`` after the write scripts (README, "Redis
topologies", Durability on failover).

Redis replicates asynchronously: a primary answers a write before any replica has it, so a
failover (Sentinel's, or a cluster replica taking over from a killed primary) can drop writes
the service already acknowledged. With ``REDIS_WAIT_REPLICAS`` = N > 0 each acknowledging write
(a submission's insert, decisions, edits, deletions, erasures, reports, settings, the
Idempotency-Key's kept answer, imported batches) is followed by ``WAIT N
<REDIS_WAIT_TIMEOUT_MS>`` **in the same pipeline, on the same connection** (WAIT counts only
that connection's own writes; sent on another one it returns at once and proves nothing), so
a single node or Sentinel's master still takes one round trip per write. On a cluster that
connection is the one to the primary owning the keys' slot, found through the cluster client
(a batch whose writes live on several primaries sends each its own, with its own WAIT); a
MOVED/ASK/TRYAGAIN reply is followed here (the pipeline bypasses the cluster client's own
redirection). The MULTI/WATCH transactions and plain commands that acknowledge a change
(webhook endpoints, commenter keys revoked, an email re-encrypted, a backup's keys restored)
are confirmed after EXEC by :meth:`ReplicaWait.confirm`.

When fewer replicas than N confirm in time, the write has happened on the primary but may not
survive it. Inside a request (:func:`begin_request`) the request goes on, so that its answer is
kept under its Idempotency-Key like any other, and is then answered 503 with Retry-After
(service/errors.py): a retry with the same key replays the first answer if the write survived
(the kept answer is written after it, on the same primary, and replication keeps the order),
or is processed afresh if both were lost. Outside a request (the CLI) :class:`ReplicasBehind`
is raised at once.

Why not ``min-replicas-to-write`` alone: it refuses writes when no replica has acknowledged
*anything* for ``min-replicas-max-lag`` seconds, so it bounds the loss to about that lag, not
to nothing. It is the right companion setting on the servers (it stops an isolated old master
from taking writes at all; its NOREPLICAS refusal is a 503 too), and README says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import hiredis
from redis import Redis
from redis.cluster import ClusterPipeline, RedisCluster
from redis.commands.core import Script
from redis.exceptions import (
    AskError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import SentinelConnectionPool

from .client import RedisClient
from .client import ReplicasBehind as ReplicasBehind

# Attempts at one write batch on a cluster whose slot map is changing under it.
REDIRECT_ATTEMPTS = 5
TRY_AGAIN_SECONDS = 0.05
# How long the replication mark (ReplicaWait.confirm) stays: only its replication matters.
MARK_TTL_MS = 60_000


# The writes of the current request that no replica confirmed (None outside a request).
_unconfirmed: ContextVar[list[str] | None] = ContextVar("unconfirmed_writes", default=None)


def begin_request(unconfirmed: Sequence[str] = ()) -> object:
    """Collect the request's unconfirmed writes instead of raising at the first (service/
    errors.py's hooks), after ``unconfirmed`` (those of a submission the fast path began,
    service/api/fast_submissions.py); the token to pass to :func:`end_request`."""
    return _unconfirmed.set(list(unconfirmed))


def end_request(token: object) -> None:
    _unconfirmed.reset(token)  # type: ignore[arg-type]


def unconfirmed_writes() -> list[str]:
    """What the current request wrote that no replica confirmed in time."""
    return list(_unconfirmed.get() or ())


def _report_unconfirmed(what: str, confirmed: int, wanted: int) -> None:
    writes = _unconfirmed.get()
    if writes is None:
        raise ReplicasBehind(f"{what}: {confirmed} of {wanted} replicas confirmed in time")
    writes.append(what)


# A command as sent: ("EVALSHA", sha, numkeys, *keys, *args) or any single-slot write.
Command = tuple[Any, ...]


@dataclass
class ReplicaWait:
    """How many replicas must confirm each write (None: decide from the topology) and for
    how long to wait."""

    redis: RedisClient
    replicas: int | None = None
    timeout_ms: int = 500
    _resolved: int | None = field(default=None, init=False)
    # Told when a write met a MOVED or ASK: the caches flush and re-track (StoreCore).
    on_redirect: Callable[[], None] | None = None

    def wanted(self) -> int:
        if self._resolved is None:
            self._resolved = self.replicas if self.replicas is not None else self._auto()
        return self._resolved

    def _auto(self) -> int:
        # Sentinel means a replica to fail over to; a cluster waits when it has replicas; a
        # single server (no replica known) does not wait.
        if isinstance(self.redis, RedisCluster):
            nodes = str(self.redis.execute_command("CLUSTER", "NODES"))  # type: ignore[no-untyped-call]
            return 1 if any(" slave " in f" {line} " for line in nodes.splitlines()) else 0
        if _is_sentinel_master(self.redis):
            return 1
        return 0

    def script(self, script: Script, keys: Sequence[Any], args: Sequence[Any], *, what: str) -> Any:
        """Run one write script and wait for the replicas; its reply (errors raised)."""
        if self.wanted() == 0:
            return script(keys=keys, args=args)
        (reply,) = self.batch([_evalsha(script, keys, args)], [script], what=what)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def confirm(self, *mark_keys: str, what: str) -> None:
        """Wait for the replicas to have a write that went without :meth:`batch` (a MULTI/
        WATCH transaction, a plain command): WAIT counts only the writes of its own
        connection, so a short-lived mark is written on that connection first; being later in
        the one replication stream, a replica that has it has the transaction too. One mark
        per hash tag the write touched (``mark_keys``: each in its tag's slot, so on its
        primary); marks on different primaries are confirmed each on its own. A change made
        again (a retried request) is confirmed again."""
        if self.wanted() == 0 or not mark_keys:
            return
        marks = [("SET", key, "1", "PX", MARK_TTL_MS) for key in dict.fromkeys(mark_keys)]
        self.batch(marks, [], what=what)

    def batch(
        self,
        commands: Sequence[Command],
        scripts: Sequence[Script],
        *,
        what: str,
        transaction: bool = False,
        wait: bool = True,
    ) -> list[Any]:
        """Several writes, each of one slot (any slots: on a cluster they are sent to each
        slot's primary, one pipeline with one WAIT after it per primary, in turn); each
        command's reply, an exception for one that failed (as ``raise_on_error=False``
        gives). The write is confirmed when every primary written to has its replicas
        confirm. ``scripts`` are those the EVALSHAs name, loaded again if the server lost
        them. Without replicas to wait for, a plain pipeline, or with ``transaction`` on a
        single server one MULTI/EXEC (under ``appendfsync always`` one fsync for the whole
        batch instead of one per 16 KB Redis reads of it; imports use it). With replicas to
        wait for the commands go without MULTI: WAIT must follow them on the same
        connection. ``wait=False``: a plain pipeline whatever the replicas (a split change's
        post-steps, whose outbox entry was waited for with the change: steps.py)."""
        if not commands:
            return []
        wanted = self.wanted() if wait else 0
        if wanted == 0:
            if transaction and not isinstance(self.redis, RedisCluster):
                replies = _transaction(self.redis, commands, scripts)
            else:
                pipe = self.redis.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                replies = pipe.execute(raise_on_error=False)
            return _reload_missing(self.redis, replies, commands, scripts)
        if isinstance(self.redis, RedisCluster):
            replies, confirmed = self._on_owners(self.redis, list(commands), scripts, wanted)
        else:
            replies, confirmed = _send(
                self.redis, list(commands), scripts, wanted, self.timeout_ms, asking=False
            )
        if confirmed < wanted:
            _report_unconfirmed(what, confirmed, wanted)
        return replies

    def _on_owners(
        self, cluster: RedisCluster, commands: list[Command], scripts: Sequence[Script], wanted: int
    ) -> tuple[list[Any], int]:
        """Each command with WAIT on the connection to the primary owning its slot (the
        commands of one primary in one pipeline); their replies and the fewest replicas any
        primary's WAIT confirmed. Redirections (MOVED, ASK, TRYAGAIN) are followed for the
        commands they answered, up to REDIRECT_ATTEMPTS rounds."""
        replies: list[Any] = [None] * len(commands)
        pending = list(range(len(commands)))
        asking: dict[int, tuple[str, int]] = {}  # a command's ASK target, for the next round
        confirmed = wanted
        for attempt in range(REDIRECT_ATTEMPTS):
            rounds = _by_owner(cluster, commands, pending, asking)
            if rounds is None:  # an ASK to a node the map does not know yet
                _refresh(cluster)
                asking = {}
                continue
            redirected: list[int] = []
            kinds: set[type[Exception]] = set()
            asking = {}
            for node, ask, indexes in rounds:
                server = cluster.get_redis_connection(node)
                try:
                    got, acks = _send(
                        server,
                        [commands[i] for i in indexes],
                        scripts,
                        wanted,
                        self.timeout_ms,
                        asking=ask,
                    )
                except (RedisConnectionError, RedisTimeoutError):
                    _refresh(cluster)  # the primary is gone or going: learn the new map
                    raise
                confirmed = min(confirmed, acks)
                for index, reply in zip(indexes, got, strict=True):
                    replies[index] = reply
                    if isinstance(reply, (AskError, TryAgainError)):  # MovedError: an AskError
                        redirected.append(index)  # nothing of it ran: run it where it belongs
                        kinds.add(type(reply))
                        if isinstance(reply, AskError) and not isinstance(reply, MovedError):
                            asking[index] = reply.node_addr
            if not redirected:
                return replies, confirmed
            pending = sorted(redirected)
            if any(issubclass(kind, AskError) for kind in kinds) and self.on_redirect:
                self.on_redirect()  # MovedError is an AskError too
            if any(issubclass(kind, MovedError) for kind in kinds):
                _refresh(cluster)
            elif kinds == {TryAgainError}:  # keys of a slot half-way through a move: wait
                time.sleep(TRY_AGAIN_SECONDS * (attempt + 1))
        return replies, confirmed  # the redirections left in place are 503s (is_unavailable)


def _by_owner(
    cluster: RedisCluster,
    commands: Sequence[Command],
    pending: Sequence[int],
    asking: dict[int, tuple[str, int]],
) -> list[tuple[Any, bool, list[int]]] | None:
    """The pending commands (by position) grouped by where to send them: (node, after ASKING,
    positions), in the order first met; None when an ASK names a node the map lacks."""
    groups: dict[tuple[str, bool], tuple[Any, bool, list[int]]] = {}
    for index in pending:
        if index in asking:
            host, port = asking[index]
            node = cluster.get_node(host=host, port=port)  # type: ignore[no-untyped-call]
            if node is None:
                return None
        else:
            node = cluster.get_node_from_key(_slot_key(commands[index]))  # type: ignore[no-untyped-call]
        ask = index in asking
        groups.setdefault((node.name, ask), (node, ask, []))[2].append(index)
    return list(groups.values())


def _send(
    server: Redis,
    commands: Sequence[Command],
    scripts: Sequence[Script],
    wanted: int,
    timeout_ms: int,
    *,
    asking: bool,
) -> tuple[list[Any], int]:
    """One round trip: the commands (each after ASKING when redirected by ASK), then WAIT;
    a script the server lost is loaded and its command sent again with a WAIT of its own."""
    pipe = server.pipeline(transaction=False)
    for command in commands:
        if asking:
            pipe.execute_command("ASKING")  # type: ignore[no-untyped-call]
        pipe.execute_command(*command)  # type: ignore[no-untyped-call]
    pipe.execute_command("WAIT", wanted, timeout_ms)  # type: ignore[no-untyped-call]
    raw = pipe.execute(raise_on_error=False)
    acks = raw[-1]
    if isinstance(acks, ResponseError) and "replica" in str(acks):
        # "WAIT cannot be used with replica instances": this server was demoted (a failover
        # went on without us). Drop its connections so the next request finds the master.
        server.connection_pool.disconnect()
        raise ReadOnlyError(str(acks))
    if isinstance(acks, Exception):
        raise acks
    replies = raw[1:-1:2] if asking else raw[:-1]
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if not missing:
        return list(replies), int(acks)
    _load(server, scripts)
    again, acks_again = _send(
        server, [commands[i] for i in missing], (), wanted, timeout_ms, asking=asking
    )
    merged = list(replies)
    for i, reply in zip(missing, again, strict=True):
        merged[i] = reply
    return merged, min(int(acks), acks_again)


def _reload_missing(
    redis: RedisClient, replies: list[Any], commands: Sequence[Command], scripts: Sequence[Script]
) -> list[Any]:
    """Without WAIT: the commands whose script the server lost, once more after loading it."""
    for i, reply in enumerate(replies):
        if isinstance(reply, NoScriptError):
            _load(redis, scripts)
            try:
                replies[i] = redis.execute_command(*commands[i])  # type: ignore[no-untyped-call]
            except RedisError as error:
                replies[i] = error
    return replies


_MULTI = hiredis.pack_command(("MULTI",))
_EXEC = hiredis.pack_command(("EXEC",))


def _transaction(redis: Redis, commands: Sequence[Command], scripts: Sequence[Script]) -> list[Any]:
    """``commands`` in one MULTI/EXEC on a single server: each one's reply, an exception for
    one that failed (as a pipeline's ``raise_on_error=False``).

    Packed by hiredis and read back reply by reply on a connection of the pool, not through
    redis-py's transaction pipeline: for an import's batch of 500 scripts of ~70 arguments
    that pipeline's queueing, packing and reply handling cost the importing process 35 us a
    comment, this 10 (bench/import_bench.py). The scripts are loaded first, inside the
    transaction (inside it a NOSCRIPT could not be retried alone; SCRIPT LOAD of a loaded
    script only hashes it): not by redis-py's SCRIPT EXISTS, a round trip of its own before
    MULTI, queued behind whatever Redis runs then (an import's other batch), so that this
    batch could not reach Redis before that one ended. A dropped connection is retried as
    the client's retry policy says; EXEC runs the whole transaction or none of it, and what is
    sent here (an import's batches, the only caller) stores nothing twice when run twice."""
    loads = [("SCRIPT", "LOAD", script.script) for script in scripts]
    queued = [*loads, *commands]
    payload = b"".join([_MULTI, *map(hiredis.pack_command, queued), _EXEC])
    pool = redis.connection_pool
    connection = pool.get_connection()

    def send() -> list[Any]:
        connection.send_packed_command([payload])  # type: ignore[no-untyped-call]
        connection.read_response()  # MULTI's OK
        refused = None
        for _ in queued:
            try:
                connection.read_response()  # QUEUED
            except ResponseError as error:  # refused before EXEC: EXEC aborts
                refused = refused or error
        try:
            replies = connection.read_response()
        except ResponseError:
            raise refused or ResponseError("EXECABORT") from None
        return list(replies)[len(loads) :]

    try:
        return connection.retry.call_with_retry(send, lambda _: connection.disconnect())  # type: ignore[no-untyped-call]
    except ResponseError:
        raise  # every reply was read: the connection is clean
    except BaseException:
        # Replies may be left unread on it (an interrupted read): never back to the pool so.
        connection.disconnect()  # type: ignore[no-untyped-call]
        raise
    finally:
        pool.release(connection)


def _load(server: RedisClient, scripts: Sequence[Script]) -> None:
    for script in scripts:
        server.script_load(script.script)


def _refresh(cluster: RedisCluster) -> None:
    try:
        cluster.nodes_manager.initialize()
    except RedisError:
        pass  # no node answers now: the next request tries again


def _evalsha(script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Command:
    return ("EVALSHA", script.sha, len(keys), *keys, *args)


def evalsha(script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Command:
    """The command that runs ``script`` (for :meth:`ReplicaWait.batch`)."""
    return _evalsha(script, keys, args)


def _slot_key(command: Command) -> str:
    """The first key of a command: EVALSHA's after its key count, else the first argument."""
    if str(command[0]).upper() in ("EVALSHA", "EVAL"):
        return str(command[3])
    return str(command[1])


def _is_sentinel_master(redis: RedisClient) -> bool:
    return isinstance(getattr(redis, "connection_pool", None), SentinelConnectionPool)


class WriteScript:
    """A registered script as the store calls it. A write script's direct calls wait for the
    replicas (``waits``); called with ``client=`` (a pipeline of the caller's) it is queued
    there, and that caller waits. In a cluster's pipeline, which refuses ``evalsha()``, it is
    queued as a plain EVALSHA command, loaded on every primary beforehand."""

    def __init__(self, script: Script, waits: ReplicaWait | None = None, what: str = "") -> None:
        self.plain = script
        self.waits = waits
        self.what = what
        self._loaded = False

    @property
    def sha(self) -> str:
        return str(self.plain.sha)

    def __call__(
        self, keys: Sequence[Any] = (), args: Sequence[Any] = (), client: Any = None
    ) -> Any:
        if isinstance(client, ClusterPipeline):
            if not self._loaded:  # SCRIPT LOAD goes to every primary
                self.plain.registered_client.script_load(self.plain.script)
                self._loaded = True
            return client.execute_command(*_evalsha(self.plain, keys, args))  # type: ignore[no-untyped-call]
        if client is not None or self.waits is None:
            return self.plain(keys=keys, args=args, client=client)
        return self.waits.script(self.plain, keys, args, what=self.what)

    def each(
        self, redis: RedisClient, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]
    ) -> list[Any]:
        """The replies of several calls (keys, args), each of one slot: one plain call when
        there is one (a pipeline would first ask whether the script is loaded: a round trip
        more), else one pipeline (on a cluster, one round trip per node, in parallel). For
        reads: a write script's calls so made do not wait for the replicas."""
        if len(calls) == 1:
            keys, args = calls[0]
            return [self.plain(keys=keys, args=args)]
        pipe = redis.pipeline(transaction=False)
        for keys, args in calls:
            self(keys=keys, args=args, client=pipe)
        return list(pipe.execute())
