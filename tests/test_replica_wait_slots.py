"""ReplicaWait with the writes of one batch in several slots (docs/sharding-plan.md §6, commit
2): on a cluster each primary written to gets its commands and a WAIT of its own on the same
connection, and the batch is confirmed only when every one of them is; on a single server
the batch is still one pipeline with one WAIT."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.cluster import RedisCluster

from devtools.topologies import LocalCluster
from service.store.client import make_redis, primaries
from service.store.durability import (
    ReplicasBehind,
    ReplicaWait,
    begin_request,
    end_request,
    evalsha,
    unconfirmed_writes,
)
from tests.conftest import command_calls
from tests.sharded_keys import bucket_tag

SET_AND_COUNT = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('INCR', KEYS[2])"


def spread_keys(redis: Redis, count: int = 2) -> list[str]:
    """Keys of buckets' tags, each on a different primary on a cluster (any on one server)."""
    found: dict[str, str] = {}
    for bucket in range(256):
        key = f"rw:{bucket_tag('cm', bucket)}:value"
        owner = (
            redis.get_node_from_key(key).name if isinstance(redis, RedisCluster) else str(bucket)
        )
        found.setdefault(owner, key)
        if len(found) == count:
            return list(found.values())
    raise AssertionError("fewer primaries than asked")


def waits_by_primary(redis: Redis) -> list[int]:
    return [
        int(server.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))
        for server in primaries(redis)
    ]


@pytest.fixture
def collecting() -> Iterator[None]:
    token = begin_request()
    yield
    end_request(token)


def test_a_batch_over_two_primaries_writes_each_and_waits_on_each(
    redis_client: Redis, collecting: None
) -> None:
    wait = ReplicaWait(redis_client, replicas=1, timeout_ms=10)
    first, second = spread_keys(redis_client)
    before = waits_by_primary(redis_client)
    replies = wait.batch(
        [("SET", first, "a"), ("SET", second, "b"), ("INCR", first + ":n"), ("SET", first, "c")],
        [],
        what="two slots",
    )
    assert [str(r) for r in replies] == ["True", "True", "1", "True"]
    assert (redis_client.get(first), redis_client.get(second)) == ("c", "b")
    grown = [after - b for after, b in zip(waits_by_primary(redis_client), before, strict=True)]
    # One WAIT on each primary written to, none elsewhere (a single server: one in all).
    assert max(grown) == 1
    assert sum(grown) == (2 if isinstance(redis_client, RedisCluster) else 1)
    # No replica here: not confirmed, reported once for the batch.
    assert unconfirmed_writes() == ["two slots"]


def test_scripts_the_primaries_lost_are_loaded_on_each(
    redis_client: Redis, collecting: None
) -> None:
    script = redis_client.register_script(SET_AND_COUNT)
    wait = ReplicaWait(redis_client, replicas=1, timeout_ms=10)
    keys = spread_keys(redis_client)
    for server in primaries(redis_client):
        server.script_flush()
    commands = [evalsha(script, [key, key + ":n"], [f"v{n}"]) for n, key in enumerate(keys)]
    assert wait.batch(commands, [script], what="scripts") == [1, 1]
    assert wait.batch(commands, [script], what="scripts") == [2, 2]
    assert [redis_client.get(key) for key in keys] == ["v0", "v1"]


def test_marks_are_written_for_each_tag_and_confirmed_on_their_primaries(
    redis_client: Redis,
) -> None:
    wait = ReplicaWait(redis_client, replicas=1, timeout_ms=10)
    marks = [key.replace(":value", ":replmark") for key in spread_keys(redis_client)]
    calls = command_calls(redis_client).get("cmdstat_wait", 0)
    with pytest.raises(ReplicasBehind, match="webhook: 0 of 1"):
        wait.confirm(*marks, what="webhook")
    assert all(0 < int(redis_client.pttl(mark)) <= 60_000 for mark in marks)
    expected = 2 if isinstance(redis_client, RedisCluster) else 1
    assert command_calls(redis_client).get("cmdstat_wait", 0) - calls == expected
    ReplicaWait(redis_client, replicas=0).confirm(*marks, what="nothing to wait for")


def test_without_replicas_to_wait_for_a_batch_over_slots_is_a_plain_pipeline(
    redis_client: Redis,
) -> None:
    wait = ReplicaWait(redis_client, replicas=0)
    keys = spread_keys(redis_client)
    calls = command_calls(redis_client).get("cmdstat_wait", 0)
    assert wait.batch([("SET", k, "x") for k in keys], [], what="w") == [True, True]
    assert command_calls(redis_client).get("cmdstat_wait", 0) == calls


@pytest.mark.slow
def test_on_a_cluster_with_replicas_a_batch_over_primaries_is_confirmed(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, primaries=2, replicas=1) as cluster:
        redis = make_redis(cluster.url)
        assert isinstance(redis, RedisCluster)
        wait = ReplicaWait(redis, timeout_ms=2000)
        assert wait.wanted() == 1  # auto: the cluster has replicas
        keys = spread_keys(redis)  # type: ignore[arg-type]
        assert wait.batch([("SET", k, k) for k in keys], [], what="confirmed") == [True, True]
        wait.confirm(*(k + ":mark" for k in keys), what="marks")  # raises unless confirmed
        by_port = {server.port: server for server in cluster.servers}
        for key in keys:
            owner = redis.get_node_from_key(key)  # type: ignore[no-untyped-call]
            followers = by_port[owner.port].client().info("replication")
            follower = followers["slave0"]  # its replica, as the primary names it
            pipe = by_port[int(follower["port"])].client().pipeline(transaction=False)
            pipe.execute_command("READONLY")  # type: ignore[no-untyped-call]
            pipe.get(key)
            assert pipe.execute()[1] == key  # on the replica the WAIT counted
