"""``comments-service check``: the store's consistency check, on a consistent store and on stores
broken in each way it detects (each asserting the problem line it must print)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient
from redis import Redis

from service import cli
from service.config import Config
from service.crypto import KeyRing
from service.store import Keys, check_store
from tests.conftest import AUTH, approve, submit

KEYS = Keys("cm")  # the config fixture's prefix
B = KEYS.bucket("a1")  # the bucket of the article every comment here is on
OTHER = (B + 1) % 256  # another bucket


@dataclass(frozen=True)
class Store:
    """A store with a comment in every status, one of them carrying a reason index."""

    pending: str
    approved: str
    rejected: str
    spam: str
    linked: str  # pending, flagged for its links
    author: str  # the approved comment's author's hash


def decide(client: FlaskClient, comment_id: str, decision: str) -> None:
    answer = client.post(
        f"/api/v1/moderation/comments/{comment_id}/{decision}", json={}, headers=AUTH
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)


@pytest.fixture
def store(client: FlaskClient, redis_client: Redis) -> Store:
    ids = [
        submit(client, email=f"writer{i}@example.com", comment=f"Remark {i}.").get_json()["id"]
        for i in range(3)
    ]
    approve(client, ids[1])
    decide(client, ids[2], "reject")
    spam = submit(client, email="bot@example.net", comment="Buy now.", fax="x").get_json()["id"]
    linked = submit(
        client, email="links@example.com", comment="See http://a.example and http://b.example"
    ).get_json()["id"]
    record = json.loads(str(redis_client.get(KEYS.comment(ids[1]))))
    return Store(
        pending=ids[0],
        approved=ids[1],
        rejected=ids[2],
        spam=spam,
        linked=linked,
        author=record["email_hash"],
    )


def run_check(
    config: Config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str]]:
    monkeypatch.setenv("REDIS_URL", config.resolved_redis_url)
    monkeypatch.setenv("ENCRYPTION_KEYS", KeyRing.generate_entry("check"))
    capsys.readouterr()
    code = cli.main(["check"])
    return code, capsys.readouterr().out.splitlines()


def test_a_consistent_store_passes_with_its_counts(
    store: Store,
    config: Config,
    redis_client: Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A field the checker does not know (say, a record version) is no problem.
    record = json.loads(str(redis_client.get(KEYS.comment(store.pending))))
    redis_client.set(KEYS.comment(store.pending), json.dumps({**record, "version": 7}))
    code, lines = run_check(config, monkeypatch, capsys)
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        "consistent: 5 comments (pending 2, approved 1, rejected 1, spam 1); "
    ), lines
    assert code == 0


# Each damage, and the lines the check must print for it.
DAMAGES: dict[str, tuple[Callable[[Redis, Store], object], Callable[[Store], list[str]]]] = {
    "a comment missing from an index": (
        lambda r, s: r.zrem(KEYS.article_status_index("a1", "pending"), s.pending),
        lambda s: [f"{s.pending}: status 'pending' but in article indexes []"],
    ),
    "a comment missing from its reason's index": (
        lambda r, s: r.zrem(KEYS.reason_status_index("links", "pending", B), s.linked),
        lambda s: [f"{s.linked}: status 'pending' but in reason links indexes []"],
    ),
    "an index entry without its comment": (
        lambda r, s: r.zadd(KEYS.status_index("approved", B), {"0" * 26: 0}),
        lambda s: [f"{KEYS.status_index('approved', B)}: " + "0" * 26 + " has no comment record"],
    ),
    "a comment in the wrong status index": (
        lambda r, s: (
            r.zrem(KEYS.status_index("pending", B), s.pending),
            r.zadd(KEYS.status_index("spam", B), {s.pending: 0}),
        ),
        lambda s: [
            f"{s.pending}: status 'pending' but in bucket indexes ['spam']",
            f"{KEYS.status_index('spam', B)}: {s.pending} has status 'pending'",
        ],
    ),
    "a comment in another bucket's index": (
        lambda r, s: (
            r.zrem(KEYS.status_index("pending", B), s.pending),
            r.zadd(KEYS.status_index("pending", OTHER), {s.pending: 0}),
        ),
        lambda s: [
            f"{s.pending}: status 'pending' but in bucket indexes []",
            f"{KEYS.status_index('pending', OTHER)}: {s.pending} belongs to 'a1', "
            "of another bucket",
        ],
    ),
    "a retention entry in another bucket's index": (
        lambda r, s: (
            r.zrem(KEYS.retention(B), s.spam),
            r.zadd(KEYS.retention(OTHER), {s.spam: 1}),
        ),
        lambda s: [
            f"{s.spam}: status 'spam' but not in {KEYS.retention(B)}",
            f"{KEYS.retention(OTHER)}: {s.spam} belongs to 'a1', of another bucket",
        ],
    ),
    "a comment in two status indexes": (
        lambda r, s: r.zadd(KEYS.article_status_index("a1", "rejected"), {s.spam: 0}),
        lambda s: [
            f"{s.spam}: status 'spam' but in article indexes ['rejected', 'spam']",
            f"{KEYS.article_status_index('a1', 'rejected')}: {s.spam} has status 'spam'",
        ],
    ),
    "an index entry carrying a reason the comment lacks": (
        lambda r, s: r.zadd(KEYS.reason_status_index("links", "pending", B), {s.pending: 0}),
        lambda s: [
            f"{KEYS.reason_status_index('links', 'pending', B)}: {s.pending} "
            "carries no reason 'links'"
        ],
    ),
    "a published document without its approved index entry": (
        lambda r, s: r.zrem(KEYS.article_status_index("a1", "approved"), s.approved),
        lambda s: [
            f"{KEYS.article_public('a1')}: {s.approved} is published but not in "
            f"{KEYS.article_status_index('a1', 'approved')}",
            f"{s.approved}: status 'approved' but in article indexes []",
        ],
    ),
    "an approved index entry without its published document": (
        lambda r, s: r.hdel(KEYS.article_public("a1"), s.approved),
        lambda s: [
            f"{KEYS.article_status_index('a1', 'approved')}: {s.approved} is not in "
            f"{KEYS.article_public('a1')}",
            f"{s.approved}: status 'approved' but not in {KEYS.article_public('a1')}",
        ],
    ),
    "a published document of a held comment": (
        lambda r, s: r.hset(
            KEYS.article_public("a1"), s.pending, json.dumps({"id": s.pending, "article_id": "a1"})
        ),
        lambda s: [
            f"{KEYS.article_public('a1')}: {s.pending} is published but has status 'pending'",
            f"{KEYS.article_public('a1')}: {s.pending} is published but not in "
            f"{KEYS.article_status_index('a1', 'approved')}",
            f"{s.pending}: status 'pending' but in {KEYS.article_public('a1')}",
        ],
    ),
    "a published document that is another comment's": (
        lambda r, s: r.hset(
            KEYS.article_public("a1"), s.approved, json.dumps({"id": s.pending, "article_id": "a1"})
        ),
        lambda s: [
            f"{KEYS.article_public('a1')}: {s.approved} has no readable public document of its own"
        ],
    ),
    "a retention entry for a non-purgeable comment": (
        lambda r, s: r.zadd(KEYS.retention(B), {s.approved: 1}),
        lambda s: [
            f"{KEYS.retention(B)}: {s.approved} has status 'approved', which is not purged",
            f"{s.approved}: status 'approved' but in {KEYS.retention(B)}",
        ],
    ),
    "a retention entry without its comment": (
        lambda r, s: r.zadd(KEYS.retention(B), {"1" * 26: 1}),
        lambda s: [f"{KEYS.retention(B)}: " + "1" * 26 + " has no comment record"],
    ),
    "a purgeable comment missing from retention": (
        lambda r, s: r.zrem(KEYS.retention(B), s.spam),
        lambda s: [f"{s.spam}: status 'spam' but not in {KEYS.retention(B)}"],
    ),
    "an approved comment whose author's record lacks its stamp": (
        lambda r, s: r.hdel(KEYS.author(s.author), "last_approved"),
        lambda s: [
            f"{s.approved}: status 'approved' but its author's record "
            f"{KEYS.author(s.author)} has no last_approved"
        ],
    ),
    "a comment missing from its author's comment set": (
        lambda r, s: r.srem(KEYS.author_comments(s.author), s.approved),
        lambda s: [
            f"{s.approved}: not in its author's comment set {KEYS.author_comments(s.author)}"
        ],
    ),
    "an author's comment set entry without its comment": (
        lambda r, s: r.sadd(KEYS.author_comments(s.author), "2" * 26),
        lambda s: [f"{KEYS.author_comments(s.author)}: " + "2" * 26 + " has no comment record"],
    ),
    "a held comment whose record lost its content": (
        lambda r, s: r.set(
            KEYS.comment(s.pending),
            json.dumps(
                {
                    k: v
                    for k, v in json.loads(str(r.get(KEYS.comment(s.pending)))).items()
                    if k != "content"
                }
            ),
        ),
        lambda s: [f"{s.pending}: status 'pending' but its record lacks its content"],
    ),
    "a broken history": (
        lambda r, s: r.set(
            KEYS.comment(s.pending),
            json.dumps({**json.loads(str(r.get(KEYS.comment(s.pending)))), "history": []}),
        ),
        lambda s: [f"{s.pending}: no history"],
    ),
    "an orphan key": (
        lambda r, s: r.set(KEYS.prefix + ":stray", "1"),
        lambda s: [f"{KEYS.prefix}:stray: orphan key (not part of the key schema)"],
    ),
    "an index of a status that does not exist": (
        lambda r, s: r.zadd(KEYS.status_index("archived", B), {s.pending: 0}),
        lambda s: [f"{KEYS.status_index('archived', B)}: index of an unknown status 'archived'"],
    ),
    "a key of the wrong type": (
        lambda r, s: r.hset(KEYS.comment("3" * 26), "status", "pending"),
        lambda s: [f"{KEYS.comment('3' * 26)}: a hash, the schema keeps a string here"],
    ),
    "a marker that never expires": (
        lambda r, s: r.set(KEYS.duplicate("article", "fingerprint"), "1"),
        lambda s: [f"{KEYS.duplicate('article', 'fingerprint')}: never expires (a duplicate must)"],
    ),
    "an unreadable record": (
        lambda r, s: r.set(KEYS.comment("4" * 26), "{not json"),
        lambda s: [f"{KEYS.comment('4' * 26)}: not a comment record (unreadable JSON)"],
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_each_kind_of_damage_is_reported(
    damage: str,
    store: Store,
    config: Config,
    redis_client: Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert check_store(redis_client, KEYS).consistent
    damage_store, expected = DAMAGES[damage]
    damage_store(redis_client, store)
    code, lines = run_check(config, monkeypatch, capsys)
    *problems, summary = lines
    assert sorted(problems) == sorted(expected(store))
    assert summary.startswith(f"inconsistent: {len(problems)} problem"), lines
    assert "; 5 comments (pending 2, approved 1, rejected 1, spam 1); " in summary, summary
    assert code == 1


def test_counts_and_problems_are_the_same_through_the_library(
    store: Store,
    redis_client: Redis,
) -> None:
    """What the tests use (check_store) is what the command prints."""
    report = check_store(redis_client, KEYS)
    assert report.problems == [] and report.changed == 0
    assert dict(report.statuses) == {"pending": 2, "approved": 1, "rejected": 1, "spam": 1}
    redis_client.zrem(KEYS.status_index("pending", B), store.pending)
    assert check_store(redis_client, KEYS).problems == [
        f"{store.pending}: status 'pending' but in bucket indexes []"
    ]


def test_a_store_changing_under_the_check_is_not_reported_as_damage(
    client: FlaskClient,
    redis_client: Redis,
) -> None:
    """Comments move between statuses while the check runs: each verdict is read in one atomic
    step, so the moves show as nothing (or as comments left out), never as problems."""
    ids = [
        submit(client, email=f"mover{i}@example.com", comment=f"Moving {i}.").get_json()["id"]
        for i in range(20)
    ]
    stop = threading.Event()
    errors: list[BaseException] = []

    def moderate() -> None:
        try:
            n = 0
            while not stop.is_set():
                decide(client, ids[n % len(ids)], ("approve", "reject", "spam")[n % 3])
                n += 1
        except BaseException as error:  # surfaced below
            errors.append(error)

    mover = threading.Thread(target=moderate, daemon=True)
    mover.start()
    try:
        reports = [check_store(redis_client, KEYS, batch=5) for _ in range(15)]
    finally:
        stop.set()
        mover.join(30)
    assert not errors, errors
    assert [r.problems for r in reports] == [[]] * len(reports)
    assert all(sum(r.statuses.values()) + r.changed == len(ids) for r in reports), [
        (dict(r.statuses), r.changed) for r in reports
    ]
