"""Bulk decisions (POST /api/v1/moderation/decisions) on a real Redis: each item decided as the
single route decides it, each comment atomically, a result or a problem per item, in order."""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from service.schemas import MAX_BULK_DECISIONS
from tests.conftest import AUTH, STEPPED, Browser, approve, submit
from tests.test_api_policy import make_trusted, set_policy
from tests.test_decision_races import REAL, erase, in_thread, store_of
from tests.test_round_trips import commands_during

pytestmark = pytest.mark.usefixtures("redis_client")
PATH = "/api/v1/moderation/decisions"


def decide(client: FlaskClient, *items: dict[str, Any], status: int = 200) -> Any:
    response = client.post(PATH, json={"decisions": list(items)}, headers=AUTH)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def pending(client: FlaskClient, n: int, article: str = "a1") -> list[str]:
    return [
        submit(
            client, article=article, comment=f"remark {i}", email=f"u{i}@example.com"
        ).get_json()["id"]
        for i in range(n)
    ]


def test_each_item_is_decided_and_answered_in_order(client: FlaskClient) -> None:
    one, two, three = pending(client, 3)
    body = decide(
        client,
        {"comment_id": three, "action": "spam"},
        {"comment_id": one, "action": "approve", "note": "fine"},
        {"comment_id": two, "action": "reject"},
    )
    results = body["results"]
    assert [r["comment_id"] for r in results] == [three, one, two]
    assert [r["status"] for r in results] == [200, 200, 200]
    assert [r["comment"]["status"] for r in results] == ["spam", "approved", "rejected"]
    assert results[1]["comment"]["note"] == "fine"
    assert results[1]["comment"]["decided_by"] == "alice"
    assert results[1]["comment"]["history"][-1]["from"] == "pending"
    # What the single route reads back is what the bulk one answered.
    for result in results:
        stored = client.get(f"/api/v1/moderation/comments/{result['comment_id']}", headers=AUTH)
        assert stored.get_json() == result["comment"]
    page = client.get("/api/v1/articles/a1/comments").get_json()
    assert [c["id"] for c in page["comments"]] == [one]
    assert client.get("/api/v1/moderation/queue", headers=AUTH).get_json()["total"] == 0


def test_unknown_and_malformed_ids_are_their_items_problems(client: FlaskClient) -> None:
    (real,) = pending(client, 1)
    unknown = "01J0Z8Q5D2V7XW3M9K4T6R1ABC"
    body = decide(
        client,
        {"comment_id": unknown, "action": "approve"},
        {"comment_id": "not-an-id", "action": "reject"},
        {"comment_id": real, "action": "approve"},
    )
    missing, malformed, decided = body["results"]
    for result in (missing, malformed):
        assert result["status"] == 404
        assert result["problem"]["type"] == "/problems/comment-not-found"
        assert result["problem"]["status"] == 404 and "comment" not in result
    assert (missing["comment_id"], malformed["comment_id"]) == (unknown, "not-an-id")
    assert decided["status"] == 200 and decided["comment"]["status"] == "approved"


def test_requeue_undoes_a_publication(client: FlaskClient) -> None:
    """The console's Undo of an approval: back to pending, unpublished, both in the history."""
    (comment_id,) = pending(client, 1)
    decide(client, {"comment_id": comment_id, "action": "approve"})
    assert client.get("/api/v1/articles/a1/comments").get_json()["total"] == 1
    undone = decide(client, {"comment_id": comment_id, "action": "requeue", "note": "undo"})
    comment = undone["results"][0]["comment"]
    assert comment["status"] == "pending"
    assert comment["comment"] == "remark 0"  # the content came back from the public document
    assert [(h["from"], h["to"]) for h in comment["history"][1:]] == [
        ("pending", "approved"),
        ("approved", "pending"),
    ]
    assert client.get("/api/v1/articles/a1/comments").get_json()["total"] == 0
    queue = client.get("/api/v1/moderation/queue", headers=AUTH).get_json()
    assert [c["id"] for c in queue["comments"]] == [comment_id]


def test_repeating_a_decision_changes_nothing(client: FlaskClient) -> None:
    (comment_id,) = pending(client, 1)
    first = decide(client, {"comment_id": comment_id, "action": "reject", "note": "a"})
    again = decide(client, {"comment_id": comment_id, "action": "reject", "note": "b"})
    assert again["results"][0]["comment"] == first["results"][0]["comment"]


def test_an_items_version_decides_it_only_at_that_version(client: FlaskClient) -> None:
    """The console sends each item's reviewed version: an item whose comment moved on is its
    own 412 with the comment's current state (no email), the other items are decided."""
    moved, kept = pending(client, 2)
    approve(client, moved, note="the other moderator")  # v1 -> v2 behind the console's back
    body = decide(
        client,
        {"comment_id": moved, "action": "reject", "version": 1},
        {"comment_id": kept, "action": "reject", "version": 1},
    )
    stale, done = body["results"]
    assert stale["status"] == 412
    problem = stale["problem"]
    assert problem["type"] == "/problems/version-mismatch" and problem["status"] == 412
    assert problem["current"]["status"] == "approved"
    assert problem["current"]["version"] == 2
    assert problem["current"]["decided_by"] == "alice"
    assert problem["current"]["note"] == "the other moderator"
    assert "email" not in problem["current"]
    assert done["status"] == 200 and done["comment"]["status"] == "rejected"
    assert done["comment"]["version"] == 2
    # Nothing changed on the stale one; at its current version the decision applies.
    current = client.get(f"/api/v1/moderation/comments/{moved}", headers=AUTH).get_json()
    assert (current["status"], current["version"]) == ("approved", 2)
    again = decide(client, {"comment_id": moved, "action": "reject", "version": 2})
    assert again["results"][0]["status"] == 200
    assert again["results"][0]["comment"]["version"] == 3


@pytest.mark.parametrize("version", [0, -1, "2", 1.5, True, None, 2**53])
def test_a_version_is_a_positive_integer(client: FlaskClient, version: Any) -> None:
    (comment_id,) = pending(client, 1)
    body = decide(
        client, {"comment_id": comment_id, "action": "approve", "version": version}, status=422
    )
    assert "version" in " ".join(body["errors"]["decisions"]["0"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "decisions"),
        ({"decisions": []}, "decisions"),
        ({"decisions": "x"}, "decisions"),
        ({"decisions": [{"comment_id": "x"}]}, "decisions"),
        ({"decisions": [{"comment_id": "x", "action": "delete"}]}, "decisions"),
        ({"decisions": [{"comment_id": "x", "action": "approve", "extra": 1}]}, "decisions"),
        ({"decisions": [1]}, "decisions"),
        (
            {"decisions": [{"comment_id": "x", "action": "reject", "trust_author": True}]},
            "decisions",
        ),
        ({"decisions": [{"comment_id": "x", "action": "approve"}] * 2}, "decisions"),
        ({"decisions": [], "other": 1}, "other"),
    ],
)
def test_a_malformed_request_is_refused_whole(
    client: FlaskClient, body: dict[str, Any], field: str
) -> None:
    (comment_id,) = pending(client, 1)
    if isinstance(body.get("decisions"), list) and body["decisions"]:
        body = {
            "decisions": [
                {**i, "comment_id": comment_id} if isinstance(i, dict) else i
                for i in body["decisions"]
            ]
        }
    response = client.post(PATH, json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    errors = response.get_json()["errors"]
    assert field in errors
    # The contract's shape: a list of messages, or a list's messages keyed by item index.
    for messages in errors.values():
        if isinstance(messages, dict):
            assert all(
                k.isdigit() and all(isinstance(m, str) for m in v) for k, v in messages.items()
            )
        else:
            assert all(isinstance(m, str) for m in messages)
    stored = client.get(f"/api/v1/moderation/comments/{comment_id}", headers=AUTH).get_json()
    assert stored["status"] == "pending"  # nothing was applied


def test_an_items_errors_name_its_index_and_field(client: FlaskClient) -> None:
    (comment_id,) = pending(client, 1)
    response = client.post(
        PATH,
        json={
            "decisions": [
                {"comment_id": comment_id, "action": "approve"},
                {"comment_id": "x", "action": "shout"},
            ]
        },
        headers=AUTH,
    )
    assert response.status_code == 422
    (message,) = response.get_json()["errors"]["decisions"]["1"]
    assert message.startswith("action: ")


def test_at_most_200_items(client: FlaskClient) -> None:
    ids = pending(client, 3)
    # Ids need not exist for the limit to hold: 200 are answered, 201 refused.
    fillers = [f"01J0Z8Q5D2V7XW3M9K4T6R{i:04d}" for i in range(MAX_BULK_DECISIONS)]
    items = [{"comment_id": i, "action": "approve"} for i in ids + fillers]
    assert MAX_BULK_DECISIONS == 200
    refused = client.post(PATH, json={"decisions": items[:201]}, headers=AUTH)
    assert refused.status_code == 422 and "decisions" in refused.get_json()["errors"]
    answered = decide(client, *items[:200])["results"]
    assert len(answered) == 200
    assert [r["status"] for r in answered[:3]] == [200, 200, 200]
    assert Counter(r["status"] for r in answered[3:]) == Counter({404: 197})


def test_needs_a_moderator(client: FlaskClient) -> None:
    (comment_id,) = pending(client, 1)
    response = client.post(
        PATH, json={"decisions": [{"comment_id": comment_id, "action": "approve"}]}
    )
    assert response.status_code == 401
    stored = client.get(f"/api/v1/moderation/comments/{comment_id}", headers=AUTH).get_json()
    assert stored["status"] == "pending"


def test_round_trips_do_not_grow_with_the_number_of_items(
    client: FlaskClient, redis_client: Redis
) -> None:
    """Pending comments: one MGET for the records, one pipeline of one EVALSHA per comment,
    one more of one EVALSHA per decided comment (its review ends: claims, reports). Approved
    ones across articles add one READ_COMMENTS call (their content is public). Stepped (a
    cluster: service/store/steps.py) the move is three pipelines, one EVALSHA per comment each
    (every comment here has a commenter key to stamp or restore)."""
    steps = 3 if STEPPED else 1
    for n in (1, 20):
        ids = pending(client, n, article=f"art{n}")
        items = [{"comment_id": i, "action": "reject"} for i in ids]
        cost = commands_during(redis_client, partial(decide, client, *items))
        assert cost["mget"] == 1 and cost["evalsha"] == (steps + 1) * n, cost  # move, review
        published = [approve(client, i).get_json()["id"] for i in ids]
        again = [{"comment_id": i, "action": "requeue"} for i in published]
        cost = commands_during(redis_client, partial(decide, client, *again))
        assert cost["mget"] == 1 and cost["evalsha"] == (steps + 1) * n + 1, cost


def test_a_lost_script_cache_is_reloaded(client: FlaskClient, redis_client: Redis) -> None:
    ids = pending(client, 3)
    redis_client.script_flush()
    body = decide(client, *({"comment_id": i, "action": "approve"} for i in ids))
    assert [r["comment"]["status"] for r in body["results"]] == ["approved"] * 3


def test_approve_and_trust_forgives_an_earlier_rejection(client: FlaskClient) -> None:
    set_policy(client, auto_approve="trusted")
    ann = make_trusted(client)
    rejected = ann.submit(comment="A comment that was turned down.")
    assert rejected.status_code == 201  # trusted: published at once ...
    decide(client, {"comment_id": rejected.get_json()["id"], "action": "reject"})
    held = ann.submit(comment="Held: the rejection ended the trust.")
    assert held.status_code == 202
    # A plain approval does not bring trust back while the rejection counts.
    decide(client, {"comment_id": held.get_json()["id"], "action": "approve"})
    still_held = ann.submit(comment="Still held after a plain approval.")
    assert still_held.status_code == 202
    body = decide(
        client,
        {"comment_id": still_held.get_json()["id"], "action": "approve", "trust_author": True},
    )
    assert body["results"][0]["comment"]["status"] == "approved"
    assert ann.submit(comment="Trusted again, published at once.").status_code == 201


def reject(app: Flask, comment_id: str) -> None:
    other = app.test_client().post(
        f"/api/v1/moderation/comments/{comment_id}/reject", json={}, headers=AUTH
    )
    assert other.status_code == 200 and other.get_json()["status"] == "rejected"


def test_an_erase_between_the_read_and_the_move_publishes_nothing_erased(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bulk approval read the comment published under its author's name; it is erased
    (anonymised) and rejected by another moderator before the scripts run. The script refuses
    the stale rendering, the item is read and moved again, and what is published is the
    anonymised comment."""
    erased = submit(client, **REAL).get_json()["id"]
    assert approve(client, erased).status_code == 200
    (other,) = pending(client, 1)
    store = store_of(app)
    real_get_many = store.get_many
    reads: list[list[str]] = []

    def erase_then_reject() -> None:
        erase(app)
        reject(app, erased)

    def get_many(comment_ids: list[str]) -> Any:
        found = real_get_many(comment_ids)
        reads.append(list(comment_ids))
        if len(reads) == 1:
            in_thread(erase_then_reject)
        return found

    monkeypatch.setattr(store, "get_many", get_many)
    body = decide(
        client,
        {"comment_id": erased, "action": "approve"},
        {"comment_id": other, "action": "approve"},
    )
    assert reads == [[erased, other], [erased]]  # only the refused item was read again
    first, second = body["results"]
    assert (first["status"], first["comment"]["name"]) == (200, "Anonymous")
    assert second["comment"]["status"] == "approved"
    page = client.get("/api/v1/articles/a1/comments").get_data(as_text=True)
    assert "Erin Real" not in page and "erin.example.org" not in page


def test_an_undone_approval_leaves_no_trust_behind(client: FlaskClient) -> None:
    set_policy(client, auto_approve="trusted")
    ann = Browser(client)
    first = ann.submit(comment="My first comment here.")
    assert first.status_code == 202
    comment_id = first.get_json()["id"]
    decide(client, {"comment_id": comment_id, "action": "approve"})
    decide(client, {"comment_id": comment_id, "action": "requeue"})  # the console's Undo
    assert ann.submit(comment="Not trusted: the approval was undone.").status_code == 202
    # Approved for good this time: trusted.
    decide(client, {"comment_id": comment_id, "action": "approve"})
    assert ann.submit(comment="Trusted now.").status_code == 201


def test_an_undone_rejection_gives_the_trust_back(client: FlaskClient) -> None:
    set_policy(client, auto_approve="trusted")
    ann = make_trusted(client)
    second = ann.submit(comment="Published at once.")
    assert second.status_code == 201
    comment_id = second.get_json()["id"]
    decide(client, {"comment_id": comment_id, "action": "reject"})
    decide(client, {"comment_id": comment_id, "action": "approve"})  # changed their mind
    decide(client, {"comment_id": comment_id, "action": "requeue"})  # and undid it all
    assert ann.submit(comment="Still trusted: nothing of it counts.").status_code == 201


def test_an_undo_restores_nothing_once_another_comment_was_decided(
    client: FlaskClient,
) -> None:
    """The record remembers the last comment decided: undoing an older one leaves the newer
    decision's stamps as they are."""
    set_policy(client, auto_approve="trusted")
    ann = Browser(client)
    one = ann.submit(comment="One, held.").get_json()["id"]
    two = ann.submit(comment="Two, held too.").get_json()["id"]
    decide(client, {"comment_id": one, "action": "approve"})
    decide(client, {"comment_id": two, "action": "approve"})
    decide(client, {"comment_id": one, "action": "requeue"})
    assert ann.submit(comment="Trusted by the second approval.").status_code == 201
