"""Group commit (service/store/group_commit.py) against a real Redis: concurrent calls share
pipelined round trips, each caller gets its own reply or its own error, and a Redis that lost
its scripts is recovered from; through the app, concurrent submissions are all stored and
fewer batches than submissions went out."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from redis.exceptions import ResponseError

from devtools.processes import wait_until
from service.api.context import EXTENSION_KEY
from service.store.group_commit import GroupCommit

# Stores ARGV[1] under KEYS[1] and returns it; "slow" busy-waits ~150 ms first (holding Redis,
# so that the calls made meanwhile queue up behind the first); "fail" raises.
SCRIPT = """
if ARGV[2] == 'fail' then return redis.error_reply('planned failure') end
if ARGV[2] == 'slow' then
  local t = redis.call('TIME')
  local deadline = tonumber(t[1]) * 1000000 + tonumber(t[2]) + 150000
  repeat
    t = redis.call('TIME')
  until tonumber(t[1]) * 1000000 + tonumber(t[2]) >= deadline
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""


def run_together(commit: GroupCommit, calls: list[tuple[str, str]]) -> list[Any]:
    """The first call (slow) goes alone; the others start while it holds Redis."""
    results: list[Any] = [None] * len(calls)

    def call(index: int) -> None:
        key, mode = calls[index]
        if index > 0:  # once the slow call is on its way
            assert wait_until(lambda: commit._busy, 5)
        try:
            results[index] = commit([key], [f"value-{index}", mode])
        except Exception as error:  # noqa: BLE001 - the test looks at it
            results[index] = error

    with ThreadPoolExecutor(len(calls)) as pool:
        list(pool.map(call, range(len(calls))))
    return results


def test_calls_made_while_one_is_in_flight_go_as_one_batch(redis_client: Redis) -> None:
    commit = GroupCommit(redis_client, redis_client.register_script(SCRIPT))
    calls = [("gc:0", "slow")] + [(f"gc:{i}", "") for i in range(1, 9)]
    results = run_together(commit, calls)
    assert results == [f"value-{i}" for i in range(9)]
    assert [redis_client.get(f"gc:{i}") for i in range(9)] == [f"value-{i}" for i in range(9)]
    # The slow one alone, then the eight that queued behind it together (a thread that came
    # late may make a third batch on a busy machine; never one per call).
    assert commit.calls == 9
    assert 2 <= commit.batches <= 3


def test_an_error_reply_is_its_own_callers_only(redis_client: Redis) -> None:
    commit = GroupCommit(redis_client, redis_client.register_script(SCRIPT))
    calls = [("gc:0", "slow"), ("gc:1", ""), ("gc:2", "fail"), ("gc:3", "")]
    results = run_together(commit, calls)
    assert isinstance(results[2], ResponseError) and "planned failure" in str(results[2])
    assert [results[0], results[1], results[3]] == ["value-0", "value-1", "value-3"]
    assert redis_client.get("gc:2") is None and redis_client.get("gc:3") == "value-3"


def test_a_batch_survives_redis_losing_its_scripts(redis_client: Redis) -> None:
    script = redis_client.register_script(SCRIPT)
    commit = GroupCommit(redis_client, script)
    assert commit(["gc:warm"], ["x", ""]) == "x"  # loaded
    redis_client.script_flush()
    calls = [("gc:0", "slow")] + [(f"gc:{i}", "") for i in range(1, 5)]
    assert run_together(commit, calls) == [f"value-{i}" for i in range(5)]


@pytest.mark.parametrize("threads", [8])
def test_concurrent_submissions_are_all_stored_in_fewer_batches(app: Flask, threads: int) -> None:
    store = app.extensions[EXTENSION_KEY].store
    commit: GroupCommit = store._insert_batched
    before_calls, before_batches = commit.calls, commit.batches

    def submit(n: int) -> int:
        client = app.test_client()
        response = client.post(
            "/api/v1/articles/group-commit/comments",
            json={
                "name": f"Reader {n}",
                "email": f"reader-{n}@example.com",
                "comment": f"A distinct comment number {n} about the library plans.",
            },
        )
        return response.status_code

    with ThreadPoolExecutor(threads) as pool:
        statuses = list(pool.map(submit, range(64)))
    assert set(statuses) <= {201, 202}, statuses
    assert commit.calls - before_calls == 64
    # Every call is accounted for by some batch; how many batches depends on timing.
    assert 1 <= commit.batches - before_batches <= 64
    queue = app.test_client().get(
        "/api/v1/moderation/queue?article_id=group-commit&limit=100",
        headers={"Authorization": "Bearer test-moderator-token-0123456789abcdef"},
    )
    listed = app.test_client().get("/api/v1/articles/group-commit/comments?limit=100")
    stored = len(queue.get_json()["comments"]) + len(listed.get_json()["comments"])
    assert stored == 64
