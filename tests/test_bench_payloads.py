"""The bench's payload bounds (bench/ceiling_app.py) answer what the service answers: the
same fields in each document, so that /page and /queue-page cost what the read's and the
queue's bytes cost and nothing else."""

from __future__ import annotations

import json
import time

import pytest
from flask.testing import FlaskClient
from redis import Redis

from bench import ceiling_app
from bench.ceiling_app import PAGE_BODY, QUEUE_BODY
from tests.conftest import AUTH, submit


def _fields(document: dict[str, object]) -> tuple[set[str], set[str]]:
    items = document["comments"]
    assert isinstance(items, list) and items
    return set(document), set(items[0])


def test_the_queue_page_has_the_moderator_queue_s_fields(client: FlaskClient) -> None:
    answer = submit(client, "a-queue")
    assert answer.status_code == 202, answer.get_json()
    queue = client.get("/api/v1/moderation/queue?limit=50", headers=AUTH).get_json()
    bench = json.loads(QUEUE_BODY)
    assert _fields(bench) == _fields(queue)
    assert len(bench["comments"]) == 50
    item = bench["comments"][0]
    assert set(item["reasons"][0]) == set(queue["comments"][0]["reasons"][0])
    assert set(item["history"][0]) == set(queue["comments"][0]["history"][0])


def test_the_page_has_the_public_page_s_fields(client: FlaskClient) -> None:
    answer = submit(client, "a-page")
    comment_id = answer.get_json()["id"]
    decided = client.post(
        f"/api/v1/moderation/comments/{comment_id}/approve", json={}, headers=AUTH
    )
    assert decided.status_code == 200, decided.get_json()
    page = client.get("/api/v1/articles/a-page/comments?limit=50").get_json()
    bench = json.loads(PAGE_BODY)
    assert _fields(bench) == _fields(page)
    assert len(bench["comments"]) == 50


def test_a_busy_floor_write_burns_what_it_is_asked_then_stores_once(
    redis_url: str, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The busy mixed floor's write (bench/http_bench.py, mixbusy): the asked CPU first, in
    this thread, then the floor's one SET."""
    monkeypatch.setenv("FLOOR_REDIS_URL", redis_url)
    monkeypatch.setenv("FLOOR_KEY_PREFIX", "busytest")
    monkeypatch.setattr(ceiling_app, "_client", None)  # made for this Redis on first write
    client = ceiling_app.app.test_client()
    before = time.thread_time_ns()
    answer = client.post("/write-floor?busy_us=20000", data=b"a body")
    burnt_us = (time.thread_time_ns() - before) / 1000
    assert answer.status_code == 202
    assert burnt_us >= 20_000
    stored = list(redis_client.scan_iter(match="{busytest}:floor:*"))
    assert len(stored) == 1 and redis_client.get(stored[0]) == "a body"
    # Without the argument, nothing is burnt beyond the write itself.
    before = time.thread_time_ns()
    assert client.post("/write-floor", data=b"another").status_code == 202
    assert (time.thread_time_ns() - before) / 1000 < 20_000
