"""The HTTP server's own limits and answers, against the real service over raw sockets, under
both servers (granian, the default, and gunicorn): the limits openapi.yaml documents are the
ones it applies, and what is refused before the app sees a request is problem+json too —
except what granian's HTTP parser (hyper) refuses itself, a malformed request (400) and more
than 100 header fields (431): those get the right status with an empty body, and no option of
granian's changes that (service/rsgi_bridge.py). The tests pin that gap, so that it is seen."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.servicehelpers import Service

ROOT = Path(__file__).resolve().parents[1]
REQUEST_LINE_LIMIT = 8190  # gunicorn_conf.limit_request_line
COUNTS = "/api/v1/comment-counts"


@pytest.fixture(scope="module", params=["granian", "gunicorn"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    started = Service(
        tmp_path_factory.mktemp("limits") / "data", workers=1, env={"SERVER": request.param}
    )
    try:
        started.start()
        yield started
    finally:
        started.kill()


def exchange(service: Service, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` as it is, read the answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers, body


def request_line(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\n".encode()


def counts_target(ids: list[str]) -> str:
    return COUNTS + "?" + "&".join(f"article_id={i}" for i in ids)


def assert_problem(answer: tuple[int, dict[str, str], bytes], status: int, title: str) -> None:
    code, headers, body = answer
    assert code == status, body
    assert headers["content-type"] == "application/problem+json"
    assert int(headers["content-length"]) == len(body)
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert headers["referrer-policy"] == "no-referrer"
    document = json.loads(body)
    assert document["status"] == status and document["title"] == title
    assert document["type"] == "about:blank" and document["detail"]


HOST = b"Host: localhost\r\n"


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("garbage request line", b"GARBAGE\r\n\r\n"),
        ("binary request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
        ("NUL in a header", b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-Thing: a\x00b\r\n\r\n"),
        (
            "Content-Length not a number",
            b"POST /api/v1/articles/a1/comments HTTP/1.1\r\n"
            + HOST
            + b"Content-Type: application/json\r\nContent-Length: abc\r\n\r\n{}",
        ),
        (
            "two different Content-Lengths",
            b"POST /api/v1/articles/a1/comments HTTP/1.1\r\n"
            + HOST
            + b"Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        ),
    ],
)
def test_malformed_requests_are_400_problems(service: Service, name: str, raw: bytes) -> None:
    assert_refused_by_the_server(exchange(service, raw), service, 400, "Bad Request")


def assert_refused_by_the_server(
    answer: tuple[int, dict[str, str], bytes], service: Service, status: int, title: str
) -> None:
    """gunicorn's own refusals are problem+json (service/gunicorn_worker.py); granian's are
    the right status, with nothing in the body to read, and the connection closed."""
    if service.server == "gunicorn":
        assert_problem(answer, status, title)
        return
    code, headers, body = answer
    assert code == status, body
    assert body == b"" and headers["content-length"] == "0"
    assert headers["connection"] == "close"


def test_a_request_line_over_the_limit_is_a_414_problem(service: Service) -> None:
    prefix = "GET /healthz?pad="
    target = "/healthz?pad=" + "x" * (REQUEST_LINE_LIMIT + 1 - len(prefix) - len(" HTTP/1.1"))
    line = request_line(target)
    assert len(line) - 2 == REQUEST_LINE_LIMIT + 1
    answer = exchange(service, line + HOST + b"\r\n")
    assert_problem(answer, 414, "URI Too Long")
    assert "POST /api/v1/comment-counts" in json.loads(answer[2])["detail"]
    # One byte less is answered by the app (and the 8 KB a proxy allows for a URL is enough).
    fits = request_line(target[:-1])
    assert len(target[:-1]) < 8192
    # Connection: close, or the answer's keep-alive leaves the connection open past the read.
    assert exchange(service, fits + HOST + b"Connection: close\r\n\r\n")[0] == 200


@pytest.mark.parametrize(
    ("name", "headers"),
    [
        ("one huge header", b"X-Big: " + b"y" * 9000 + b"\r\n"),
        ("too many headers", b"".join(b"X-H%d: v\r\n" % n for n in range(101))),
    ],
)
def test_header_fields_over_the_limits_are_431_problems(
    service: Service, name: str, headers: bytes
) -> None:
    raw = b"GET /healthz HTTP/1.1\r\n" + HOST + headers + b"\r\n"
    answer = exchange(service, raw)
    if name == "too many headers":  # counted by the server's parser
        assert_refused_by_the_server(answer, service, 431, "Request Header Fields Too Large")
    else:  # one field over 8,190 bytes: the bridge's limit under granian
        assert_problem(answer, 431, "Request Header Fields Too Large")


def test_headers_within_the_limits_are_answered(service: Service) -> None:
    headers = b"X-Big: " + b"y" * 8000 + b"\r\n" + b"".join(b"X-H%d: v\r\n" % n for n in range(90))
    assert (
        exchange(
            service, b"GET /healthz HTTP/1.1\r\n" + HOST + headers + b"Connection: close\r\n\r\n"
        )[0]
        == 200
    )


def test_a_front_page_of_100_ids_of_40_characters_gets_its_counts(service: Service) -> None:
    ids = [f"{n:03d}-" + "a" * 36 for n in range(100)]
    target = counts_target(ids)
    assert len(request_line(target)) - 2 == 5235  # over gunicorn's default 4,094
    response = requests.get(service.base + target, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["counts"] == dict.fromkeys(ids, 0)


def test_the_largest_get_the_contract_promises_fits(service: Service) -> None:
    # 100 ids of the longest length openapi.yaml says always fits, on the trailing-slash path
    # with a conditional header: still answered, by the app.
    longest = promised_length()
    ids = [f"{n:03d}" + "b" * (longest - 3) for n in range(100)]
    target = COUNTS + "/?" + "&".join(f"article_id={i}" for i in ids)
    assert len(request_line(target)) - 2 <= REQUEST_LINE_LIMIT
    response = requests.get(service.base + target, headers={"If-None-Match": '"x"'}, timeout=10)
    assert response.status_code == 200, response.text
    assert len(response.json()["counts"]) == 100
    # One character more on each id no longer fits: that is where POST takes over.
    longer = [i + "c" for i in ids]
    answer = exchange(
        service,
        request_line(COUNTS + "?" + "&".join(f"article_id={i}" for i in longer)) + HOST + b"\r\n",
    )
    assert_problem(answer, 414, "URI Too Long")
    posted = requests.post(service.base + COUNTS, json={"article_id": longer}, timeout=10)
    assert posted.status_code == 200, posted.text
    assert posted.json()["counts"] == dict.fromkeys(longer, 0)


def test_the_largest_post_fits(service: Service) -> None:
    # 100 ids of 200 characters, the largest valid batch, as JSON: far below MAX_BODY_BYTES.
    ids = [f"{n:03d}" + "~" * 197 for n in range(100)]
    posted = requests.post(service.base + COUNTS, json={"article_id": ids}, timeout=10)
    assert posted.status_code == 200, posted.text
    assert list(posted.json()["counts"]) == ids


def promised_length() -> int:
    """The id length up to which openapi.yaml promises that 100 ids fit in a counts GET."""
    spec: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    operation = spec["paths"][COUNTS]["get"]
    promise: int = operation["x-fits-100-ids-of-length"]
    return promise
