"""The store's command packer (service/store/command_packing.py) puts the same bytes on the
wire as redis-py's own hiredis serializer, and the store's clients use it."""

from __future__ import annotations

from typing import Any

import pytest
from redis.cluster import RedisCluster
from redis.connection import HiredisRespSerializer
from redis.exceptions import DataError

from service.store import make_redis
from service.store.command_packing import PACKER, DirectPacker

COMMANDS: list[tuple[Any, ...]] = [
    ("SET", "k", "v"),
    ("EVALSHA", "a" * 40, 2, "k1", "k2", 1, "", "é ü 漢字", b"\x00\xff", 2.5, -7, 10**18),
    ("CLIENT TRACKING", "on", "BCAST", "PREFIX", "cm:"),
    (b"CLIENT SETNAME", b"x"),
    ("HSET", "h", "f", bytearray(b"ab"), "g", memoryview(b"cd")),
    ("XADD", "s", "MAXLEN", "~", 10, "*", "type", "comment.submitted"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_the_bytes_are_redis_pys(command: tuple[Any, ...]) -> None:
    assert b"".join(PACKER.pack(*command)) == b"".join(HiredisRespSerializer().pack(*command))


def test_what_redis_py_refuses_is_refused_alike() -> None:
    refused: tuple[Any, ...] = ("SET", "k", None)
    with pytest.raises(DataError):
        HiredisRespSerializer().pack(*refused)
    with pytest.raises(DataError):
        PACKER.pack(*refused)


def test_the_store_client_packs_with_it_and_round_trips(redis_url: str) -> None:
    client = make_redis(redis_url)
    if isinstance(client, RedisCluster):
        # Its nodes get only RedisCluster's own list of settings: redis-py packs (client.py).
        node = client.get_default_node()  # type: ignore[no-untyped-call]
        pool = node.redis_connection.connection_pool
        expected: type = HiredisRespSerializer
    else:
        pool = client.connection_pool
        expected = DirectPacker
    connection = pool.get_connection()
    try:
        assert type(connection._command_packer) is expected
    finally:
        pool.release(connection)
    client.set("packing:{t}:k", "é ü 漢字")
    assert client.get("packing:{t}:k") == "é ü 漢字"
    client.delete("packing:{t}:k")
