"""The workers' read cache on a Redis Cluster and through Sentinel: it tracks every primary
(service/tracked_cache/topology.py), re-tracks when they change, and is never stale — after
the ``{cm}`` slot migrates to another primary, and after a Sentinel failover.

Two apps with their own caches stand for two workers: one writes, the other reads a page it
had in memory. Real servers (devtools/topologies.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis.cluster import RedisCluster

from devtools.processes import wait_until
from devtools.topologies import LocalCluster, LocalSentinel, RedisServer
from service.api.context import EXTENSION_KEY
from service.config import Config
from service.store import CommentStore, Keys, make_redis
from service.tracked_cache import TrackedCache
from tests.conftest import AUTH, RELAXED_POLICY, MakeApp, submit

PAGE = "/api/v1/articles/a1/comments"
NOT_A_READ = ("cmdstat_info", "cmdstat_cluster", "cmdstat_role", "cmdstat_ping")

pytestmark = pytest.mark.slow


def on(config: Config, url: str, **changes: object) -> Config:
    values = {"redis_url": url, "read_cache": True, **changes}
    return Config(**{**config.__dict__, **values})


def public_cache(app: Flask) -> TrackedCache:
    store = cast(CommentStore, app.extensions[EXTENSION_KEY].store)
    assert store.cache is not None
    return store.cache


def calls(servers: list[RedisServer]) -> int:
    total = 0
    for server in servers:
        stats = server.client().info("commandstats")
        # Not our INFO, nor the slot-map checks of the caches' heartbeats (cluster|slots).
        total += sum(int(v["calls"]) for k, v in stats.items() if not k.startswith(NOT_A_READ))
    return total


def served_from_memory(client: FlaskClient, servers: Callable[[], list[RedisServer]]) -> bool:
    assert client.get(PAGE).status_code == 200
    before = calls(servers())
    client.get(PAGE)
    return calls(servers()) == before


def publish(client: FlaskClient, text: str) -> str:
    """Submit and approve, retrying the 503s of a failover; the comment's id."""
    deadline = time.monotonic() + 30
    comment_id = ""
    while time.monotonic() < deadline:
        if not comment_id:
            sent = submit(client, comment=text)
            if sent.status_code == 503:
                time.sleep(0.1)
                continue
            assert sent.status_code == 202, sent.get_json()
            comment_id = sent.get_json()["id"]
        approved = client.post(f"/api/v1/moderation/comments/{comment_id}/approve", headers=AUTH)
        if approved.status_code == 200:
            return comment_id
        assert approved.status_code == 503, approved.get_json()
        time.sleep(0.1)
    raise AssertionError("the comment was never published")


def ids_on_page(client: FlaskClient) -> list[str]:
    return sorted(c["id"] for c in client.get(PAGE).get_json()["comments"])


def test_no_stale_read_after_the_slot_migrates_to_another_primary(
    cluster: LocalCluster, config: Config, make_app: MakeApp
) -> None:
    writer_app = make_app(on(config, cluster.url))
    reader_app = make_app(on(config, cluster.url))
    writer, reader = writer_app.test_client(), reader_app.test_client()
    assert writer.put("/api/v1/moderation/policy", json=RELAXED_POLICY, headers=AUTH).status_code
    first = publish(writer, "Before the move.")
    assert wait_until(lambda: served_from_memory(reader, cluster.primary_servers), 10, 0.05)
    cache = public_cache(reader_app)
    assert cache.sources is not None and len(cache.sources.servers) == 3  # every primary

    probe = make_redis(cluster.url)
    assert isinstance(probe, RedisCluster)
    slot = int(probe.keyslot(Keys().policy()))  # type: ignore[no-untyped-call]
    owner = cluster.owner_of(slot)
    target = next(s for s in cluster.primary_servers() if s is not owner)
    assert cluster.migrate_slot(slot, target) > 0

    # Read through the reader straight after the move, then after a write elsewhere.
    assert ids_on_page(reader) == [first]
    second = publish(writer, "After the move.")
    assert ids_on_page(reader) == sorted([first, second])
    # The new slot map was seen: the cache flushed, re-tracked and serves from memory again.
    assert wait_until(lambda: cache.retracked >= 1, 10, 0.05)
    assert wait_until(lambda: served_from_memory(reader, cluster.primary_servers), 10, 0.05)
    third = publish(writer, "Once re-tracked.")
    assert ids_on_page(reader) == sorted([first, second, third])


def test_no_stale_read_after_a_sentinel_failover(
    tmp_path: Path, config: Config, make_app: MakeApp
) -> None:
    with LocalSentinel(tmp_path, "cm") as setup:
        settings = on(config, setup.url, redis_timeout=1.0, redis_wait_timeout_ms=200)
        writer_app, reader_app = make_app(settings), make_app(settings)
        writer, reader = writer_app.test_client(), reader_app.test_client()
        assert writer.put("/api/v1/moderation/policy", json=RELAXED_POLICY, headers=AUTH)
        first = publish(writer, "Before the failover.")
        assert wait_until(lambda: served_from_memory(reader, lambda: setup.data_servers), 10, 0.05)
        cache = public_cache(reader_app)
        old_master = cache.sources.servers if cache.sources else ()

        setup.failover()  # the old master stays up until the sentinels demote it
        # A worker started now writes to the new master at once, while the old one may still
        # be a master. With WAIT (auto: 1 on Sentinel) nothing is acknowledged before the old
        # master is demoted and synced; without it, even a worker with no cache could read
        # the old master through its pooled connections (redis-py's Sentinel pool).
        fresh_writer = make_app(settings).test_client()
        second = publish(fresh_writer, "After the failover.")
        # Whatever the reader's cache held, it answers what the writer was told is stored.
        assert ids_on_page(reader) == sorted([first, second])
        assert wait_until(lambda: cache.retracked >= 1, 15, 0.05)
        assert wait_until(
            lambda: cache.sources is not None and cache.sources.servers != old_master, 15, 0.05
        )
        assert wait_until(lambda: served_from_memory(reader, lambda: setup.data_servers), 15, 0.05)
        third = publish(writer, "Tracked on the new master.")
        assert ids_on_page(reader) == sorted([first, second, third])


def test_a_redirect_seen_by_a_request_flushes_the_cache_and_it_re_tracks(
    cluster: LocalCluster, config: Config, make_app: MakeApp
) -> None:
    app = make_app(on(config, cluster.url))
    client = app.test_client()
    assert wait_until(lambda: served_from_memory(client, cluster.primary_servers), 10, 0.05)
    cache = public_cache(app)
    before = cache.retracked
    cache.topology_changed()  # what the store calls on a MOVED or ASK reply (durability.py)
    assert cache.begin() is None  # nothing is trusted from now until re-tracked
    assert wait_until(lambda: cache.retracked > before, 5, 0.05)
    assert wait_until(lambda: served_from_memory(client, cluster.primary_servers), 10, 0.05)
