"""Moderators' claims: one holder at a time (409 naming the holder), renewable, released by a
decision or by the holder, shown in the queue and hidden by ?unclaimed=true. The crowd test
has many moderators claim one comment at once on the real Redis."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from flask.testing import FlaskClient
from redis import Redis

from service.config import Config
from tests.conftest import AUTH, OTHER_TOKEN, MakeApp, submit
from tests.crowd import at_once

MODERATION = "/api/v1/moderation"
BOB = {"Authorization": f"Bearer {OTHER_TOKEN}"}


def claim(client: FlaskClient, comment_id: str, headers: dict[str, str] = AUTH) -> Any:
    return client.post(f"{MODERATION}/comments/{comment_id}/claim", headers=headers)


def queue(client: FlaskClient, query: str = "", headers: dict[str, str] = AUTH) -> Any:
    return client.get(f"{MODERATION}/queue{query}", headers=headers).get_json()["comments"]


def test_a_claim_is_granted_shown_in_the_queue_and_refused_to_another(
    client: FlaskClient,
) -> None:
    comment_id = submit(client).get_json()["id"]
    granted = claim(client, comment_id)
    assert granted.status_code == 200
    body = granted.get_json()
    assert body["comment_id"] == comment_id and body["moderator"] == "alice"
    assert body["since"] < body["until"]
    [item] = queue(client)
    assert item["claim"] == {k: body[k] for k in ("moderator", "since", "until")}
    refused = claim(client, comment_id, BOB)
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    problem = refused.get_json()
    assert problem["type"] == "/problems/claimed" and problem["holder"] == "alice"
    assert problem["claimed_since"] == body["since"] and "alice" in problem["detail"]


def test_the_holder_renews_keeping_since(client: FlaskClient, redis_client: Redis) -> None:
    comment_id = submit(client).get_json()["id"]
    first = claim(client, comment_id).get_json()
    key = next(iter(redis_client.scan_iter(match="*:claim:*")))
    redis_client.pexpire(key, 1000)
    again = claim(client, comment_id).get_json()
    assert again["since"] == first["since"] and again["until"] >= first["until"]
    assert redis_client.pttl(key) > 1000


def test_unclaimed_hides_what_others_claimed_not_ones_own(client: FlaskClient) -> None:
    ids = [submit(client, comment=f"c{i}").get_json()["id"] for i in range(3)]
    assert claim(client, ids[0]).status_code == 200
    assert claim(client, ids[1], BOB).status_code == 200
    assert [c["id"] for c in queue(client, "?unclaimed=true")] == [ids[0], ids[2]]
    assert [c["id"] for c in queue(client, "?unclaimed=true", BOB)] == [ids[1], ids[2]]
    assert [c["id"] for c in queue(client)] == ids
    bad = client.get(f"{MODERATION}/queue?unclaimed=yes", headers=AUTH)
    assert bad.status_code == 422


def test_a_decision_releases_the_claim(client: FlaskClient) -> None:
    comment_id = submit(client).get_json()["id"]
    assert claim(client, comment_id).status_code == 200
    decided = client.post(f"{MODERATION}/comments/{comment_id}/reject", json={}, headers=BOB)
    assert decided.status_code == 200  # a claim is advisory
    assert claim(client, comment_id, BOB).status_code == 200


def test_release_by_the_holder_only(client: FlaskClient) -> None:
    comment_id = submit(client).get_json()["id"]
    assert claim(client, comment_id).status_code == 200
    path = f"{MODERATION}/comments/{comment_id}/claim"
    refused = client.delete(path, headers=BOB)
    assert refused.status_code == 409 and refused.get_json()["holder"] == "alice"
    assert client.delete(path, headers=AUTH).status_code == 204
    assert client.delete(path, headers=AUTH).status_code == 204  # nothing held: fine
    assert claim(client, comment_id, BOB).status_code == 200


def test_an_unknown_comment_cannot_be_claimed(client: FlaskClient) -> None:
    assert claim(client, "0" * 26).status_code == 404
    assert claim(client, "not-an-id").status_code == 404


def test_an_expired_claim_lets_another_moderator_in(
    client: FlaskClient, redis_client: Redis
) -> None:
    comment_id = submit(client).get_json()["id"]
    assert claim(client, comment_id).status_code == 200
    for key in redis_client.scan_iter(match="*:claim:*"):
        redis_client.delete(key)  # what the TTL does when it runs out
    assert claim(client, comment_id, BOB).get_json()["moderator"] == "bob"


CROWD = 16


def test_many_moderators_claim_at_once_one_holds_it(config: Config, make_app: MakeApp) -> None:
    tokens = {f"mod{n}": f"crowd-moderator-token-{n:04d}-0123456789" for n in range(CROWD)}
    app = make_app(replace(config, moderator_tokens=tokens))
    comment_id = submit(app.test_client()).get_json()["id"]

    def work(n: int) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {tokens[f'mod{n}']}"}
        answer = claim(app.test_client(), comment_id, headers)
        body = answer.get_json()
        return answer.status_code, body.get("moderator") or body.get("holder")

    results = at_once(CROWD, work)
    assert Counter(status for status, _ in results) == Counter({200: 1, 409: CROWD - 1})
    [winner] = [who for status, who in results if status == 200]
    assert {who for _, who in results} == {winner}  # every refusal names the one holder
    headers = {"Authorization": f"Bearer {tokens[winner]}"}
    [item] = queue(app.test_client(), headers=headers)
    assert item["claim"]["moderator"] == winner
