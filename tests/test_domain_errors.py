"""The domain's refusals: plain exceptions, mapped to problem+json in one place.

The answers are pinned byte for byte (body, Retry-After, Cache-Control): they were the same
before the domain had errors of its own, when it raised the Problems itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

import service.domain_errors as domain_errors
from service.app import create_app
from service.config import Config
from service.domain_errors import DomainError
from service.errors import Problem, domain_problem
from service.models import StoredComment
from tests.conftest import AUTH, close_app, submit

ROOT = Path(__file__).resolve().parents[1]
UNKNOWN_ID = "01J0Z8Q5D2V7XW3M9K4T6R1ABC"


def problem(response: TestResponse, status: int, body: str) -> None:
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.get_data(as_text=True) == body


def policy(client: FlaskClient, **settings: int) -> None:
    base = {"flood_interval_seconds": 0, "flood_hourly_cap": 0, "duplicate_window_seconds": 0}
    response = client.put("/api/v1/moderation/policy", json={**base, **settings}, headers=AUTH)
    assert response.status_code == 200


def test_closed_article(client: FlaskClient) -> None:
    assert (
        client.put("/api/v1/moderation/articles/a1", json={"open": False}, headers=AUTH).status_code
        == 200
    )
    problem(
        submit(client),
        403,
        '{"type": "/problems/comments-closed", "title": "Forbidden", "status": 403, '
        '"detail": "Comments on this article are closed."}',
    )


def test_a_duplicate_is_no_refusal(client: FlaskClient) -> None:
    """No domain error: a duplicate is answered like any held comment and dropped (what it
    would reveal is whether some email commented; see tests/test_privacy_attacks.py)."""
    policy(client, duplicate_window_seconds=600)
    first, again = submit(client), submit(client)
    assert (first.status_code, again.status_code) == (202, 202)
    assert set(first.get_json()) == set(again.get_json())
    queue = client.get("/api/v1/moderation/queue", headers=AUTH).get_json()
    assert [c["id"] for c in queue["comments"]] == [first.get_json()["id"]]


@pytest.mark.parametrize(
    ("settings", "detail", "longest"),
    [
        (
            {"flood_interval_seconds": 60},
            "Comments are coming too fast; wait before posting again.",
            60,
        ),
        ({"flood_hourly_cap": 1}, "Too many comments from this address in the last hour.", 3600),
    ],
)
def test_flood(client: FlaskClient, settings: dict[str, int], detail: str, longest: int) -> None:
    policy(client, **settings)
    assert submit(client, comment="first").status_code == 202
    response = submit(client, comment="second")
    problem(
        response,
        429,
        '{"type": "/problems/comment-flood", "title": "Too Many Requests", '
        f'"status": 429, "detail": "{detail}"}}',
    )
    assert 1 <= int(response.headers["Retry-After"]) <= longest


def test_parent_not_published(client: FlaskClient) -> None:
    problem(
        submit(client, parent_id=UNKNOWN_ID),
        422,
        '{"type": "/problems/validation-error", "title": "Unprocessable Content", '
        '"status": 422, "detail": "One or more fields are invalid: parent_id.", '
        '"errors": {"parent_id": ["Not a published comment of this article."]}}',
    )


def test_moderation_comment_not_found(client: FlaskClient) -> None:
    for response in (
        client.get(f"/api/v1/moderation/comments/{UNKNOWN_ID}", headers=AUTH),
        client.post(f"/api/v1/moderation/comments/{UNKNOWN_ID}/approve", headers=AUTH),
        client.get("/api/v1/moderation/comments/not-an-id", headers=AUTH),
    ):
        problem(
            response,
            404,
            '{"type": "/problems/comment-not-found", "title": "Not Found", '
            '"status": 404, "detail": "No comment has this id."}',
        )
        assert response.headers["Cache-Control"] == "no-store"


@pytest.fixture
def limited_app(config: Config, app: Flask) -> Iterator[Flask]:
    limited = create_app(
        replace(
            config,
            rate_limits_enabled=True,
            rate_limit_submit="1/minute",
            rate_limit_read="1/minute",
        )
    )
    yield limited
    close_app(limited)


def test_rate_limited_submission_and_read(limited_app: Flask) -> None:
    client = limited_app.test_client()
    assert submit(client).status_code == 202
    body = (
        '{"type": "/problems/rate-limited", "title": "Too Many Requests", "status": 429, '
        '"detail": "Rate limit exceeded: 1 per 1 minute. Retry later."}'
    )
    refused = submit(client, comment="another")
    problem(refused, 429, body)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Reads count only when they reach Redis: two different questions do.
    assert client.get("/api/v1/comment-counts?article_id=r1").status_code == 200
    refused = client.get("/api/v1/comment-counts?article_id=r2")
    problem(refused, 429, body)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def every_domain_error() -> list[type[DomainError]]:
    found = [
        value
        for value in vars(domain_errors).values()
        if isinstance(value, type) and issubclass(value, DomainError) and value is not DomainError
    ]
    # closed, parent not published, flood, rate limited, not found, conflict (a duplicate is
    # no refusal: it would tell whether some email commented)
    assert len(found) >= 6
    return found


SAMPLE_COMMENT = StoredComment(
    id="0" * 26,
    article_id="a1",
    name="Ann",
    email="ann@example.com",
    comment="Hello.",
    status="pending",
    created_at="2026-01-01T00:00:00Z",
    updated_at="2026-01-01T00:00:00Z",
    version=3,
)


def test_every_domain_error_has_its_problem() -> None:
    samples = {
        "CommentFlood": (5,),
        "RateLimited": ("1 per 1 minute", 5),
        "Conflict": ("It changed.",),
        "StaleVersion": (SAMPLE_COMMENT,),
        "EditWindowClosed": ("2026-01-01T00:15:00.000Z",),
        "AuthorVersionMismatch": (4,),
        "ClaimHeld": ("bob", "2026-01-01T00:00:00.000Z", "2026-01-01T00:05:00.000Z"),
    }
    for error_class in every_domain_error():
        args = samples.get(error_class.__name__, ())
        if error_class.__name__ == "CommentFlood":
            error: DomainError = error_class(*args, hourly=False)  # type: ignore[call-arg]
        else:
            error = error_class(*args)
        mapped = domain_problem(error)
        assert isinstance(mapped, Problem) and 400 <= (mapped.code or 0) < 500, error_class
    conflict = domain_problem(domain_errors.Conflict("It changed."))
    assert (conflict.code, conflict.title, conflict.description) == (409, "Conflict", "It changed.")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize(
    "module", ["service/submissions.py", "service/domain_errors.py", "service/api/ratelimit.py"]
)
def test_the_domain_raises_no_http(module: str) -> None:
    imports = imported_modules(ROOT / module)
    http = {
        name
        for name in imports
        if name.split(".")[0] in ("flask", "werkzeug")
        or (name.endswith(".errors") and "redis" not in name)
    }
    assert not http, f"{module} imports {http}"


def test_submit_takes_one_request_value() -> None:
    import inspect

    from service.submissions import SubmissionRequest, Submissions

    parameters = list(inspect.signature(Submissions.submit).parameters)
    assert parameters == ["self", "request"]
    assert inspect.get_annotations(Submissions.submit)["request"] in (
        SubmissionRequest,
        "SubmissionRequest",
    )
