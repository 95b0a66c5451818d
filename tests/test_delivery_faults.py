"""The delivery worker under faults, with real parts: ``comments-service deliver`` killed
with SIGKILL mid-stream and another one taking over, Redis killed and restarted under a
running worker, and 10,000 events to 3 endpoints. Nothing is lost; duplicates only as the
at-least-once contract allows (the webhook-id lets a receiver drop them)."""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from redis import Redis

from devtools.processes import GroupProcess, wait_until
from service.clock import iso_from_ms, now_ms
from service.config import Config
from service.crypto import Cipher
from service.delivery.worker import DeliveryWorker
from service.embedded import EmbeddedRedis
from service.events import SETTLE_MS, event_id, stream_id_key
from service.ids import new_id
from service.store import CommentStore, Keys, make_redis
from service.store.client import RedisClient
from service.webhooks import Endpoint, Secret, new_secret
from tests.test_e2e import Service
from tests.webhook_receiver import Answer, Receiver, running

pytestmark = pytest.mark.slow
SECRET_PURPOSE = "webhook-secret"


def fast(config: Config, redis_url: str | None = None) -> Config:
    return replace(
        config,
        redis_url=redis_url or config.redis_url,
        webhook_allow_private=True,
        webhook_timeout_seconds=0.5,
        webhook_retry_base_seconds=0.05,
        webhook_retry_cap_seconds=0.5,
        webhook_lease_seconds=1.0,
        webhook_max_attempts=50,
    )


def open_store(redis: RedisClient, config: Config) -> CommentStore:
    assert config.encryption_keys is not None
    return CommentStore(redis, Keys(config.key_prefix), Cipher(config.encryption_keys))


def add_endpoint(store: CommentStore, receiver: Receiver) -> Endpoint:
    secret = new_secret()
    receiver.secrets.append(secret)
    moment = now_ms()
    endpoint = Endpoint(
        id=new_id(moment),
        url=receiver.url,
        event_types=(),
        enabled=True,
        format="standard",
        description="",
        created_at=iso_from_ms(moment),
        created_ms=moment - 1,
        secrets=(Secret(store.cipher.encrypt(secret, SECRET_PURPOSE)),),
    )
    store.save_webhook(endpoint)
    return endpoint


def make_events(store: CommentStore, count: int, article: str = "busy") -> list[str]:
    """``count`` real events (an article closed and reopened by turns); their webhook-ids."""
    for i in range(count):
        assert store.set_article_open(article, is_open=i % 2 == 1)
    stream = store.keys.events(article)
    index = store.keys.event_streams().index(stream)  # its webhook-ids carry it
    entries = cast(list[Any], store.redis.xrange(stream))
    return [f"evt_{event_id(i, index)}" for i, f in entries if f.get("article_id") == article]


@pytest.fixture
def worker_thread() -> Iterator[list[DeliveryWorker]]:
    workers: list[DeliveryWorker] = []
    yield workers
    for worker in workers:
        worker.stop.set()


def start_in_thread(store: CommentStore, config: Config, workers: list[DeliveryWorker]) -> None:
    worker = DeliveryWorker(store, config)
    workers.append(worker)
    threading.Thread(target=worker.run, daemon=True).start()


def test_a_worker_killed_mid_stream_loses_nothing(
    config: Config, redis_client: Redis, tmp_path: Path
) -> None:
    used = fast(config)
    store = open_store(redis_client, used)
    assert used.encryption_keys is not None and used.secret_key is not None
    env = {
        **os.environ,
        "REDIS_URL": str(used.redis_url),
        "SECRET_KEY": used.secret_key.decode(),
        "ENCRYPTION_KEYS": used.encryption_keys.serialize(),
        "DATA_DIR": str(tmp_path),
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_TIMEOUT_SECONDS": "0.5",
        "WEBHOOK_LEASE_SECONDS": "1",
        "WEBHOOK_RETRY_BASE_SECONDS": "0.05",
    }

    def slowish(_message_id: str, _attempt: int) -> Answer:
        time.sleep(0.004)
        return Answer()

    with running(Receiver(behaviour=slowish)) as receiver:
        add_endpoint(store, receiver)
        expected = make_events(store, 400)
        argv = [sys.executable, "-m", "service.cli", "deliver"]
        first = GroupProcess("deliver-1", argv, env, tmp_path / "deliver-1.log")
        second = GroupProcess("deliver-2", argv, env, tmp_path / "deliver-2.log")
        try:
            first.start()
            assert wait_until(lambda: len(receiver.delivered) >= 100, 60), first.log_tail()
            first.kill()  # SIGKILL, the whole group
            at_kill = len(receiver.unique_delivered())
            assert at_kill < len(expected), "the kill came too late to test anything"
            second.start()
            assert wait_until(lambda: len(receiver.unique_delivered()) >= len(expected), 60), (
                second.log_tail()
            )
            assert second.terminate(30) == 0
        finally:
            first.kill()
            second.kill()
    unique = receiver.unique_delivered()
    assert unique == expected  # every event, first seen in the log's order
    duplicates = len(receiver.delivered) - len(unique)
    print(f"\n[deliver] killed after {at_kill} of {len(expected)}; {duplicates} redelivered")
    assert all(r.verified for r in receiver.requests)


def test_a_redis_restart_loses_nothing(
    config: Config, tmp_path: Path, worker_thread: list[DeliveryWorker]
) -> None:
    embedded = EmbeddedRedis(tmp_path / "redis")
    url = embedded.start()
    redis = make_redis(url, timeout=1.0)
    try:
        used = fast(config, url)
        store = open_store(redis, used)

        def slowish(_message_id: str, _attempt: int) -> Answer:
            time.sleep(0.003)
            return Answer()

        with running(Receiver(behaviour=slowish)) as receiver:
            add_endpoint(store, receiver)
            before = make_events(store, 300)
            start_in_thread(store, used, worker_thread)
            assert wait_until(lambda: len(receiver.delivered) >= 50, 30)
            assert embedded.process is not None
            os.kill(embedded.process.pid, signal.SIGKILL)  # mid-stream, no clean shutdown
            embedded.process.wait()
            embedded.process = None
            at_kill = len(receiver.unique_delivered())
            time.sleep(1.0)  # the worker meets a Redis that is away
            embedded.start()
            after = make_events(store, 100, article="after")
            assert wait_until(lambda: len(receiver.unique_delivered()) >= 400, 60)
        assert at_kill < 300
        unique = receiver.unique_delivered()
        # Each article's events in their order (one stream each); the two articles' streams
        # are read a batch of each at a time, so their events interleave (README: order per
        # comment and per article).
        assert [i for i in unique if i in set(before)] == before
        assert [i for i in unique if i in set(after)] == after
        assert unique[:at_kill] == before[:at_kill] and set(unique) == set(before) | set(after)
        print(f"\n[deliver] Redis killed after {at_kill} of 300 delivered; all 400 arrived")
    finally:
        for worker in worker_thread:
            worker.stop.set()
        time.sleep(1.2)
        redis.close()
        embedded.stop()


def test_ten_thousand_events_to_three_endpoints(
    config: Config, redis_client: Redis, worker_thread: list[DeliveryWorker]
) -> None:
    used = replace(fast(config), events_max_length=20_000)
    store = open_store(redis_client, used)
    receivers = [Receiver(), Receiver(), Receiver()]
    with running(receivers[0]), running(receivers[1]), running(receivers[2]):
        for receiver in receivers:
            add_endpoint(store, receiver)
        expected = make_events(store, 10_000)
        started = time.monotonic()
        start_in_thread(store, used, worker_thread)
        assert wait_until(
            lambda: all(len(r.delivered) >= len(expected) for r in receivers), 600, 0.2
        )
        seconds = time.monotonic() - started
    for receiver in receivers:
        assert receiver.unique_delivered() == expected
    total = sum(len(r.delivered) for r in receivers)
    print(
        f"\n[deliver] {total} deliveries of {len(expected)} events to 3 endpoints in "
        f"{seconds:.1f} s: {total / seconds:.0f} deliveries/s (one worker)"
    )


def test_make_run_starts_the_delivery_worker(tmp_path: Path) -> None:
    """``python -m service.serve`` (what ``make run`` runs) delivers webhooks by itself."""
    env = {k: v for k, v in os.environ.items() if k not in {"MODERATOR_TOKENS", "PORT"}}
    env["KEY_PREFIX"] = "e2e" + secrets.token_hex(4)
    env["WEBHOOK_ALLOW_PRIVATE"] = "true"
    data_dir = tmp_path / "data"
    service = Service(data_dir, env)
    with running(Receiver()) as receiver:
        service.start()
        try:
            auth = {"Authorization": f"Bearer {(data_dir / 'moderator-token').read_text().strip()}"}
            created = requests.post(
                f"{service.base}/api/v1/moderation/webhooks",
                headers=auth,
                json={"url": receiver.url, "event_types": ["comment.submitted"]},
            )
            assert created.status_code == 201, created.text
            receiver.secrets.append(created.json()["secret"])
            sent = requests.post(
                f"{service.base}/api/v1/articles/story-9/comments",
                json={"name": "Ann", "email": "ann@example.com", "comment": "Delivered?"},
            )
            assert sent.status_code == 202
            assert wait_until(lambda: bool(receiver.delivered), 20), service.log.read_text()
        finally:
            assert service.stop() == 0
    delivered = receiver.requests[0]
    assert delivered.verified and delivered.json["data"]["comment"]["id"] == sent.json()["id"]


class BucketedKeys(Keys):
    """What the shard branch will make of the event log: one stream per article bucket (two
    here) and one for site-wide events, all read through ``event_streams``."""

    def events(self, article_id: str | None = None) -> str:
        if article_id is None:
            return f"{self.tag}:events"
        return f"{self.tag}:events:{sum(article_id.encode()) % 2}"

    def event_streams(self) -> tuple[str, ...]:
        return (self.events(None), f"{self.tag}:events:0", f"{self.tag}:events:1")


def test_several_event_streams_are_read_together(
    config: Config, redis_client: Redis, worker_thread: list[DeliveryWorker]
) -> None:
    used = fast(config)
    assert used.encryption_keys is not None
    store = CommentStore(redis_client, BucketedKeys(), Cipher(used.encryption_keys))
    with running(Receiver()) as receiver:
        add_endpoint(store, receiver)
        for i in range(30):
            store.set_article_open(f"article-{i % 3}", is_open=(i // 3) % 2 == 1)
        store.save_policy_json('{"changed": 1}')
        streams = {s: cast(list[Any], redis_client.xrange(s)) for s in store.keys.event_streams()}
        assert all(streams.values()), "every stream holds events"
        every = sorted(
            (event_id(i, n) for n, entries in enumerate(streams.values()) for i, _ in entries),
            key=stream_id_key,
        )
        assert len(set(every)) == 31
        settled = now_ms() + SETTLE_MS  # a cursor reader sees them all 2 s later
        assert [e.event_id for e in store.events_after(None, 1000, now_ms=settled)] == every
        for start in range(0, 30, 4):  # pages from any event, whichever stream it is in
            page = store.events_after(every[start], 5, now_ms=settled)
            assert [e.event_id for e in page] == every[start + 1 : start + 6]
        start_in_thread(store, used, worker_thread)
        assert wait_until(lambda: len(receiver.unique_delivered()) == len(every), 20)
    per_article: dict[str, list[str]] = {}
    for request in receiver.requests:
        data = request.json["data"]
        if "article" in data:
            per_article.setdefault(data["article"]["id"], []).append(data["id"])
    for ids in per_article.values():  # each article's events arrive in their order
        assert list(dict.fromkeys(ids)) == sorted(dict.fromkeys(ids), key=stream_id_key)
