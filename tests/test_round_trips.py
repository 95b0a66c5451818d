"""What each request costs in Redis commands, read from Redis's own counters (INFO
commandstats) around the request; never a timing.

commandstats counts every command Redis executes, including those a script runs inside one
EVALSHA; the client's round trips follow from what it sends: a read miss is one EVALSHA (one
round trip); a submission is one pipeline (GET policy, HMGET author, HGET article state, and
ZSCORE of a parent) and one EVALSHA (two round trips); a moderator page is two pipelines. None
of it may grow with the amount of data.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from redis import Redis

from tests.conftest import AUTH, approve, submit

pytestmark = pytest.mark.usefixtures("redis_client")
# Connection set-up (a new pooled connection, the cache listener's), the listener's heartbeat
# and our own measuring are not the request's cost. Redis 7 names subcommands "client|id".
NOT_THE_REQUEST = ("cmdstat_info", "cmdstat_ping", "cmdstat_client", "cmdstat_subscribe",
                   "cmdstat_select", "cmdstat_hello")


def commands_during(redis: Redis, action: Callable[[], object]) -> Counter[str]:
    before = redis.info("commandstats")
    action()
    after = redis.info("commandstats")
    counts: Counter[str] = Counter()
    for name, stats in after.items():
        if name.startswith(NOT_THE_REQUEST):
            continue
        delta = int(stats["calls"]) - int(before.get(name, {}).get("calls", 0))
        if delta:
            counts[name.removeprefix("cmdstat_")] = delta
    return counts


def until_cached(redis: Redis, request: Callable[[], object]) -> Counter[str]:
    """Repeat a request until one costs nothing: a value read while an invalidation was in
    flight is not cached, by design, so the first repeats may still go to Redis."""
    for _ in range(50):
        cost = commands_during(redis, request)
        if not cost:
            return cost
        time.sleep(0.02)
    return cost


def fill(client: FlaskClient, article: str, n: int) -> str:
    last = ""
    for i in range(n):
        last = submit(client, article=article, comment=f"comment {i}",
                      email=f"u{i}@example.com").get_json()["id"]
        approve(client, last)
    return last


@pytest.mark.parametrize("existing", [1, 300])
def test_public_read_is_one_round_trip_then_none(client: FlaskClient, redis_client: Redis,
                                                 existing: int) -> None:
    fill(client, "big", existing)
    path = "/api/v1/articles/big/comments?limit=50"
    client.get("/api/v1/articles/warm/comments")  # the cache listener is up
    miss = commands_during(redis_client, lambda: client.get(path))
    # The client sends one EVALSHA; inside it the script ranges the index, counts it and
    # fetches the page's documents.
    assert miss == Counter({"evalsha": 1, "zrangebylex": 1, "zcard": 1, "hmget": 1})
    assert until_cached(redis_client, lambda: client.get(path)) == Counter()


def test_a_held_submission_leaves_the_articles_cached_page_alone(
    client: FlaskClient, redis_client: Redis
) -> None:
    fill(client, "busy", 3)
    path = "/api/v1/articles/busy/comments?limit=50"
    assert until_cached(redis_client, lambda: client.get(path)) == Counter()
    held = submit(client, article="busy", comment="waits for a moderator",
                  email="new@example.com")
    assert held.status_code == 202
    # Nothing published changed, so the page still costs nothing; an approval does change it.
    assert commands_during(redis_client, lambda: client.get(path)) == Counter()
    approve(client, held.get_json()["id"])
    assert commands_during(redis_client, lambda: client.get(path))["evalsha"] == 1


@pytest.mark.parametrize("existing", [0, 300])
def test_counts_are_one_pipeline_then_none(client: FlaskClient, redis_client: Redis,
                                           existing: int) -> None:
    fill(client, "big", existing)
    ids = "&".join(f"article_id=a{i}" for i in range(19)) + "&article_id=big"
    client.get("/api/v1/articles/warm/comments")
    miss = commands_during(redis_client, lambda: client.get(f"/api/v1/comment-counts?{ids}"))
    assert miss == Counter({"zcard": 20})  # one pipeline: one round trip
    assert until_cached(redis_client,
                        lambda: client.get(f"/api/v1/comment-counts?{ids}")) == Counter()


@pytest.mark.parametrize("existing", [0, 300])
def test_submission_is_two_round_trips_whatever_the_data(client: FlaskClient,
                                                         redis_client: Redis,
                                                         existing: int) -> None:
    parent = fill(client, "big", existing) if existing else fill(client, "big", 1)
    plain = commands_during(redis_client, lambda: submit(
        client, article="big", comment="fresh words", email="new@example.com"))
    # Sent: the facts pipeline (get, hmget, hget) and one evalsha. Inside the script: the
    # existence check, the comment itself, the author's comment set and three index entries
    # (global, article, the first_comment reason).
    inside_script = {"exists": 1, "set": 1, "sadd": 1, "zadd": 3}
    assert plain == Counter({"get": 1, "hmget": 1, "hget": 1, "evalsha": 1, **inside_script})
    reply = commands_during(redis_client, lambda: submit(
        client, article="big", comment="a reply", email="other@example.com", parent_id=parent))
    assert reply == Counter({"get": 1, "hmget": 1, "hget": 1, "zscore": 1, "evalsha": 1,
                             **inside_script})


@pytest.mark.parametrize("pending", [5, 300])
def test_moderator_queue_page_is_two_round_trips_then_none(
    client: FlaskClient, redis_client: Redis, pending: int
) -> None:
    for i in range(pending):
        submit(client, comment=f"held {i}", email=f"p{i}@example.com")

    def queue_page() -> object:
        return client.get("/api/v1/moderation/queue?limit=50", headers=AUTH)

    assert until_cached(redis_client, queue_page) == Counter()
    submit(client, comment="one more", email="late@example.com")  # changes the queue
    # Two round trips: the page's ids and the total (a pipeline), then the comments (MGET).
    assert commands_during(redis_client, queue_page) == Counter(
        {"zrangebylex": 1, "zcard": 1, "mget": 1})
