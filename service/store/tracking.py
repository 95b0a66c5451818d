"""A per-process cache that Redis itself keeps honest (server-assisted client-side caching).

Redis tells us which keys changed: one connection enables ``CLIENT TRACKING ... BCAST`` for a
few key prefixes and redirects the invalidation messages to a second connection subscribed to
``__redis__:invalidate``; a daemon thread reads them and evicts every cached value built from a
changed key. So an article page can be served from memory, without a round trip, and still
show a new comment within the moment it takes a message to cross a local socket.

Why not redis-py's own client cache: it refuses servers older than 7.4, and the embedded Redis
is 6.2. Both connections use RESP2 and redis-py's pure-Python parser (hiredis 3.5 with redis-py
8.1 has been seen to hang on SUBSCRIBE replies).

Correctness rules:
- A value read from Redis is stored only if no invalidation arrived while it was being read
  (an epoch counter); a later invalidation evicts it anyway.
- While the invalidation connection is down, nothing is served from or stored in the cache,
  and everything is dropped when it comes back: a missed message could otherwise leave a value
  stale forever.
- Each process starts its own listener on first use (gunicorn forks after the app is built,
  and threads do not survive a fork).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Hashable
from typing import Any

from redis import ConnectionPool
from redis._parsers import _RESP2Parser
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
CHANNEL = "__redis__:invalidate"
MAX_ENTRIES = 20_000
# How long the listener waits for a message before checking the control connection is alive.
HEARTBEAT_SECONDS = 2.0


class TrackedCache:
    def __init__(self, redis_url: str, prefixes: tuple[str, ...], *,
                 connect_timeout: float = 1.0, enabled: bool = True) -> None:
        self.redis_url = redis_url
        self.prefixes = prefixes
        self.connect_timeout = connect_timeout
        self.enabled = enabled
        self._lock = threading.Lock()
        self._values: dict[Hashable, Any] = {}
        self._dependents: dict[str, set[Hashable]] = {}
        self._epoch = 0
        self._healthy = False
        self._pid: int | None = None
        self._stop = threading.Event()

    # -- use ------------------------------------------------------------------------------

    def begin(self) -> int | None:
        """An epoch to pass to :meth:`put`, or None when the cache cannot be trusted now."""
        if not self.enabled:
            return None
        self._ensure_listener()
        with self._lock:
            return self._epoch if self._healthy else None

    def get(self, name: Hashable) -> Any | None:
        if not self.enabled or self._pid != os.getpid() or not self._healthy:
            return None
        return self._values.get(name)

    def put(self, name: Hashable, value: Any, depends_on: tuple[str, ...],
            epoch: int | None) -> None:
        if epoch is None:
            return
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
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            self._pid = pid
            self._healthy = False
            self._clear()
            self._stop = threading.Event()
        threading.Thread(target=self._run, name="redis-invalidations", daemon=True).start()

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            pool = ConnectionPool.from_url(
                self.redis_url, protocol=2, decode_responses=True, parser_class=_RESP2Parser,
                socket_connect_timeout=self.connect_timeout, socket_timeout=self.connect_timeout,
            )
            try:
                self._listen(pool)
            except (RedisError, OSError) as error:
                log.info("cache invalidations interrupted (%s); serving from Redis",
                         type(error).__name__)
            finally:
                self._set_health(False)
                pool.disconnect()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 2.0)

    def _listen(self, pool: ConnectionPool) -> None:
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
        _command(control, "CLIENT", "TRACKING", "ON", "REDIRECT", subscriber_id, "BCAST",
                 *prefix_args)
        self._set_health(True)
        last_beat = time.monotonic()
        while not self._stop.is_set():
            if subscriber.can_read(timeout=HEARTBEAT_SECONDS):
                message = subscriber.read_response()
                if isinstance(message, list) and len(message) == 3 and message[0] == "message":
                    payload = message[2]
                    self.invalidate(list(payload) if isinstance(payload, list) else None)
            if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                # Tracking lives as long as the control connection: make sure it still does.
                _command(control, "PING")
                last_beat = time.monotonic()


def _command(connection: Any, *args: Any) -> Any:
    connection.send_command(*args)
    return connection.read_response()
