"""The bench's payload bounds (bench/ceiling_app.py) answer what the service answers: the
same fields in each document, so that /page and /queue-page cost what the read's and the
queue's bytes cost and nothing else."""

from __future__ import annotations

import json

from flask.testing import FlaskClient

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
