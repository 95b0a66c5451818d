"""Split changes run stepped (service/store/steps.py), against a real Redis: each step run again
with the same id changes nothing (the memo), and a change stopped between its steps is
completed by the sweep (``comments-service sweep``), after which ``comments-service check`` is
clean and a second sweep changes nothing. On a single server the store is told to run the
steps, as a cluster's does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from service import cli
from service.api.context import EXTENSION_KEY
from service.chores import SWEEP_LEASE, sweep_owed
from service.config import Config
from service.crypto import KeyRing
from service.store import CommentStore, Keys, check_store
from service.store.steps import STEP_TIMEOUT_MS, StepsInterrupted
from tests.conftest import AUTH, approve, submit

KEYS = Keys("cm")
MODERATION = "/api/v1/moderation/comments"


def store_of(app: Flask) -> CommentStore:
    store: CommentStore = app.extensions[EXTENSION_KEY].store
    return store


@pytest.fixture
def store(app: Flask) -> CommentStore:
    """The app's store, running split changes one script a step."""
    found = store_of(app)
    found.stepped = True
    return found


def snapshot(redis: Redis) -> dict[str, Any]:
    """Every key's value (not its TTL), to compare a store before and after."""
    values: dict[str, Any] = {}
    for name in sorted(str(k) for k in redis.keys("cm:*")):
        kind = redis.type(name)
        if kind == "string":
            text = str(redis.get(name))
            # (A record stored again is the same JSON, its fields perhaps in another order.)
            values[name] = json.loads(text) if text.startswith("{") else text
        elif kind == "hash":
            values[name] = redis.hgetall(name)
        elif kind == "zset":
            values[name] = redis.zrange(name, 0, -1, withscores=True)
        elif kind == "set":
            values[name] = sorted(redis.smembers(name))
        elif kind == "list":
            values[name] = redis.lrange(name, 0, -1)
        elif kind == "stream":
            values[name] = redis.xrange(name)
    return values


class Recording:
    """A step's script that keeps each call's keys and args (steps are called as
    ``script(keys=, args=)`` or ``script.plain(keys=, args=)``)."""

    def __init__(self, inner: Any, calls: list[tuple[Any, list[Any], list[Any]]]) -> None:
        self.inner = inner
        self.calls = calls
        self.plain = self
        # As a Script for a pipeline's EVALSHA (bulk decisions): those calls are recorded as
        # commands (record_steps).
        self.sha = inner.plain.sha
        self.script = inner.plain.script

    def __call__(self, keys: Any = (), args: Any = (), client: Any = None) -> Any:
        self.calls.append((self.inner, list(keys), list(args)))
        return self.inner(keys=keys, args=args)


def decide(client: FlaskClient, comment_id: str, action: str) -> Any:
    """One decision; "requeue" (back to pending: an undo) is a bulk decision's action only."""
    if action == "requeue":
        item = {"comment_id": comment_id, "action": action}
        return client.post("/api/v1/moderation/decisions", json={"decisions": [item]}, headers=AUTH)
    return client.post(f"{MODERATION}/{comment_id}/{action}", json={}, headers=AUTH)


def record_steps(store: CommentStore, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each step's call as it is sent, to send again: (script, keys, args) of a single
    decision's steps, or the EVALSHA commands of a bulk decision's pipelines."""
    calls: list[Any] = []
    store._transition_steps = [Recording(s, calls) for s in store._transition_steps]  # type: ignore[misc]
    real_batch = store.replica_wait.batch

    def batch(commands: Any, *args: Any, **kwargs: Any) -> Any:
        calls.extend(commands)
        return real_batch(commands, *args, **kwargs)

    monkeypatch.setattr(store.replica_wait, "batch", batch)
    return calls


def commenter_record(store: CommentStore, comment_id: str) -> dict[str, str]:
    record = json.loads(str(store.redis.get(KEYS.comment(comment_id))))
    fields = store.redis.hgetall(KEYS.commenter(record["email_hash"], record["commenter"]))
    return {str(k): str(v) for k, v in cast(dict[Any, Any], fields).items()}


@pytest.mark.parametrize("action", ["approve", "reject", "requeue"])
def test_each_step_run_again_with_the_same_id_changes_nothing(
    client: FlaskClient,
    store: CommentStore,
    redis_client: Redis,
    monkeypatch: pytest.MonkeyPatch,
    action: str,
) -> None:
    comment_id = submit(client, email="twice@example.com").get_json()["id"]
    if action == "requeue":  # an undo: the restore of what the approval replaced
        assert approve(client, comment_id).status_code == 200
    calls = record_steps(store, monkeypatch)
    assert decide(client, comment_id, action).status_code == 200
    shas = {s.sha for s in store._transition_steps}
    steps = [c for c in calls if c[0] != "EVALSHA" or c[1] in shas]
    assert len(steps) == 3  # the bucket step, the author step, the undo kept
    after = snapshot(redis_client)
    for step in steps:
        if step[0] == "EVALSHA":
            redis_client.execute_command(*step)  # type: ignore[no-untyped-call]
        else:
            script, keys, args = step
            script.plain(keys=keys, args=args)
        assert snapshot(redis_client) == after, step
    record = json.loads(str(redis_client.get(KEYS.comment(comment_id))))
    assert "owed" not in (record.get("undo") or {})
    # (A move back to pending restores the stamps; it counts no decision.)
    assert commenter_record(store, comment_id)["decisions"] == "1"


def test_a_repeated_author_step_returns_its_memo(
    client: FlaskClient, store: CommentStore, redis_client: Redis
) -> None:
    comment_id = submit(client, email="memo@example.com").get_json()["id"]
    calls: list[tuple[Any, list[Any], list[Any]]] = []
    store._transition_steps = [Recording(s, calls) for s in store._transition_steps]  # type: ignore[misc]
    assert approve(client, comment_id).status_code == 200
    author, keys, args = calls[1]
    memo = keys[-1]
    assert memo == KEYS.step_memo_of("{cm}", f"d:{comment_id}:2") and comment_id not in memo
    assert 0 < redis_client.pttl(memo) <= 120_000
    first = author.plain(keys=keys, args=args)
    assert author.plain(keys=keys, args=args) == first
    assert commenter_record(store, comment_id)["decisions"] == "1"


def run_cli(
    config: Config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, list[str]]:
    monkeypatch.setenv("REDIS_URL", config.resolved_redis_url)
    monkeypatch.setenv("ENCRYPTION_KEYS", KeyRing.generate_entry("steps"))
    capsys.readouterr()
    code = cli.main(list(argv))
    return code, capsys.readouterr().out.splitlines()


def stop_after(store: CommentStore, step: int) -> Iterator[None]:
    def fault(kind: str, done: int) -> None:
        if done == step:
            raise StepsInterrupted(f"{kind} stopped after step {done}")

    store.step_fault = fault
    yield
    store.step_fault = None


def age_outbox(redis: Redis, bucket: int) -> None:
    """Make every entry of the bucket's outbox look written STEP_TIMEOUT_MS + 1 s ago: a
    request that died then."""
    outbox = KEYS.outbox(bucket)
    entries = cast(list[tuple[str, float]], redis.zrange(outbox, 0, -1, withscores=True))
    for member, score in entries:
        redis.zadd(outbox, {member: score - STEP_TIMEOUT_MS - 1000})


@pytest.mark.parametrize("step", [1, 2])
@pytest.mark.parametrize("action", ["approve", "reject", "requeue"])
def test_a_decision_stopped_after_a_step_is_completed_by_the_sweep(
    client: FlaskClient,
    store: CommentStore,
    redis_client: Redis,
    config: Config,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    step: int,
    action: str,
) -> None:
    comment_id = submit(client, email="crash@example.com").get_json()["id"]
    if action == "requeue":
        assert approve(client, comment_id).status_code == 200
    for _ in stop_after(store, step):
        assert decide(client, comment_id, action).status_code == 500
    bucket = KEYS.bucket("a1")
    owed = redis_client.zrange(KEYS.outbox(bucket), 0, -1)
    assert [str(m).rsplit(":", 1)[0] for m in owed] == [f"d:{comment_id}"]
    # In flight (young): neither the check nor the sweep takes it for abandoned.
    assert sweep_owed(store) is not None and redis_client.zcard(KEYS.outbox(bucket)) == 1
    # The author's stamp may lag while the steps are in flight: not damage yet.
    assert check_store(redis_client, KEYS).consistent
    age_outbox(redis_client, bucket)
    code, lines = run_cli(config, monkeypatch, capsys, "check")
    assert code == 1 and any("owes the steps after its first" in line for line in lines), lines
    code, lines = run_cli(config, monkeypatch, capsys, "sweep")
    assert (code, lines) == (0, ["swept: 1 changes completed, 0 stale entries dropped"])
    code, lines = run_cli(config, monkeypatch, capsys, "check")
    assert code == 0, lines
    record = json.loads(str(redis_client.get(KEYS.comment(comment_id))))
    assert "owed" not in (record.get("undo") or {})
    assert commenter_record(store, comment_id)["decisions"] == "1"
    swept = snapshot(redis_client)
    code, lines = run_cli(config, monkeypatch, capsys, "sweep")
    assert (code, lines) == (0, ["swept: 0 changes completed, 0 stale entries dropped"])
    assert snapshot(redis_client) == swept


def test_a_completed_decision_owes_nothing(
    client: FlaskClient, store: CommentStore, redis_client: Redis
) -> None:
    comment_id = submit(client, email="done@example.com").get_json()["id"]
    assert approve(client, comment_id).status_code == 200
    assert decide(client, comment_id, "reject").status_code == 200
    assert redis_client.zcard(KEYS.outbox(KEYS.bucket("a1"))) == 0
    assert check_store(redis_client, KEYS).consistent


def test_an_entry_of_a_comment_decided_again_is_dropped(
    client: FlaskClient, store: CommentStore, redis_client: Redis
) -> None:
    comment_id = submit(client, email="again@example.com").get_json()["id"]
    for _ in stop_after(store, 1):
        assert approve(client, comment_id).status_code == 500
    assert decide(client, comment_id, "reject").status_code == 200
    bucket = KEYS.bucket("a1")
    age_outbox(redis_client, bucket)
    report = sweep_owed(store)
    assert report is not None and (report.completed, report.dropped) == (0, 1)
    assert redis_client.zcard(KEYS.outbox(bucket)) == 0
    assert check_store(redis_client, KEYS).consistent


def test_bulk_decisions_stopped_after_a_step_are_completed_by_the_sweep(
    client: FlaskClient, store: CommentStore, redis_client: Redis
) -> None:
    ids = [submit(client, email=f"bulk{i}@example.com").get_json()["id"] for i in range(5)]
    items = [{"comment_id": i, "action": "approve"} for i in ids]
    for _ in stop_after(store, 2):
        response = client.post(
            "/api/v1/moderation/decisions", json={"decisions": items}, headers=AUTH
        )
        assert response.status_code == 500
    bucket = KEYS.bucket("a1")
    assert redis_client.zcard(KEYS.outbox(bucket)) == 5
    age_outbox(redis_client, bucket)
    report = sweep_owed(store)
    assert report is not None and report.completed == 5
    assert check_store(redis_client, KEYS).consistent
    assert all(commenter_record(store, i)["decisions"] == "1" for i in ids)


def test_one_sweep_at_a_time(client: FlaskClient, store: CommentStore) -> None:
    assert store.hold_lease(SWEEP_LEASE, "another-process", 10_000)
    assert sweep_owed(store) is None
    store.release_lease(SWEEP_LEASE, "another-process")
    assert sweep_owed(store) is not None
