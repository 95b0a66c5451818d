"""The web-facing defences: rate limits, CORS, security headers, hostile input."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from service.api.context import EXTENSION_KEY
from service.config import Config
from tests.conftest import AUTH, RELAXED_POLICY, MakeApp, RecordingClient, submit

pytestmark = pytest.mark.usefixtures("redis_client")


@pytest.fixture
def limited(config: Config, make_app: MakeApp) -> FlaskClient:
    app: Flask = make_app(
        replace(
            config,
            rate_limits_enabled=True,
            rate_limit_submit="3/minute",
            rate_limit_read="5/minute",
        )
    )
    app.test_client_class = RecordingClient
    client = app.test_client()
    client.put("/api/v1/moderation/policy", json=RELAXED_POLICY, headers=AUTH)
    return client


def test_submissions_are_rate_limited_per_ip_with_retry_after(limited: FlaskClient) -> None:
    codes = [submit(limited, comment=f"c{i}").status_code for i in range(4)]
    assert codes == [202, 202, 202, 429]
    refused = submit(limited, comment="again")
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["status"] == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Another client address has its own allowance.
    other = limited.post(
        "/api/v1/articles/a1/comments",
        json={"name": "B", "email": "b@example.com", "comment": "mine"},
        environ_base={"REMOTE_ADDR": "198.51.100.20"},
    )
    assert other.status_code == 202


def test_reads_that_reach_redis_are_rate_limited(config: Config, make_app: MakeApp) -> None:
    # Without the worker cache every read reaches Redis, and every read counts.
    app = make_app(
        replace(config, rate_limits_enabled=True, rate_limit_read="5/minute", read_cache=False)
    )
    uncached = app.test_client()
    codes = [uncached.get("/api/v1/articles/a1/comments").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    refused = uncached.get("/api/v1/articles/a1/comments")
    assert refused.mimetype == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Pages and counts share the client's read budget.
    assert uncached.get("/api/v1/comment-counts?article_id=a1").status_code == 429
    other = uncached.get(
        "/api/v1/comment-counts?article_id=a1", environ_base={"REMOTE_ADDR": "198.51.100.30"}
    )
    assert other.status_code == 200


def test_reads_from_memory_are_not_counted_and_health_is_not(
    limited: FlaskClient, redis_client: Redis
) -> None:
    cache = limited.application.extensions[EXTENSION_KEY].store.cache
    deadline = time.monotonic() + 5
    while cache.begin() is None and time.monotonic() < deadline:  # its listener is connecting
        time.sleep(0.01)
    codes = [limited.get("/api/v1/articles/a1/comments").status_code for _ in range(30)]
    # The first read misses and counts; the other 29 come from memory and do not.
    assert codes == [200] * 30
    # The counters are keyed by the client IP's keyed hash, never the address itself.
    counters = [k for k in redis_client.scan_iter("*limits*")]
    assert counters and not [k for k in counters if "127.0.0.1" in k]
    assert all(limited.get("/healthz").status_code == 200 for _ in range(10))
    assert all(limited.get("/healthz").status_code == 200 for _ in range(10))


def test_moderation_is_not_rate_limited_by_the_public_limits(limited: FlaskClient) -> None:
    assert all(
        limited.get("/api/v1/moderation/queue", headers=AUTH).status_code == 200 for _ in range(8)
    )


def test_cors_answers_only_configured_origins(client: FlaskClient) -> None:
    allowed = client.get(
        "/api/v1/articles/a1/comments", headers={"Origin": "https://news.example.org"}
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://news.example.org"
    assert "ETag" in allowed.headers["Access-Control-Expose-Headers"]
    preflight = client.options(
        "/api/v1/articles/a1/comments",
        headers={
            "Origin": "https://news.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type",
        },
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://news.example.org"
    foreign = client.get(
        "/api/v1/articles/a1/comments", headers={"Origin": "https://evil.example.com"}
    )
    assert "Access-Control-Allow-Origin" not in foreign.headers
    moderation = client.get(
        "/api/v1/moderation/queue", headers={**AUTH, "Origin": "https://news.example.org"}
    )
    assert moderation.status_code == 200
    assert "Access-Control-Allow-Origin" not in moderation.headers


def test_moderation_cors_only_when_configured(config: Config, make_app: MakeApp) -> None:
    app = make_app(replace(config, moderation_allowed_origins=("https://admin.example.org",)))
    response = app.test_client().options(
        "/api/v1/moderation/queue",
        headers={
            "Origin": "https://admin.example.org",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert response.headers["Access-Control-Allow-Origin"] == "https://admin.example.org"
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()


@pytest.mark.parametrize("origin", [None, "https://news.example.org", "https://evil.example.com"])
@pytest.mark.parametrize(
    "path", ["/api/v1/articles/a1/comments", "/api/v1/comment-counts?article_id=a1"]
)
def test_cors_answers_vary_by_origin_for_everyone(
    client: FlaskClient, origin: str | None, path: str
) -> None:
    # The answers are publicly cacheable and carry Access-Control-Allow-Origin for allowed
    # origins only: a shared cache must key them by Origin, whoever asked first.
    headers = {"Origin": origin} if origin else {}
    fresh = client.get(path, headers=headers)
    assert fresh.status_code == 200 and "public" in fresh.headers["Cache-Control"]
    revalidated = client.get(path, headers={**headers, "If-None-Match": fresh.headers["ETag"]})
    assert revalidated.status_code == 304
    refused = client.get(
        path + ("&" if "?" in path else "?") + "limit=0&article_id=-bad-%21", headers=headers
    )
    assert refused.status_code == 422
    for response in (fresh, revalidated, refused):
        assert response.headers.getlist("Vary") == ["Origin"], response.status_code
    submitted = submit(client, article="a1") if origin is None else None
    if submitted is not None:
        assert submitted.headers.getlist("Vary") == ["Origin"]


def test_no_vary_without_cors(config: Config, make_app: MakeApp) -> None:
    app = make_app(replace(config, allowed_origins=()))
    response = app.test_client().get(
        "/api/v1/articles/a1/comments", headers={"Origin": "https://news.example.org"}
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Vary" not in response.headers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/api/v1/articles/a1/comments"),
        ("GET", "/nowhere"),
        ("POST", "/api/v1/articles/a1/comments"),
        ("GET", "/api/v1/moderation/queue"),
        ("DELETE", "/healthz"),
    ],
)
def test_security_headers_on_every_response(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method)
    # Each exactly once (they are appended, so a second copy would be a bug).
    assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert response.headers.getlist("Referrer-Policy") == ["no-referrer"]
    [policy] = response.headers.getlist("Content-Security-Policy")
    assert "default-src 'none'" in policy
    assert "Server" not in response.headers or "/" not in response.headers["Server"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "admin\u202etxt.exe"),
        ("comment", "harmless \u2066hidden\u2069 text"),
        ("comment", "Z" + "\u0336" * 3000),
        ("name", "e" + "\u0301" * 50),
        ("comment", "bell\x07"),
        ("comment", "esc\x1b[31m red"),
        ("name", 12345),
        ("comment", 3.5),
        ("email", ["a@example.com"]),
        ("website", {"url": "https://x.example"}),
        ("parent_id", 7),
    ],
)
def test_hostile_text_is_a_named_422(client: FlaskClient, field: str, value: Any) -> None:
    response = submit(client, **{field: value})
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_right_to_left_text_and_marks_are_fine(client: FlaskClient) -> None:
    assert (
        submit(
            client,
            name="\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd",
            comment="\u0645\u0631\u062d\u0628\u0627 \u200fok",
        ).status_code
        == 202
    )


def test_invalid_utf8_in_a_form_is_not_a_server_error(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/articles/a1/comments",
        data=b"name=%FF%FE&email=a%40example.com&comment=%C3%28",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code in (202, 400, 422)


@pytest.mark.parametrize(
    "query",
    [
        "limit=" + "9" * 5000,
        "cursor=" + "A" * 100_000,
        "article_id=x&" * 3000,
        "limit=-1",
        "limit=1.5",
        "limit=%00",
    ],
)
def test_huge_or_odd_query_parameters(client: FlaskClient, query: str) -> None:
    path = (
        "/api/v1/comment-counts"
        if query.startswith("article_id")
        else ("/api/v1/articles/a1/comments")
    )
    response = client.get(f"{path}?{query}")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_deeply_nested_json_and_wrong_types(client: FlaskClient) -> None:
    deep = '{"name":' * 100_000 + "1" + "}" * 100_000
    response = client.post(
        "/api/v1/articles/a1/comments", data=deep, content_type="application/json"
    )
    assert response.status_code in (400, 413)
    assert (
        client.post(
            "/api/v1/articles/a1/comments", data="null", content_type="application/json"
        ).status_code
        == 422
    )


def test_unknown_methods_answer_405_with_allow(client: FlaskClient) -> None:
    response = client.open("/api/v1/comment-counts", method="PATCH")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"]


def test_submission_counters_are_kept_as_the_limits_library_keeps_them(
    limited: FlaskClient,
) -> None:
    """The insert script counts submissions itself; `limits` must read the same windows."""
    for i in range(2):
        assert submit(limited, comment=f"counted {i}").status_code == 202
    svc = limited.application.extensions[EXTENSION_KEY]
    item = svc.rate_limits.items["submit"][0]
    stats = svc.rate_limits.store.limiter.get_window_stats(
        item, "submit", svc.hasher.ip("127.0.0.1")
    )
    assert stats.remaining == 1
    assert 0 < stats.reset_time - time.time() <= 60
