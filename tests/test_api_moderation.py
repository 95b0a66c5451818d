"""The moderator's path: authentication, the queue, decisions, deletion."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from redis import Redis

from service.api import moderation
from tests.conftest import AUTH, OTHER_TOKEN, approve, submit

pytestmark = pytest.mark.usefixtures("redis_client")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token-wrong"},
        {"Authorization": "Basic x"},
        {"Authorization": "Bearer "},
    ],
)
def test_moderation_needs_a_valid_bearer_token(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    comment_id = submit(client).get_json()["id"]
    for method, path in [
        ("GET", "/api/v1/moderation/queue"),
        ("GET", f"/api/v1/moderation/comments/{comment_id}"),
        ("POST", f"/api/v1/moderation/comments/{comment_id}/approve"),
        ("DELETE", f"/api/v1/moderation/comments/{comment_id}"),
    ]:
        response = client.open(path, method=method, headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # Nothing was decided by the refused requests.
    assert (
        client.get(f"/api/v1/moderation/comments/{comment_id}", headers=AUTH).get_json()["status"]
        == "pending"
    )


def test_queue_is_pending_oldest_first_with_every_field(client: FlaskClient) -> None:
    ids = [
        submit(client, article=a, comment=f"c{i}").get_json()["id"]
        for i, a in enumerate(["x", "y", "x"])
    ]
    approve(client, ids[1])
    body = client.get("/api/v1/moderation/queue", headers=AUTH).get_json()
    assert [c["id"] for c in body["comments"]] == [ids[0], ids[2]]
    assert body["total"] == 2
    assert body["comments"][0]["email"] == "ann@example.com"
    assert client.get("/api/v1/moderation/queue", headers=AUTH).headers["Cache-Control"] == (
        "no-store"
    )
    only_y = client.get("/api/v1/moderation/queue?article_id=y", headers=AUTH).get_json()
    assert only_y["comments"] == [] and only_y["total"] == 0


def test_queue_pages_with_cursor(client: FlaskClient) -> None:
    ids = [submit(client, comment=f"c{i}").get_json()["id"] for i in range(5)]
    seen: list[str] = []
    cursor = ""
    while True:
        page = client.get(f"/api/v1/moderation/queue?limit=2{cursor}", headers=AUTH).get_json()
        seen += [c["id"] for c in page["comments"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == ids


def test_listing_arguments_are_parsed_once_per_query_and_still_validated(
    client: FlaskClient,
) -> None:
    path = "/api/v1/moderation/comments?status=pending&limit=7"
    assert client.get(path, headers=AUTH).status_code == 200
    before = moderation._status_query.cache_info()
    assert client.get(path, headers=AUTH).status_code == 200
    after = moderation._status_query.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)
    # What is shared between requests cannot be changed by one of them.
    with pytest.raises(TypeError):
        moderation._status_query(b"status=pending&limit=7")["limit"] = 1  # type: ignore[index]
    # A bad query is refused every time, never remembered as valid.
    for _ in range(2):
        bad = client.get("/api/v1/moderation/queue?limit=0&reason=BAD!", headers=AUTH)
        assert bad.status_code == 422
        assert set(bad.get_json()["errors"]) == {"limit", "reason"}


def test_approve_publishes_and_records_who_and_when(client: FlaskClient) -> None:
    comment_id = submit(client).get_json()["id"]
    response = approve(client, comment_id, note="fine")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "approved" and body["decided_by"] == "alice"
    assert body["decided_at"] and body["note"] == "fine"
    assert [(h["from"], h["to"], h["actor"]) for h in body["history"]] == [
        (None, "pending", "policy"),
        ("pending", "approved", "moderator:alice"),
    ]
    public = client.get("/api/v1/articles/a1/comments").get_json()
    assert [c["id"] for c in public["comments"]] == [comment_id]


def test_repeating_a_decision_is_harmless(client: FlaskClient) -> None:
    comment_id = submit(client).get_json()["id"]
    first = approve(client, comment_id).get_json()
    second = approve(client, comment_id)
    assert second.status_code == 200
    assert second.get_json()["history"] == first["history"]
    assert client.get("/api/v1/articles/a1/comments").get_json()["total"] == 1


def test_rejecting_an_approved_comment_unpublishes_it(client: FlaskClient) -> None:
    comment_id = submit(client).get_json()["id"]
    approve(client, comment_id)
    bob = {"Authorization": f"Bearer {OTHER_TOKEN}"}
    response = client.post(
        f"/api/v1/moderation/comments/{comment_id}/reject", json={"note": "off topic"}, headers=bob
    )
    body = response.get_json()
    assert body["status"] == "rejected" and body["decided_by"] == "bob"
    assert client.get("/api/v1/articles/a1/comments").get_json()["comments"] == []
    counts = client.get("/api/v1/comment-counts?article_id=a1").get_json()
    assert counts == {"counts": {"a1": 0}}
    assert client.get("/api/v1/moderation/queue", headers=AUTH).get_json()["total"] == 0


def test_decision_body_is_validated(client: FlaskClient) -> None:
    comment_id = submit(client).get_json()["id"]
    path = f"/api/v1/moderation/comments/{comment_id}/approve"
    assert client.post(path, json={"note": "x" * 1001}, headers=AUTH).status_code == 422
    assert client.post(path, json={"status": "rejected"}, headers=AUTH).status_code == 422
    assert (
        client.post(path, data="{", content_type="application/json", headers=AUTH).status_code
        == 400
    )
    assert (
        client.post(path, data="note=x", content_type="text/plain", headers=AUTH).status_code == 415
    )
    assert client.post(path, headers=AUTH).status_code == 200  # no body at all is fine


@pytest.mark.parametrize("comment_id", ["01JZZZZZZZZZZZZZZZZZZZZZZZ", "not-an-id"])
def test_unknown_comments_are_404(client: FlaskClient, comment_id: str) -> None:
    for method, suffix in [("GET", ""), ("POST", "/approve"), ("POST", "/reject"), ("DELETE", "")]:
        response = client.open(
            f"/api/v1/moderation/comments/{comment_id}{suffix}", method=method, headers=AUTH
        )
        assert response.status_code == 404, (method, suffix)
        assert response.mimetype == "application/problem+json"


def test_delete_removes_the_comment_and_its_personal_data(
    client: FlaskClient, redis_client: Redis
) -> None:
    comment_id = submit(client, email="gone@example.org").get_json()["id"]
    approve(client, comment_id)
    assert (
        client.delete(f"/api/v1/moderation/comments/{comment_id}", headers=AUTH).status_code == 204
    )
    assert client.get(f"/api/v1/moderation/comments/{comment_id}", headers=AUTH).status_code == 404
    assert client.get("/api/v1/articles/a1/comments").get_json()["total"] == 0
    for key in redis_client.scan_iter("*"):
        dump = repr(redis_client.dump(key))
        assert "gone@example.org" not in dump and comment_id not in dump


def test_delete_answer_has_no_body_or_type(client: FlaskClient) -> None:
    comment_id = submit(client).get_json()["id"]
    response = client.delete(f"/api/v1/moderation/comments/{comment_id}", headers=AUTH)
    assert response.status_code == 204 and response.data == b""
    assert "Content-Type" not in response.headers


def test_preflight_is_not_refused_as_unauthenticated(client: FlaskClient) -> None:
    response = client.options("/api/v1/moderation/queue")
    assert response.status_code != 401


def test_policy_terms_with_lone_surrogates_are_refused(client: FlaskClient) -> None:
    response = client.put(
        "/api/v1/moderation/policy",
        data='{"block_terms": ["\\udfff"]}',
        content_type="application/json",
        headers=AUTH,
    )
    assert response.status_code == 400
    assert client.get("/api/v1/moderation/policy", headers=AUTH).status_code == 200


@pytest.mark.parametrize("value", ["yes", "on", 1, "true"])
def test_booleans_must_be_json_booleans(client: FlaskClient, value: object) -> None:
    response = client.put("/api/v1/moderation/articles/a1", json={"open": value}, headers=AUTH)
    assert response.status_code == 422


def test_fast_moderator_view_equals_the_schema(client: FlaskClient) -> None:
    from service.api.context import services
    from service.documents import ModeratorCommentSchema, moderator_view

    comment_id = submit(
        client,
        website="https://ann.example",
        comment="shit, two links http://a.example http://b.example",
    ).get_json()["id"]
    approve(client, comment_id, note="ok after all")
    client.post(f"/api/v1/moderation/comments/{comment_id}/reject", headers=AUTH)
    plain = submit(client, email="p@example.com", comment="plain").get_json()["id"]
    with client.application.app_context():
        for some_id in (comment_id, plain):
            stored = services().store.get(some_id)
            assert stored is not None
            assert moderator_view(stored) == ModeratorCommentSchema().dump(stored)
    assert stored is not None and len(stored.history) == 1 and stored.reasons
