"""Each article bucket's changes append to the bucket's own event and spam-check streams
(docs/sharding-plan.md §3, §6 commit 5); the site's streams stay stream index 0, for site-wide
events and for every event issued before, so every issued event id and webhook-id stays
valid. The readers read every stream in a bounded number of requests (one pipeline a step: on
a cluster one round trip per node), whatever the number of events; cursor readers see only
settled events, consumer groups everything."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from itertools import count
from typing import Any, TypeVar, cast

import pytest
from flask.testing import FlaskClient
from redis import Redis
from redis.cluster import RedisCluster

from devtools.comments import insert_as_is
from devtools.processes import wait_until
from service import ids
from service.clock import iso_from_ms, now_ms
from service.config import Config
from service.crypto import Cipher, KeyRing
from service.delivery.worker import DeliveryWorker
from service.documents import render_public
from service.events import SETTLE_MS, event_id, stream_id_key
from service.models import HistoryEntry, StoredComment
from service.store import CommentStore, Keys
from service.store.keys import BUCKETS
from service.store.webhooks import group_name
from tests.conftest import AUTH, approve, command_calls, submit
from tests.sharded_keys import OneBucketKeys, ShardedKeys, pending_comment
from tests.test_delivery_faults import add_endpoint, fast
from tests.webhook_receiver import Answer, Receiver, running

CIPHER = Cipher(KeyRing.parse(KeyRing.generate_entry("b1")))
STREAMS = 1 + BUCKETS
T = TypeVar("T")


def in_another_bucket(article_id: str) -> str:
    return next(
        f"story-{n}" for n in count(2) if Keys.bucket(f"story-{n}") != Keys.bucket(article_id)
    )


FIRST = "story-1"
SECOND = in_another_bucket(FIRST)


def settled() -> int:
    """A cursor reader's clock a settle time from now: what was just written is in."""
    return now_ms() + SETTLE_MS


@pytest.fixture
def workers() -> Iterator[list[tuple[DeliveryWorker, threading.Thread]]]:
    started: list[tuple[DeliveryWorker, threading.Thread]] = []
    yield started
    for worker, _ in started:
        worker.stop.set()
    for _, thread in started:  # before the test's Redis client is closed
        thread.join(timeout=10)
        assert not thread.is_alive()


def start(
    store: CommentStore, config: Config, started: list[tuple[DeliveryWorker, threading.Thread]]
) -> None:
    worker = DeliveryWorker(store, config)
    thread = threading.Thread(target=worker.run, daemon=True)
    started.append((worker, thread))
    thread.start()


@pytest.mark.usefixtures("events_settled")
def test_two_articles_of_two_buckets_append_to_two_streams_both_listed_and_delivered(
    client: FlaskClient,
    config: Config,
    redis_client: Redis,
    workers: list[tuple[DeliveryWorker, threading.Thread]],
) -> None:
    assert config.encryption_keys is not None
    store = CommentStore(redis_client, Keys(config.key_prefix), Cipher(config.encryption_keys))
    keys = store.keys
    with running(Receiver()) as receiver:
        add_endpoint(store, receiver)
        made = {}
        for article in (FIRST, SECOND):
            made[article] = submit(client, article=article, email=f"{article}@example.org")
            assert approve(client, made[article].get_json()["id"]).status_code == 200
        for article, other in ((FIRST, SECOND), (SECOND, FIRST)):
            entries = cast(list[Any], redis_client.xrange(keys.events(article)))
            assert [f["type"] for _, f in entries] == ["comment.submitted", "comment.approved"]
            assert all(article in f["comment"] and other not in f["comment"] for _, f in entries)
        assert keys.events(FIRST) != keys.events(SECOND)
        site = cast(list[Any], redis_client.xrange(keys.events(None)))
        assert {f["type"] for _, f in site} == {"policy.changed"}  # the app fixture's

        listed = client.get("/api/v1/moderation/events?limit=100", headers=AUTH).get_json()
        of_comments = [e for e in listed["events"] if "comment" in e]
        assert [e["id"] for e in listed["events"]] == sorted(
            (e["id"] for e in listed["events"]), key=stream_id_key
        )
        by_article: dict[str, list[dict[str, Any]]] = {}
        for event in of_comments:
            by_article.setdefault(event["comment"]["article_id"], []).append(event)
        for article in (FIRST, SECOND):
            shown = by_article[article]
            assert [e["type"] for e in shown] == ["comment.submitted", "comment.approved"]
            # The id names the bucket's stream: index 1 + bucket.
            assert {e["id"].partition("~")[2] for e in shown} == {str(1 + keys.bucket(article))}
            assert shown[0]["comment"]["id"] == made[article].get_json()["id"]

        start(store, fast(config), workers)
        wanted = {f"evt_{e['id']}" for e in of_comments}
        assert wait_until(lambda: wanted <= set(receiver.unique_delivered()), 20)
    assert all(r.verified for r in receiver.requests)


@dataclass(frozen=True)
class OneStreamKeys(Keys):
    """The schema before the buckets had streams of their own: every event and spam check in
    the site's stream (what a store upgraded to per-bucket streams holds)."""

    def bucket_events(self, bucket: int | str) -> str:
        return self.events(None)

    def bucket_spam_checks(self, bucket: int | str) -> str:
        return self.spam_checks(None)

    def event_streams(self) -> tuple[str, ...]:
        return (self.events(None),)

    def spam_check_streams(self) -> tuple[str, ...]:
        return (self.spam_checks(None),)


def test_ids_issued_from_the_one_stream_before_stay_valid(redis_client: Redis) -> None:
    """Events issued while there was one stream keep their ids (stream index 0, no suffix):
    a cursor from one still pages on, an endpoint's group on it keeps its position and its
    pending entries (webhook-id ``evt_<entry id>`` as before), and the spam checks queued
    there are still read."""
    before = CommentStore(redis_client, OneStreamKeys(), CIPHER)
    before.ensure_groups("webhook:w1", "0-0")
    assert before.set_article_open(FIRST, is_open=False)
    assert before.set_article_open(SECOND, is_open=False)
    assert before.set_article_open(FIRST, is_open=True)
    before.enqueue_spam_work(FIRST, {"kind": "check", "id": "old"})
    issued = [e.event_id for e in before.events_after(None, 100, now_ms=settled())]
    assert len(issued) == 3 and not any("~" in i for i in issued)
    in_flight = before.read_group("webhook:w1", "w-old", pending=False, count=1, block_ms=None)
    assert [i for _, i, _ in in_flight] == issued[:1]  # read, not yet delivered

    after = CommentStore(redis_client, Keys(), CIPHER)
    assert after.set_article_open(FIRST, is_open=False)
    assert after.set_article_open(SECOND, is_open=True)
    after.enqueue_spam_work(SECOND, {"kind": "check", "id": "new"})
    listed = [e.event_id for e in after.events_after(None, 100, now_ms=settled())]
    # Merged by (ms, sequence, stream): the new ones after the issued ones but in the same ms.
    assert len(listed) == 5 and [i for i in listed if "~" not in i] == issued
    assert sorted(i.partition("~")[2] for i in listed if "~" in i) == sorted(
        str(1 + Keys.bucket(a)) for a in (FIRST, SECOND)
    )
    for cursor in issued:  # an issued cursor pages on, into the new streams
        page = after.events_after(cursor, 100, now_ms=settled())
        assert [e.event_id for e in page] == listed[listed.index(cursor) + 1 :]

    # The delivery worker's takeover on every stream: the group on stream 0 keeps its place.
    after.ensure_groups("webhook:w1", "0-0")
    assert after.claim_pending("webhook:w1", "w-new", 0) == 1
    pending = after.read_group("webhook:w1", "w-new", pending=True, count=10, block_ms=None)
    assert [(s, i) for s, i, _ in pending] == [(Keys().events(None), issued[0])]
    fresh = after.read_group("webhook:w1", "w-new", pending=False, count=10, block_ms=None)
    streams = after.keys.event_streams()
    got = [event_id(i, streams.index(s)) for s, i, _ in fresh]
    assert got == [i for i in listed if i != issued[0]]  # once each, the issued with their ids

    work = after.spam_work("s1", 10, 0, 60_000)
    assert {f["id"] for _, _, f in work} == {"old", "new"}  # index 0 is drained too
    assert {s for s, _, _ in work} == {Keys().spam_checks(None), Keys().spam_checks(SECOND)}


def test_a_cursor_reader_sees_an_event_only_once_settled(redis_client: Redis) -> None:
    store = CommentStore(redis_client, Keys(), CIPHER)
    assert store.set_article_open(FIRST, is_open=False)
    [(entry_id, _)] = cast(list[Any], redis_client.xrange(store.keys.events(FIRST)))
    at = int(entry_id.split("-")[0])
    assert store.events_after(None, 10, now_ms=at + SETTLE_MS - 1) == []
    assert [e.id for e in store.events_after(None, 10, now_ms=at + SETTLE_MS)] == [entry_id]
    # Consumer groups are not held back.
    store.ensure_groups("g", "0-0")
    read = store.read_group("g", "w", pending=False, count=10, block_ms=None)
    assert [i for _, i, _ in read] == [entry_id]


def test_an_entry_stamped_late_by_a_slower_clock_is_not_skipped(redis_client: Redis) -> None:
    """Two buckets' streams on two primaries: the second primary's clock 1.7 s behind the
    first's appends an entry after a reader passed a later one of the first. Read by cursor
    with the settle time, the reader had not passed it yet."""
    store = CommentStore(redis_client, Keys(), CIPHER)
    first, second = store.keys.events(FIRST), store.keys.events(SECOND)
    t0 = now_ms() - 60_000
    fields: dict[Any, Any] = {
        "type": "article.closed",
        "at": iso_from_ms(t0),
        "actor": "x",
        "article_id": "a",
    }
    redis_client.xadd(first, dict(fields), id=f"{t0}-0")
    redis_client.xadd(first, dict(fields), id=f"{t0 + 1000}-0")
    page = store.events_after(None, 10, now_ms=t0 + 2500)
    assert [e.id for e in page] == [f"{t0}-0"]  # the one of t0 + 1000 has not settled
    redis_client.xadd(second, dict(fields), id=f"{t0 + 800}-0")  # stamped late
    following = store.events_after(page[-1].event_id, 10, now_ms=t0 + 4000)
    assert [(e.stream, e.id) for e in following] == [
        (second, f"{t0 + 800}-0"),
        (first, f"{t0 + 1000}-0"),
    ]


# -- requests of the readers ------------------------------------------------------------------


def requests_during(store: CommentStore, action: Callable[[], T]) -> tuple[T, int, Counter[str]]:
    """What ``action`` returned, how many requests its client made (a pipeline's execution
    or one command: on a cluster a pipeline is one round trip per node, in parallel), and the
    commands Redis ran for it (INFO commandstats, every primary)."""
    client = store.redis
    made = Counter[str]()
    real_command, real_pipeline = client.execute_command, client.pipeline

    def command(*args: Any, **options: Any) -> Any:
        made["command"] += 1
        return real_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(*args: Any, **options: Any) -> Any:
        pipe = real_pipeline(*args, **options)
        real_execute = pipe.execute

        def execute(*a: Any, **k: Any) -> Any:
            made["pipeline"] += 1
            return real_execute(*a, **k)

        pipe.execute = execute  # type: ignore[method-assign]
        return pipe

    before = command_calls(cast(Redis, client))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client, "execute_command", command)
        patch.setattr(client, "pipeline", pipeline)
        result = action()
    after = command_calls(cast(Redis, client))
    sent = Counter(
        {
            name.removeprefix("cmdstat_").partition("|")[0]: after[name] - before.get(name, 0)
            for name in after
            if after[name] != before.get(name, 0) and not name.startswith("cmdstat_info")
        }
    )
    return result, made["pipeline"] + made["command"], sent


def slots(redis: Redis, keys: list[str]) -> int:
    if not isinstance(redis, RedisCluster):
        return 1
    return len({redis.keyslot(key) for key in keys})


def events_in_two_buckets(store: CommentStore, rounds: int) -> None:
    for _ in range(rounds):
        for article in (FIRST, SECOND):
            assert store.set_article_open(article, is_open=False)
            assert store.set_article_open(article, is_open=True)


@pytest.mark.parametrize("rounds", [1, 20])
def test_the_readers_requests_do_not_grow_with_the_events(redis_client: Redis, rounds: int) -> None:
    """Each reader: a pipeline a step with one command a stream (none naming several: they
    are in several slots once sharded), the same for 5 events as for 81; the event log one
    more request for the texts (one MGET a slot)."""
    store = CommentStore(redis_client, Keys(), CIPHER)
    events_in_two_buckets(store, rounds)
    submitted = comment(FIRST, 0)
    insert_as_is(store, submitted)

    found, requests, sent = requests_during(
        store, lambda: store.events_after(None, 1000, now_ms=settled())
    )
    assert len(found) == 4 * rounds + 1
    text = store.keys.event_content(FIRST, submitted.id)
    assert (requests, sent) == (
        2,
        Counter({"xrange": STREAMS, "mget": slots(redis_client, [text])}),
    )

    _, requests, sent = requests_during(store, lambda: store.ensure_groups("g", "0-0"))
    assert (requests, sent) == (1, Counter({"xgroup": STREAMS}))
    read, requests, sent = requests_during(
        store, lambda: store.read_group("g", "w1", pending=False, count=1000, block_ms=500)
    )
    assert len(read) == 4 * rounds + 1
    assert (requests, sent) == (1, Counter({"xreadgroup": STREAMS}))
    claimed, requests, sent = requests_during(store, lambda: store.claim_pending("g", "w2", 0))
    assert claimed == 4 * rounds + 1
    assert (requests, sent) == (1, Counter({"xautoclaim": STREAMS}))
    _, requests, sent = requests_during(store, lambda: store.oldest_pending_ms("g"))
    assert requests == 2
    assert sent == Counter({"xpending": STREAMS, "xinfo": STREAMS, "xrange": STREAMS})

    for n in range(rounds):
        store.enqueue_spam_work((FIRST, SECOND)[n % 2], {"kind": "check", "id": str(n)})
    work, requests, sent = requests_during(store, lambda: store.spam_work("s1", 100, 500, 60_000))
    assert len(work) == rounds
    assert (requests, sent) == (
        2,
        Counter({"xgroup": STREAMS, "xautoclaim": STREAMS, "xreadgroup": STREAMS}),
    )


def test_a_deleted_endpoint_s_groups_go_from_every_stream_in_one_request(
    redis_client: Redis, config: Config
) -> None:
    store = CommentStore(redis_client, Keys(), CIPHER)
    events_in_two_buckets(store, 1)
    endpoint = add_endpoint(store, Receiver())
    group = group_name(endpoint.id)

    def groups_left() -> list[str]:
        pipe = redis_client.pipeline(transaction=False)
        for stream in store.keys.event_streams():
            pipe.xinfo_groups(stream)
        replies = pipe.execute(raise_on_error=False)  # a stream gone: an error
        return [
            stream
            for stream, reply in zip(store.keys.event_streams(), replies, strict=True)
            if not isinstance(reply, Exception) and any(g["name"] == group for g in reply)
        ]

    assert len(groups_left()) == STREAMS
    redis_client.delete(store.keys.events(SECOND))  # a stream gone meanwhile: no error
    deleted, requests, sent = requests_during(store, lambda: store.delete_webhook(endpoint.id))
    assert deleted and groups_left() == []
    assert sent["xgroup"] == STREAMS
    assert requests <= 4  # the transaction, its confirmation, the groups' pipeline


def comment(article_id: str, n: int) -> StoredComment:
    return pending_comment(article_id, n, now_ms())


# -- with every bucket's keys in the bucket's slot (tests/sharded_keys.py) --------------------


@pytest.fixture
def no_earlier_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "_last", {})


@pytest.mark.usefixtures("no_earlier_ids")
def test_with_every_bucket_in_its_own_slot_events_are_listed_and_delivered(
    config: Config, redis_client: Redis, workers: list[tuple[DeliveryWorker, threading.Thread]]
) -> None:
    """ShardedKeys: the two buckets' streams in two slots (on the cluster pass, a
    multi-stream read or a transaction with the endpoint's keys would be refused). Listed,
    delivered, acknowledged; an endpoint that never answers 2xx gets its dead letters and its
    events acknowledged too."""
    reader = CommentStore(redis_client, ShardedKeys(), CIPHER)
    streams = [reader.keys.events(a) for a in (FIRST, SECOND)]
    assert slots(redis_client, [*streams, reader.keys.webhooks()]) == (
        3 if isinstance(redis_client, RedisCluster) else 1
    )
    used = replace(fast(config), webhook_max_attempts=1, webhook_failing_after=1000)
    with running(Receiver()) as ok, running(Receiver(behaviour=lambda *_: Answer(500))) as bad:
        good_hook, bad_hook = add_endpoint(reader, ok), add_endpoint(reader, bad)
        made = []
        for n, article in enumerate((FIRST, SECOND, FIRST, SECOND)):
            writer = CommentStore(
                redis_client, OneBucketKeys(in_bucket=Keys.bucket(article)), CIPHER
            )
            stored = comment(article, n)
            insert_as_is(writer, stored)
            entry = HistoryEntry(at=iso_from_ms(now_ms()), actor="moderator:m", to="approved")
            writer.transition(stored, "approved", entry, render_public(stored.public()), now_ms())
            made.append(stored)
        listed = reader.events_after(None, 100, now_ms=settled())
        assert len(listed) == 8 and {e.stream for e in listed} == set(streams)
        assert all(e.text is not None for e in listed)
        start(reader, used, workers)
        wanted = {f"evt_{e.event_id}" for e in listed}
        assert wait_until(lambda: wanted <= set(ok.unique_delivered()), 20)
        assert wait_until(lambda: reader.webhook_status(bad_hook.id)["dead_letters"] == 8, 20)
        for hook in (good_hook, bad_hook):
            group = group_name(hook.id)
            assert wait_until(lambda: reader.oldest_pending_ms(group) is None, 20)  # noqa: B023
    assert {str(r.json["data"]["comment"]["id"]) for r in ok.requests} == {c.id for c in made}
