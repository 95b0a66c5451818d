"""Commenter keys (service/commenter_keys.py): trust a returning commenter's browser, not an
email anyone can type."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from redis import Redis

from service.api.context import EXTENSION_KEY
from service.store import Keys
from tests.conftest import AUTH, Browser, approve, submit
from tests.test_privacy import every_stored_value

pytestmark = pytest.mark.usefixtures("redis_client")


def trusted(client: FlaskClient, email: str = "ann@example.com") -> Browser:
    browser = Browser(client, email)
    first = browser.submit(comment="My first comment here.")
    assert first.status_code == 202
    approve(client, first.get_json()["id"])
    return browser


def record_of(browser: Browser, key: str | None = None) -> str:
    """The record of ``key`` (by default the browser's own), bound to the browser's email."""
    key = browser.key if key is None else key
    assert key is not None
    email_hash = browser.client.application.extensions[EXTENSION_KEY].hasher.email(browser.email)
    return Keys("cm").commenter(email_hash, key.split(".")[0])


def test_the_key_earns_trust_for_its_own_email_only(client: FlaskClient) -> None:
    ann = trusted(client)
    assert ann.submit(comment="Back again.").status_code == 201
    with_other_email = Browser(client, "someone.else@example.org")
    with_other_email.key = ann.key
    held = with_other_email.submit(comment="Ann's key, another address.")
    assert held.status_code == 202
    # The answer hands out a new record's key, not a rotation of Ann's.
    assert held.get_json()["commenter_key"].split(".")[0] != str(ann.key).split(".")[0]
    assert ann.submit(comment="Still trusted.").status_code == 201


def test_every_use_rotates_the_key_and_the_old_one_works_only_within_the_grace(
    client: FlaskClient,
    redis_client: Redis,
) -> None:
    ann = trusted(client)
    old = ann.key
    assert ann.submit(comment="One.").status_code == 201
    assert ann.key != old and str(ann.key).split(".")[0] == str(old).split(".")[0]
    # A lost answer: the widget never saw the new key and retries with the old one.
    retry = submit(client, comment="Two.", commenter_key=old)
    assert retry.status_code == 201
    ann.key = retry.get_json()["commenter_key"]
    # Once the grace is over, the replaced secret is proof of a copy: the record is revoked,
    # and the key its rightful holder has stops working too.
    redis_client.hset(record_of(ann, old), "previous_until", 0)
    replayed = submit(client, comment="Three.", commenter_key=old)
    assert replayed.status_code == 202
    assert ann.submit(comment="Four.").status_code == 202


def test_a_newcomer_posting_before_review_keeps_one_key(client: FlaskClient) -> None:
    bo = Browser(client, "bo@example.net")
    first = bo.submit(comment="A first thought.").get_json()["id"]
    assert bo.submit(comment="And a second, before anyone reviewed the first.").status_code == 202
    approve(client, first)
    assert bo.submit(comment="Now a known commenter.").status_code == 201


def test_a_rejection_ends_the_keys_trust(client: FlaskClient) -> None:
    ann = trusted(client)
    published = ann.submit(comment="Fine.")
    assert published.status_code == 201
    rejected = client.post(
        f"/api/v1/moderation/comments/{published.get_json()['id']}/reject", headers=AUTH
    )
    assert rejected.status_code == 200
    assert ann.submit(comment="After the rejection.").status_code == 202


def test_keys_are_stored_hashed_and_an_erasure_revokes_them(
    client: FlaskClient, redis_client: Redis
) -> None:
    ann = trusted(client, "erase.me@example.com")
    assert ann.submit(comment="Published.").status_code == 201
    dump = every_stored_value(redis_client)
    secret = str(ann.key).split(".")[1]
    assert secret not in dump and "erase.me" not in dump.lower()
    assert redis_client.exists(record_of(ann))
    erased = client.post(
        "/api/v1/moderation/data-requests/erase",
        headers=AUTH,
        json={"email": "erase.me@example.com", "mode": "anonymise"},
    )
    assert erased.status_code == 200
    assert not list(redis_client.scan_iter("cm:commenter:*"))
    assert not list(redis_client.scan_iter("cm:author:*"))
    assert ann.submit(comment="After the erasure.").status_code == 202


@pytest.mark.parametrize("key", ["", "not-a-key", "0" * 24 + "." + "A" * 43, "x" * 200])
def test_an_unknown_or_malformed_key_is_ignored(client: FlaskClient, key: str) -> None:
    response = submit(client, comment="With a strange key.", commenter_key=key)
    assert response.status_code == 202 and response.get_json()["commenter_key"]


def test_a_key_longer_than_any_is_refused(client: FlaskClient) -> None:
    response = submit(client, comment="With a huge key.", commenter_key="x" * 201)
    assert response.status_code == 422 and "commenter_key" in response.get_json()["errors"]


def test_a_form_without_redirect_gets_its_key_and_a_redirecting_one_uses_none(
    client: FlaskClient,
) -> None:
    ann = trusted(client)
    form = {
        "name": "Ann",
        "email": "ann@example.com",
        "comment": "From the form.",
        "commenter_key": str(ann.key),
    }
    answered = client.post("/api/v1/articles/a1/comments", data=form)
    assert answered.status_code == 201
    key = answered.get_json()["commenter_key"]
    redirected = client.post(
        "/api/v1/articles/a1/comments",
        data={
            **form,
            "comment": "Redirected.",
            "commenter_key": key,
            "redirect": "https://news.example.org/a1",
        },
    )
    assert redirected.status_code == 303
    # The redirect could not carry a new key, so the presented one was neither used (the
    # comment is held) nor rotated: it still works.
    queue = client.get("/api/v1/moderation/queue", headers=AUTH).get_json()
    assert [c["comment"] for c in queue["comments"]] == ["Redirected."]
    assert submit(client, comment="Afterwards.", commenter_key=key).status_code == 201


def test_the_emails_set_of_keys_outlives_every_key_so_an_erasure_finds_them(
    client: FlaskClient,
    redis_client: Redis,
) -> None:
    """A decision long after the submission extends the key's life; the set an erasure reads
    must be extended with it."""
    ann = Browser(client, "late.decision@example.com")
    first = ann.submit(comment="Reviewed much later.").get_json()["id"]
    index = Keys("cm").author_commenters(
        client.application.extensions[EXTENSION_KEY].hasher.email("late.decision@example.com")
    )
    redis_client.pexpire(index, 1000)  # as if the submission were long ago
    approve(client, first)
    assert redis_client.pttl(index) >= redis_client.pttl(record_of(ann)) - 1000
    client.post(
        "/api/v1/moderation/data-requests/erase",
        headers=AUTH,
        json={"email": "late.decision@example.com", "mode": "delete"},
    )
    assert not redis_client.exists(record_of(ann))


def test_a_dropped_duplicate_answers_and_rotates_like_a_stored_comment(
    client: FlaskClient,
) -> None:
    client.put(
        "/api/v1/moderation/policy",
        headers=AUTH,
        json={"duplicate_window_seconds": 86400, "flood_interval_seconds": 0},
    )
    ann = trusted(client)
    assert ann.submit(comment="Said twice.").status_code == 201
    again = ann.submit(comment="Said twice.")
    assert again.status_code == 201 and again.get_json()["status"] == "approved"
    assert ann.submit(comment="And the rotated key still works.").status_code == 201
    page = client.get("/api/v1/articles/a1/comments").get_json()
    assert [c["comment"] for c in page["comments"]] == [
        "My first comment here.",
        "Said twice.",
        "And the rotated key still works.",
    ]
