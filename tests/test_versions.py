"""Comment versions: every change increments one, moderator views carry it as an ETag, and a
decision with If-Match is refused (412, the current state included) once the comment moved on.
The crowd test runs many moderators' threads on one comment against the real Redis."""

from __future__ import annotations

from collections import Counter
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import AUTH, approve, submit
from tests.crowd import at_once

MODERATION = "/api/v1/moderation/comments"


def decide(client: FlaskClient, comment_id: str, verb: str, etag: str | None = None) -> Any:
    headers = dict(AUTH)
    if etag is not None:
        headers["If-Match"] = etag
    return client.post(f"{MODERATION}/{comment_id}/{verb}", json={}, headers=headers)


def test_a_new_comment_is_version_1_and_each_decision_increments_it(client: FlaskClient) -> None:
    comment_id = submit(client).get_json()["id"]
    view = client.get(f"{MODERATION}/{comment_id}", headers=AUTH)
    assert view.get_json()["version"] == 1 and view.headers["ETag"] == '"v1"'
    approved = approve(client, comment_id)
    assert approved.get_json()["version"] == 2 and approved.headers["ETag"] == '"v2"'
    # Repeating the current status changes nothing, so the version stays.
    assert approve(client, comment_id).get_json()["version"] == 2
    rejected = decide(client, comment_id, "reject")
    assert rejected.get_json()["version"] == 3
    listed = client.get("/api/v1/moderation/comments?status=rejected", headers=AUTH).get_json()
    assert [c["version"] for c in listed["comments"]] == [3]


def test_if_match_of_the_current_version_decides(client: FlaskClient) -> None:
    comment_id = submit(client).get_json()["id"]
    etag = client.get(f"{MODERATION}/{comment_id}", headers=AUTH).headers["ETag"]
    response = decide(client, comment_id, "approve", etag)
    assert response.status_code == 200 and response.get_json()["status"] == "approved"


def test_if_match_of_an_old_version_is_412_with_the_current_state(client: FlaskClient) -> None:
    comment_id = submit(client).get_json()["id"]
    stale = client.get(f"{MODERATION}/{comment_id}", headers=AUTH).headers["ETag"]
    assert decide(client, comment_id, "spam").status_code == 200  # another moderator
    response = decide(client, comment_id, "approve", stale)
    assert response.status_code == 412
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "/problems/version-mismatch"
    assert body["current"]["status"] == "spam" and body["current"]["version"] == 2
    assert body["current"]["history"][-1]["actor"] == "moderator:alice"
    assert "email" not in body["current"]
    assert response.headers["ETag"] == '"v2"'
    # Nothing changed: still spam, still version 2.
    view = client.get(f"{MODERATION}/{comment_id}", headers=AUTH).get_json()
    assert (view["status"], view["version"]) == ("spam", 2)


def test_if_match_that_names_no_version_never_matches_and_star_always(
    client: FlaskClient,
) -> None:
    comment_id = submit(client).get_json()["id"]
    assert decide(client, comment_id, "approve", '"something-else"').status_code == 412
    assert decide(client, comment_id, "approve", 'W/"v1"').status_code == 412  # weak: no
    assert decide(client, comment_id, "approve", '"v7", "v1"').status_code == 200
    assert decide(client, comment_id, "reject", "*").status_code == 200


def test_without_if_match_decisions_behave_as_before(client: FlaskClient) -> None:
    comment_id = submit(client).get_json()["id"]
    assert decide(client, comment_id, "reject").status_code == 200
    assert decide(client, comment_id, "approve").status_code == 200


def test_an_unknown_comment_with_if_match_is_404(client: FlaskClient) -> None:
    response = decide(client, "0" * 26, "approve", '"v1"')
    assert response.status_code == 404


def test_anonymising_a_comment_moves_its_version_on(client: FlaskClient) -> None:
    comment_id = submit(client, email="erin@example.com").get_json()["id"]
    stale = approve(client, comment_id).headers["ETag"]
    erased = client.post(
        "/api/v1/moderation/data-requests/erase",
        json={"email": "erin@example.com", "mode": "anonymise"},
        headers=AUTH,
    )
    assert erased.status_code == 200
    assert decide(client, comment_id, "reject", stale).status_code == 412


MODERATORS, ROUNDS = 12, 5


def test_many_moderators_with_the_same_version_one_decision_lands(app: Flask) -> None:
    """Each round, every thread decides with the ETag it read before the round started:
    exactly one decision changes the comment, every other one is 412; the version counts
    exactly the decisions that landed, and the history is one chain."""
    client = app.test_client()
    comment_id = submit(client).get_json()["id"]
    verbs = ["approve", "reject", "spam"]
    landed = 0
    for round_ in range(ROUNDS):
        before = client.get(f"{MODERATION}/{comment_id}", headers=AUTH)
        etag, current = before.headers["ETag"], before.get_json()["status"]
        # Every thread moves the comment somewhere else than where it is.
        choices = [v for v in verbs if not current.startswith(v[:4])]

        def work(n: int, etag: str = etag, choices: list[str] = choices, r: int = round_) -> int:
            verb = choices[(n + r) % len(choices)]
            return int(decide(app.test_client(), comment_id, verb, etag).status_code)

        statuses = at_once(MODERATORS, work)
        assert Counter(statuses) == Counter({200: 1, 412: MODERATORS - 1}), statuses
        landed += 1
    view = client.get(f"{MODERATION}/{comment_id}", headers=AUTH).get_json()
    assert view["version"] == 1 + landed
    assert len(view["history"]) == 1 + landed
    history = view["history"]
    assert all(a["to"] == b["from"] for a, b in zip(history, history[1:], strict=False))
    assert history[-1]["to"] == view["status"]
