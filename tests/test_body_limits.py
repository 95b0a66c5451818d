"""MAX_BODY_BYTES holds however a body is framed: Content-Length or Transfer-Encoding: chunked.

A chunked body has no length up front, so werkzeug reads it through a stream capped at the
limit and stops there without a word: a form over the limit was stored cut short (202), and
JSON over the limit failed to parse (400). Every body over the limit is 413 problem+json and
nothing of it is stored; a body of exactly the limit is accepted whole.

Tested in-process (the Flask test client, with the environ gunicorn gives a chunked request)
and against the real service under both servers, with chunks written to a raw socket.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from http.client import HTTPResponse
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from devtools.rediskeys import delete_prefix
from service.app import create_app
from service.config import Config
from service.store import Keys, check_store
from tests.conftest import AUTH, RELAXED_POLICY, close_app
from tests.servicehelpers import Service

LIMIT = 4096
FIELDS = {"name": "Ann", "email": "ann@example.com"}


def form_body(size: int) -> tuple[bytes, str]:
    """An urlencoded comment of exactly ``size`` bytes: a 3,010-character comment (as in the
    attack) last, so that a cut shortens it, after a field the form schema ignores that fills
    the rest."""
    text = "x" * 3010
    base = urlencode({**FIELDS, "padding": "", "comment": text}).encode()
    body = urlencode({**FIELDS, "padding": "p" * (size - len(base)), "comment": text}).encode()
    assert len(body) == size
    return body, text


def json_body(size: int) -> tuple[bytes, str]:
    """A JSON comment of exactly ``size`` bytes: a 3,000-character comment after the
    whitespace JSON allows before a value (so a cut leaves a document that does not parse)."""
    text = "y" * 3000
    document = json.dumps({**FIELDS, "comment": text}).encode()
    assert len(document) <= size
    return b" " * (size - len(document)) + document, text


def chunks(body: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def chunked(body: bytes) -> bytes:
    """The body in HTTP/1.1 chunked framing."""
    framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks(body))
    return framed + b"0\r\n\r\n"


# -- in-process ---------------------------------------------------------------------------


@pytest.fixture
def small_limit_app(config: Config, redis_client: Redis) -> Iterator[Flask]:
    app = create_app(replace(config, max_body_bytes=LIMIT))
    assert (
        app.test_client()
        .put("/api/v1/moderation/policy", json=RELAXED_POLICY, headers=AUTH)
        .status_code
        == 200
    )
    yield app
    close_app(app)


def post_chunked(client: FlaskClient, body: bytes, content_type: str) -> Any:
    """What gunicorn hands the app for a chunked request: no Content-Length, a
    Transfer-Encoding header, and a de-chunked input it marks as terminated."""
    return client.post(
        "/api/v1/articles/chunked/comments",
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": content_type},
        environ_base={"wsgi.input_terminated": True},
    )


def queued(client: FlaskClient) -> list[dict[str, Any]]:
    response = client.get("/api/v1/moderation/queue", headers=AUTH)
    assert response.status_code == 200
    comments: list[dict[str, Any]] = response.get_json()["comments"]
    return comments


BODIES = {
    "form": (form_body, "application/x-www-form-urlencoded"),
    "json": (json_body, "application/json"),
}


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_chunked_body_one_byte_over_the_limit_is_413_and_not_stored(
    small_limit_app: Flask, kind: str
) -> None:
    make, content_type = BODIES[kind]
    body, _ = make(LIMIT + 1)
    client = small_limit_app.test_client()
    response = post_chunked(client, body, content_type)
    assert response.status_code == 413, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 413
    assert queued(client) == []


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_chunked_body_of_exactly_the_limit_is_stored_whole(
    small_limit_app: Flask, kind: str
) -> None:
    make, content_type = BODIES[kind]
    body, text = make(LIMIT)
    client = small_limit_app.test_client()
    response = post_chunked(client, body, content_type)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert [c["comment"] for c in queued(client)] == [text]


def test_chunked_multipart_over_the_limit_is_413(small_limit_app: Flask) -> None:
    boundary = "b0undary"
    part = '--{b}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'
    body = (
        "".join(
            part.format(b=boundary, n=n, v=v) for n, v in {**FIELDS, "comment": "z" * LIMIT}.items()
        )
        + f"--{boundary}--\r\n"
    )
    client = small_limit_app.test_client()
    response = post_chunked(client, body.encode(), f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert queued(client) == []


def test_content_length_body_over_the_limit_is_still_413(small_limit_app: Flask) -> None:
    body, _ = form_body(LIMIT + 1)
    client = small_limit_app.test_client()
    response = client.post(
        "/api/v1/articles/framed/comments",
        data=body,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert queued(client) == []


def test_chunked_moderation_json_over_the_limit_is_413(small_limit_app: Flask) -> None:
    # Every route's body goes through the same check, not only submissions.
    body = json.dumps({"note": "n"}).encode() + b" " * LIMIT
    response = small_limit_app.test_client().post(
        "/api/v1/moderation/comments/01ARZ3NDEKTSV4RRFFQ69G5FAV/approve",
        input_stream=io.BytesIO(body),
        headers={**AUTH, "Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_base={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


# -- the real service under each server, a raw socket ---------------------------------------


@pytest.fixture(scope="module", params=["granian", "gunicorn"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    # The default limit, as the attack met it: a chunked form was cut at 65,536 bytes.
    running = Service(
        tmp_path_factory.mktemp("body-limits"),
        workers=1,
        env={"MAX_BODY_BYTES": "65536", "SERVER": request.param},
    )
    try:
        running.start()
        running.put_policy()
        yield running
    finally:
        running.kill()
        if not running.embedded:
            client = Redis.from_url(running.env["REDIS_URL"], socket_timeout=5)
            try:
                delete_prefix(client, running.key_prefix)
            finally:
                client.close()


def raw_chunked_post(
    service: Service, path: str, content_type: str, body: bytes, framed: bytes | None = None
) -> tuple[HTTPResponse, bytes]:
    """POST ``body`` in chunked framing over a plain socket; the answer, parsed by
    http.client, and its body."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\n"
        f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", service.port), timeout=15) as sock:
        sock.sendall(head + (framed if framed is not None else chunked(body)))
        response = HTTPResponse(sock)
        response.begin()
        return response, response.read()


def stored_comments(service: Service) -> int:
    """Comments in the service's Redis, counted from the keys themselves."""
    client = Redis.from_url(service.redis_url(), socket_timeout=5)
    try:
        report = check_store(client, Keys(service.key_prefix))
    finally:
        client.close()
    assert report.consistent, report.problems
    return sum(report.statuses.values())


def moderator_queue_texts(service: Service) -> list[str]:
    response = service.moderate("GET", "/queue")
    assert response.status_code == 200
    return [c["comment"] for c in response.json()["comments"]]


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_over_http_chunked_body_over_the_limit_is_413_and_not_stored(
    service: Service, kind: str
) -> None:
    make, content_type = BODIES[kind]
    before = stored_comments(service)
    body, text = make(65536 + 1)
    response, payload = raw_chunked_post(
        service, f"/api/v1/articles/over-{kind}/comments", content_type, body
    )
    assert response.status == 413, payload[:300]
    assert response.getheader("Content-Type") == "application/problem+json"
    assert json.loads(payload)["status"] == 413
    assert stored_comments(service) == before
    # Not even a shortened copy of the text is queued.
    assert not [t for t in moderator_queue_texts(service) if text.startswith(t[:100])]


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_over_http_chunked_body_of_exactly_the_limit_is_stored_whole(
    service: Service, kind: str
) -> None:
    make, content_type = BODIES[kind]
    before = stored_comments(service)
    body, text = make(65536)
    response, payload = raw_chunked_post(
        service, f"/api/v1/articles/under-{kind}/comments", content_type, body
    )
    assert response.status == 202, payload[:300]
    assert stored_comments(service) == before + 1
    assert text in moderator_queue_texts(service)


def test_over_http_broken_chunk_framing_is_a_client_error(service: Service) -> None:
    framed = b"zz\r\nnot a chunk size\r\n0\r\n\r\n"
    response, payload = raw_chunked_post(
        service, "/api/v1/articles/broken/comments", "application/json", b"", framed=framed
    )
    # gunicorn's de-chunking raises its own parse error; it was a 500.
    assert response.status == 400, payload[:300]
    assert response.getheader("Content-Type") == "application/problem+json"
