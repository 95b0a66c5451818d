"""What the tracked cache relies on in redis-py, hiredis and Redis, checked one by one.

Each test checks one numbered item of "What this relies on" in service/tracked_cache/stream.py
against the installed libraries and a real Redis, and fails with a message naming that item:
after an upgrade of redis-py or hiredis, a failure here says which assumption broke (and so
which part of the stream needs rework) before the cache silently goes stale or hangs.
"""

from __future__ import annotations

import importlib
import select
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any, cast

import hiredis
import pytest
from redis import Redis
from redis.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from service.store.client import parse_redis_url
from service.tracked_cache import CHANNEL, InvalidationStream
from service.tracked_cache.stream import make_pool

pytestmark = pytest.mark.usefixtures("redis_client")
WHERE = "service/tracked_cache/stream.py, 'What this relies on'"


def broken(item: int, what: str) -> str:
    return f"tracked cache assumption {item} broken ({WHERE}): {what}"


def readable(sock: socket.socket, seconds: float = 3.0) -> bool:
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(seconds * 1000))


@pytest.fixture
def prefix() -> str:
    """A prefix no other client writes under (the Redis server may be shared); a hash tag,
    so that on a cluster all its keys live on one primary."""
    return f"{{assume-{uuid.uuid4().hex}}}:"


@pytest.fixture
def server(redis_client: Redis, prefix: str) -> Redis:
    """The one server the stream listens to: on a cluster, the primary owning the prefix's
    slot (a node reports only the keys it owns)."""
    if not isinstance(redis_client, RedisCluster):
        return redis_client
    node = redis_client.get_node_from_key(prefix)
    return cast(Redis, redis_client.get_redis_connection(node))


@pytest.fixture
def server_url(redis_url: str, server: Redis) -> str:
    if parse_redis_url(redis_url).kind == "cluster":
        kwargs = server.connection_pool.connection_kwargs
        return f"redis://{kwargs['host']}:{kwargs['port']}/0"
    return redis_url


@pytest.fixture
def stream(server_url: str, prefix: str) -> Iterator[InvalidationStream]:
    opened = InvalidationStream(server_url, (prefix,))
    yield opened
    opened.close()


def test_1_the_pure_python_resp2_parser_exists_and_the_pool_uses_it(server_url: str) -> None:
    parsers = importlib.import_module("redis._parsers")
    parser_class = getattr(parsers, "_RESP2Parser", None)
    assert parser_class is not None, broken(1, "redis._parsers._RESP2Parser is gone")
    connection: Any = make_pool(server_url, 1.0).make_connection()
    parser = getattr(connection, "_parser", None)
    assert isinstance(parser, parser_class), broken(
        1,
        f"a pool given parser_class=_RESP2Parser built a connection parsing with "
        f"{type(parser).__name__}",
    )
    connection.disconnect()


def test_2_a_raw_connection_sends_reads_and_closes_one_command_at_a_time(
    server_url: str, server: Redis
) -> None:
    pool = make_pool(server_url, 1.0)
    connection: Any = pool.make_connection()
    for name in ("connect", "send_command", "read_response", "disconnect"):
        assert callable(getattr(connection, name, None)), broken(
            2, f"a connection from ConnectionPool.make_connection() has no {name}()"
        )
    connection.connect()
    connection.send_command("CLIENT", "ID")
    client_id = connection.read_response()
    assert isinstance(client_id, int), broken(2, f"CLIENT ID read back as {client_id!r}")
    connection.send_command("ECHO", "still in step")
    assert connection.read_response() == "still in step", broken(
        2, "read_response() did not return the reply of the command just sent"
    )
    connection.disconnect()

    def still_open() -> bool:
        return client_id in {int(c["id"]) for c in server.client_list()}

    # The server sees the close a moment after disconnect() returns.
    deadline = time.monotonic() + 3.0
    while still_open() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not still_open(), broken(2, "disconnect() left the connection open")


def test_3_the_private_socket_is_the_one_replies_arrive_on(server_url: str) -> None:
    connection: Any = make_pool(server_url, 1.0).make_connection()
    connection.connect()
    try:
        sock = getattr(connection, "_sock", None)
        assert isinstance(sock, socket.socket), broken(
            3, f"Connection._sock after connect() is {type(sock).__name__}, not a socket"
        )
        connection.send_command("PING")
        # Read past redis-py: the reply must be on this socket, not consumed elsewhere.
        assert readable(sock), broken(3, "no reply arrived on Connection._sock")
        assert sock.recv(64) == b"+PONG\r\n", broken(
            3, "Connection._sock does not carry the replies"
        )
    finally:
        connection.disconnect()


def test_4_the_hiredis_reader_waits_for_a_whole_reply() -> None:
    reader = hiredis.Reader(encoding="utf-8")
    assert reader.gets() is False, broken(4, "Reader.gets() on nothing is not False")
    message = b"*3\r\n$7\r\nmessage\r\n$3\r\nchn\r\n*1\r\n$4\r\nk\xc3\xa9y\r\n"
    reader.feed(message[:20])
    assert reader.gets() is False, broken(4, "Reader.gets() on half a reply is not False")
    reader.feed(message[20:])
    assert reader.gets() == ["message", "chn", ["k\u00e9y"]], broken(
        4, "a reply fed in two parts did not come back whole (utf-8 decoded)"
    )
    reader.feed(b"$-1\r\n")
    assert reader.gets() is None, broken(
        4, "a nil reply is not None (it must differ from False, 'nothing yet')"
    )


def test_5_an_invalidation_message_has_the_shape_the_stream_reads(
    stream: InvalidationStream, server: Redis, prefix: str
) -> None:
    reader = hiredis.Reader(encoding="utf-8")

    def next_message() -> Any:
        while (message := reader.gets()) is False:
            assert readable(stream.sock), broken(5, "no invalidation message arrived")
            reader.feed(stream.sock.recv(65536))
        return message

    server.set(prefix + "page", "v")
    message = next_message()
    while message == ["message", CHANNEL, None]:  # a flush by another client of the server
        message = next_message()
    assert message == ["message", CHANNEL, [prefix + "page"]], broken(
        5, f"a write's invalidation is {message!r}, not ['message', '__redis__:invalidate', [key]]"
    )
    server.flushdb()
    assert next_message() == ["message", CHANNEL, None], broken(
        5, "a FLUSHDB's invalidation is not ['message', '__redis__:invalidate', None]"
    )


def test_5_the_stream_reports_changed_keys_and_flushes(
    stream: InvalidationStream, server: Redis, prefix: str
) -> None:
    server.set(prefix + "a", "1")
    server.set(prefix + "b", "2")
    server.set("not-tracked:" + prefix, "3")
    changed: list[Any] = []
    while len(changed) < 2 and readable(stream.sock):
        # None: a flush, here only another client's (the server may be shared)
        changed += [keys for keys in stream.read_waiting() if keys is not None]
    assert changed == [[prefix + "a"], [prefix + "b"]], broken(5, f"read {changed}")
    server.flushdb()
    assert readable(stream.sock) and None in stream.read_waiting(), broken(
        5, "a FLUSHDB did not read as None (everything changed)"
    )


def test_6_nonblocking_reads_signal_nothing_waiting_and_a_closed_connection(
    stream: InvalidationStream, server: Redis
) -> None:
    assert stream.sock.gettimeout() == 0.0, broken(3, "the subscriber's socket is blocking")
    # Returning at all means recv raised BlockingIOError on an empty socket (else it would
    # block the request that looks); only another client's flush can be waiting.
    assert all(keys is None for keys in stream.read_waiting()), broken(
        6, "an idle stream read a change"
    )
    with pytest.raises(BlockingIOError):
        stream.sock.recv(1)
    server.client_kill_filter(_id=str(stream.subscriber_id))
    assert readable(stream.sock), broken(6, "a closed subscriber never became readable")
    with pytest.raises(RedisConnectionError):
        stream.read_waiting()
