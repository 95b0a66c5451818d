"""The read paths with every article bucket in a slot of its own (tests/sharded_keys.py): on
the cluster pass the keys of one listing, feed or event page sit on different primaries, and
each path still answers what it does on a single server, in a bounded number of round trips
(docs/sharding-plan.md §3, §6 commit 1)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import pytest
from redis import Redis
from redis.cluster import RedisCluster

from devtools.comments import insert_as_is
from service import ids
from service.clock import iso_from_ms, now_ms
from service.crypto import Cipher, KeyRing
from service.documents import render_public
from service.events import SETTLE_MS, stream_id_key
from service.models import HistoryEntry, StoredComment
from service.states import Status
from service.store import CommentStore, Keys
from tests.conftest import command_calls
from tests.sharded_keys import OneBucketKeys, ShardedKeys, pending_comment

CIPHER = Cipher(KeyRing.parse(KeyRing.generate_entry("s1")))
NOW = 1_764_633_600_000
# Articles whose buckets differ (and on the default 3-primary split, whose primaries do).
ARTICLES = [f"article-{n}" for n in range(24)]

T = TypeVar("T")


@pytest.fixture(autouse=True)
def no_earlier_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "_last", {})


def writer(redis: Redis, article_id: str) -> CommentStore:
    """A store that writes this article's comments with every key in its bucket's slot."""
    return CommentStore(redis, OneBucketKeys(in_bucket=Keys.bucket(article_id)), CIPHER)


def comment(article_id: str, n: int) -> StoredComment:
    return pending_comment(article_id, n, NOW + n)


def seeded(redis: Redis, count: int = 60) -> tuple[list[StoredComment], list[StoredComment]]:
    """``count`` comments over ARTICLES, every third approved; (pending, approved)."""
    pending, approved = [], []
    for n in range(count):
        article_id = ARTICLES[n % len(ARTICLES)]
        store, made = writer(redis, article_id), comment(article_id, n)
        insert_as_is(store, made)
        if n % 3:
            pending.append(made)
            continue
        entry = HistoryEntry(at=iso_from_ms(NOW + n), actor="moderator:m", to="approved")
        store.transition(made, "approved", entry, render_public(made.public()), NOW + n)
        approved.append(made)
    return pending, approved


def reader(redis: Redis) -> CommentStore:
    return CommentStore(redis, ShardedKeys(), CIPHER)


def slots(redis: Redis, keys: list[str]) -> int:
    if not isinstance(redis, RedisCluster):
        return 1
    return len({redis.keyslot(key) for key in keys})


def calls_during(redis: Redis, action: Callable[[], T]) -> tuple[T, dict[str, int]]:
    """What ``action`` returned and the commands it sent, by name, over every primary."""
    before = command_calls(redis)
    result = action()
    after = command_calls(redis)
    sent = {
        name.removeprefix("cmdstat_"): after[name] - before.get(name, 0)
        for name in after
        if after[name] != before.get(name, 0)
    }
    sent.pop("info", None)
    return result, sent


def test_the_keys_of_one_listing_are_spread_over_slots(redis_client: Redis) -> None:
    keys = ShardedKeys()
    comment_keys = [keys.comment(comment(a, n).id) for n, a in enumerate(ARTICLES)]
    if isinstance(redis_client, RedisCluster):
        assert slots(redis_client, comment_keys) == len({Keys.bucket(a) for a in ARTICLES})
        owners = {redis_client.get_node_from_key(key).name for key in comment_keys}
        assert len(owners) > 1, "the test's keys sit on more than one primary"


def test_the_queue_across_buckets_pages_whole_with_records_and_claims(
    redis_client: Redis,
) -> None:
    pending, _ = seeded(redis_client)
    for made in pending[:5]:
        assert writer(redis_client, made.article_id).claim(made.id, "alice", NOW, 60_000)
    store = reader(redis_client)
    seen: list[str] = []
    cursor = None
    while True:
        listing = store.list_by_status(Status.PENDING, 7, cursor)
        assert listing.total == len(pending)
        seen += [c.id for c in listing.comments]
        for c in listing.comments:
            assert c.comment == next(p.comment for p in pending if p.id == c.id)
            assert c.email == next(p.email for p in pending if p.id == c.id)
        assert {i for i, claim in listing.claims.items() if claim.moderator == "alice"} == {
            p.id for p in pending[:5] if p.id in {c.id for c in listing.comments}
        }
        cursor = listing.next_cursor
        if cursor is None:
            break
    assert seen == sorted(p.id for p in pending)


def test_published_comments_across_articles_read_with_their_documents(
    redis_client: Redis,
) -> None:
    pending, approved = seeded(redis_client)
    store = reader(redis_client)
    listing = store.list_by_status(Status.APPROVED, 100, None)
    assert [c.id for c in listing.comments] == sorted(a.id for a in approved)
    assert all(c.comment and c.status == "approved" for c in listing.comments)
    mixed = [pending[0].id, approved[0].id, "01ZZZZZZZZZZZZZZZZZZZZZZZZ", approved[-1].id]
    found = store.get_many(mixed)
    assert set(found) == {pending[0].id, approved[0].id, approved[-1].id}
    assert found[approved[0].id].comment == approved[0].comment
    assert found[pending[0].id].comment == pending[0].comment


def test_the_site_feed_merges_every_bucket(redis_client: Redis) -> None:
    _, approved = seeded(redis_client)
    entries = reader(redis_client).recent_feed(10)
    newest = sorted(approved, key=lambda c: c.id, reverse=True)[:10]
    assert [render_public(c.public()) for c in newest] == entries.docs


def settled() -> int:
    """A cursor reader's clock a settle time from now: the events just written are in."""
    return now_ms() + SETTLE_MS


def test_the_event_log_reads_every_bucket_stream_with_texts(redis_client: Redis) -> None:
    pending, approved = seeded(redis_client, 30)
    store = reader(redis_client)
    events = store.events_after(None, 1000, now_ms=settled())
    # One event for each submission, one more for each approval.
    assert len(events) == len(pending) + 2 * len(approved)
    assert [e.event_id for e in events] == sorted((e.event_id for e in events), key=stream_id_key)
    assert all(e.text is not None for e in events)
    assert slots(redis_client, list({e.stream for e in events})) > 1 or not isinstance(
        redis_client, RedisCluster
    )
    page = store.events_after(events[9].event_id, 5, now_ms=settled())
    assert [e.event_id for e in page] == [e.event_id for e in events[10:15]]


def test_consumer_groups_over_every_bucket_stream(redis_client: Redis) -> None:
    pending, approved = seeded(redis_client, 30)
    store = reader(redis_client)
    expected = len(pending) + 2 * len(approved)
    store.ensure_groups("g", "0-0")
    store.ensure_groups("g", "0-0")  # an existing group keeps its position
    unread = store.oldest_pending_ms("g")
    got = store.read_group("g", "w1", pending=False, count=100, block_ms=None)
    assert len(got) == expected
    oldest = min(int(entry_id.split("-")[0]) for _, entry_id, _ in got)
    assert unread == oldest
    assert store.read_group("g", "w1", pending=True, count=100, block_ms=None) == got
    assert store.claim_pending("g", "w2", 0) == expected
    assert store.oldest_pending_ms("g") == oldest
    for stream, entry_id, _ in got:
        store.ack(stream, "g", entry_id)
    assert store.oldest_pending_ms("g") is None
    assert store.read_group("g", "w1", pending=False, count=100, block_ms=1) == []


def test_spam_work_is_read_from_every_bucket_stream(redis_client: Redis) -> None:
    store = reader(redis_client)
    for n, article_id in enumerate(ARTICLES):
        store.enqueue_spam_work(article_id, {"comment": str(n)})
    work = store.spam_work("w1", 100, 1, 60_000)
    assert sorted(int(f["comment"]) for _, _, f in work) == list(range(len(ARTICLES)))
    assert slots(redis_client, list({s for s, _, _ in work})) > 1 or not isinstance(
        redis_client, RedisCluster
    )
    assert store.spam_work("w2", 100, 1, 60_000) == []  # not idle long enough to take over
    assert len(store.spam_work("w2", 100, 1, 0)) == len(ARTICLES)  # a dead worker's
    for stream, entry_id, _ in work:
        store.spam_work_done(stream, entry_id)
    assert store.spam_work("w3", 100, 1, 0) == []


def test_round_trips_of_the_reads_across_slots(redis_client: Redis) -> None:
    """What each read sends: on a single server the same commands as with one tag (one MGET,
    one script call a step); on a cluster one MGET or script call per slot, each step one
    pipeline (one round trip per node), and the queue's second phase only for the buckets
    whose first id does not settle the page. (INFO's counts include the commands scripts
    run: ZRANGEBYLEX is each slot's call's one, plus the second phase's.)"""
    seeded(redis_client)
    store = reader(redis_client)
    store.list_by_status(Status.PENDING, 1, None)  # scripts loaded
    indexes = list(store.keys.status_indexes(Status.PENDING))
    index_slots = slots(redis_client, indexes)
    listing, sent = calls_during(
        redis_client, lambda: store.list_by_status(Status.PENDING, 10, None)
    )
    shown = [store.keys.comment(c.id) for c in listing.comments]
    if isinstance(redis_client, RedisCluster):
        assert index_slots == len(indexes)
        assert sent["evalsha"] == index_slots
        assert sent["mget"] == 2 * slots(redis_client, shown)  # records, claims
        busy = len({Keys.bucket(a) for a in ARTICLES})
        assert sent["zrangebylex"] <= index_slots + busy
    else:
        assert (sent["evalsha"], sent["mget"]) == (1, 2)
    listing, sent = calls_during(
        redis_client, lambda: store.list_by_status(Status.APPROVED, 10, None)
    )
    shown = [store.keys.comment(c.id) for c in listing.comments]
    # The page, the records (MGET), the published ones again with their documents (script).
    if isinstance(redis_client, RedisCluster):
        assert sent["evalsha"] == index_slots + slots(redis_client, shown)
        assert sent["mget"] == 2 * slots(redis_client, shown)
    else:
        assert (sent["evalsha"], sent["mget"]) == (2, 2)


def test_round_trips_of_the_site_feed_and_event_log_across_slots(redis_client: Redis) -> None:
    """The site feed: the page, one MGET a slot of its comments, one HMGET an article; the
    event log: one XRANGE a stream, one MGET a slot of the texts (each step one pipeline)."""
    seeded(redis_client, 30)
    store = reader(redis_client)
    store.recent_feed(1)  # scripts loaded
    indexes = list(store.keys.status_indexes(Status.APPROVED))
    entries, sent = calls_during(redis_client, lambda: store.recent_feed(5))
    assert len(entries.docs) == 5
    newest = sorted(
        store.keys.comment(c.id) for c in store.list_by_status(Status.APPROVED, 100, None).comments
    )[-5:]
    assert sent["evalsha"] == slots(redis_client, indexes)
    assert sent["mget"] == slots(redis_client, newest)
    assert sent["hmget"] == 5  # five comments of five different articles
    events, sent = calls_during(
        redis_client, lambda: store.events_after(None, 20, now_ms=settled())
    )
    assert sent["xrange"] == len(store.keys.event_streams())
    texts = [store.keys.event_content(*_subject(e.fields)) for e in events]
    assert sent["mget"] == slots(redis_client, texts)


def _subject(fields: dict[str, str]) -> tuple[str, str]:
    subject = json.loads(fields["comment"])
    return subject["article_id"], subject["id"]
