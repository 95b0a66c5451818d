"""A per-process cache that Redis itself keeps honest (server-assisted client-side caching).

Redis tells us which keys changed: one connection enables ``CLIENT TRACKING ... BCAST`` for a
few key prefixes and redirects the invalidation messages to a second connection subscribed to
``__redis__:invalidate``; a daemon thread reads them and evicts every cached value built from a
changed key. So an article page can be served from memory, without a round trip, and still
show a new comment within the moment it takes a message to cross a local socket.

Why not redis-py's own client cache: it refuses servers older than 7.4, and the embedded Redis
is 6.2. Both connections use RESP2. redis-py opens them (URL, auth, TLS, unix socket) and
sends the handful of set-up commands; the invalidation messages are then read straight off the
subscriber's socket with hiredis's own reader, not through redis-py's parser: hiredis 3.5 with
redis-py 8.1 has been seen to hang on SUBSCRIBE replies, and the pure-Python parser cost more
than the rest of a message's handling (every submission sends each worker one).

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
import socket
import ssl
import threading
import time
from collections.abc import Hashable
from typing import Any

import hiredis
from redis import ConnectionPool
from redis._parsers import _RESP2Parser
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
CHANNEL = "__redis__:invalidate"
MAX_ENTRIES = 20_000
# How long the listener waits for a message before checking the control connection is alive.
HEARTBEAT_SECONDS = 2.0
# How long the listener lets waiting messages gather (requests apply them sooner whenever they
# look at the cache): it bounds how long an idle worker holds evicted values in memory.
BATCH_SECONDS = 0.02
READ_SIZE = 65536


class TrackedCache:
    def __init__(self, redis_url: str, prefixes: tuple[str, ...], *,
                 connect_timeout: float = 1.0, enabled: bool = True,
                 idle_seconds: float | None = None) -> None:
        self.redis_url = redis_url
        self.prefixes = prefixes
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
        # The subscriber's socket while listening, the reader its bytes go through, and the
        # lock held by whoever (listener or request) reads and applies them (see _settled).
        self._subscriber: socket.socket | None = None
        self._subscriber_fd: int | None = None
        self._reader = hiredis.Reader(encoding="utf-8")
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

    def get(self, name: Hashable) -> Any | None:
        if not self._usable():
            return None
        return self._values.get(name)

    def get_many(self, names: list[Hashable]) -> list[Any | None]:
        """Several values with one freshness check (None for each one not cached)."""
        if not self._usable():
            return [None] * len(names)
        return [self._values.get(name) for name in names]

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
        subscriber, fd = self._subscriber, self._subscriber_fd
        if subscriber is None or fd is None:
            return False
        try:
            waiting = bool(self._poller(fd).poll(0))
        except OSError:
            return False
        # The lock is looked at after the socket: a message the listener took off the socket
        # before our poll is still being applied while it holds the lock.
        if waiting or self._drain_lock.locked():
            try:
                self._drain(subscriber)
            except (RedisError, OSError):
                return False  # the listener sees the same failure and reconnects
        return self._healthy

    def _poller(self, fd: int) -> Any:
        """This thread's poll object, watching the current subscriber socket."""
        local = self._pollers
        if getattr(local, "fd", None) != fd:
            local.poller = select.poll()
            local.poller.register(fd, select.POLLIN)
            local.fd = fd
        return local.poller

    def put(self, name: Hashable, value: Any, depends_on: tuple[str, ...],
            epoch: int | None) -> None:
        if epoch is None:
            return
        untracked = [key for key in depends_on if not key.startswith(self.prefixes)]
        if untracked:
            raise ValueError(f"not under a tracked prefix, would never be invalidated: "
                             f"{untracked}")
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
                pool = ConnectionPool.from_url(
                    self.redis_url, protocol=2, decode_responses=True,
                    parser_class=_RESP2Parser, socket_connect_timeout=self.connect_timeout,
                    socket_timeout=self.connect_timeout,
                )
                try:
                    if self._listen(pool) == "idle":
                        return
                except (RedisError, OSError) as error:
                    log.info("cache invalidations interrupted (%s); serving from Redis",
                             type(error).__name__)
                finally:
                    self._set_health(False)
                    pool.disconnect()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
        finally:
            with self._lock:
                self._listening = False

    def _idle(self) -> bool:
        return (self.idle_seconds is not None
                and time.monotonic() - self._last_used > self.idle_seconds)

    def _listen(self, pool: ConnectionPool) -> str:
        """Listen until stopped ("stopped") or unused for idle_seconds ("idle"); a lost
        connection raises."""
        # Raw connections (typed Any: redis-py leaves send_command untyped).
        subscriber: Any = pool.make_connection()
        control: Any = pool.make_connection()
        subscriber.connect()
        control.connect()
        subscriber_id = _command(subscriber, "CLIENT", "ID")
        _command(subscriber, "SUBSCRIBE", CHANNEL)
        prefix_args: list[str] = []
        for prefix in self.prefixes:
            prefix_args += ["PREFIX", prefix]
        # From here on the subscriber's socket is read directly. Nothing can follow the
        # SUBSCRIBE reply before tracking is on, so redis-py's parser holds no unread bytes.
        sock: socket.socket = subscriber._sock
        sock.setblocking(False)
        self._reader = hiredis.Reader(encoding="utf-8")
        _command(control, "CLIENT", "TRACKING", "ON", "REDIRECT", subscriber_id, "BCAST",
                 *prefix_args)
        self._subscriber, self._subscriber_fd = sock, sock.fileno()
        self._set_health(True)
        last_beat = time.monotonic()
        # Wait with our own poll: bytes are taken off the socket only under the drain lock.
        waiter = select.poll()
        waiter.register(self._subscriber_fd, select.POLLIN)
        try:
            heartbeat_ms = HEARTBEAT_SECONDS * 1000
            if self.idle_seconds is not None:
                heartbeat_ms = min(heartbeat_ms, self.idle_seconds * 1000)
            while not self._stop.is_set():
                if waiter.poll(heartbeat_ms):
                    self._stop.wait(BATCH_SECONDS)
                    self._drain(sock)
                if self._idle():
                    with self._lock:  # no put lands between this check and the clear
                        if self._idle():
                            self._healthy = False
                            self._epoch += 1
                            self._clear()
                            return "idle"
                if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                    # Tracking lives as long as the control connection: make sure it still does.
                    _command(control, "PING")
                    last_beat = time.monotonic()
            return "stopped"
        finally:
            self._subscriber, self._subscriber_fd = None, None

    def _drain(self, sock: socket.socket) -> None:
        """Apply every message waiting on the socket, all in one eviction."""
        changed: list[str] = []
        everything = False
        with self._drain_lock:
            reader = self._reader
            while True:
                try:
                    data = sock.recv(READ_SIZE)
                except (BlockingIOError, ssl.SSLWantReadError):
                    break
                if not data:
                    raise RedisConnectionError("the invalidation connection was closed")
                reader.feed(data)
            while (message := reader.gets()) is not False:
                if isinstance(message, list) and len(message) == 3 and message[0] == "message":
                    self.messages_applied += 1
                    payload = message[2]
                    if isinstance(payload, list):
                        changed += payload
                    else:
                        everything = True  # FLUSHDB/FLUSHALL: no key list
            if everything:
                self.invalidate(None)
            elif changed:
                self.invalidate(changed)


def _command(connection: Any, *args: Any) -> Any:
    connection.send_command(*args)
    return connection.read_response()
