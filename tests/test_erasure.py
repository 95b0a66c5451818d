"""An erasure racing the same author's submissions leaves no comment of theirs unlisted.

The author's comment set is what export and erasure find a person's comments by; a comment of
the email outside it would be kept forever, found by no data request. Real Redis; the race
through real HTTP handling (the app in-process) and real threads.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from devtools.comments import insert_as_is
from service.api.context import EXTENSION_KEY
from service.clock import iso_from_ms, now_ms
from service.crypto import Cipher, KeyRing
from service.data_rights import erase_author
from service.ids import new_id
from service.models import StoredComment
from service.store import CommentStore, Keys, Outcome
from tests.conftest import AUTH, submit

TRIES = 100
PERSON = "racer@example.com"
CIPHER = Cipher(KeyRing.parse(KeyRing.generate_entry("e1")))


def store_comment(store: CommentStore, email_hash: str = "author-hash") -> StoredComment:
    at = iso_from_ms(now_ms())
    comment = StoredComment(
        id=new_id(now_ms()),
        article_id="art",
        name="N",
        email="n@example.com",
        comment="text",
        status="pending",
        created_at=at,
        updated_at=at,
        email_hash=email_hash,
    )
    assert insert_as_is(store, comment) is Outcome.STORED
    return comment


class SubmissionDuringErasure(CommentStore):
    """A store on which the author's next comment is stored just after the erasure has read
    their set: the race, made to happen every time."""

    late: StoredComment | None = None

    def comments(self, ids: list[str]) -> list[StoredComment]:
        found = super().comments(ids)
        if self.late is None:
            self.late = store_comment(self)
        return found


def test_a_comment_stored_after_the_erasure_read_the_set_is_erased_too(redis_client: Redis) -> None:
    keys = Keys("t")
    store = SubmissionDuringErasure(redis_client, keys, CIPHER)
    first = store_comment(store)
    redis_client.hset(keys.author("author-hash"), "last_approved", 1)
    erased = erase_author(store, "author-hash", anonymise_published=False)
    assert store.late is not None
    assert erased.deleted == 2 and erased.anonymised == 0
    assert store.get(first.id) is None and store.get(store.late.id) is None
    assert not redis_client.exists(keys.author("author-hash"), keys.author_comments("author-hash"))


def test_the_author_is_forgotten_only_once_nothing_of_theirs_is_listed(redis_client: Redis) -> None:
    keys = Keys("t")
    store = CommentStore(redis_client, keys, CIPHER)
    redis_client.hset(keys.author("author-hash"), "last_approved", 1)
    listed = store_comment(store)
    # Still listed and stored (not seen, or seen but not erased): handed back, nothing dropped.
    assert store.forget_author("author-hash", []) == [listed.id]
    assert store.forget_author("author-hash", [listed.id]) == [listed.id]
    assert redis_client.exists(keys.author("author-hash"), keys.author_comments("author-hash"))
    # Listed but gone (a record that no longer exists): dropped, then the author with it.
    redis_client.delete(keys.comment(listed.id))
    assert store.forget_author("author-hash", [listed.id]) == []
    assert not redis_client.exists(keys.author("author-hash"), keys.author_comments("author-hash"))


def comments_with_email_hash(redis: Redis, keys: Keys, email_hash: str) -> set[str]:
    found = set()
    for key in redis.scan_iter(keys.comment("*"), count=1000):
        raw = redis.get(key)
        if raw and json.loads(raw).get("email_hash") == email_hash:
            found.add(str(key).rsplit(":", 1)[1])
    return found


def race(submitter: FlaskClient, eraser: FlaskClient, comment: str) -> tuple[Any, Any]:
    """One submission of PERSON and one erasure of PERSON, started together."""
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def submit_one() -> None:
        start.wait()
        results["submitted"] = submit(submitter, email=PERSON, comment=comment)

    def erase() -> None:
        start.wait()
        results["erased"] = eraser.post(
            "/api/v1/moderation/data-requests/erase",
            json={"email": PERSON, "mode": "delete"},
            headers=AUTH,
        )

    threads = [threading.Thread(target=submit_one), threading.Thread(target=erase)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results["submitted"], results["erased"]


def test_an_erasure_reaches_or_lists_a_comment_submitted_while_it_runs(
    app: Flask, redis_client: Redis
) -> None:
    keys = Keys("cm")
    email_hash = app.extensions[EXTENSION_KEY].hasher.email(PERSON)
    submitter, eraser = app.test_client(), app.test_client()
    failed: list[str] = []
    orphans: set[str] = set()
    for attempt in range(TRIES):
        for n in range(3):  # something to erase, so the erasure takes a moment
            assert (
                submit(submitter, email=PERSON, comment=f"earlier {attempt} {n}").status_code == 202
            )
        submitted, erased = race(submitter, eraser, f"racing {attempt}")
        assert submitted.status_code == 202 and erased.status_code == 200
        racing = submitted.get_json()["id"]

        listed = {str(i) for i in redis_client.smembers(keys.author_comments(email_hash))}
        exported = {
            c["id"]
            for c in eraser.post(
                "/api/v1/moderation/data-requests/export", json={"email": PERSON}, headers=AUTH
            ).get_json()["comments"]
        }
        # Erased with the rest, or kept and findable: never stored outside the set. (An
        # orphan of an earlier try is not counted again.)
        unlisted = comments_with_email_hash(redis_client, keys, email_hash) - listed - orphans
        if unlisted or (racing in listed and racing not in exported):
            failed.append(f"try {attempt}: unlisted {sorted(unlisted)}, listed {sorted(listed)}")
            orphans |= unlisted
        # The next try starts from nothing listed.
        assert (
            eraser.post(
                "/api/v1/moderation/data-requests/erase",
                json={"email": PERSON, "mode": "delete"},
                headers=AUTH,
            ).status_code
            == 200
        )
    assert not failed, f"{len(failed)} of {TRIES} erasures left a comment unlisted: {failed[:3]}"
