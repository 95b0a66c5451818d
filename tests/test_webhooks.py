"""Webhooks: the moderators' API, and real deliveries by the delivery worker (in a thread
here; tests/test_delivery_faults.py runs it as a process) to real HTTP receivers on loopback
that check every signature with the ``standardwebhooks`` library."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from service.clock import now_ms
from service.config import Config
from service.crypto import Cipher
from service.delivery.sender import Sender
from service.delivery.worker import DeliveryWorker, Schedule
from service.events import SETTLE_MS
from service.store import CommentStore, Keys, StoreCheck
from tests.conftest import AUTH, RELAXED_POLICY, MakeApp, approve, submit
from tests.webhook_receiver import Answer, Receiver, running

HOOKS = "/api/v1/moderation/webhooks"


@pytest.fixture
def hook_config(config: Config) -> Config:
    return replace(
        config,
        webhook_allow_private=True,
        webhook_timeout_seconds=0.5,
        webhook_retry_base_seconds=0.05,
        webhook_retry_cap_seconds=0.2,
        webhook_lease_seconds=1.0,
        webhook_max_attempts=5,
    )


@pytest.fixture
def hook_app(hook_config: Config, make_app: MakeApp, redis_client: Redis) -> Flask:
    app = make_app(hook_config)
    response = app.test_client().put("/api/v1/moderation/policy", json=RELAXED_POLICY, headers=AUTH)
    assert response.status_code == 200
    return app


@pytest.fixture
def hooks(hook_app: Flask) -> FlaskClient:
    return hook_app.test_client()


@dataclass
class RunningWorker:
    worker: DeliveryWorker
    thread: threading.Thread


@pytest.fixture
def start_worker(hook_config: Config, redis_client: Redis) -> Iterator[Any]:
    started: list[RunningWorker] = []

    def start(config: Config | None = None) -> DeliveryWorker:
        used = config or hook_config
        assert used.encryption_keys is not None
        store = CommentStore(redis_client, Keys(used.key_prefix), Cipher(used.encryption_keys))
        worker = DeliveryWorker(store, used)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        started.append(RunningWorker(worker, thread))
        return worker

    yield start
    for running_worker in started:
        running_worker.worker.stop.set()
    for running_worker in started:
        running_worker.thread.join(timeout=10)
        assert not running_worker.thread.is_alive()


def create(client: FlaskClient, url: str, **fields: Any) -> dict[str, Any]:
    response = client.post(HOOKS, json={"url": url, **fields}, headers=AUTH)
    assert response.status_code == 201, response.get_data(as_text=True)
    created: dict[str, Any] = response.get_json()
    return created


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def deliveries(client: FlaskClient, webhook_id: str) -> list[dict[str, Any]]:
    response = client.get(f"{HOOKS}/{webhook_id}/deliveries?limit=1000", headers=AUTH)
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.get_json()["deliveries"]
    return found


# -- the API -------------------------------------------------------------------------------


def test_create_shows_the_secret_once(client: FlaskClient) -> None:
    created = create(
        client, "https://cms.example.org/hooks", event_types=["comment.approved"], format="slack"
    )
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["comment.approved"] and created["enabled"] is True
    read = client.get(f"{HOOKS}/{created['id']}", headers=AUTH).get_json()
    assert "secret" not in read and read["failing"] is False and read["dead_letters"] == 0
    listed = client.get(HOOKS, headers=AUTH).get_json()["webhooks"]
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]


def test_patch_rotate_and_delete(client: FlaskClient) -> None:
    created = create(client, "https://cms.example.org/hooks")
    path = f"{HOOKS}/{created['id']}"
    patched = client.patch(path, json={"enabled": False, "event_types": []}, headers=AUTH)
    assert patched.status_code == 200 and patched.get_json()["enabled"] is False
    assert "secret" not in patched.get_json()
    rotated = client.patch(path, json={"rotate_secret": True}, headers=AUTH).get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert client.delete(path, headers=AUTH).status_code == 204
    assert client.get(path, headers=AUTH).status_code == 404
    assert client.delete(path, headers=AUTH).status_code == 404
    assert client.get(f"{HOOKS}/not-an-id", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",
        "ftp://example.org/hook",
    ],
)
def test_private_and_odd_urls_are_refused(client: FlaskClient, url: str) -> None:
    response = client.post(HOOKS, json={"url": url}, headers=AUTH)
    assert response.status_code == 422, url
    assert "url" in response.get_json()["errors"]


def test_bad_fields_are_422(client: FlaskClient) -> None:
    body: Any
    for body in (
        {"url": "https://example.org/", "event_types": ["comment.liked"]},
        {"url": "https://example.org/", "format": "xml"},
        {"url": "https://example.org/", "enabled": "yes"},
        {"url": "https://example.org/", "extra": 1},
        [],
    ):
        assert client.post(HOOKS, json=body, headers=AUTH).status_code == 422, body


# -- deliveries ------------------------------------------------------------------------------


@pytest.mark.slow
def test_signed_deliveries_verify_with_standardwebhooks(
    hooks: FlaskClient, start_worker: Any
) -> None:
    with running(Receiver()) as receiver:
        created = create(hooks, receiver.url)
        receiver.secrets.append(created["secret"])
        start_worker()
        comment = submit(hooks, name="Ann", comment="Hello there").get_json()["id"]
        approve(hooks, comment)
        wait_for(lambda: len(receiver.delivered) >= 2)
    first, second = receiver.requests[:2]
    assert first.verified and second.verified
    assert first.json["type"] == "comment.submitted" and second.json["type"] == "comment.approved"
    assert set(first.json) == {"type", "timestamp", "data"}
    data = first.json["data"]
    assert data["comment"]["id"] == comment and data["comment"]["comment"] == "Hello there"
    assert first.message_id == f"evt_{data['id']}"
    assert "@" not in first.body.decode()
    log = deliveries(hooks, created["id"])
    assert {e["result"] for e in log} == {"delivered"} and log[0]["status"] == 200


@pytest.mark.slow
def test_500_three_times_then_200_is_retried_and_logged(
    hooks: FlaskClient, start_worker: Any
) -> None:
    def flaky(_message_id: str, attempt: int) -> Answer:
        return Answer(500 if attempt <= 3 else 200)

    with running(Receiver(behaviour=flaky)) as receiver:
        created = create(hooks, receiver.url, event_types=["comment.submitted"])
        receiver.secrets.append(created["secret"])
        start_worker()
        submit(hooks)
        wait_for(lambda: receiver.delivered)
        time.sleep(0.3)  # nothing more comes
    ids = {r.message_id for r in receiver.requests}
    assert len(ids) == 1 and len(receiver.requests) == 4 and receiver.delivered == list(ids)
    assert all(r.verified for r in receiver.requests)
    timestamps = {r.headers["webhook-id"] for r in receiver.requests}
    assert timestamps == ids  # the webhook-id is stable across retries
    log = deliveries(hooks, created["id"])
    assert [(e["attempt"], e["status"], e["result"]) for e in reversed(log)] == [
        (1, 500, "failed"),
        (2, 500, "failed"),
        (3, 500, "failed"),
        (4, 200, "delivered"),
    ]
    assert all(e["duration_ms"] >= 0 and e["event_type"] == "comment.submitted" for e in log)


@pytest.mark.slow
def test_a_hanging_receiver_times_out_and_is_retried(hooks: FlaskClient, start_worker: Any) -> None:
    def hangs_once(_message_id: str, attempt: int) -> Answer:
        return Answer(200, stall_seconds=2.0 if attempt == 1 else 0.0)

    with running(Receiver(behaviour=hangs_once)) as receiver:
        created = create(hooks, receiver.url, event_types=["comment.submitted"])
        receiver.secrets.append(created["secret"])
        start_worker()
        submit(hooks)
        wait_for(lambda: receiver.delivered)
    log = list(reversed(deliveries(hooks, created["id"])))
    assert log[0]["result"] == "error" and log[0]["status"] is None
    assert 400 <= log[0]["duration_ms"] < 1500  # the 0.5 s timeout, not the 2 s stall
    assert log[-1]["result"] == "delivered" and log[-1]["attempt"] == 2


@pytest.mark.slow
def test_retry_after_is_honoured(hooks: FlaskClient, start_worker: Any) -> None:
    def busy_once(_message_id: str, attempt: int) -> Answer:
        return Answer(503, headers=(("Retry-After", "1"),)) if attempt == 1 else Answer()

    with running(Receiver(behaviour=busy_once)) as receiver:
        created = create(hooks, receiver.url, event_types=["comment.submitted"])
        receiver.secrets.append(created["secret"])
        start_worker()
        submit(hooks)
        wait_for(lambda: receiver.delivered)
    first, second = receiver.requests[:2]
    assert second.at - first.at >= 0.95  # the back-off alone would wait at most 0.05 s


@pytest.mark.slow
def test_dead_letters_mark_failing_and_replay_delivers(
    hook_config: Config, hooks: FlaskClient, start_worker: Any
) -> None:
    up = threading.Event()

    def down_until_up(_message_id: str, _attempt: int) -> Answer:
        return Answer(200 if up.is_set() else 500)

    with running(Receiver(behaviour=down_until_up)) as receiver:
        created = create(hooks, receiver.url, event_types=["comment.submitted"])
        receiver.secrets.append(created["secret"])
        start_worker(replace(hook_config, webhook_max_attempts=2, webhook_failing_after=2))
        submit(hooks, comment="first one")
        submit(hooks, comment="second one", email="b@example.com")
        path = f"{HOOKS}/{created['id']}"
        wait_for(lambda: hooks.get(path, headers=AUTH).get_json()["dead_letters"] == 2)
        assert hooks.get(path, headers=AUTH).get_json()["failing"] is True
        assert not receiver.delivered
        up.set()
        replayed = hooks.post(f"{path}/replay", headers=AUTH)
        assert replayed.status_code == 200 and replayed.get_json() == {"replayed": 2}
        wait_for(lambda: len(receiver.delivered) == 2)
        wait_for(lambda: hooks.get(path, headers=AUTH).get_json()["replaying"] == 0)
        state = hooks.get(path, headers=AUTH).get_json()
    assert state["failing"] is False and state["dead_letters"] == 0
    ids = [r.message_id for r in receiver.requests]
    assert receiver.delivered == list(dict.fromkeys(ids))  # the same ids, replayed in order
    assert any(e["replay"] for e in deliveries(hooks, created["id"]))


@pytest.mark.slow
def test_rotation_signs_with_both_secrets(hooks: FlaskClient, start_worker: Any) -> None:
    with running(Receiver()) as receiver:
        created = create(hooks, receiver.url, event_types=["comment.submitted"])
        path = f"{HOOKS}/{created['id']}"
        new = hooks.patch(path, json={"rotate_secret": True}, headers=AUTH).get_json()["secret"]
        start_worker()
        submit(hooks)
        wait_for(lambda: receiver.requests)
        request = receiver.requests[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (created["secret"], new):  # a receiver on either secret accepts it
        receiver.secrets[:] = [secret]
        assert receiver.verify(request.body, request.headers)
    receiver.secrets[:] = ["whsec_" + "A" * 43 + "="]
    assert not receiver.verify(request.body, request.headers)


@pytest.mark.slow
def test_slack_format_gets_a_chat_message(hooks: FlaskClient, start_worker: Any) -> None:
    with running(Receiver()) as receiver:
        create(hooks, receiver.url, format="slack", event_types=["comment.submitted"])
        start_worker()
        submit(hooks, name="Cleo", article="news-1")
        wait_for(lambda: receiver.delivered)
    body = receiver.requests[0].json
    assert set(body) == {"text"}
    assert "Cleo" in body["text"] and "news-1" in body["text"] and "@" not in body["text"]


@pytest.mark.slow
def test_order_per_comment_survives_retries(hooks: FlaskClient, start_worker: Any) -> None:
    def every_first_attempt_fails(_message_id: str, attempt: int) -> Answer:
        return Answer(500 if attempt == 1 else 200)

    with running(Receiver(behaviour=every_first_attempt_fails)) as receiver:
        create(hooks, receiver.url)
        start_worker()
        comment = submit(hooks).get_json()["id"]
        approve(hooks, comment)
        hooks.post(f"/api/v1/moderation/comments/{comment}/reject", headers=AUTH)
        wait_for(lambda: len(receiver.delivered) == 3)
    kinds = [
        json.loads(r.body)["type"] for r in receiver.requests if r.message_id in receiver.delivered
    ]
    assert list(dict.fromkeys(kinds)) == [
        "comment.submitted",
        "comment.approved",
        "comment.unpublished",
    ]


@pytest.mark.slow
def test_redirects_are_not_followed_and_answers_are_bounded() -> None:
    target = Receiver()

    def redirect(_message_id: str, _attempt: int) -> Answer:
        return Answer(302, headers=(("Location", target.url),))

    def huge(_message_id: str, _attempt: int) -> Answer:
        return Answer(200, body=b"x" * 5_000_000)

    sender = Sender(timeout=2.0, max_response_bytes=1024, allow_private=True)
    with running(target), running(Receiver(behaviour=redirect)) as redirecting:
        outcome = sender.post(redirecting.url, b"{}", {"webhook-id": "evt_1"})
        assert outcome.status == 302 and not outcome.ok
        assert not target.requests
    with running(Receiver(behaviour=huge)) as big:
        started = time.monotonic()
        outcome = sender.post(big.url, b"{}", {"webhook-id": "evt_2"})
        assert outcome.ok and time.monotonic() - started < 2.0
        again = sender.post(big.url, b"{}", {"webhook-id": "evt_3"})  # a fresh connection
        assert again.ok
    sender.close()


def test_names_resolving_to_private_addresses_are_refused_at_delivery() -> None:
    sender = Sender(timeout=1.0, max_response_bytes=1024, allow_private=False)
    outcome = sender.post("http://localhost:9/hook", b"{}", {})
    assert outcome.status is None and outcome.error is not None
    assert outcome.error.startswith("refused")


def test_back_off_doubles_with_jitter_and_honours_retry_after() -> None:
    import random

    schedule = Schedule(max_attempts=8, base_seconds=1.0, cap_seconds=60.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (7, 60), (8, 60)]:
        waits = [schedule.delay(attempt, None, rng) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jittered
    assert schedule.delay(1, 30.0, rng) == 30.0
    assert schedule.delay(1, 10_000.0, rng) == 3600.0


@pytest.mark.slow
def test_the_store_check_knows_every_new_key(
    hook_config: Config, hooks: FlaskClient, start_worker: Any, redis_client: Redis
) -> None:
    def fails(_message_id: str, _attempt: int) -> Answer:
        return Answer(500)

    with running(Receiver(behaviour=fails)) as receiver:
        created = create(hooks, receiver.url, event_types=["comment.submitted"])
        start_worker(replace(hook_config, webhook_max_attempts=1))
        comment = submit(hooks).get_json()["id"]
        path = f"{HOOKS}/{created['id']}"
        wait_for(lambda: hooks.get(path, headers=AUTH).get_json()["dead_letters"] == 1)
    hooks.delete(f"/api/v1/moderation/comments/{comment}", headers=AUTH)
    redis_client.rpush(Keys().notify_digest(), "[]")
    run = StoreCheck(redis_client, Keys())
    assert list(run.problems()) == []
    kinds = {
        shape.kind
        for key in redis_client.scan_iter("*")
        if (c := Keys().classify(key))
        for shape in [c[0]]
    }
    assert {"events", "webhooks", "webhook_state", "webhook_deliveries", "webhook_dead"} <= kinds


def test_the_oldest_undelivered_event_is_measured(config: Config, redis_client: Redis) -> None:
    from service.store.webhooks import group_name
    from tests.test_delivery_faults import add_endpoint, make_events

    assert config.encryption_keys is not None
    store = CommentStore(redis_client, Keys(), Cipher(config.encryption_keys))
    endpoint = add_endpoint(store, Receiver())
    group = group_name(endpoint.id)
    assert store.oldest_pending_ms(group) is None  # nothing to deliver
    make_events(store, 3)
    first = int(store.events_after(None, 1, now_ms=now_ms() + SETTLE_MS)[0].id.split("-")[0])
    assert store.oldest_pending_ms(group) == first  # not read yet
    read = store.read_group(group, "w1", pending=False, count=10, block_ms=None)
    assert len(read) == 3 and store.oldest_pending_ms(group) == first  # read, not acknowledged
    for stream, entry_id, _ in read:
        store.ack(stream, group, entry_id)
    assert store.oldest_pending_ms(group) is None
