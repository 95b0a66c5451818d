"""Idempotency-Key on submissions (IETF httpapi draft): the same key and body answer the first
answer again and store nothing new; another body is 422; a repeat while the first is in flight
is 409; keys are per client; a refused request frees its key. The crowd test sends one key
from many threads at once on the real Redis; the slow test replays a post whose connection was
cut after the server answered, against the real service."""

from __future__ import annotations

import json
import select
import socket
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from service.api.context import EXTENSION_KEY
from tests.conftest import AUTH
from tests.crowd import at_once
from tests.servicehelpers import Service

BODY = {"name": "Ann", "email": "ann@example.com", "comment": "Posted from a train."}
PATH = "/api/v1/articles/a1/comments"


def post(client: FlaskClient, key: str | None, body: dict[str, Any] = BODY, ip: str = "") -> Any:
    headers = {} if key is None else {"Idempotency-Key": key}
    environ = {"REMOTE_ADDR": ip or "127.0.0.1"}
    return client.post(PATH, json=body, headers=headers, environ_base=environ)


def queued(client: FlaskClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get("/api/v1/moderation/queue", headers=AUTH).get_json()[
        "comments"
    ]
    return found


def test_the_same_key_and_body_answer_the_first_answer_again(client: FlaskClient) -> None:
    first = post(client, '"post-attempt-1"')
    again = post(client, '"post-attempt-1"')
    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json()  # same id, same commenter key
    assert again.headers["Cache-Control"] == "no-store"
    assert [c["id"] for c in queued(client)] == [first.get_json()["id"]]


def test_quotes_are_optional_and_without_a_key_each_post_counts(client: FlaskClient) -> None:
    assert post(client, "k1").get_json() == post(client, '"k1"').get_json()
    post(client, None)
    post(client, None)
    assert len(queued(client)) == 3


def test_the_same_key_with_another_body_is_422(client: FlaskClient) -> None:
    assert post(client, "k2").status_code == 202
    other = post(client, "k2", {**BODY, "comment": "Something else."})
    assert other.status_code == 422 and other.mimetype == "application/problem+json"
    assert other.get_json()["type"] == "/problems/idempotency-key-reused"
    assert len(queued(client)) == 1


def test_keys_are_scoped_per_client(client: FlaskClient) -> None:
    one = post(client, "shared", ip="192.0.2.1").get_json()
    two = post(client, "shared", ip="192.0.2.2").get_json()
    assert one["id"] != two["id"]
    # And another client's key says nothing about this one's: a different body is fine there.
    assert post(client, "shared", {**BODY, "comment": "Mine."}, ip="192.0.2.3").status_code == 202


@pytest.mark.parametrize("header", ['""', "x" * 256, "na\u00efve"])
def test_a_malformed_key_is_400(client: FlaskClient, header: str) -> None:
    response = client.post(
        PATH, json=BODY, headers={"Idempotency-Key": header.encode().decode("latin-1")}
    )
    assert response.status_code == 400
    assert response.get_json()["type"] == "/problems/idempotency-key-invalid"
    assert queued(client) == []


def test_a_refused_request_frees_its_key(client: FlaskClient) -> None:
    closed = client.put("/api/v1/moderation/articles/a1", json={"open": False}, headers=AUTH)
    assert closed.status_code == 200
    assert post(client, "k3").status_code == 403
    client.put("/api/v1/moderation/articles/a1", json={"open": True}, headers=AUTH)
    assert post(client, "k3").status_code == 202


def test_a_repeat_while_the_first_is_in_flight_is_409(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    submissions = app.extensions[EXTENSION_KEY].submissions
    real_submit = submissions.submit
    inside, release = threading.Event(), threading.Event()

    def slow_submit(request: Any) -> Any:
        inside.set()
        assert release.wait(10)
        return real_submit(request)

    monkeypatch.setattr(submissions, "submit", slow_submit)
    answers: list[Any] = []
    first = threading.Thread(target=lambda: answers.append(post(app.test_client(), "k4")))
    first.start()
    assert inside.wait(10)
    repeat = post(app.test_client(), "k4")
    release.set()
    first.join(10)
    assert repeat.status_code == 409
    assert repeat.get_json()["type"] == "/problems/idempotency-key-in-flight"
    assert repeat.headers["Retry-After"] == "1"
    assert answers[0].status_code == 202
    assert post(app.test_client(), "k4").get_json() == answers[0].get_json()


CROWD = 16


def test_one_key_from_many_threads_stores_one_comment(app: Flask) -> None:
    def work(_: int) -> tuple[int, str | None]:
        answer = post(app.test_client(), "crowd-key")
        return answer.status_code, (answer.get_json() or {}).get("id")

    results = at_once(CROWD, work)
    statuses = Counter(status for status, _ in results)
    assert set(statuses) <= {202, 409} and statuses[202] >= 1, statuses
    ids = {comment_id for status, comment_id in results if status == 202}
    assert len(ids) == 1
    assert [c["id"] for c in queued(app.test_client())] == list(ids)


@pytest.mark.slow
def test_a_post_replayed_after_its_connection_was_cut_is_stored_once(tmp_path: Path) -> None:
    service = Service(tmp_path / "data", workers=1)
    try:
        service.start()
        service.put_policy()
        body = json.dumps(BODY).encode()
        request = (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\n"
            'Content-Type: application/json\r\nIdempotency-Key: "cut-1"\r\n'
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        with socket.create_connection(("127.0.0.1", service.port), timeout=10) as cut:
            cut.sendall(request)
            # The server has answered (bytes are waiting), and the client never reads them.
            readable, _, _ = select.select([cut], [], [], 10)
            assert readable
            cut.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        retry = requests.post(
            service.url(PATH), json=BODY, headers={"Idempotency-Key": '"cut-1"'}, timeout=10
        )
        assert retry.status_code == 202, retry.text
        queue = service.moderate("GET", "/queue").json()["comments"]
        assert [c["id"] for c in queue] == [retry.json()["id"]]
    finally:
        service.kill()
