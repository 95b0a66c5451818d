"""The store against a real Redis: atomic state changes and index consistency."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import replace
from typing import Any, cast

import pytest
from redis import Redis

from devtools.comments import insert_as_is
from service.clock import iso_from_ms, now_ms
from service.crypto import Cipher, KeyRing
from service.documents import render_public
from service.ids import new_id
from service.models import HistoryEntry, StoredComment
from service.states import STATE_RULES, STATUS_VALUES
from service.store import (
    STATUSES,
    CommentStore,
    ContentChanged,
    Keys,
    Outcome,
    check_store,
    scripts,
)
from service.store.steps import STEP_MEMO_MS, SplitSource
from tests.conftest import STEPPED

CIPHER = Cipher(KeyRing.parse(KeyRing.generate_entry("s1")))


def insert(store: CommentStore, comment: StoredComment) -> Outcome:
    return insert_as_is(store, comment)


def make_comment(article: str = "art") -> StoredComment:
    at = iso_from_ms(now_ms())
    return StoredComment(
        id=new_id(now_ms()),
        article_id=article,
        name="N",
        email="n@example.com",
        comment="text",
        status="pending",
        created_at=at,
        updated_at=at,
        email_hash="author-hash",
    )


def index_membership(redis: Redis, keys: Keys, comment: StoredComment) -> dict[str, bool]:
    found: dict[str, bool] = {}
    for status in STATUSES:
        in_bucket = redis.zscore(
            keys.status_index(status, keys.bucket(comment.article_id)), comment.id
        )
        in_global = in_bucket is not None
        in_article = (
            redis.zscore(keys.article_status_index(comment.article_id, status), comment.id)
            is not None
        )
        assert in_global == in_article, status
        found[status] = in_global
    return found


def test_insert_is_idempotent_for_a_retried_id(redis_client: Redis) -> None:
    store = CommentStore(redis_client, Keys("t"), CIPHER)
    comment = make_comment()
    assert insert(store, comment) is Outcome.STORED
    assert insert(store, comment) is Outcome.ALREADY_STORED
    stored = store.get(comment.id)
    assert stored is not None and len(stored.history) == 1
    assert (
        redis_client.zcard(Keys("t").status_index("pending", Keys.bucket(comment.article_id))) == 1
    )


@pytest.mark.slow
def test_concurrent_decisions_end_in_one_consistent_state(
    redis_url: str, redis_client: Redis
) -> None:
    keys = Keys("t")
    store = CommentStore(redis_client, keys, CIPHER)
    comments = [make_comment() for _ in range(30)]
    for comment in comments:
        insert(store, comment)

    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def moderator(n: int) -> None:
        # Each thread has its own connection, as separate gunicorn workers would.
        own = CommentStore(
            Redis.from_url(redis_url, decode_responses=True, protocol=2), keys, CIPHER
        )
        target = "approved" if n % 2 else "rejected"
        try:
            barrier.wait()
            for _ in range(3):
                for comment in comments:
                    entry = HistoryEntry(at=iso_from_ms(now_ms()), actor=f"m{n}", to=target)
                    own.transition(
                        comment, target, entry, render_public(comment.public()), now_ms()
                    )
        except BaseException as error:  # surfaced below; a thread cannot fail the test itself
            errors.append(error)
        finally:
            own.redis.close()

    threads = [threading.Thread(target=moderator, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors

    outcomes: Counter[str] = Counter()
    public = redis_client.hgetall(keys.article_public("art"))
    for comment in comments:
        stored = store.get(comment.id)
        assert stored is not None
        membership = index_membership(redis_client, keys, comment)
        # Exactly one index, and it is the one the comment's status names.
        assert [s for s, present in membership.items() if present] == [stored.status]
        assert (comment.id in public) == (stored.status == "approved")
        # The history is a chain: each change starts where the previous one ended.
        chain = [(h.from_, h.to) for h in stored.history]
        for (_, before), (after, _) in zip(chain, chain[1:], strict=False):
            assert before == after
        assert chain[-1][1] == stored.status
        outcomes[stored.status] += 1
    assert sum(outcomes.values()) == len(comments)
    approved_total = redis_client.zcard(keys.article_status_index("art", "approved"))
    assert approved_total == outcomes["approved"] == len(public)
    report = check_store(redis_client, keys)  # and every other key agrees too
    assert report.problems == [] and report.statuses == outcomes


def test_delete_clears_every_index(redis_client: Redis) -> None:
    keys = Keys("t")
    store = CommentStore(redis_client, keys, CIPHER)
    comment = make_comment()
    insert(store, comment)
    store.transition(
        comment,
        "approved",
        HistoryEntry(at="t", actor="m", to="approved"),
        render_public(comment.public()),
        now_ms(),
    )
    assert store.delete(comment) is True
    assert store.delete(comment) is False
    # Only the author's trust record stays: a keyed hash and two timestamps, no personal data;
    # and the event log, whose entries hold no text (its text key went with the comment).
    # Stepped (a cluster: service/store/steps.py) a decision's memo lives on for two minutes,
    # named by a digest and holding the commenter key's stamps only.
    left = sorted(redis_client.scan_iter("*"))
    memos = [n for n in left if n.startswith(keys.step_memo(keys.tag, ""))]
    assert len(memos) == (1 if STEPPED else 0)
    assert all(comment.id not in str(redis_client.get(n)) for n in memos)
    assert all(0 < redis_client.pttl(n) <= STEP_MEMO_MS for n in memos)
    assert [n for n in left if n not in memos] == sorted(
        [keys.author(comment.email_hash), keys.events(comment.article_id)]
    )
    log = cast(list[Any], redis_client.xrange(keys.events(comment.article_id)))
    assert [fields["type"] for _, fields in log] == [
        "comment.submitted",
        "comment.approved",
        "comment.deleted",
    ]
    allowed = {"type", "at", "actor", "comment", "status", "from", "reasons"}
    assert all(set(fields) <= allowed for _, fields in log)
    assert all(
        set(json.loads(f["comment"])) == {"id", "article_id", "parent_id", "created_at"}
        for _, f in log
    )


def decide(store: CommentStore, comment: StoredComment, target: str) -> StoredComment | None:
    entry = HistoryEntry(at=iso_from_ms(now_ms()), actor="moderator:m", to=target)
    return store.transition(comment, target, entry, render_public(comment.public()), now_ms())


def anonymised(store: CommentStore, comment: StoredComment) -> None:
    """What an erase in "anonymise" mode does to one comment and its author."""
    public = replace(comment.public(), name="Anonymous", website=None)
    assert store.anonymise(comment, "Anonymous", render_public(public))
    assert store.forget_author(comment.email_hash, [comment.id]) == []


def test_a_publication_of_content_changed_since_the_read_is_refused(
    redis_client: Redis,
) -> None:
    keys = Keys("t")
    store = CommentStore(redis_client, keys, CIPHER)
    comment = replace(make_comment(), website="https://n.example.org")
    insert(store, comment)
    seen = store.get(comment.id)
    assert seen is not None
    anonymised(store, seen)
    with pytest.raises(ContentChanged):
        decide(store, seen, "approved")
    # Nothing moved: not published, no trust record re-created for the erased author.
    assert redis_client.hlen(keys.article_public("art")) == 0
    assert not redis_client.exists(keys.author(comment.email_hash))
    now = store.get(comment.id)
    assert now is not None and (now.status, now.name, now.website) == ("pending", "Anonymous", None)
    # Read again, it is published as it now is.
    published = decide(store, now, "approved")
    assert published is not None and (published.status, published.name) == ("approved", "Anonymous")
    assert not redis_client.exists(keys.author(comment.email_hash))


def test_an_unpublished_comment_gets_back_its_stored_document_not_the_callers_read(
    redis_client: Redis,
) -> None:
    keys = Keys("t")
    store = CommentStore(redis_client, keys, CIPHER)
    comment = replace(make_comment(), website="https://n.example.org")
    insert(store, comment)
    decide(store, comment, "approved")
    seen = store.get(comment.id)
    assert seen is not None and seen.website == "https://n.example.org"
    anonymised(store, seen)
    rejected = decide(store, seen, "rejected")  # from the read before the erase
    for found in (store.get(comment.id), rejected):  # as stored, and as the reply says
        assert found is not None
        assert (found.status, found.name, found.website, found.email) == (
            "rejected",
            "Anonymous",
            None,
            "",
        )
    assert not redis_client.exists(keys.author(comment.email_hash))


def test_the_scripts_take_what_each_status_implies_from_the_state_rules() -> None:
    lua = {
        name: text
        for name, text in vars(scripts).items()
        if name.isupper() and isinstance(text, str)
    }
    # A split script's assemblies (service/store/steps.py).
    for name, source in vars(scripts).items():
        if isinstance(source, SplitSource):
            lua[name] = source.combined
            lua.update({f"{name} step {n}": step for n, step in enumerate(source.steps, 1)})
    assert "TRANSITION_COMMENT" in lua and "INSERT_COMMENT" in lua
    words = {*STATUS_VALUES, *(r.author_stamp for r in STATE_RULES.values() if r.author_stamp)}
    spelled = {
        (name, word)
        for name, text in lua.items()
        for word in words
        if f"'{word}'" in text or f'"{word}"' in text
    }
    assert not spelled


def test_the_scripts_bucket_of_an_article_is_the_one_python_gives(redis_client: Redis) -> None:
    """The insert builds an earlier campaign member's index from its record's article: its
    CRC-32 in Lua must give keys.article_bucket's bucket, for any article id."""
    from service.store.keys import article_bucket
    from service.store.scripts import _BUCKET_OF

    articles = ["post", "", "é-ü-中文", "x" * 300, *(f"2026/12/{n}/a-slug" for n in range(3000))]
    lua = _BUCKET_OF + "local out = {} for i, a in ipairs(ARGV) do out[i] = bucket_of(a) end"
    got = redis_client.eval(lua + " return out", 0, *articles)
    assert got == [article_bucket(a) for a in articles]
    assert len(set(got)) == 256  # and they spread over every bucket
