"""Decisions and reads racing other changes to the same comment, against a real Redis.

The erase tests interleave deterministically: the erase runs (over the API, in a thread of its
own) right after the decision has read the comment and before its script runs. The crowd tests
are bounded in threads, decisions and time.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from redis.cluster import RedisCluster

from service.api.context import EXTENSION_KEY
from service.models import StoredComment
from service.store import CommentStore, check_store
from tests.conftest import AUTH, approve, submit

EMAIL = "erin@example.com"
REAL = {
    "name": "Erin Real",
    "email": EMAIL,
    "website": "https://erin.example.org",
    "comment": "Something worth publishing.",
}
MODERATION = "/api/v1/moderation/comments"


def store_of(app: Flask) -> CommentStore:
    store: CommentStore = app.extensions[EXTENSION_KEY].store
    return store


@pytest.fixture(autouse=True, params=["as-topology", "stepped"])
def assembly(request: pytest.FixtureRequest, app: Flask) -> str:
    """Every race on the topology's own assembly of the split changes (combined on a single
    server, stepped on a cluster) and on the stepped one (service/store/steps.py): the
    comment's status, indexes and publication stay atomic in the bucket step."""
    if request.param == "stepped":
        store_of(app).stepped = True
    return str(request.param)


def in_thread(action: Callable[[], Any]) -> None:
    """Run ``action`` to completion on another thread: a separate request, as another
    moderator's would be, while this thread is inside its own request."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as error:  # surfaced below
            failures.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive() and not failures, failures


def after_first_read(
    app: Flask, monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], Any]
) -> list[str]:
    """Make ``meanwhile`` happen between the next read of one comment and what follows it."""
    store = store_of(app)
    real_get = store.get
    fired: list[str] = []

    def get(comment_id: str) -> StoredComment | None:
        found = real_get(comment_id)
        if not fired:
            fired.append(comment_id)
            in_thread(meanwhile)
        return found

    monkeypatch.setattr(store, "get", get)
    return fired


def erase(app: Flask) -> None:
    response = app.test_client().post(
        "/api/v1/moderation/data-requests/erase",
        json={"email": EMAIL, "mode": "anonymise"},
        headers=AUTH,
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["anonymised"] == 1


def author_record_exists(app: Flask) -> bool:
    svc = app.extensions[EXTENSION_KEY]
    return bool(svc.store.redis.exists(svc.store.keys.author(svc.hasher.email(EMAIL))))


def assert_erased(app: Flask, client: FlaskClient, comment_id: str, status: str) -> None:
    view = client.get(f"{MODERATION}/{comment_id}", headers=AUTH).get_json()
    assert (view["status"], view["name"], view["website"], view["email"]) == (
        status,
        "Anonymous",
        None,
        "",
    )
    page = client.get("/api/v1/articles/a1/comments").get_data(as_text=True)
    assert "Erin Real" not in page and "erin.example.org" not in page
    # The erase dropped the author's trust record; no decision may bring it back.
    assert not author_record_exists(app)


def test_a_reject_after_an_erase_restores_nothing_erased(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    comment_id = submit(client, **REAL).get_json()["id"]
    assert approve(client, comment_id).status_code == 200
    fired = after_first_read(app, monkeypatch, lambda: erase(app))
    response = client.post(f"{MODERATION}/{comment_id}/reject", json={}, headers=AUTH)
    assert fired == [comment_id]
    assert response.status_code == 200
    assert response.get_json()["name"] == "Anonymous"
    assert_erased(app, client, comment_id, "rejected")


def test_an_approve_after_an_erase_publishes_nothing_erased(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    comment_id = submit(client, **REAL).get_json()["id"]
    assert approve(client, comment_id).status_code == 200

    def erase_then_another_moderator_rejects() -> None:
        erase(app)
        other = app.test_client().post(f"{MODERATION}/{comment_id}/reject", json={}, headers=AUTH)
        assert other.status_code == 200 and other.get_json()["status"] == "rejected"

    # This moderator read the comment while it was published under its author's name; it is
    # erased and rejected before the approval lands.
    fired = after_first_read(app, monkeypatch, erase_then_another_moderator_rejects)
    response = client.post(f"{MODERATION}/{comment_id}/approve", json={}, headers=AUTH)
    assert fired == [comment_id]
    assert response.status_code == 200
    assert (response.get_json()["status"], response.get_json()["name"]) == ("approved", "Anonymous")
    assert_erased(app, client, comment_id, "approved")
    published = client.get("/api/v1/articles/a1/comments").get_json()["comments"]
    assert [(c["id"], c["name"], c["website"]) for c in published] == [
        (comment_id, "Anonymous", None)
    ]


def test_a_read_is_one_version_of_the_comment(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A comment anonymised while it is being read is seen before or after, never half."""
    comment_id = submit(client, **REAL).get_json()["id"]
    assert approve(client, comment_id).status_code == 200
    store = store_of(app)
    # What the store reads records with: one MGET, or on a cluster one per slot (client.mget).
    name = "mget_nonatomic" if isinstance(store.redis, RedisCluster) else "mget"
    real_mget = getattr(store.redis, name)
    fired: list[bool] = []

    def mget(*args: Any, **kwargs: Any) -> Any:
        found = real_mget(*args, **kwargs)
        if not fired:
            fired.append(True)
            in_thread(lambda: erase(app))
        return found

    monkeypatch.setattr(store.redis, name, mget)
    seen = store.get(comment_id)
    assert fired and seen is not None
    assert (seen.name, seen.email, seen.website) in [
        ("Erin Real", EMAIL, REAL["website"]),
        ("Anonymous", "", None),
    ]


THREADS, DECISIONS_EACH, TIME_LIMIT = 16, 25, 60.0


def history_chain_problems(view: dict[str, Any]) -> list[str]:
    history = view["history"]
    problems = [
        f"{a['to']} then from {b['from']}"
        for a, b in zip(history, history[1:], strict=False)
        if a["to"] != b["from"]
    ]
    if history[-1]["to"] != view["status"]:
        problems.append(f"status {view['status']} but history ends in {history[-1]['to']}")
    return problems


def crowd(workers: int, work: Callable[[int, FlaskClient], None], app: Flask) -> None:
    barrier = threading.Barrier(workers)
    failures: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            work(n, app.test_client())
        except BaseException as error:  # surfaced below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + TIME_LIMIT
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "the crowd did not finish in time"
    assert not failures, failures[:3]


def test_many_moderators_deciding_one_comment_all_get_their_decision(
    app: Flask, client: FlaskClient, redis_client: Redis
) -> None:
    comment_id = submit(client, **REAL).get_json()["id"]
    answers: list[tuple[str, int, dict[str, Any] | None]] = []
    lock = threading.Lock()

    def moderator(n: int, own: FlaskClient) -> None:
        rng = random.Random(n)
        for _ in range(DECISIONS_EACH):
            decision = rng.choice(["approve", "reject", "spam"])
            response = own.post(f"{MODERATION}/{comment_id}/{decision}", json={}, headers=AUTH)
            with lock:
                answers.append((decision, response.status_code, response.get_json()))

    crowd(THREADS, moderator, app)
    statuses = Counter(code for _, code, _ in answers)
    assert statuses == Counter({200: THREADS * DECISIONS_EACH}), statuses
    target = {"approve": "approved", "reject": "rejected", "spam": "spam"}
    for decision, _, view in answers:
        assert view is not None
        # Each answer is the comment as this decision left it, read in one piece.
        assert view["status"] == target[decision], (decision, view["status"])
        assert not history_chain_problems(view)
    final = client.get(f"{MODERATION}/{comment_id}", headers=AUTH).get_json()
    assert not history_chain_problems(final)
    published = client.get("/api/v1/articles/a1/comments").get_json()["comments"]
    assert [c["id"] for c in published] == ([comment_id] if final["status"] == "approved" else [])
    # Every decision's later steps ran (stepped, each removed its outbox entry): nothing owed,
    # the author stamped as the final status implies.
    report = check_store(redis_client, store_of(app).keys)
    assert report.consistent, report.problems
    assert not redis_client.zcard(store_of(app).keys.outbox(store_of(app).keys.bucket("a1")))


def test_readers_racing_decisions_always_see_one_whole_version(
    app: Flask, client: FlaskClient
) -> None:
    comment_id = submit(client, **REAL).get_json()["id"]
    stop = threading.Event()
    reads: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(n: int, own: FlaskClient) -> None:
        if n < 4:  # moderators flipping the comment between published and not
            for i in range(60):
                decision = "approve" if (i + n) % 2 else "reject"
                response = own.post(f"{MODERATION}/{comment_id}/{decision}", json={}, headers=AUTH)
                assert response.status_code == 200, response.status_code
            stop.set()
            return
        seen = 0  # a later read never shows an older version than an earlier one did
        for _ in iterations(stop):
            view = read_one(own, n, comment_id)
            assert not history_chain_problems(view), view
            assert view["name"] == REAL["name"] and view["email"] == EMAIL
            assert len(view["history"]) >= seen
            seen = len(view["history"])
            with lock:
                reads[view["status"]] += 1

    crowd(10, worker, app)
    assert reads["approved"] and reads["rejected"], reads


def iterations(stop: threading.Event, limit: int = 2000) -> Iterator[int]:
    for i in range(limit):
        if stop.is_set():
            return
        yield i


def read_one(own: FlaskClient, n: int, comment_id: str) -> dict[str, Any]:
    """The comment as one moderator request shows it: alone, or in a listing by status."""
    if n % 2:
        response = own.get(f"{MODERATION}/{comment_id}", headers=AUTH)
        assert response.status_code == 200, response.status_code
        view: dict[str, Any] = response.get_json()
        return view
    for status in ("approved", "rejected"):
        listed = own.get(f"{MODERATION}?status={status}", headers=AUTH).get_json()["comments"]
        if listed:
            return dict(listed[0])
    # Between the two listings it may have moved from the second to the first: read it alone.
    return read_one(own, 1, comment_id)
