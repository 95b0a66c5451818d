"""The workers' read cache against a real Redis: served from memory, yet never stale."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from service.api import public
from service.api.auth import token_hash
from service.api.context import EXTENSION_KEY
from service.app import create_app
from service.config import Config
from service.store import Keys
from service.tracked_cache import TrackedCache
from tests.conftest import AUTH, approve, close_app, command_calls, submit

pytestmark = pytest.mark.usefixtures("redis_client")


def redis_calls(redis: Redis) -> int:
    # Not our own INFO, nor the cluster slot-map checks of a cluster pass's clients and caches.
    stats = command_calls(redis)
    return sum(calls for k, calls in stats.items() if not k.startswith(NOT_A_READ))


NOT_A_READ = ("cmdstat_info", "cmdstat_cluster", "cmdstat_ping")


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


def wait_until_cached(
    client: FlaskClient, redis: Redis, path: str, headers: dict[str, str] | None = None
) -> None:
    def served_from_memory() -> bool:
        assert client.get(path, headers=headers).status_code == 200
        before = redis_calls(redis)
        client.get(path, headers=headers)
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


def test_a_counts_answer_is_rendered_once_and_keeps_its_etag(
    client: FlaskClient, redis_client: Redis
) -> None:
    path = "/api/v1/comment-counts?article_id=c1&article_id=c2"
    wait_until_cached(client, redis_client, path)
    rendered = public._counts_document.cache_info()
    first, again = client.get(path), client.get(path)
    after = public._counts_document.cache_info()
    assert after.misses == rendered.misses and after.hits == rendered.hits + 2
    assert first.get_data() == again.get_data() and first.headers["ETag"] == again.headers["ETag"]
    # A new answer is a new document with a new ETag, not the remembered one.
    approve(client, submit(client, article="c1").get_json()["id"])
    changed = client.get(path)
    assert changed.get_json() == {"counts": {"c1": 1, "c2": 0}}
    assert changed.headers["ETag"] != first.headers["ETag"]


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
    assert eventually(
        lambda: second_worker.get("/api/v1/moderation/queue", headers=dora).status_code == 200
    )
    redis_client.hdel(Keys("cm").moderators(), "dora")
    # The very next request is refused: no window in which a revoked token still works.
    assert second_worker.get("/api/v1/moderation/queue", headers=dora).status_code == 401


@pytest.mark.slow
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
    redis_client.client_kill_filter(_type="pubsub")
    comment_id = submit(client, email="c@example.com").get_json()["id"]
    # A write from outside the app while its listener is down or reconnecting.
    keys = Keys("cm")
    redis_client.zadd(keys.article_status_index("a1", "approved"), {comment_id: 0})
    redis_client.hset(keys.article_public("a1"), comment_id, json.dumps({"id": comment_id}))
    assert eventually(lambda: client.get(path).get_json()["total"] == 1)
    wait_until_cached(client, redis_client, path)  # and caching resumes


def caches(client: FlaskClient) -> tuple[TrackedCache, TrackedCache]:
    store = client.application.extensions[EXTENSION_KEY].store
    return store.cache, store.moderation_cache


def test_held_submissions_send_no_worker_a_message_until_moderators_read(
    client: FlaskClient, second_worker: FlaskClient, redis_client: Redis
) -> None:
    """Public caches track only keys a held comment does not write; the moderators' listings,
    which every submission changes, are tracked only in a worker that serves them."""
    public, moderation = caches(second_worker)
    path = "/api/v1/articles/a1/comments"
    wait_until_cached(second_worker, redis_client, path)
    before = public.messages_applied
    for n in range(5):
        assert submit(client, comment=f"held {n}", email=f"h{n}@example.com").status_code == 202
    second_worker.get(path)  # a cached read applies whatever arrived
    assert public.messages_applied == before
    assert not moderation.listening  # no moderator request reached this worker

    # The count is real: a change a page depends on does arrive as a message.
    approve(client, submit(client, comment="to publish").get_json()["id"])
    assert second_worker.get(path).get_json()["total"] == 1
    assert public.messages_applied > before


def test_moderation_cache_follows_submissions_then_stops_when_idle(
    config: Config, client: FlaskClient, redis_client: Redis
) -> None:
    app = create_app(replace(config, moderation_cache_idle_seconds=0.5))
    try:
        worker = app.test_client()
        _, moderation = caches(worker)
        queue = "/api/v1/moderation/queue"
        wait_until_cached(worker, redis_client, queue, AUTH)
        assert moderation.listening
        # Another worker's submission shows at once in this worker's cached queue.
        held = submit(client, comment="for the queue").get_json()["id"]
        assert [c["id"] for c in worker.get(queue, headers=AUTH).get_json()["comments"]] == [held]
        # Unused, it stops tracking: nothing cached, nothing to be told.
        assert eventually(lambda: not moderation.listening)
        assert moderation.get(("listing",)) is None
        # A change while it was off is seen, and caching resumes on use.
        later = submit(client, comment="while idle", email="i@example.com").get_json()["id"]
        ids = [c["id"] for c in worker.get(queue, headers=AUTH).get_json()["comments"]]
        assert ids == [held, later]
        wait_until_cached(worker, redis_client, queue, AUTH)
        assert moderation.listening
    finally:
        close_app(app)


def test_a_value_must_depend_only_on_tracked_keys(redis_url: str) -> None:
    cache = TrackedCache(redis_url, ("cm:public:",))
    try:
        with pytest.raises(ValueError, match="tracked prefix"):
            cache.put(
                "page", "value", (Keys().article_public("a1"), Keys().status_index("pending", 0)), 0
            )
    finally:
        cache.close()
