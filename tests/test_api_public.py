"""The embedding site's and the article page's paths, over the app on a real Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import AUTH, Browser, approve, submit

pytestmark = pytest.mark.usefixtures("redis_client")


def test_submission_is_accepted_pending_without_the_email(client: FlaskClient) -> None:
    response = submit(client, email="  Ann.Lee@EXAMPLE.com ")
    assert response.status_code == 202
    body = response.get_json()
    assert set(body) == {
        "id",
        "article_id",
        "status",
        "created_at",
        "commenter_key",
        "edit_token",
        "edit_until",
    }
    assert body["status"] == "pending" and body["article_id"] == "a1"
    # Held, so not yet on the article page; the moderator sees the normalised address.
    assert client.get("/api/v1/articles/a1/comments").get_json()["comments"] == []
    stored = client.get(f"/api/v1/moderation/comments/{body['id']}", headers=AUTH).get_json()
    assert stored["email"] == "Ann.Lee@example.com"
    assert stored["name"] == "Ann" and stored["status"] == "pending"


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": "x" * 250 + "@example.com"}, "email"),
        ({"comment": ""}, "comment"),
        ({"comment": "y" * 5001}, "comment"),
        ({"comment": "null\x00byte"}, "comment"),
        ({"website": "javascript:alert(1)"}, "website"),
        ({"website": "ftp://example.org/x"}, "website"),
        ({"parent_id": "nope"}, "parent_id"),
        ({"status": "approved"}, "status"),
        ({"id": "01JZZZZZZZZZZZZZZZZZZZZZZZ"}, "id"),
        ({"name": 5}, "name"),
        ({"comment": ["a"]}, "comment"),
    ],
)
def test_invalid_fields_are_named_in_a_422(
    client: FlaskClient, fields: dict[str, Any], bad_field: str
) -> None:
    response = submit(client, **fields)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 422 and problem["title"] and problem["type"]
    assert bad_field in problem["errors"]


def test_missing_required_fields_are_each_named(client: FlaskClient) -> None:
    response = client.post("/api/v1/articles/a1/comments", json={})
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"name", "email", "comment"}


def test_trimmed_lengths_are_what_count(client: FlaskClient) -> None:
    assert submit(client, name="  " + "n" * 100 + "  ", comment=" " + "c" * 5000).status_code == 202


def test_a_json_body_that_is_not_an_object_is_422(client: FlaskClient) -> None:
    response = client.post("/api/v1/articles/a1/comments", json=["a", "b"])
    assert response.status_code == 422
    assert "_schema" in response.get_json()["errors"]


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"name": "a",}', b"\xff\xfe{}", b"[" * 5000 + b"]" * 5000],
)
def test_malformed_json_is_400(client: FlaskClient, raw: bytes) -> None:
    response = client.post(
        "/api/v1/articles/a1/comments", data=raw, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
def test_other_content_types_are_415(client: FlaskClient, content_type: str | None) -> None:
    kwargs: dict[str, Any] = {"data": b"name=a"}
    if content_type:
        kwargs["content_type"] = content_type
    response = client.post("/api/v1/articles/a1/comments", **kwargs)
    assert response.status_code == 415
    assert response.get_json()["status"] == 415


def test_oversized_body_is_413(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/articles/a1/comments", data=b"x" * (70 * 1024), content_type="application/json"
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_form_post_with_allowed_redirect_gets_303(client: FlaskClient) -> None:
    form = {
        "name": "Bo",
        "email": "bo@example.net",
        "comment": "From a form",
        "website": "",
        "parent_id": "",
        "submit": "Post Comment",
        "redirect": "https://news.example.org/2026/story#comments",
    }
    response = client.post("/api/v1/articles/story/comments", data=form)
    assert response.status_code == 303
    assert response.headers["Location"] == "https://news.example.org/2026/story#comments"
    queue = client.get("/api/v1/moderation/queue", headers=AUTH).get_json()
    assert [c["comment"] for c in queue["comments"]] == ["From a form"]


def test_form_post_without_redirect_answers_json(client: FlaskClient) -> None:
    form = {"name": "Bo", "email": "bo@example.net", "comment": "Plain form"}
    response = client.post("/api/v1/articles/story/comments", data=form)
    assert response.status_code == 202 and response.get_json()["status"] == "pending"


def test_form_redirect_to_a_foreign_origin_is_refused(client: FlaskClient) -> None:
    form = {
        "name": "Bo",
        "email": "bo@example.net",
        "comment": "x",
        "redirect": "https://evil.example.com/phish",
    }
    response = client.post("/api/v1/articles/story/comments", data=form)
    assert response.status_code == 422
    assert "redirect" in response.get_json()["errors"]
    assert client.get("/api/v1/moderation/queue", headers=AUTH).get_json()["total"] == 0


@pytest.mark.parametrize("article", ["has space", "a" * 201, "semi;colon", "brace{x}"])
def test_article_ids_outside_the_slug_alphabet_are_4xx(client: FlaskClient, article: str) -> None:
    response = client.post(
        f"/api/v1/articles/{article}/comments",
        json={"name": "a", "email": "a@example.com", "comment": "c"},
    )
    assert 400 <= response.status_code < 500
    assert response.mimetype == "application/problem+json"


def test_reply_needs_an_approved_parent_of_the_same_article(client: FlaskClient) -> None:
    ann = Browser(client)
    parent = ann.submit().get_json()["id"]
    assert "parent_id" in ann.submit(parent_id=parent).get_json()["errors"]  # still pending
    approve(client, parent)
    assert ann.submit(article="other", parent_id=parent).status_code == 422
    reply = ann.submit(parent_id=parent, comment="I agree")
    # Ann's key now has an approved comment: the trusted-commenter rule publishes her reply.
    assert reply.status_code == 201 and reply.get_json()["status"] == "approved"
    comments = client.get("/api/v1/articles/a1/comments").get_json()["comments"]
    assert [c["parent_id"] for c in comments] == [None, parent]


def test_article_page_lists_approved_only_oldest_first(client: FlaskClient) -> None:
    ids = [submit(client, comment=f"comment {i}").get_json()["id"] for i in range(4)]
    for comment_id in (ids[2], ids[0], ids[3]):
        approve(client, comment_id)
    body = client.get("/api/v1/articles/a1/comments").get_json()
    assert [c["id"] for c in body["comments"]] == [ids[0], ids[2], ids[3]]
    assert body["total"] == 3 and body["next_cursor"] is None
    assert set(body["comments"][0]) == {
        "id",
        "article_id",
        "parent_id",
        "name",
        "comment",
        "website",
        "created_at",
    }


def test_empty_article_is_an_empty_list_not_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/articles/nobody-commented/comments")
    assert response.status_code == 200
    assert response.get_json() == {
        "article_id": "nobody-commented",
        "comments": [],
        "next_cursor": None,
        "total": 0,
    }


def test_cursor_paging_stays_correct_while_comments_change(client: FlaskClient) -> None:
    ids = [submit(client, comment=f"c{i}").get_json()["id"] for i in range(7)]
    for comment_id in ids:
        approve(client, comment_id)
    first = client.get("/api/v1/articles/a1/comments?limit=3").get_json()
    assert [c["id"] for c in first["comments"]] == ids[:3]
    # Between pages: an already-seen comment and a not-yet-seen one are unpublished.
    client.post(f"/api/v1/moderation/comments/{ids[1]}/reject", json={}, headers=AUTH)
    client.delete(f"/api/v1/moderation/comments/{ids[4]}", headers=AUTH)
    second = client.get(f"/api/v1/articles/a1/comments?limit=3&cursor={first['next_cursor']}")
    body = second.get_json()
    assert [c["id"] for c in body["comments"]] == [ids[3], ids[5], ids[6]]
    assert body["next_cursor"] is None and body["total"] == 5


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=abc", "cursor=bad"])
def test_bad_paging_parameters_are_422(client: FlaskClient, query: str) -> None:
    response = client.get(f"/api/v1/articles/a1/comments?{query}")
    assert response.status_code == 422
    assert response.get_json()["errors"]


def test_public_reads_are_cacheable_and_revalidate_with_304(client: FlaskClient) -> None:
    approve(client, submit(client).get_json()["id"])
    first = client.get("/api/v1/articles/a1/comments")
    assert "public" in first.headers["Cache-Control"] and first.headers["ETag"]
    again = client.get(
        "/api/v1/articles/a1/comments", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304 and again.data == b""
    approve(client, submit(client, comment="another").get_json()["id"])
    changed = client.get(
        "/api/v1/articles/a1/comments", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert changed.status_code == 200 and len(changed.get_json()["comments"]) == 2


def test_comment_counts(client: FlaskClient) -> None:
    for article, n in (("a", 3), ("b", 1)):
        for i in range(n):
            approve(client, submit(client, article=article, comment=f"c{i}").get_json()["id"])
    submit(client, article="a", comment="still pending", email="new.reader@example.com")
    response = client.get("/api/v1/comment-counts?article_id=a&article_id=b&article_id=zero")
    assert response.status_code == 200
    assert response.get_json() == {"counts": {"a": 3, "b": 1, "zero": 0}}


def test_comment_counts_by_post_answer_as_the_get(client: FlaskClient) -> None:
    approve(client, submit(client, article="a").get_json()["id"])
    ids = ["zero", "a", "zero", "b" * 200]
    got = client.get("/api/v1/comment-counts", query_string=[("article_id", i) for i in ids])
    posted = client.post("/api/v1/comment-counts", json={"article_id": ids})
    assert posted.status_code == 200 and posted.mimetype == "application/json"
    assert posted.data == got.data
    assert list(posted.get_json()["counts"]) == ["zero", "a", "b" * 200]
    assert "ETag" not in posted.headers and "Cache-Control" not in posted.headers


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"article_id": []}, 422),
        ({"article_id": ["a"] * 101}, 422),
        ({"article_id": ["bad id"]}, 422),
        ({"article_id": ["a"], "more": 1}, 422),
        ({"article_id": "a"}, 422),
        (["a"], 422),
        ("not json", 415),
    ],
)
def test_comment_counts_by_post_validates(client: FlaskClient, body: object, status: int) -> None:
    if isinstance(body, str):
        response = client.post("/api/v1/comment-counts", data=body, content_type="text/plain")
    else:
        response = client.post("/api/v1/comment-counts", json=body)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("query", ["", "?article_id=bad%20id"])
def test_comment_counts_needs_valid_article_ids(client: FlaskClient, query: str) -> None:
    response = client.get(f"/api/v1/comment-counts{query}")
    assert response.status_code == 422


def test_unknown_route_and_method_are_problems(client: FlaskClient) -> None:
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    wrong = client.put("/api/v1/articles/a1/comments", json={})
    assert wrong.status_code == 405 and wrong.mimetype == "application/problem+json"
    assert "POST" in wrong.headers["Allow"]


def test_ops_endpoints(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ready"}
    spec = client.get("/openapi.yaml")
    assert spec.status_code == 200 and b"openapi: 3.1" in spec.data


@pytest.mark.parametrize("suffix", ["X", "0", "\n"])
def test_ids_with_trailing_characters_are_refused(client: FlaskClient, suffix: str) -> None:
    parent = submit(client).get_json()["id"]
    approve(client, parent)
    if suffix.strip():  # surrounding whitespace in a form field is trimmed, by design
        assert "parent_id" in submit(client, parent_id=parent + suffix).get_json()["errors"]
    response = client.get("/api/v1/articles/a1/comments", query_string={"cursor": parent + suffix})
    assert response.status_code == 422


@pytest.mark.parametrize("field", ["name", "comment"])
def test_lone_surrogate_escapes_are_400_not_500(client: FlaskClient, field: str) -> None:
    body = '{"name": "A", "email": "a@example.com", "comment": "c"}'.replace(
        f'"{field}": "', f'"{field}": "\\ud800'
    )
    response = client.post(
        "/api/v1/articles/a1/comments", data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_direct_renderings_equal_their_schemas(client: FlaskClient) -> None:
    from service.documents import AcceptedSchema, PublicCommentSchema, render_public
    from service.models import PublicComment

    sample = PublicComment(
        id="01JZZZZZZZZZZZZZZZZZZZZZZZ",
        article_id="a1",
        parent_id=None,
        name="Zoë \u05e9",
        comment='quote " and / slash',
        website=None,
        created_at="2026-11-25T00:00:00.000Z",
    )
    assert json.loads(render_public(sample)) == PublicCommentSchema().dump(sample)
    accepted = submit(client).get_json()
    assert accepted == AcceptedSchema().dump(accepted)
    assert list(accepted) == list(AcceptedSchema().fields)
