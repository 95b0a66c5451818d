"""Authors' edits and deletion with the edit token of their answer, within the policy's
edit_window_seconds: the policy runs again on the new words, the old ones stay in the history
for moderators, after the window 403 with its end."""

from __future__ import annotations

import json
import time
from typing import Any, cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from service.api.context import EXTENSION_KEY
from service.clock import parse_iso_ms
from service.store import Keys
from tests.conftest import AUTH, EMAIL_PATTERN, RELAXED_POLICY, Browser, approve, submit

MODERATION = "/api/v1/moderation/comments"


def edit(client: FlaskClient, comment_id: str, token: str, **fields: Any) -> Any:
    headers = {"Edit-Token": token}
    if "if_match" in fields:
        headers["If-Match"] = fields.pop("if_match")
    return client.patch(f"/api/v1/comments/{comment_id}", json=fields, headers=headers)


def posted(client: FlaskClient, **fields: Any) -> tuple[str, str]:
    answer = submit(client, **fields).get_json()
    return answer["id"], answer["edit_token"]


def view(client: FlaskClient, comment_id: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"{MODERATION}/{comment_id}", headers=AUTH).get_json()
    return found


def set_policy(client: FlaskClient, **settings: Any) -> None:
    response = client.put(
        "/api/v1/moderation/policy", json={**RELAXED_POLICY, **settings}, headers=AUTH
    )
    assert response.status_code == 200


def test_the_answer_carries_an_edit_token_stored_only_as_a_hash(
    client: FlaskClient, redis_client: Redis
) -> None:
    comment_id, token = posted(client)
    assert len(token) >= 40
    raw = redis_client.get(next(iter(redis_client.scan_iter(match=f"*:comment:*:{comment_id}"))))
    assert raw is not None and token not in str(raw) and '"edit_token"' in str(raw)
    assert "edit_token" not in view(client, comment_id)
    assert submit(client, comment="another").get_json()["edit_token"] != token


def test_an_author_edits_a_held_comment_and_the_old_words_stay_for_moderators(
    client: FlaskClient,
) -> None:
    comment_id, token = posted(client, comment="Thee first version.")
    response = edit(client, comment_id, token, comment="The first version.")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["comment"], body["status"], body["version"]) == (
        "The first version.",
        "pending",
        2,
    )
    assert response.headers["ETag"] == '"v2"'
    record = view(client, comment_id)
    assert record["comment"] == "The first version." and record["version"] == 2
    [old] = record["edits"]
    assert (old["version"], old["comment"], old["name"]) == (1, "Thee first version.", "Ann")
    assert len(record["history"]) == 1  # the status did not change


def test_a_published_edit_is_published_and_a_held_one_goes_back_to_review(
    client: FlaskClient,
) -> None:
    comment_id, token = posted(client, comment="Nice article.")
    assert approve(client, comment_id).status_code == 200
    fine = edit(client, comment_id, token, comment="Nice article, thanks.", website=None)
    assert fine.get_json()["status"] == "approved"
    page = client.get("/api/v1/articles/a1/comments").get_json()["comments"]
    assert [c["comment"] for c in page] == ["Nice article, thanks."]
    held = edit(client, comment_id, token, comment="Buy at http://a.example and http://b.example")
    assert held.get_json()["status"] == "pending"
    assert client.get("/api/v1/articles/a1/comments").get_json()["comments"] == []
    record = view(client, comment_id)
    assert record["status"] == "pending" and [r["code"] for r in record["reasons"]] == ["links"]
    assert record["history"][-1]["actor"] == "author"
    assert [e["comment"] for e in record["edits"]] == ["Nice article.", "Nice article, thanks."]
    queue = client.get("/api/v1/moderation/queue?reason=links", headers=AUTH).get_json()
    assert [c["id"] for c in queue["comments"]] == [comment_id]
    # Approved again, the links reason index still finds it among the approved.
    assert approve(client, comment_id).status_code == 200
    listed = client.get(
        "/api/v1/moderation/comments?status=approved&reason=links", headers=AUTH
    ).get_json()
    assert [c["id"] for c in listed["comments"]] == [comment_id]


def test_the_store_stays_consistent_after_edits(app: Flask, client: FlaskClient) -> None:
    from service.store import check_store

    comment_id, token = posted(client, comment="Fine words.")
    approve(client, comment_id)
    edit(client, comment_id, token, comment="See http://a.example http://b.example")
    edit(client, comment_id, token, comment="Fine words again.")
    store = app.extensions[EXTENSION_KEY].store
    report = check_store(store.redis, store.keys)
    assert report.consistent, report.problems


def test_a_wrong_or_missing_token_is_403(client: FlaskClient) -> None:
    comment_id, token = posted(client)
    # Another first character: a fixed "x" would leave a token that starts with "x" unchanged.
    changed = "y" if token[0] == "x" else "x"
    wrong = edit(client, comment_id, changed + token[1:], comment="Hijacked.")
    assert wrong.status_code == 403
    assert wrong.get_json()["type"] == "/problems/edit-token-invalid"
    other_id, _ = posted(client, comment="someone else")
    assert edit(client, other_id, token, comment="Hijacked.").status_code == 403
    missing = client.delete(f"/api/v1/comments/{comment_id}")
    assert missing.status_code == 403
    assert edit(client, "0" * 26, token, comment="x").status_code == 404


def test_after_the_window_403_with_its_end(client: FlaskClient) -> None:
    set_policy(client, edit_window_seconds=1)
    comment_id, token = posted(client)
    time.sleep(1.1)
    late = edit(client, comment_id, token, comment="Too late.")
    assert late.status_code == 403
    problem = late.get_json()
    assert problem["type"] == "/problems/edit-window-closed"
    assert problem["window_ends_at"] > view(client, comment_id)["created_at"]
    assert (
        client.delete(f"/api/v1/comments/{comment_id}", headers={"Edit-Token": token}).status_code
        == 403
    )
    set_policy(client, edit_window_seconds=0)
    fresh_id, fresh = posted(client, comment="fresh")
    assert edit(client, fresh_id, fresh, comment="off").status_code == 403


def test_the_answer_says_when_the_window_ends_as_the_403_does(client: FlaskClient) -> None:
    """edit_until (what the widget keeps to offer Edit and Delete) is the end the refusal
    names after the window, created_at plus edit_window_seconds; created_at when off."""
    set_policy(client, edit_window_seconds=1)
    answer = submit(client, comment="timed").get_json()
    created = parse_iso_ms(answer["created_at"])
    assert parse_iso_ms(answer["edit_until"]) == created + 1000
    time.sleep(1.1)
    late = edit(client, answer["id"], answer["edit_token"], comment="Too late.")
    assert late.get_json()["window_ends_at"] == answer["edit_until"]
    set_policy(client, edit_window_seconds=0)
    off = submit(client, comment="off").get_json()
    assert off["edit_until"] == off["created_at"]


def test_an_author_deletes_their_comment(client: FlaskClient) -> None:
    comment_id, token = posted(client)
    approve(client, comment_id)
    gone = client.delete(f"/api/v1/comments/{comment_id}", headers={"Edit-Token": token})
    assert gone.status_code == 204
    assert client.get(f"{MODERATION}/{comment_id}", headers=AUTH).status_code == 404
    assert client.get("/api/v1/articles/a1/comments").get_json()["comments"] == []


def test_if_match_on_an_edit(client: FlaskClient) -> None:
    comment_id, token = posted(client)
    assert approve(client, comment_id).status_code == 200  # version 2
    stale = edit(client, comment_id, token, comment="Edited.", if_match='"v1"')
    assert stale.status_code == 412 and stale.headers["ETag"] == '"v2"'
    assert "current" not in stale.get_json()  # an author is shown nothing of moderation
    assert edit(client, comment_id, token, comment="Edited.", if_match='"v2"').status_code == 200


@pytest.mark.parametrize("body", [{}, {"status": "approved"}, {"comment": ""}, {"name": 3}])
def test_an_edit_is_validated(client: FlaskClient, body: dict[str, Any]) -> None:
    comment_id, token = posted(client)
    response = client.patch(
        f"/api/v1/comments/{comment_id}", json=body, headers={"Edit-Token": token}
    )
    assert response.status_code == 422


def test_an_unchanged_edit_changes_nothing(client: FlaskClient) -> None:
    comment_id, token = posted(client)
    same = edit(client, comment_id, token, comment="A thoughtful remark.")
    assert same.status_code == 200 and same.get_json()["version"] == 1


def test_a_trusted_authors_edit_is_judged_on_its_words(client: FlaskClient) -> None:
    browser = Browser(client)
    first = browser.submit(comment="First.").get_json()["id"]
    approve(client, first)
    answer = browser.submit(comment="Second.").get_json()
    assert answer["status"] == "approved"
    edited = edit(client, answer["id"], answer["edit_token"], comment="Second, edited.")
    assert edited.get_json()["status"] == "approved"


def events(client: FlaskClient) -> list[dict[str, Any]]:
    response = client.get("/api/v1/moderation/events?limit=1000", headers=AUTH)
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.get_json()["events"]
    return found


@pytest.mark.usefixtures("events_settled")  # the pull API shows events once settled
def test_edits_and_deletion_have_their_events_in_their_own_scripts(
    client: FlaskClient, redis_client: Redis
) -> None:
    """An edit appends ``comment.edited`` (status after, before, the new words' reasons; the
    events show the new words), an author's deletion ``comment.deleted`` by the actor
    ``author``; an unchanged edit none. No email or email hash in any of it."""
    email = "edits.secret@example.net"
    comment_id, token = posted(client, comment="Nice article.", email=email)
    assert approve(client, comment_id).status_code == 200
    start = len(events(client))
    edit(client, comment_id, token, comment="Nice article.")  # unchanged: no event
    edit(client, comment_id, token, comment="Buy at http://a.example and http://b.example")
    edit(client, comment_id, token, comment="Nice article, thanks.")
    log = events(client)[start:]
    assert [e["type"] for e in log] == ["comment.edited", "comment.edited"]
    first, second = log
    assert first["actor"] == "author" and first["comment"]["id"] == comment_id
    assert (first["comment"]["status"], first["comment"]["previous_status"]) == (
        "pending",
        "approved",
    )
    assert [r["code"] for r in first["reasons"]] == ["links"]
    assert (second["comment"]["status"], second["reasons"]) == ("pending", [])
    # Every retained event shows the comment's words as they now are.
    assert {e["comment"]["comment"] for e in log} == {"Nice article, thanks."}
    raw = redis_client.get(next(iter(redis_client.scan_iter(match=f"*:comment:*:{comment_id}"))))
    email_hash = json.loads(str(raw))["email_hash"]
    gone = client.delete(f"/api/v1/comments/{comment_id}", headers={"Edit-Token": token})
    assert gone.status_code == 204
    log = events(client)[start:]
    assert log[-1]["type"] == "comment.deleted" and log[-1]["actor"] == "author"
    assert log[-1]["comment"]["id"] == comment_id and log[-1]["comment"]["comment"] is None
    shown = json.dumps(log)
    stream = json.dumps([cast(list[Any], redis_client.xrange(k)) for k in Keys().event_streams()])
    for text in (shown, stream):
        assert email not in text and email_hash not in text and not EMAIL_PATTERN.search(text)
