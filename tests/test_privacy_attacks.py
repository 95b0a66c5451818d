"""The outside attack of issue 11, replayed: what a stranger can learn about an email address
from the public submission route, whether an email alone earns auto-approval, and whether
policy terms put plaintext addresses at rest.

Each test plays the attacker against a victim who used the service normally; "from" is the
client address (REMOTE_ADDR) each side posts from.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis

from tests.conftest import AUTH, RELAXED_POLICY, approve
from tests.test_privacy import every_stored_value

pytestmark = pytest.mark.usefixtures("redis_client")

VICTIM = "victim.person@example.com"
VICTIM_IP, ATTACKER_IP, OTHER_IP = "198.51.100.7", "203.0.113.66", "203.0.113.77"


def set_policy(client: FlaskClient, **settings: Any) -> dict[str, Any]:
    response = client.put(
        "/api/v1/moderation/policy", json={**RELAXED_POLICY, **settings}, headers=AUTH
    )
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def post(
    client: FlaskClient, ip: str, email: str, comment: str, article: str = "a1", **fields: Any
) -> Any:
    body = {"name": "Someone", "email": email, "comment": comment, **fields}
    return client.post(
        f"/api/v1/articles/{article}/comments", json=body, environ_base={"REMOTE_ADDR": ip}
    )


def answer(response: Any) -> tuple[int, str, tuple[str, ...]]:
    """What a submitter can tell two answers apart by: status, problem type, body shape."""
    body = response.get_json() or {}
    return response.status_code, str(body.get("type", body.get("status"))), tuple(sorted(body))


def queue_total(client: FlaskClient) -> int:
    total: int = client.get("/api/v1/moderation/queue", headers=AUTH).get_json()["total"]
    return total


# -- 1. email-confirmation oracles ---------------------------------------------------------------


def test_duplicate_guard_does_not_confirm_that_an_address_commented(client: FlaskClient) -> None:
    set_policy(client, duplicate_window_seconds=86400)
    assert post(client, VICTIM_IP, VICTIM, "I really liked this piece.").status_code == 202
    # The attacker guesses the victim's address (any case) and a wrong one, same text.
    right = post(client, ATTACKER_IP, VICTIM.upper(), "I really liked this piece.")
    wrong = post(client, OTHER_IP, "nobody.here@example.com", "I really liked this piece.")
    assert answer(right) == answer(wrong)
    assert right.status_code == 202 and right.get_json()["id"] != wrong.get_json()["id"]
    # The duplicate was not stored a second time; the wrong guess, a new comment, was.
    assert queue_total(client) == 2


def test_duplicate_guard_and_flood_together_confirm_nothing(client: FlaskClient) -> None:
    """The attack that needed no guess at the text's outcome: one priming post, then the
    guess; the duplicate guard used to answer before the flood guard (409 against 429)."""
    set_policy(client, duplicate_window_seconds=86400, flood_interval_seconds=15)
    assert post(client, VICTIM_IP, VICTIM, "Thanks for writing this.").status_code == 202
    answers = []
    for ip, guess in ((ATTACKER_IP, VICTIM), (OTHER_IP, "wrong.guess@example.com")):
        assert post(client, ip, "primer@example.org", f"priming from {ip}").status_code == 202
        answers.append(answer(post(client, ip, guess, "Thanks for writing this.")))
    assert answers[0] == answers[1]
    assert answers[0][0] == 429  # the client's own flood, whatever the address


def test_flood_guard_does_not_confirm_that_an_address_just_commented(
    client: FlaskClient,
) -> None:
    set_policy(client, flood_interval_seconds=15)
    assert post(client, VICTIM_IP, VICTIM, "Posted a moment ago.").status_code == 202
    right = post(client, ATTACKER_IP, VICTIM, "Is this address active?")
    wrong = post(client, OTHER_IP, "inactive.guess@example.com", "Is this address active?")
    assert answer(right) == answer(wrong)
    assert right.status_code == 202


def test_trust_rule_does_not_confirm_an_approved_history(client: FlaskClient) -> None:
    first = post(client, VICTIM_IP, VICTIM, "My first comment here.")
    approve(client, first.get_json()["id"])
    right = post(client, ATTACKER_IP, VICTIM, "Does this address have a history?")
    wrong = post(client, OTHER_IP, "no.history@example.com", "Does this address have a history?")
    assert answer(right) == answer(wrong)
    assert right.status_code == 202


# -- 2. trust bypass -----------------------------------------------------------------------------


def test_an_email_alone_never_publishes_at_once(client: FlaskClient) -> None:
    first = post(client, VICTIM_IP, VICTIM, "My first comment here.")
    approve(client, first.get_json()["id"])
    # The attacker knows the address, posts from the victim's own network, any name.
    forged = post(client, VICTIM_IP, VICTIM, "Buy my stuff, signed the victim", name="Victim")
    assert forged.status_code == 202 and forged.get_json()["status"] == "pending"
    page = client.get("/api/v1/articles/a1/comments").get_json()
    assert [c["comment"] for c in page["comments"]] == ["My first comment here."]


def test_after_these_flows_no_plaintext_email_or_ip_is_stored(
    client: FlaskClient, redis_client: Redis
) -> None:
    set_policy(client, duplicate_window_seconds=86400, flood_interval_seconds=15)
    first = post(client, VICTIM_IP, VICTIM, "Stored once.")
    approve(client, first.get_json()["id"])
    key = first.get_json()["commenter_key"]
    post(client, ATTACKER_IP, VICTIM, "Stored once.")  # a duplicate, dropped
    post(client, ATTACKER_IP, VICTIM, "Flooding.")  # the attacker's own flood
    post(client, OTHER_IP, VICTIM, "With the key.", commenter_key=key)
    dump = every_stored_value(redis_client).lower()
    assert VICTIM not in dump and "victim.person" not in dump
    for ip in (VICTIM_IP, ATTACKER_IP, OTHER_IP):
        assert ip not in dump
    assert key.split(".")[1] not in every_stored_value(redis_client)
