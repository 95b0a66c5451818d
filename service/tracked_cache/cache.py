"""A per-process cache that Redis itself keeps honest (server-assisted client-side caching).

Redis tells us which keys changed: one connection enables ``CLIENT TRACKING ... BCAST`` for a
few key prefixes and redirects the invalidation messages to a second connection subscribed to
``__redis__:invalidate``; a daemon thread reads them and evicts every cached value built from a
changed key (on a cluster one such stream a primary, through Sentinel the master's: see
topology.py for which servers, and how a change of them is noticed). So an article page can
be served from memory, without a round trip, and still show a new comment within the moment
it takes a message to cross a local socket.

Why not redis-py's own client cache: it refuses servers older than 7.4, and the embedded Redis
is 6.2. The two connections, and the redis-py and hiredis internals they rely on, are in
stream.py (its "What this relies on").

Messages are applied in batches: the listener thread, once woken, gives requests a moment to
apply them on their way (see below) before it drains what is left, so under a stream of writes
a worker pays one thread wake-up per batch, not per message, and the cache is as fresh either
way.

Correctness rules:
- Read-your-writes across workers: before serving from memory, a request looks (one
  non-blocking poll) whether an invalidation is waiting on the subscriber's socket or being
  applied by the listener, and if so applies it itself (or waits the moment the listener
  needs) under the same lock. Redis queues a BCAST invalidation before the writer's reply, and
  loopback delivers it at once, so a write acknowledged to anyone is never answered stale
  afterwards (a token revoked by the CLI stops working on the next request). Applying rather
  than bypassing keeps the cache useful under a stream of writes, whose messages would
  otherwise keep sending reads to Redis while the listener waits for the GIL.
- A value read from Redis is stored only if no invalidation arrived while it was being read
  (an epoch counter); a later invalidation evicts it anyway.
- While the invalidation connection is down, nothing is served from or stored in the cache,
  and everything is dropped when it comes back: a missed message could otherwise leave a value
  stale forever.
- Each process starts its own listener on first use (gunicorn forks after the app is built,
  and threads do not survive a fork).
- A value is only ever stored with keys under the tracked prefixes (``put`` refuses others):
  a key Redis does not report on would leave the value stale forever.
- A cache with ``idle_seconds`` stops listening (tracking off, memory dropped) once nobody
  has used it for that long, and starts again on the next use: the moderators' listings
  depend on keys every submission changes, and a worker that serves no moderator should not
  be woken by each one.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Hashable
from typing import Any, Protocol

from redis.exceptions import RedisError

from .stream import InvalidationStream, SentinelWatch, StreamSet, TopologyChanged
from .stream import command as stream_command
from .topology import SENTINEL_EVENTS, Sources, discover

log = logging.getLogger(__name__)
MAX_ENTRIES = 20_000
# How long the listener waits for a message before checking the control connection is alive.
HEARTBEAT_SECONDS = 2.0
# On a cluster or Sentinel the heartbeat also checks the tracked servers are still the
# primaries (topology.py): more often, since a changed map leaves nothing stale only once seen.
TOPOLOGY_HEARTBEAT_SECONDS = 0.5
# How long the listener lets waiting messages gather (requests apply them sooner whenever they
# look at the cache): it bounds how long an idle worker holds evicted values in memory.
BATCH_SECONDS = 0.02


class LookupCounters(Protocol):
    """Where a cache reports its hits and misses (the service's metrics)."""

    def hit(self, count: int = 1) -> None: ...

    def miss(self, count: int = 1) -> None: ...


class TrackedCache:
    def __init__(
        self,
        redis_url: str,
        prefixes: tuple[str, ...],
        *,
        connect_timeout: float = 1.0,
        enabled: bool = True,
        idle_seconds: float | None = None,
        counters: LookupCounters | None = None,
        sentinel_password: str | None = None,
    ) -> None:
        # Lookups of an enabled cache are counted (a cache switched off counts nothing); one
        # that cannot be trusted at the moment answers, and counts, a miss.
        self.counters = counters
        self.redis_url = redis_url
        self.prefixes = prefixes
        self.sentinel_password = sentinel_password
        self.sources: Sources | None = None  # the primaries tracked while listening
        self.retracked = 0  # how many times a topology change flushed and re-tracked
        self.connect_timeout = connect_timeout
        self.enabled = enabled
        self.idle_seconds = idle_seconds
        self._last_used = time.monotonic()
        self._listening = False  # a listener thread of this process is running
        self.messages_applied = 0  # invalidation messages applied so far (for tests)
        self._lock = threading.Lock()
        self._values: dict[Hashable, Any] = {}
        self._dependents: dict[str, set[Hashable]] = {}
        self._epoch = 0
        self._healthy = False
        self._pid: int | None = None
        self._stop = threading.Event()
        # The invalidation stream while listening, and the lock held by whoever (listener or
        # request) reads and applies its messages (see _settled).
        self._stream: StreamSet | None = None
        self._drain_lock = threading.Lock()
        self._pollers = threading.local()  # poll objects refuse concurrent use: one a thread

    # -- use ------------------------------------------------------------------------------

    def begin(self) -> int | None:
        """An epoch to pass to :meth:`put`, or None when the cache cannot be trusted now."""
        if not self.enabled:
            return None
        if self.idle_seconds is not None:
            self._last_used = time.monotonic()
        self._ensure_listener()
        with self._lock:
            return self._epoch if self._healthy else None

    def get(self, name: Hashable, *, count: bool = True) -> Any | None:
        """The value if cached and current; ``count=False`` for a second look by a caller
        that already counted its first."""
        if not self._usable():
            if count and self.enabled and self.counters is not None:
                self.counters.miss()
            return None
        value = self._values.get(name)
        if count and self.counters is not None:
            if value is None:
                self.counters.miss()
            else:
                self.counters.hit()
        return value

    def get_many(self, names: list[Hashable], *, count: bool = True) -> list[Any | None]:
        """Several values with one freshness check (None for each one not cached)."""
        if not self._usable():
            if count and self.enabled and self.counters is not None and names:
                self.counters.miss(len(names))
            return [None] * len(names)
        found = [self._values.get(name) for name in names]
        if count and self.counters is not None and names:
            missing = found.count(None)
            if missing:
                self.counters.miss(missing)
            if missing < len(found):
                self.counters.hit(len(found) - missing)
        return found

    @property
    def listening(self) -> bool:
        return self._listening and self._pid == os.getpid()

    def _usable(self) -> bool:
        if not self.enabled:
            return False
        if self.idle_seconds is not None:  # only a cache that can go idle needs the time
            self._last_used = time.monotonic()
        return self._pid == os.getpid() and self._healthy and self._settled()

    def _settled(self) -> bool:
        """Apply any invalidation already delivered, so memory is as fresh as Redis; False
        when that cannot be done (then the caller reads from Redis)."""
        stream = self._stream
        if stream is None:
            return False
        try:
            waiting = bool(self._poller(stream.filenos).poll(0))
        except OSError:
            return False
        # The lock is looked at after the socket: a message the listener took off the socket
        # before our poll is still being applied while it holds the lock.
        if waiting or self._drain_lock.locked():
            try:
                self._drain(stream)
            except (RedisError, OSError):
                return False  # the listener sees the same failure and reconnects
        return self._healthy

    def _poller(self, fds: list[int]) -> Any:
        """This thread's poll object, watching the current subscriber sockets."""
        local = self._pollers
        if getattr(local, "fds", None) != fds:
            local.poller = select.poll()
            for fd in fds:
                local.poller.register(fd, select.POLLIN)
            local.fds = fds
        return local.poller

    def put(
        self, name: Hashable, value: Any, depends_on: tuple[str, ...], epoch: int | None
    ) -> None:
        if epoch is None:
            return
        untracked = [key for key in depends_on if not key.startswith(self.prefixes)]
        if untracked:
            raise ValueError(f"not under a tracked prefix, would never be invalidated: {untracked}")
        with self._lock:
            if epoch != self._epoch or not self._healthy:
                return  # something changed while this value was read
            if len(self._values) >= MAX_ENTRIES:
                self._clear()
            self._values[name] = value
            for key in depends_on:
                self._dependents.setdefault(key, set()).add(name)

    def invalidate(self, keys: list[str] | None) -> None:
        """Forget what was built from these keys (all of it for None)."""
        with self._lock:
            self._epoch += 1
            if keys is None:
                self._clear()
                return
            for key in keys:
                for name in self._dependents.pop(key, ()):
                    self._values.pop(name, None)

    def topology_changed(self) -> None:
        """A request saw the cluster's slots move (a MOVED or ASK reply): flush now and let
        the listener re-track, rather than wait for its heartbeat to notice."""
        stream = self._stream
        if stream is not None:
            stream.stale = True
        self._set_health(False)

    def close(self) -> None:
        self._stop.set()

    # -- the listener ---------------------------------------------------------------------

    def _clear(self) -> None:
        self._values.clear()
        self._dependents.clear()

    def _set_health(self, healthy: bool) -> None:
        with self._lock:
            self._epoch += 1
            self._healthy = healthy
            self._clear()

    def _ensure_listener(self) -> None:
        pid = os.getpid()
        if self._pid == pid and (self._listening or self._stop.is_set()):
            return  # listening, or closed for good
        with self._lock:
            if self._pid == pid and (self._listening or self._stop.is_set()):
                return
            if self._pid != pid:  # a forked child: the parent's thread did not come along
                self._stop = threading.Event()
            self._pid = pid
            self._listening = True
            self._healthy = False
            self._clear()
        threading.Thread(target=self._run, name="redis-invalidations", daemon=True).start()

    def _run(self) -> None:
        backoff = 0.05
        try:
            while not self._stop.is_set():
                try:
                    if self._listen() == "idle":
                        return
                except (RedisError, OSError) as error:
                    log.info(
                        "cache invalidations interrupted (%s); serving from Redis",
                        type(error).__name__,
                    )
                finally:
                    self._set_health(False)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
        finally:
            with self._lock:
                self._listening = False

    def _idle(self) -> bool:
        return (
            self.idle_seconds is not None and time.monotonic() - self._last_used > self.idle_seconds
        )

    def _listen(self) -> str:
        """Listen until stopped ("stopped") or unused for idle_seconds ("idle"); a lost
        connection raises."""
        stream = self._open()
        self._stream = stream
        self._set_health(True)
        sources = self.sources
        assert sources is not None
        heartbeat = HEARTBEAT_SECONDS if sources.kind == "single" else TOPOLOGY_HEARTBEAT_SECONDS
        last_beat = time.monotonic()
        # Wait with our own poll: bytes are taken off the socket only under the drain lock.
        waiter = select.poll()
        for fd in stream.filenos:
            waiter.register(fd, select.POLLIN)
        try:
            heartbeat_ms = heartbeat * 1000
            if self.idle_seconds is not None:
                heartbeat_ms = min(heartbeat_ms, self.idle_seconds * 1000)
            while not self._stop.is_set():
                if waiter.poll(heartbeat_ms):
                    self._stop.wait(BATCH_SECONDS)
                    self._drain(stream)
                if stream.stale:  # a request read the sentinels' news, or saw a MOVED
                    raise TopologyChanged("the primaries are changing")
                if self._idle():
                    with self._lock:  # no put lands between this check and the clear
                        if self._idle():
                            self._healthy = False
                            self._epoch += 1
                            self._clear()
                            return "idle"
                if time.monotonic() - last_beat >= heartbeat:
                    stream.ping(sources.still_current)
                    last_beat = time.monotonic()
            return "stopped"
        except TopologyChanged:
            self.retracked += 1
            raise
        finally:
            self._stream = None
            with self._drain_lock:  # not under a request that is reading it
                stream.close()  # its connections are not a pool's: nobody else closes them

    def _open(self) -> StreamSet:
        """A stream from every primary there is now (and the sentinels' events)."""
        sources = discover(
            self.redis_url,
            connect_timeout=self.connect_timeout,
            sentinel_password=self.sentinel_password,
        )
        streams: list[InvalidationStream] = []
        watch: SentinelWatch | None = None
        try:
            if sources.kind == "sentinel":  # first: a failover from now on is heard
                watch = SentinelWatch(
                    sources.sentinels,
                    SENTINEL_EVENTS,
                    password=sources.sentinel_password,
                    connect_timeout=self.connect_timeout,
                )
            for url in sources.servers:
                streams.append(
                    InvalidationStream(url, self.prefixes, connect_timeout=self.connect_timeout)
                )
            opened = StreamSet(streams, watch)
            # The primaries may have changed while we connected: the map must still hold.
            if not sources.still_current(streams[0]._control, stream_command):
                raise TopologyChanged("the primaries changed while connecting")
        except BaseException:
            for stream in streams:
                stream.close()
            if watch is not None:
                watch.close()
            raise
        self.sources = sources
        return opened

    def _drain(self, stream: StreamSet) -> None:
        """Apply every message waiting on the streams, all in one eviction; a failover the
        sentinels announce makes the cache unusable until the listener re-tracks."""
        changed: list[str] = []
        everything = False
        with self._drain_lock:
            try:
                waiting = stream.read_waiting()
            except TopologyChanged:
                stream.stale = True
                self._set_health(False)
                raise
            for keys in waiting:
                self.messages_applied += 1
                if keys is None:
                    everything = True  # FLUSHDB/FLUSHALL: no key list
                else:
                    changed += keys
            if everything:
                self.invalidate(None)
            elif changed:
                self.invalidate(changed)
