"""Each policy outcome over the app on a real Redis: publish, hold, spam, 409, 429, 403."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from service.api.context import EXTENSION_KEY
from service.clock import now_ms
from service.config import Config
from service.moderation.policy import DAY_MS
from service.store import Keys
from tests.conftest import AUTH, RELAXED_POLICY, Browser, MakeApp, approve, submit

pytestmark = pytest.mark.usefixtures("redis_client")


def set_policy(client: FlaskClient, **settings: Any) -> dict[str, Any]:
    response = client.put(
        "/api/v1/moderation/policy", json={**RELAXED_POLICY, **settings}, headers=AUTH
    )
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def from_ip(client: FlaskClient, ip: str, article: str = "a1", **fields: Any) -> Any:
    body = {"name": "Ann", "email": "ann@example.com", "comment": "Hello there."}
    body.update(fields)
    return client.post(
        f"/api/v1/articles/{article}/comments", json=body, environ_base={"REMOTE_ADDR": ip}
    )


def make_trusted(client: FlaskClient, email: str = "ann@example.com") -> Browser:
    """A commenter whose first comment a moderator approved: their browser holds the key."""
    browser = Browser(client, email)
    first = browser.submit(comment="My first comment here.")
    assert first.status_code == 202
    approve(client, first.get_json()["id"])
    return browser


def test_trusted_commenter_is_published_at_once(client: FlaskClient) -> None:
    ann = make_trusted(client)
    response = ann.submit(comment="Back again with another thought.")
    assert response.status_code == 201
    assert response.get_json()["status"] == "approved"
    page = client.get("/api/v1/articles/a1/comments").get_json()
    assert [c["comment"] for c in page["comments"]][-1] == "Back again with another thought."
    stored = client.get(
        f"/api/v1/moderation/comments/{response.get_json()['id']}", headers=AUTH
    ).get_json()
    assert stored["reasons"] == []
    assert stored["history"][0]["actor"] == "policy" and stored["history"][0]["to"] == "approved"


@pytest.mark.parametrize(
    ("approved_days_ago", "negative_days_ago", "expected"),
    [
        (89, None, 201),
        (91, None, 202),
        (10, 5, 202),
        (10, 20, 202),
        (10, 95, 201),
        (None, None, 202),
    ],
)
def test_standing_is_read_from_the_record_at_write_time(
    client: FlaskClient,
    redis_client: Redis,
    approved_days_ago: int | None,
    negative_days_ago: int | None,
    expected: int,
) -> None:
    """The insert script decides trust from the stored record of the commenter key, as
    policy.is_trusted does: an approval within trusted_days (90) and no rejection or spam
    within them either."""
    dana = Browser(client, "dana@example.com")
    assert dana.submit(comment="A first comment, never decided.").status_code == 202
    assert dana.key is not None
    email_hash = client.application.extensions[EXTENSION_KEY].hasher.email(dana.email)
    record = Keys("cm").commenter(email_hash, dana.key.split(".")[0])
    now = now_ms()
    for field, days in (("last_approved", approved_days_ago), ("last_negative", negative_days_ago)):
        if days is not None:
            redis_client.hset(record, field, now - days * DAY_MS)
    answer = dana.submit(email="Dana@Example.com", comment="Judged by my record.")
    assert answer.status_code == expected
    assert answer.get_json()["status"] == ("approved" if expected == 201 else "pending")


def test_held_comment_carries_its_reasons_and_the_queue_filters_by_them(
    client: FlaskClient,
) -> None:
    ann = make_trusted(client)
    held = ann.submit(comment="What a load of shit, see http://a.example and http://b.example")
    assert held.status_code == 202 and held.get_json()["status"] == "pending"
    queue = client.get("/api/v1/moderation/queue", headers=AUTH).get_json()
    assert queue["total"] == 1
    reasons = {r["code"]: r for r in queue["comments"][0]["reasons"]}
    assert set(reasons) == {"profanity", "links"}
    assert "shit" in reasons["profanity"]["detail"]
    assert reasons["links"]["detail"] == "2 links in the comment"
    submit(client, comment="Only links: http://a.example http://b.example http://c.example")
    by_reason = client.get("/api/v1/moderation/queue?reason=profanity", headers=AUTH).get_json()
    assert [c["id"] for c in by_reason["comments"]] == [held.get_json()["id"]]
    assert by_reason["total"] == 1
    links = client.get("/api/v1/moderation/queue?reason=links", headers=AUTH).get_json()
    assert links["total"] == 2
    # Deciding removes it from the reason's queue too.
    approve(client, held.get_json()["id"])
    after = client.get("/api/v1/moderation/queue?reason=profanity", headers=AUTH).get_json()
    assert after["total"] == 0 and after["comments"] == []
    assert (
        client.get("/api/v1/moderation/queue?reason=links&article_id=a1", headers=AUTH).status_code
        == 422
    )


def test_spam_is_answered_like_a_held_comment_and_listed_apart(client: FlaskClient) -> None:
    held = submit(client, comment="An honest first comment.")
    spam = submit(
        client, comment="Great article!", email="bot@example.net", fax="http://spam.example"
    )
    assert spam.status_code == held.status_code == 202
    assert set(spam.get_json()) == set(held.get_json())
    assert spam.get_json()["status"] == held.get_json()["status"] == "pending"
    assert spam.headers.get("Content-Length") is not None
    spam_id = spam.get_json()["id"]

    queue = client.get("/api/v1/moderation/queue", headers=AUTH).get_json()
    assert [c["id"] for c in queue["comments"]] == [held.get_json()["id"]]
    listed = client.get("/api/v1/moderation/comments?status=spam", headers=AUTH).get_json()
    assert [c["id"] for c in listed["comments"]] == [spam_id]
    assert listed["comments"][0]["reasons"][0]["code"] == "honeypot"
    assert "fax" not in listed["comments"][0]

    # A false positive: the moderator approves it and it is published.
    approved = approve(client, spam_id).get_json()
    assert approved["status"] == "approved"
    assert [(h["from"], h["to"]) for h in approved["history"]] == [
        (None, "spam"),
        ("spam", "approved"),
    ]
    assert (
        client.get("/api/v1/moderation/comments?status=spam", headers=AUTH).get_json()["total"] == 0
    )
    assert client.get("/api/v1/articles/a1/comments").get_json()["total"] == 1


def test_moderator_can_mark_spam_and_it_ends_trust(client: FlaskClient) -> None:
    ann = make_trusted(client)
    published = ann.submit(comment="Now trusted.")
    assert published.status_code == 201
    marked = client.post(
        f"/api/v1/moderation/comments/{published.get_json()['id']}/spam",
        json={"note": "link farm"},
        headers=AUTH,
    ).get_json()
    assert marked["status"] == "spam" and marked["decided_by"] == "alice"
    assert ann.submit(comment="And again.").status_code == 202  # held: trust is gone


def test_listing_by_status(client: FlaskClient) -> None:
    one = submit(client, comment="one").get_json()["id"]
    two = submit(client, comment="two", email="b@example.org").get_json()["id"]
    client.post(f"/api/v1/moderation/comments/{two}/reject", headers=AUTH)
    rejected = client.get("/api/v1/moderation/comments?status=rejected", headers=AUTH).get_json()
    assert [c["id"] for c in rejected["comments"]] == [two]
    pending = client.get("/api/v1/moderation/comments?status=pending", headers=AUTH).get_json()
    assert [c["id"] for c in pending["comments"]] == [one]
    assert client.get("/api/v1/moderation/comments?status=nope", headers=AUTH).status_code == 422
    assert client.get("/api/v1/moderation/comments", headers=AUTH).status_code == 422


def test_duplicate_is_answered_like_a_new_comment_and_stored_once(client: FlaskClient) -> None:
    set_policy(client, duplicate_window_seconds=86400)
    first = submit(client, comment="Same words")
    assert first.status_code == 202
    again = submit(client, comment="  SAME   words ")
    assert again.status_code == 202 and set(again.get_json()) == set(first.get_json())
    assert again.get_json()["id"] != first.get_json()["id"]
    assert again.headers["Cache-Control"] == first.headers["Cache-Control"] == "no-store"
    assert client.get("/api/v1/moderation/queue", headers=AUTH).get_json()["total"] == 1
    assert (
        client.get(
            f"/api/v1/moderation/comments/{again.get_json()['id']}", headers=AUTH
        ).status_code
        == 404
    )
    # Another article, or another email, is not a duplicate.
    assert submit(client, article="a2", comment="Same words").status_code == 202
    assert submit(client, email="other@example.com", comment="Same words").status_code == 202


def test_flood_interval_per_client_ip(client: FlaskClient) -> None:
    set_policy(client, flood_interval_seconds=15)
    assert from_ip(client, "203.0.113.1", comment="first").status_code == 202
    same_ip = from_ip(client, "203.0.113.1", email="other@example.com", comment="second")
    assert same_ip.status_code == 429
    assert 1 <= int(same_ip.headers["Retry-After"]) <= 15
    assert same_ip.get_json()["type"].endswith("comment-flood")
    # The same email from another client is that client's first comment: a per-email
    # interval would tell anyone that the address had just commented (issue 11).
    assert from_ip(client, "203.0.113.2", comment="third").status_code == 202
    assert (
        from_ip(client, "203.0.113.3", email="new@example.com", comment="fourth").status_code == 202
    )
    assert client.get("/api/v1/moderation/queue", headers=AUTH).get_json()["total"] == 3


def test_hourly_cap_per_ip(client: FlaskClient) -> None:
    set_policy(client, flood_hourly_cap=3)
    results = [
        from_ip(client, "203.0.113.9", email=f"u{i}@example.com", comment=f"c{i}") for i in range(5)
    ]
    assert [r.status_code for r in results] == [202, 202, 202, 429, 429]
    assert 1 <= int(results[3].headers["Retry-After"]) <= 3600
    assert from_ip(client, "203.0.113.10", email="x@example.com").status_code == 202


def test_forwarded_for_counts_only_with_trusted_proxies(
    config: Config, client: FlaskClient, make_app: MakeApp
) -> None:
    set_policy(client, flood_interval_seconds=15)
    spoofed = {"X-Forwarded-For": "192.0.2.99"}
    body = {"name": "A", "email": "a@example.com", "comment": "one"}
    assert (
        client.post("/api/v1/articles/a1/comments", json=body, headers=spoofed).status_code == 202
    )
    # Without trusted proxies a different forwarded address changes nothing: still flood.
    body2 = {**body, "email": "b@example.com", "comment": "two"}
    assert (
        client.post(
            "/api/v1/articles/a1/comments", json=body2, headers={"X-Forwarded-For": "192.0.2.100"}
        ).status_code
        == 429
    )

    behind_proxy: Flask = make_app(replace(config, trusted_proxies=1))
    proxied = behind_proxy.test_client()
    body3 = {**body, "email": "c@example.com", "comment": "three"}
    assert (
        proxied.post(
            "/api/v1/articles/a1/comments", json=body3, headers={"X-Forwarded-For": "192.0.2.101"}
        ).status_code
        == 202
    )


def test_closed_article_refuses_submissions_but_still_reads(client: FlaskClient) -> None:
    ann = make_trusted(client)
    closed = client.put("/api/v1/moderation/articles/a1", json={"open": False}, headers=AUTH)
    assert closed.status_code == 200 and closed.get_json() == {"article_id": "a1", "open": False}
    refused = ann.submit(comment="Too late")
    assert refused.status_code == 403
    assert refused.get_json()["type"].endswith("comments-closed")
    assert client.get("/api/v1/articles/a1/comments").get_json()["total"] == 1
    assert ann.submit(article="a2", comment="Elsewhere is open").status_code == 201
    client.put("/api/v1/moderation/articles/a1", json={"open": True}, headers=AUTH)
    assert ann.submit(comment="Open again").status_code == 201
    assert (
        client.put(
            "/api/v1/moderation/articles/a1", json={"open": "maybe"}, headers=AUTH
        ).status_code
        == 422
    )
    assert client.put("/api/v1/moderation/articles/a1", json={}, headers=AUTH).status_code == 422


def test_policy_get_put_validates_and_takes_effect_in_other_workers(
    client: FlaskClient, config: Config, make_app: MakeApp
) -> None:
    other_worker = make_app(config).test_client()  # a second app: its own process state
    current = client.get("/api/v1/moderation/policy", headers=AUTH).get_json()
    assert current["auto_approve"] == "trusted" and current["link_threshold"] == 2
    assert (
        client.put(
            "/api/v1/moderation/policy", json={"link_threshold": 0}, headers=AUTH
        ).status_code
        == 422
    )
    assert (
        client.put(
            "/api/v1/moderation/policy", json={"profanity_action": "delete"}, headers=AUTH
        ).status_code
        == 422
    )
    assert (
        client.put("/api/v1/moderation/policy", json={"unknown": 1}, headers=AUTH).status_code
        == 422
    )
    assert client.put("/api/v1/moderation/policy", json=["x"], headers=AUTH).status_code == 422
    assert client.get("/api/v1/moderation/policy").status_code == 401

    assert (
        other_worker.post(
            "/api/v1/articles/a1/comments",
            json={"name": "N", "email": "n@example.com", "comment": "cheap casino bonus"},
        ).status_code
        == 202
    )
    updated = set_policy(client, block_terms=["casino"], auto_approve="all")
    assert updated["block_terms"] == ["casino"] and updated["auto_approve"] == "all"
    assert other_worker.get("/api/v1/moderation/policy", headers=AUTH).get_json()[
        "block_terms"
    ] == ["casino"]
    spam = other_worker.post(
        "/api/v1/articles/a1/comments",
        json={"name": "M", "email": "m@example.com", "comment": "casino bonus again"},
    )
    assert spam.status_code == 202
    assert (
        other_worker.get("/api/v1/moderation/comments?status=spam", headers=AUTH).get_json()[
            "total"
        ]
        == 1
    )
    published = other_worker.post(
        "/api/v1/articles/a1/comments",
        json={"name": "O", "email": "o@example.com", "comment": "a new reader, published at once"},
    )
    assert published.status_code == 201
