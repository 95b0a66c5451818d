"""Privacy at rest and data rights: encryption, key rotation, tokens, retention, requests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import pytest
from flask.testing import FlaskClient
from redis import Redis

from service import cli
from service.chores import purge_expired
from service.clock import now_ms
from service.config import Config
from service.crypto import Cipher, DecryptionError, KeyRing
from service.moderation.policy import DAY_MS
from service.store import CommentStore, Keys
from tests.conftest import AUTH, MakeApp, approve, submit

pytestmark = pytest.mark.usefixtures("redis_client")


def every_stored_value(redis: Redis, *, skip_streams: bool = False) -> str:
    """Every key and every value in the database, as one searchable text (without the event
    log with ``skip_streams``)."""
    parts: list[str] = []
    for key in redis.scan_iter("*"):
        if skip_streams and redis.type(key) == "stream":
            continue
        parts.append(str(key))  # the suite's clients decode replies: str(text) is the text
        kind = redis.type(key)
        if kind == "string":
            parts.append(str(redis.get(key)))
        elif kind == "hash":
            parts.extend(f"{k!s}={v!s}" for k, v in redis.hgetall(key).items())
        elif kind == "list":
            parts.extend(map(str, redis.lrange(key, 0, -1)))
        elif kind == "set":
            parts.extend(map(str, redis.smembers(key)))
        elif kind == "zset":
            parts.extend(map(str, redis.zrange(key, 0, -1)))
        elif kind == "stream":
            parts.extend(f"{i} {fields}" for i, fields in cast(list[Any], redis.xrange(key)))
        else:
            raise AssertionError(f"unexpected type {kind!s} of {key!s}")
    return "\n".join(parts)


def test_no_plaintext_email_or_ip_anywhere_in_redis(
    client: FlaskClient, redis_client: Redis
) -> None:
    emails = ["Plain.Text@example.com", "second.person@example.org"]
    for i, email in enumerate(emails):
        response = client.post(
            "/api/v1/articles/a1/comments",
            json={"name": "N", "email": email, "comment": f"comment {i}"},
            environ_base={"REMOTE_ADDR": f"198.51.100.{i + 10}"},
        )
        assert response.status_code == 202
    queue = client.get("/api/v1/moderation/queue", headers=AUTH).get_json()
    assert {c["email"] for c in queue["comments"]} == set(emails)  # moderators still see it
    approve(client, queue["comments"][0]["id"])
    dump = every_stored_value(redis_client).lower()
    for email in emails:
        assert email.lower() not in dump
        assert email.split("@")[0].lower() not in dump
    assert "198.51.100." not in dump
    assert "enc1:test1:" in dump


def test_key_rotation_old_keys_decrypt_and_reencrypt_moves_everything(
    config: Config,
    client: FlaskClient,
    redis_client: Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    make_app: MakeApp,
) -> None:
    ids = [
        submit(client, email=f"r{i}@example.com", comment=f"c{i}").get_json()["id"]
        for i in range(3)
    ]
    assert config.encryption_keys is not None
    new_entry = KeyRing.generate_entry("test2")
    rotated = KeyRing(KeyRing.parse(new_entry).keys + config.encryption_keys.keys)
    rotated_app = make_app(replace(config, encryption_keys=rotated)).test_client()
    # A new key encrypts, the old one still decrypts.
    for i, comment_id in enumerate(ids):
        view = rotated_app.get(f"/api/v1/moderation/comments/{comment_id}", headers=AUTH)
        assert view.get_json()["email"] == f"r{i}@example.com"
    newer = rotated_app.post(
        "/api/v1/articles/a1/comments",
        json={"name": "N", "email": "after@example.com", "comment": "after rotation"},
    ).get_json()["id"]
    store = CommentStore(redis_client, Keys(config.key_prefix), Cipher(rotated))
    assert store.raw_email(newer).startswith("enc1:test2:")  # type: ignore[union-attr]
    assert store.raw_email(ids[0]).startswith("enc1:test1:")  # type: ignore[union-attr]

    monkeypatch.setenv("REDIS_URL", config.resolved_redis_url)
    monkeypatch.setenv("ENCRYPTION_KEYS", rotated.serialize())
    assert cli.main(["reencrypt"]) == 0
    assert "re-encrypted 3 emails with key 'test2'" in capsys.readouterr().out
    for comment_id in [*ids, newer]:
        assert store.raw_email(comment_id).startswith("enc1:test2:")  # type: ignore[union-attr]
    # The old key can now be dropped.
    only_new = make_app(replace(config, encryption_keys=KeyRing.parse(new_entry)))
    view = only_new.test_client().get(f"/api/v1/moderation/comments/{ids[2]}", headers=AUTH)
    assert view.get_json()["email"] == "r2@example.com"


def test_ciphertexts_are_bound_to_their_key_and_purpose() -> None:
    ring = KeyRing.parse(KeyRing.generate_entry("a"))
    cipher = Cipher(ring)
    sealed = cipher.encrypt("x@example.com", "email")
    assert cipher.decrypt(sealed, "email") == "x@example.com"
    assert sealed != cipher.encrypt("x@example.com", "email")  # fresh nonce each time
    with pytest.raises(DecryptionError):
        cipher.decrypt(sealed, "name")
    with pytest.raises(DecryptionError):
        Cipher(KeyRing.parse(KeyRing.generate_entry("a"))).decrypt(sealed, "email")
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(DecryptionError):
        cipher.decrypt(tampered, "email")


def test_token_cli_creates_lists_and_revokes_hashed_tokens(
    config: Config,
    client: FlaskClient,
    redis_client: Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REDIS_URL", config.resolved_redis_url)
    monkeypatch.setenv("ENCRYPTION_KEYS", KeyRing.generate_entry("cli"))
    assert cli.main(["tokens", "create", "carol"]) == 0
    token = capsys.readouterr().out.split("moderator 'carol': ")[1].split()[0]
    assert len(token) >= 24
    carol = {"Authorization": f"Bearer {token}"}
    decided = client.post(
        f"/api/v1/moderation/comments/{submit(client).get_json()['id']}/approve", headers=carol
    )
    assert decided.status_code == 200 and decided.get_json()["decided_by"] == "carol"
    assert token not in every_stored_value(redis_client)  # only its hash is kept
    assert cli.main(["tokens", "list"]) == 0
    assert capsys.readouterr().out.split() == ["carol"]
    assert cli.main(["tokens", "revoke", "carol"]) == 0
    assert client.get("/api/v1/moderation/queue", headers=carol).status_code == 401
    assert cli.main(["tokens", "revoke", "carol"]) == 1
    # The bootstrap tokens from MODERATOR_TOKENS keep working.
    assert client.get("/api/v1/moderation/queue", headers=AUTH).status_code == 200


def test_repeated_bad_tokens_are_throttled_per_client(config: Config, client: FlaskClient) -> None:
    bad = {"Authorization": "Bearer not-the-token-not-the-token-xx"}
    attacker = {"REMOTE_ADDR": "203.0.113.66"}
    codes = [
        client.get("/api/v1/moderation/queue", headers=bad, environ_base=attacker).status_code
        for _ in range(config.auth_failure_limit + 2)
    ]
    assert codes[: config.auth_failure_limit - 1] == [401] * (config.auth_failure_limit - 1)
    assert codes[-1] == 429
    throttled = client.get("/api/v1/moderation/queue", headers=AUTH, environ_base=attacker)
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= config.auth_failure_window_seconds
    assert throttled.get_json()["type"].endswith("auth-throttled")
    # Another client (the real moderator elsewhere) is not locked out.
    assert (
        client.get(
            "/api/v1/moderation/queue", headers=AUTH, environ_base={"REMOTE_ADDR": "198.51.100.1"}
        ).status_code
        == 200
    )


def test_retention_purges_old_rejected_and_spam_but_never_pending(
    client: FlaskClient, config: Config, redis_client: Redis
) -> None:
    pending = submit(client, comment="waiting").get_json()["id"]
    rejected = submit(client, comment="no", email="r@example.com").get_json()["id"]
    spam = submit(client, comment="buy", email="s@example.com").get_json()["id"]
    approved = submit(client, comment="yes", email="a@example.com").get_json()["id"]
    client.post(f"/api/v1/moderation/comments/{rejected}/reject", headers=AUTH)
    client.post(f"/api/v1/moderation/comments/{spam}/spam", headers=AUTH)
    approve(client, approved)
    assert config.encryption_keys is not None
    store = CommentStore(redis_client, Keys(config.key_prefix), Cipher(config.encryption_keys))

    assert purge_expired(store, config.retention_days) == 0  # decided just now
    later = now_ms() + (config.retention_days + 1) * DAY_MS
    assert purge_expired(store, config.retention_days, at_ms=later) == 2
    for gone in (rejected, spam):
        assert client.get(f"/api/v1/moderation/comments/{gone}", headers=AUTH).status_code == 404
    for kept in (pending, approved):
        assert client.get(f"/api/v1/moderation/comments/{kept}", headers=AUTH).status_code == 200
    # The event log keeps the ids (their comment.deleted events) until its own retention
    # trims them, but no text: the text key of each event is gone with the comment.
    dump = every_stored_value(redis_client, skip_streams=True)
    assert rejected not in dump and spam not in dump


def test_export_and_erase_by_email(client: FlaskClient, redis_client: Redis) -> None:
    person = "Data.Subject@example.com"
    ids = [submit(client, email=person, comment=f"mine {i}").get_json()["id"] for i in range(3)]
    other = submit(client, email="bystander@example.com", comment="not theirs").get_json()["id"]
    approve(client, ids[0])
    client.post(f"/api/v1/moderation/comments/{ids[1]}/reject", headers=AUTH)

    export = client.post(
        "/api/v1/moderation/data-requests/export",
        json={"email": "data.subject@EXAMPLE.COM"},
        headers=AUTH,
    )
    assert export.status_code == 200
    body = export.get_json()
    assert sorted(c["id"] for c in body["comments"]) == sorted(ids)
    assert {c["status"] for c in body["comments"]} == {"approved", "rejected", "pending"}
    assert export.headers["Cache-Control"] == "no-store"

    erased = client.post(
        "/api/v1/moderation/data-requests/erase",
        json={"email": person, "mode": "anonymise"},
        headers=AUTH,
    )
    assert erased.get_json() == {"deleted": 2, "anonymised": 1}
    page = client.get("/api/v1/articles/a1/comments").get_json()
    assert [(c["name"], c["comment"]) for c in page["comments"]] == [("Anonymous", "mine 0")]
    kept = client.get(f"/api/v1/moderation/comments/{ids[0]}", headers=AUTH).get_json()
    assert kept["email"] == "" and kept["name"] == "Anonymous"
    for gone in ids[1:]:
        assert client.get(f"/api/v1/moderation/comments/{gone}", headers=AUTH).status_code == 404
    again = client.post(
        "/api/v1/moderation/data-requests/export", json={"email": person}, headers=AUTH
    ).get_json()
    assert again["comments"] == []
    assert client.get(f"/api/v1/moderation/comments/{other}", headers=AUTH).status_code == 200
    assert "mine 1" not in every_stored_value(redis_client)

    delete_all = client.post(
        "/api/v1/moderation/data-requests/erase",
        json={"email": "bystander@example.com", "mode": "delete"},
        headers=AUTH,
    )
    assert delete_all.get_json() == {"deleted": 1, "anonymised": 0}


@pytest.mark.parametrize("body", [{"email": "nope"}, {}, {"email": "a@example.com", "x": 1}])
def test_data_requests_validate(client: FlaskClient, body: dict[str, Any]) -> None:
    assert (
        client.post("/api/v1/moderation/data-requests/export", json=body, headers=AUTH).status_code
        == 422
    )
    assert (
        client.post(
            "/api/v1/moderation/data-requests/erase", json={**body, "mode": "shred"}, headers=AUTH
        ).status_code
        == 422
    )
    assert (
        client.post(
            "/api/v1/moderation/data-requests/export", json={"email": "a@example.com"}
        ).status_code
        == 401
    )


def test_deciding_on_an_anonymised_comment_keys_nothing_to_nobody(
    client: FlaskClient, redis_client: Redis
) -> None:
    comment_id = submit(client, email="p@example.org").get_json()["id"]
    approve(client, comment_id)
    client.post(
        "/api/v1/moderation/data-requests/erase",
        json={"email": "p@example.org", "mode": "anonymise"},
        headers=AUTH,
    )
    rejected = client.post(f"/api/v1/moderation/comments/{comment_id}/reject", headers=AUTH)
    assert rejected.status_code == 200 and rejected.get_json()["name"] == "Anonymous"
    assert not [k for k in redis_client.scan_iter("*:author:*")]
