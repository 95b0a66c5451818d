"""The invalidation stream: the two connections Redis's client-side caching needs, and the
messages read off the subscriber's socket.

A *control* connection turns ``CLIENT TRACKING ON REDIRECT <subscriber> BCAST PREFIX ...`` on
and keeps it on (tracking lives as long as that connection); the *subscriber* connection is
subscribed to ``__redis__:invalidate``, where Redis sends the keys that changed under the
prefixes. Both speak RESP2, as the rest of the service does (redis-py's own client cache,
which would do all this over RESP3, refuses servers older than 7.4; the embedded one is 6.2).

redis-py opens both connections (URL, auth, TLS, unix socket) and sends the few set-up
commands. From then on the subscriber's socket is read directly, non-blocking, through
hiredis's reader: hiredis 3.5 with redis-py 8.1 has been seen to hang on SUBSCRIBE replies,
and the pure-Python parser cost more than the rest of a message's handling (every submission
sends each worker one).

What this relies on
-------------------
Each item below is checked by ``tests/test_tracked_cache_assumptions.py``, whose failure
names the item; after a redis-py or hiredis upgrade, that test is the one to read.

1. ``redis._parsers._RESP2Parser`` (private) exists and ``ConnectionPool(parser_class=...)``
   builds each connection with it under ``protocol=2``. Why: the set-up replies must not go
   through the hiredis parser (the hang above), and the pure-Python one is only reachable by
   this private name.
2. ``ConnectionPool.make_connection()``, ``Connection.connect()``, ``.send_command(*args)``,
   ``.read_response()`` and ``.disconnect()`` (public names, undocumented and untyped): a raw
   connection outside the pool's bookkeeping, one command and one reply at a time. Such a
   connection is not the pool's (``pool.disconnect()`` does not close it), so
   :meth:`InvalidationStream.close` disconnects both itself.
3. ``Connection._sock`` (private): after ``connect()``, the ``socket.socket`` (an
   ``ssl.SSLSocket`` over TLS) the replies arrive on, which we set non-blocking and read.
   That is safe only because redis-py holds no unread bytes of it: each set-up command's reply
   is read before the next is sent, and nothing can arrive on the subscriber after the
   SUBSCRIBE reply until tracking is turned on (by the other connection, afterwards).
4. ``hiredis.Reader(encoding="utf-8")`` with ``feed(bytes)`` and ``gets()``, which returns
   ``False`` (not None: None is a nil reply) while no whole reply is buffered, so a message
   split across reads waits for its end.
5. Redis's RESP2 invalidation message, as that reader gives it: ``["message",
   "__redis__:invalidate", [key, ...]]``, or ``[..., None]`` after FLUSHDB/FLUSHALL (no key
   list: everything is to be dropped).
6. The standard library's non-blocking reads: ``recv`` raises ``BlockingIOError`` (or
   ``ssl.SSLWantReadError`` over TLS) when nothing is waiting, and returns ``b""`` once the
   server closed the connection.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any, cast

import hiredis
from redis import ConnectionPool
from redis._parsers import _RESP2Parser
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

CHANNEL = "__redis__:invalidate"
READ_SIZE = 65536

# One message's payload: the keys that changed, or None for "everything" (a flush).
Changed = list[str] | None


def _listener_options(connect_timeout: float) -> dict[str, Any]:
    """Connection settings of every listener connection (a tracked server's or a sentinel's):
    RESP2 and the pure-Python parser (item 1), bounded timeouts."""
    return {
        "protocol": 2,
        "decode_responses": True,
        "parser_class": _RESP2Parser,
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": connect_timeout,
        # No retries of its own: the listener reconnects with back-off and stops when told.
        "retry": Retry(NoBackoff(), 0),
    }


def make_pool(redis_url: str, connect_timeout: float) -> ConnectionPool:
    """A pool whose connections use RESP2 and the pure-Python parser (item 1)."""
    return ConnectionPool.from_url(redis_url, **_listener_options(connect_timeout))


class InvalidationStream:
    """A subscriber told by Redis which keys under ``prefixes`` change, read without
    blocking; and the control connection that keeps tracking on (ping it now and then)."""

    def __init__(
        self, redis_url: str, prefixes: tuple[str, ...], *, connect_timeout: float = 1.0
    ) -> None:
        pool = make_pool(redis_url, connect_timeout)
        # Raw connections (typed Any: redis-py leaves send_command untyped). Item 2.
        self._subscriber: Any = cast(Any, pool.make_connection())
        self._control: Any = cast(Any, pool.make_connection())
        try:
            self._subscriber.connect()
            self._control.connect()
            self.subscriber_id = int(command(self._subscriber, "CLIENT", "ID"))
            command(self._subscriber, "SUBSCRIBE", CHANNEL)
            # From here on the subscriber's socket is read directly (item 3). Nothing can
            # follow the SUBSCRIBE reply before tracking is on, so redis-py's parser holds no
            # unread bytes.
            self.sock: socket.socket = self._subscriber._sock
            self.sock.setblocking(False)
            self.fileno = self.sock.fileno()
            self._reader = hiredis.Reader(encoding="utf-8")
            prefix_args: list[str] = []
            for prefix in prefixes:
                prefix_args += ["PREFIX", prefix]
            command(
                self._control,
                "CLIENT",
                "TRACKING",
                "ON",
                "REDIRECT",
                self.subscriber_id,
                "BCAST",
                *prefix_args,
            )
        except BaseException:
            self.close()
            raise

    def read_waiting(self) -> list[Changed]:
        """Every whole message waiting on the socket (a partial one stays buffered); the
        caller serialises calls. A closed connection raises redis's ConnectionError."""
        while True:
            try:
                data = self.sock.recv(READ_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError):
                break
            if not data:
                raise RedisConnectionError("the invalidation connection was closed")
            self._reader.feed(data)
        changed: list[Changed] = []
        while (message := self._reader.gets()) is not False:
            if isinstance(message, list) and len(message) == 3 and message[0] == "message":
                payload = message[2]
                changed.append(payload if isinstance(payload, list) else None)
        return changed

    def ping(self) -> None:
        """Tracking lives as long as the control connection: make sure it still does."""
        command(self._control, "PING")

    def close(self) -> None:
        for connection in (self._subscriber, self._control):
            connection.disconnect()


class TopologyChanged(RedisConnectionError):
    """The servers tracked are no longer the primaries: flush and track the new ones."""


class SentinelWatch:
    """A subscriber on each sentinel to the failover events, read like the invalidations
    (the same raw-socket reading, items 2-6 of the list above)."""

    def __init__(
        self,
        sentinels: tuple[tuple[str, int], ...],
        events: tuple[str, ...],
        *,
        password: str | None,
        connect_timeout: float,
    ) -> None:
        self._connections: list[Any] = []
        self.socks: list[socket.socket] = []
        self._readers: list[Any] = []
        try:
            for host, port in sentinels:
                pool = ConnectionPool(
                    host=host, port=port, password=password, **_listener_options(connect_timeout)
                )
                connection: Any = cast(Any, pool.make_connection())
                try:
                    connection.connect()
                except RedisConnectionError:
                    continue  # a sentinel down: the others tell the same story
                self._connections.append(connection)
                for event in events:
                    command(connection, "SUBSCRIBE", event)
                sock: socket.socket = connection._sock
                sock.setblocking(False)
                self.socks.append(sock)
                self._readers.append(hiredis.Reader(encoding="utf-8"))
            if not self.socks:
                raise RedisConnectionError("no sentinel answers")
        except BaseException:
            self.close()
            raise

    @property
    def filenos(self) -> list[int]:
        return [sock.fileno() for sock in self.socks]

    def changed(self) -> bool:
        """Whether any sentinel sent an event since the last look (a lost sentinel counts)."""
        seen = False
        for sock, reader in zip(self.socks, self._readers, strict=True):
            while True:
                try:
                    data = sock.recv(READ_SIZE)
                except (BlockingIOError, ssl.SSLWantReadError):
                    break
                if not data:
                    return True
                reader.feed(data)
            while (message := reader.gets()) is not False:
                if isinstance(message, list) and message and message[0] == "message":
                    seen = True
        return seen

    def close(self) -> None:
        for connection in self._connections:
            connection.disconnect()


class StreamSet:
    """The invalidation streams of every tracked primary, and the sentinels' events."""

    def __init__(self, streams: list[InvalidationStream], watch: SentinelWatch | None) -> None:
        self.streams = streams
        self.watch = watch
        self.stale = False  # a failover was announced: re-track before trusting anything
        self.filenos = [s.fileno for s in streams] + (watch.filenos if watch else [])

    def read_waiting(self) -> list[Changed]:
        """Every message waiting on the streams; TopologyChanged when a sentinel says the
        master is changing."""
        changed: list[Changed] = []
        for stream in self.streams:
            changed += stream.read_waiting()
        if self.watch is not None and self.watch.changed():
            raise TopologyChanged("the sentinels announce a failover")
        return changed

    def ping(self, still_current: Any) -> None:
        """Every control connection is alive and the topology is the one tracked."""
        for stream in self.streams:
            stream.ping()
        if not still_current(self.streams[0]._control, command):
            raise TopologyChanged("the primaries are not the ones tracked")

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        if self.watch is not None:
            self.watch.close()


def command(connection: Any, *args: Any) -> Any:
    connection.send_command(*args)
    return connection.read_response()
