"""The outside spam services' worker against local servers that speak their protocols: the
Akismet protocol (comment-check, submit-spam, submit-ham) and the moderation hook (signed
POST, approve/hold/spam/204, timeout, bounded retries, fail-open and fail-closed). Nothing of it
runs in the request path: a submission is answered before any check."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, cast

import pytest
from flask import Flask
from flask.testing import FlaskClient

from devtools.processes import free_port
from service.api.context import EXTENSION_KEY
from service.cli import main as cli_main
from service.config import Config
from service.spam_worker import SpamWorker
from service.store import CommentStore, Keys
from tests.conftest import AUTH, RELAXED_POLICY, MakeApp, approve, submit
from tests.spamservers import AKISMET_KEY, AkismetServer, HookServer, running
from tests.test_round_trips import INSIDE_SUBMISSION, commands_during, warm_settings_cache

MODERATION = "/api/v1/moderation/comments"
SECRET = b"hook-secret-0123456789"


@pytest.fixture
def akismet() -> Iterator[AkismetServer]:
    with running(AkismetServer()) as server:
        yield server


@pytest.fixture
def hook() -> Iterator[HookServer]:
    with running(HookServer()) as server:
        yield server


def app_with(make_app: MakeApp, config: Config, **settings: Any) -> Flask:
    app = make_app(replace(config, **settings))
    put = app.test_client().put("/api/v1/moderation/policy", json=RELAXED_POLICY, headers=AUTH)
    assert put.status_code == 200
    return app


def worker(app: Flask) -> SpamWorker:
    svc = app.extensions[EXTENSION_KEY]
    return SpamWorker(svc.store, svc.config)


def store_of(app: Flask) -> CommentStore:
    store: CommentStore = app.extensions[EXTENSION_KEY].store
    return store


def view(client: FlaskClient, comment_id: str) -> Any:
    return client.get(f"{MODERATION}/{comment_id}", headers=AUTH)


def policy(client: FlaskClient, **settings: Any) -> None:
    put = client.put("/api/v1/moderation/policy", json={**RELAXED_POLICY, **settings}, headers=AUTH)
    assert put.status_code == 200


def test_a_spam_verdict_moves_a_held_comment_to_spam_after_the_answer(
    make_app: MakeApp, config: Config, akismet: AkismetServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_with(make_app, config, spam_check_url=akismet.url, spam_check_key=AKISMET_KEY)
    client = app.test_client()
    spam = submit(client, comment="Cheap casino here.")
    ham = submit(client, comment="A fair point.", email="bo@example.com")
    assert spam.status_code == ham.status_code == 202  # answered before any check
    assert akismet.calls("comment-check") == []
    assert view(client, spam.get_json()["id"]).get_json()["status"] == "pending"
    with caplog.at_level(logging.INFO, logger="service.spamcheck"):
        assert worker(app).run_once() == 2
    record = view(client, spam.get_json()["id"]).get_json()
    assert record["status"] == "spam" and record["history"][-1]["actor"] == "spam_service"
    assert "spam_service" in [r["code"] for r in record["reasons"]]
    assert view(client, ham.get_json()["id"]).get_json()["status"] == "pending"
    assert "verdict=spam" in caplog.text and "verdict=ham" in caplog.text
    # What was sent: the default fields, never the email unless the operator lists it.
    sent = akismet.calls("comment-check")[0]
    assert sent["comment_content"] == "Cheap casino here." and sent["user_ip"] == "127.0.0.1"
    assert "comment_author_email" not in sent and sent["comment_type"] == "comment"
    assert worker(app).run_once() == 0  # acknowledged: nothing left


def test_an_approved_comment_judged_spam_goes_back_to_review(
    make_app: MakeApp, config: Config, akismet: AkismetServer
) -> None:
    app = app_with(make_app, config, spam_check_url=akismet.url, spam_check_key=AKISMET_KEY)
    client = app.test_client()
    policy(client, auto_approve="all")
    posted = submit(client, comment="Casino for all.")
    assert posted.status_code == 201
    worker(app).run_once()
    assert view(client, posted.get_json()["id"]).get_json()["status"] == "pending"
    assert client.get("/api/v1/articles/a1/comments").get_json()["comments"] == []


def test_a_discard_hint_drops_the_comment_when_so_configured(
    make_app: MakeApp, config: Config, akismet: AkismetServer
) -> None:
    app = app_with(
        make_app,
        config,
        spam_check_url=akismet.url,
        spam_check_key=AKISMET_KEY,
        spam_check_discard=True,
    )
    client = app.test_client()
    comment_id = submit(client, comment="BLATANT casino").get_json()["id"]
    worker(app).run_once()
    assert view(client, comment_id).status_code == 404


def test_the_operator_chooses_what_is_sent(
    make_app: MakeApp, config: Config, akismet: AkismetServer
) -> None:
    app = app_with(
        make_app,
        config,
        spam_check_url=akismet.url,
        spam_check_key=AKISMET_KEY,
        spam_check_send=("email", "text"),
    )
    submit(app.test_client(), comment="hello", email="sent@example.com")
    worker(app).run_once()
    sent = akismet.calls("comment-check")[0]
    assert sent["comment_author_email"] == "sent@example.com"
    assert "user_ip" not in sent and "comment_author" not in sent
    # The address travelled encrypted only if sent: the queue entry is gone either way.
    store = store_of(app)
    assert store.redis.xlen(store.keys.spam_checks("a1")) == 0


def test_moderators_decisions_are_reported_back(
    make_app: MakeApp, config: Config, akismet: AkismetServer
) -> None:
    app = app_with(make_app, config, spam_check_url=akismet.url, spam_check_key=AKISMET_KEY)
    client = app.test_client()
    first = submit(client, comment="Missed by the filter").get_json()["id"]
    second = submit(client, comment="Wrongly held casino talk", email="x@example.com")
    worker(app).run_once()
    assert client.post(f"{MODERATION}/{first}/spam", json={}, headers=AUTH).status_code == 200
    assert approve(client, second.get_json()["id"]).status_code == 200
    worker(app).run_once()
    assert [c["comment_content"] for c in akismet.calls("submit-spam")] == ["Missed by the filter"]
    assert [c["comment_content"] for c in akismet.calls("submit-ham")] == [
        "Wrongly held casino talk"
    ]


def test_a_spam_service_that_is_down_leaves_the_policys_verdict(
    make_app: MakeApp, config: Config
) -> None:
    down = f"http://127.0.0.1:{free_port()}/1.1"
    app = app_with(make_app, config, spam_check_url=down, spam_check_key=AKISMET_KEY)
    client = app.test_client()
    comment_id = submit(client, comment="casino").get_json()["id"]
    assert worker(app).run_once() == 1
    assert view(client, comment_id).get_json()["status"] == "pending"
    assert worker(app).run_once() == 0


def hook_app(make_app: MakeApp, config: Config, hook: HookServer, **settings: Any) -> Flask:
    return app_with(
        make_app,
        config,
        moderation_hook_url=hook.base + "/moderate",
        moderation_hook_secret=SECRET,
        moderation_hook_timeout=1.0,
        moderation_hook_retries=2,
        **settings,
    )


def test_the_hook_gets_a_signed_summary_and_its_verdicts_apply(
    make_app: MakeApp, config: Config, hook: HookServer
) -> None:
    app = hook_app(make_app, config, hook)
    client = app.test_client()
    ids = [
        submit(client, comment=f"c{n}", email=f"h{n}@example.com").get_json()["id"]
        for n in range(3)
    ]
    hook.answers = [
        (200, {"action": "spam", "reasons": ["known campaign"]}),
        (200, {"action": "approve"}),
        (204, None),
    ]
    worker(app).run_once()
    statuses = [view(client, i).get_json()["status"] for i in ids]
    assert statuses == ["spam", "approved", "pending"]
    spam = view(client, ids[0]).get_json()
    [reason] = [r for r in spam["reasons"] if r["code"] == "moderation_hook"]
    assert reason["detail"] == "known campaign"
    path, headers, body = hook.requests[0]
    summary = json.loads(body)
    assert summary == {
        "id": ids[0],
        "article_id": "a1",
        "name": "Ann",
        "comment": "c0",
        "website": None,
    }
    stamp, mac = (part.split("=", 1)[1] for part in headers["X-Comments-Signature"].split(","))
    expected = hmac.new(SECRET, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(mac, expected)


def test_hold_takes_an_approved_comment_back_to_review(
    make_app: MakeApp, config: Config, hook: HookServer
) -> None:
    app = hook_app(make_app, config, hook)
    client = app.test_client()
    policy(client, auto_approve="all")
    comment_id = submit(client).get_json()["id"]
    hook.answers = [(200, {"action": "hold", "reasons": []})]
    worker(app).run_once()
    assert view(client, comment_id).get_json()["status"] == "pending"


@pytest.mark.parametrize("fail, expected", [("open", "approved"), ("closed", "pending")])
def test_a_failing_hook_is_retried_a_bounded_number_of_times_then_fails_open_or_closed(
    make_app: MakeApp, config: Config, hook: HookServer, fail: str, expected: str
) -> None:
    app = hook_app(make_app, config, hook, moderation_hook_fail=fail)
    client = app.test_client()
    policy(client, auto_approve="all")
    comment_id = submit(client).get_json()["id"]
    hook.answers = [(500, {"error": "down"})] * 5
    worker(app).run_once()
    assert len(hook.requests) == 3  # one try and two retries
    assert view(client, comment_id).get_json()["status"] == expected


def test_a_dead_workers_entries_are_taken_over(
    make_app: MakeApp, config: Config, akismet: AkismetServer
) -> None:
    app = app_with(make_app, config, spam_check_url=akismet.url, spam_check_key=AKISMET_KEY)
    comment_id = submit(app.test_client(), comment="casino").get_json()["id"]
    store = store_of(app)
    assert len(store.spam_work("dead-worker", 10, 0, 60_000)) == 1  # read, never acknowledged
    assert worker(app).run_once() == 0  # not idle long enough yet
    assert worker(app).run_once(idle_ms=0) == 1
    assert view(app.test_client(), comment_id).get_json()["status"] == "spam"


def test_without_spam_services_nothing_is_queued(app: Flask, client: FlaskClient) -> None:
    submit(client)
    store = store_of(app)
    assert not store.redis.exists(store.keys.spam_checks("a1"))


def test_the_worker_command_needs_a_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SPAM_CHECK_KEY", "MODERATION_HOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert cli_main(["spamcheck"]) == 2


def test_the_check_is_queued_by_the_insert_itself_in_its_one_round_trip(
    make_app: MakeApp, config: Config, akismet: AkismetServer
) -> None:
    """A stored comment is never without its check: the insert script writes the queue entry
    with the comment (one evalsha, two xadds: its event and its check); a submission that
    stores nothing (a duplicate dropped) queues nothing."""
    app = app_with(make_app, config, spam_check_url=akismet.url, spam_check_key=AKISMET_KEY)
    client = app.test_client()
    store = store_of(app)
    policy(client, duplicate_window_seconds=600)
    warm_settings_cache(client, store.redis, "a1")  # type: ignore[arg-type]
    stream = store.keys.spam_checks("a1")  # its article's bucket's
    before = store.redis.xlen(stream)
    cost = commands_during(
        store.redis,  # type: ignore[arg-type]
        lambda: submit(client, comment="Checked inside the insert.", email="in@example.com"),
    )
    assert cost["evalsha"] == 1 and cost["xadd"] == 2, cost
    assert set(cost) <= {"evalsha", *INSIDE_SUBMISSION}, cost
    entries = cast(list[Any], store.redis.xrange(stream))
    assert len(entries) == before + 1
    fields = entries[-1][1]
    assert fields["kind"] == "check" and fields["article"] == "a1"
    assert store.get(fields["id"]) is not None
    again = submit(client, comment="Checked inside the insert.", email="in@example.com")
    assert again.status_code == 202  # answered like any accepted comment, stored nothing
    assert store.redis.xlen(stream) == before + 1
    assert worker(app).run_once() == before + 1
    assert len(akismet.calls("comment-check")) == before + 1


def test_without_spam_services_the_insert_queues_no_check(
    client: FlaskClient, redis_client: Any
) -> None:
    assert submit(client, comment="No check configured.").status_code == 202
    assert redis_client.exists(Keys().events("a1"))  # the insert ran, under these keys
    assert not redis_client.exists(Keys().spam_checks("a1"))
