"""The event log: one event per change, appended by the change's own script; no email, hash
or IP in it; erasure removes the text; retention by length and age; the pull API."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, cast

import pytest
from flask.testing import FlaskClient
from redis import Redis

from service.cli import tokens_create, tokens_revoke
from service.config import Config
from service.crypto import Cipher
from service.events import EventRetention, stream_id_key
from service.store import CommentStore, Keys
from tests.conftest import AUTH, EMAIL_PATTERN, MakeApp, approve, submit

# The pull API shows events once settled (service/events.py, SETTLE_MS): read 2 s later.
pytestmark = pytest.mark.usefixtures("events_settled")


def events(client: FlaskClient, **query: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/moderation/events", query_string=query, headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    found: list[dict[str, Any]] = response.get_json()["events"]
    return found


def types(client: FlaskClient) -> list[str]:
    return [e["type"] for e in events(client, limit=1000)]


def test_every_comment_change_has_one_event(client: FlaskClient) -> None:
    start = len(events(client, limit=1000))  # the app fixture's policy PUT
    held = submit(client, name="Ann", comment="First words").get_json()["id"]
    approve(client, held)
    approve(client, held)  # a repeated decision changes nothing: no event
    client.post(f"/api/v1/moderation/comments/{held}/reject", headers=AUTH)
    client.post(f"/api/v1/moderation/comments/{held}/spam", headers=AUTH)
    client.delete(f"/api/v1/moderation/comments/{held}", headers=AUTH)
    log = events(client, limit=1000)[start:]
    assert [e["type"] for e in log] == [
        "comment.submitted",
        "comment.approved",
        "comment.unpublished",
        "comment.spam",
        "comment.deleted",
    ]
    first = log[0]
    assert first["actor"] == "policy"
    assert first["comment"]["id"] == held and first["comment"]["status"] == "pending"
    assert first["reasons"][0]["code"] == "first_comment"
    assert log[1]["actor"] == "moderator:alice"
    assert log[2]["comment"]["status"] == "rejected"
    assert log[2]["comment"]["previous_status"] == "approved"
    # Deleted: its text is gone from every retained event, not only from the comment.
    assert all(e["comment"]["comment"] is None and e["comment"]["name"] is None for e in log)
    ids = [e["id"] for e in log]
    assert ids == sorted(ids, key=stream_id_key)


def test_events_name_no_email_hash_or_address(client: FlaskClient, redis_client: Redis) -> None:
    comment = submit(
        client,
        name="Bo",
        email="bo.secret@example.net",
        comment="Visible text",
        website="https://bo.example.net/",
    ).get_json()["id"]
    approve(client, comment)
    log = events(client, limit=1000)
    shown = json.dumps(log)
    assert not EMAIL_PATTERN.search(shown)
    assert "email" not in shown and "ip" not in {k for e in log for k in e.get("comment", {})}
    stored = redis_client.get(Keys().comment(comment))
    assert stored is not None
    email_hash = json.loads(stored)["email_hash"]
    raw = json.dumps([cast(list[Any], redis_client.xrange(k)) for k in Keys().event_streams()])
    assert email_hash not in raw and email_hash not in shown
    assert log[-1]["comment"]["comment"] == "Visible text"
    assert log[-1]["comment"]["website"] == "https://bo.example.net/"


def test_erasure_removes_the_text_from_retained_events(client: FlaskClient) -> None:
    gone = submit(client, email="gone@example.org", comment="Delete me please").get_json()["id"]
    kept = submit(client, email="gone@example.org", comment="Keep my words").get_json()["id"]
    approve(client, kept)
    erased = client.post(
        "/api/v1/moderation/data-requests/erase",
        headers=AUTH,
        json={"email": "gone@example.org", "mode": "anonymise"},
    )
    assert erased.get_json() == {"deleted": 1, "anonymised": 1}
    log = events(client, limit=1000)
    of_gone = [e for e in log if e.get("comment", {}).get("id") == gone]
    of_kept = [e for e in log if e.get("comment", {}).get("id") == kept]
    assert [e["type"] for e in of_gone] == ["comment.submitted", "comment.erased"]
    assert all(e["comment"]["comment"] is None for e in of_gone)
    assert [e["type"] for e in of_kept][-1] == "comment.erased"
    # Anonymised: the text stays readable as on the page, under the anonymous name.
    assert {e["comment"]["name"] for e in of_kept} == {"Anonymous"}
    assert {e["comment"]["comment"] for e in of_kept} == {"Keep my words"}
    assert "Delete me" not in json.dumps(log)


def test_site_events_only_when_something_changed(
    client: FlaskClient, config: Config, redis_client: Redis
) -> None:
    before = types(client)
    for _ in range(2):
        client.put("/api/v1/moderation/articles/a9", json={"open": False}, headers=AUTH)
    client.put("/api/v1/moderation/articles/a9", json={"open": True}, headers=AUTH)
    client.put("/api/v1/moderation/policy", json={"link_threshold": 5}, headers=AUTH)
    client.put("/api/v1/moderation/policy", json={"link_threshold": 5}, headers=AUTH)
    assert config.encryption_keys is not None
    store = CommentStore(redis_client, Keys(config.key_prefix), Cipher(config.encryption_keys))
    tokens_create(store, "carol")
    tokens_revoke(store, "carol")
    tokens_revoke(store, "carol")  # nothing to revoke: no event
    log = events(client, limit=1000)[len(before) :]
    assert [e["type"] for e in log] == [
        "article.closed",
        "article.reopened",
        "policy.changed",
        "token.created",
        "token.revoked",
    ]
    assert log[0]["article"] == {"id": "a9"} and log[0]["actor"] == "moderator:alice"
    assert log[3]["token"] == {"moderator": "carol"} and log[3]["actor"] == "cli"
    assert "comment" not in log[0]


def test_paging_with_after_and_limit(client: FlaskClient) -> None:
    for i in range(7):
        submit(client, comment=f"comment number {i}", email=f"p{i}@example.com")
    everything = events(client, limit=1000)
    seen: list[str] = []
    after = None
    while True:
        query: dict[str, Any] = {"limit": 3}
        if after:
            query["after"] = after
        body = client.get("/api/v1/moderation/events", query_string=query, headers=AUTH).get_json()
        seen += [e["id"] for e in body["events"]]
        if not body["events"]:
            assert body["next_after"] == after
            break
        after = body["next_after"]
    assert seen == [e["id"] for e in everything]


def test_bad_paging_arguments_are_422(client: FlaskClient) -> None:
    for query in ({"after": "yesterday"}, {"after": "1-x"}, {"limit": "0"}, {"limit": "٣"}):
        response = client.get("/api/v1/moderation/events", query_string=query, headers=AUTH)
        assert response.status_code == 422, query
        assert response.mimetype == "application/problem+json"
    assert client.get("/api/v1/moderation/events").status_code == 401


def test_retention_by_length_and_by_age(config: Config, make_app: MakeApp) -> None:
    """The site's stream keeps about EVENTS_MAX_LENGTH events, a bucket's its share of it
    (BUCKET_SKEW times over: 6,400 × 4 / 256 = 100 here)."""
    retention = EventRetention(6_400, 7)
    assert retention.bucket_max_length == 100
    assert EventRetention(100, 7).bucket_max_length == 2  # rounded up
    short = replace(config, events_max_length=retention.max_length)
    client = make_app(short).test_client()
    client.put("/api/v1/moderation/policy", json={"flood_interval_seconds": 0}, headers=AUTH)
    for i in range(250):
        client.put("/api/v1/moderation/articles/long", json={"open": i % 2 == 1}, headers=AUTH)
    of_article = [e for e in events(client, limit=1000) if "article" in e]
    # MAXLEN ~ trims whole macro nodes (100 entries each by default): about the length asked.
    assert 100 <= len(of_article) <= 200, len(of_article)

    site = make_app(replace(config, events_max_length=100)).test_client()
    for i in range(250):
        site.put("/api/v1/moderation/policy", json={"link_threshold": 2 + i % 2}, headers=AUTH)
    of_site = [e for e in events(site, limit=1000) if e["type"] == "policy.changed"]
    assert 100 <= len(of_site) <= 200, len(of_site)
    assert EventRetention(100, 7).script_args(8 * 86_400_000, per_bucket=False)[1] == 86_400_000


def test_events_older_than_the_retention_age_are_trimmed(
    client: FlaskClient, redis_client: Redis
) -> None:
    stream = Keys().events(None)
    redis_client.delete(stream)
    for i in range(1, 251):  # ten days old (the default keeps seven)
        redis_client.xadd(
            stream, {"type": "policy.changed", "at": "old", "actor": "x"}, id=f"{i}-1"
        )
    client.put("/api/v1/moderation/policy", json={"link_threshold": 7}, headers=AUTH)
    left = [i for i, _ in cast(list[Any], redis_client.xrange(stream))]
    # Whole old macro nodes went (the one holding the new event may keep a few old ones).
    assert len(left) <= 101 and left[-1].split("-")[0] != "250"
