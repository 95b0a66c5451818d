"""The workers' read cache against a real Redis: served from memory, yet never stale."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from service.api.auth import token_hash
from service.app import create_app
from service.config import Config
from service.store import Keys
from tests.conftest import AUTH, approve, close_app, submit

pytestmark = pytest.mark.usefixtures("redis_client")


def redis_calls(redis: Redis) -> int:
    stats = redis.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def eventually(check: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


@pytest.fixture
def second_worker(config: Config) -> Iterator[FlaskClient]:
    """Another app with its own cache: what a second gunicorn worker would be."""
    app: Flask = create_app(config)
    yield app.test_client()
    close_app(app)


def wait_until_cached(client: FlaskClient, redis: Redis, path: str) -> None:
    def served_from_memory() -> bool:
        client.get(path)
        before = redis_calls(redis)
        client.get(path)
        return redis_calls(redis) == before
    assert eventually(served_from_memory), f"{path} never came from the cache"


def test_pages_come_from_memory_and_see_other_workers_changes(
    client: FlaskClient, second_worker: FlaskClient, redis_client: Redis
) -> None:
    first = submit(client, comment="first").get_json()["id"]
    approve(client, first)
    path = "/api/v1/articles/a1/comments"
    wait_until_cached(second_worker, redis_client, path)
    assert [c["id"] for c in second_worker.get(path).get_json()["comments"]] == [first]

    # A change through the other worker reaches this worker's cache by Redis's message.
    other = submit(client, comment="second", email="b@example.com").get_json()["id"]
    approve(client, other)
    # No waiting: a change acknowledged to one worker is never answered stale by another.
    assert len(second_worker.get(path).get_json()["comments"]) == 2
    client.post(f"/api/v1/moderation/comments/{first}/reject", headers=AUTH)
    assert [c["id"] for c in second_worker.get(path).get_json()["comments"]] == [other]
    client.delete(f"/api/v1/moderation/comments/{other}", headers=AUTH)
    assert second_worker.get(path).get_json()["total"] == 0


def test_counts_come_from_memory_and_follow_changes(
    client: FlaskClient, second_worker: FlaskClient, redis_client: Redis
) -> None:
    path = "/api/v1/comment-counts?article_id=a1&article_id=a2"
    wait_until_cached(second_worker, redis_client, path)
    assert second_worker.get(path).get_json() == {"counts": {"a1": 0, "a2": 0}}
    approve(client, submit(client, article="a2").get_json()["id"])
    assert second_worker.get(path).get_json() == {"counts": {"a1": 0, "a2": 1}}


def test_own_writes_are_seen_at_once(client: FlaskClient, redis_client: Redis) -> None:
    path = "/api/v1/articles/a1/comments"
    wait_until_cached(client, redis_client, path)
    comment_id = submit(client).get_json()["id"]
    approve(client, comment_id)
    # No waiting: the worker that wrote forgets its cached page immediately.
    assert [c["id"] for c in client.get(path).get_json()["comments"]] == [comment_id]


def test_revoked_token_stops_working_in_other_workers(
    client: FlaskClient, second_worker: FlaskClient, redis_client: Redis
) -> None:
    token = "cached-token-cached-token-0123456789"
    redis_client.hset(Keys("cm").moderators(), "dora", token_hash(token))
    dora = {"Authorization": f"Bearer {token}"}
    assert eventually(lambda: second_worker.get("/api/v1/moderation/queue",
                                                 headers=dora).status_code == 200)
    redis_client.hdel(Keys("cm").moderators(), "dora")
    # The very next request is refused: no window in which a revoked token still works.
    assert second_worker.get("/api/v1/moderation/queue", headers=dora).status_code == 401


def test_no_stale_read_right_after_another_clients_write(
    second_worker: FlaskClient, redis_client: Redis
) -> None:
    """Many rounds of: the page is in memory, another client writes, the next read sees it.

    Without the freshness check a read could beat the listener thread to the invalidation
    and answer the old page; the rounds make that race show up if it is there.
    """
    keys = Keys("cm")
    path = "/api/v1/articles/race/comments"
    for round_number in range(40):
        wait_until_cached(second_worker, redis_client, path)
        comment_id = f"01RACE{round_number:020d}"
        with redis_client.pipeline(transaction=True) as pipe:
            pipe.zadd(keys.article_status_index("race", "approved"), {comment_id: 0})
            pipe.hset(keys.article_public("race"), comment_id, json.dumps({"id": comment_id}))
            pipe.execute()
        assert second_worker.get(path).get_json()["total"] == round_number + 1, round_number


def test_lost_invalidation_connection_means_no_cache_until_it_is_back(
    client: FlaskClient, redis_client: Redis
) -> None:
    path = "/api/v1/articles/a1/comments"
    wait_until_cached(client, redis_client, path)
    # Cut every pub/sub connection (ours is the invalidation subscriber).
    redis_client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    comment_id = submit(client, email="c@example.com").get_json()["id"]
    # A write from outside the app while its listener is down or reconnecting.
    keys = Keys("cm")
    redis_client.zadd(keys.article_status_index("a1", "approved"), {comment_id: 0})
    redis_client.hset(keys.article_public("a1"), comment_id, json.dumps({"id": comment_id}))
    assert eventually(lambda: client.get(path).get_json()["total"] == 1)
    wait_until_cached(client, redis_client, path)  # and caching resumes
