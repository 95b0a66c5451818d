"""Plain submissions answered by the fast path (service/api/fast_submissions.py) are answered
exactly as Flask answers them.

Two apps over the same Redis and settings: one with the fast path (the default), one with
``FAST_SUBMISSIONS=false``. Each request goes to both; status, every header (in order; the
request id's value apart), the answer's fields, the metrics, the access line and the stored
comment must be the same. A request the path must not take, or a submission the domain
refuses, is answered by Flask in both (the refusal's problem document included).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from flask import Flask, signals
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.middleware.proxy_fix import ProxyFix

from service import metrics
from service.access_log import AccessLog
from service.api.context import EXTENSION_KEY
from service.api.fast_submissions import FastSubmissions
from service.config import Config
from service.idempotency import IdempotentRequests
from service.store import durability
from service.submissions import Submissions
from tests.conftest import AUTH, RELAXED_POLICY, Lines, MakeApp

ARTICLE = "fast"
PATH = f"/api/v1/articles/{ARTICLE}/comments"
ROUTE = "/api/v1/articles/<slug:article_id>/comments"
ALLOWED = "https://news.example.org"  # the test config's allowed origin
# The series a submission's answer records (service/observability.py).
RECORDED = (
    "http_request_duration_seconds_count",
    "comment_submissions_total",
    "moderation_decisions_total",
    "redis_errors_total",
)
# Fields whose values are the submission's own (its id, times, key and token).
OWN = ("id", "created_at", "commenter_key", "edit_token", "edit_until")


@dataclass
class Answer:
    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def document(self) -> Any:
        return json.loads(self.body)


@dataclass
class Apps:
    fast: Flask
    plain: Flask

    @property
    def path(self) -> FastSubmissions:
        found: Any = self.fast.wsgi_app
        if isinstance(found, ProxyFix):
            found = found.app
        assert isinstance(found, FastSubmissions)
        return found


def set_policy(app: Flask, policy: dict[str, Any]) -> None:
    response = app.test_client().put("/api/v1/moderation/policy", json=policy, headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.fixture
def make_apps(make_app: MakeApp, config: Config) -> Callable[..., Apps]:
    def make(policy: dict[str, Any] | None = None, **changes: Any) -> Apps:
        fast = make_app(replace(config, **changes))
        plain = make_app(replace(config, fast_submissions=False, **changes))
        set_policy(fast, {**RELAXED_POLICY, **(policy or {})})
        return Apps(fast, plain)

    return make


@pytest.fixture
def apps(make_apps: Callable[..., Apps]) -> Apps:
    return make_apps()


def environ_for(
    body: bytes, headers: dict[str, str], path: str = PATH, address: str = "10.1.2.3"
) -> dict[str, Any]:
    """A request's environ as the RSGI bridge builds it (service/rsgi_bridge.py _environ)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": address,
        "REMOTE_PORT": "40000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000",
    }
    for name, value in headers.items():
        if name.lower() == "content-type":
            environ["CONTENT_TYPE"] = value
        elif name.lower() == "content-length":
            environ["CONTENT_LENGTH"] = value
        else:
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def call(app: Flask, environ: dict[str, Any]) -> Answer:
    return call_wsgi(app, environ)


def call_wsgi(app: Callable[..., Any], environ: dict[str, Any]) -> Answer:
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return Answer(started[0], list(started[1]), body)


def comment(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "name": "Ann",
        "email": f"ann{n}@example.com",
        "comment": f"Remark number {n}.",
    } | fields


def post(
    app: Flask,
    body: Any,
    headers: dict[str, str] | None = None,
    path: str = PATH,
    address: str = "10.1.2.3",
) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    return call(app, environ_for(raw, sent, path, address))


def headers_alike(answer: Answer) -> list[tuple[str, str]]:
    return [(n, "<id>" if n == "X-Request-Id" else v) for n, v in answer.headers]


def assert_alike(fast: Answer, plain: Answer) -> None:
    assert fast.status == plain.status
    assert headers_alike(fast) == headers_alike(plain)
    if fast.status[:3] in ("201", "202"):
        mine, flask = fast.document, plain.document
        assert list(mine) == list(flask)
        assert {k: v for k, v in mine.items() if k not in OWN} == {
            k: v for k, v in flask.items() if k not in OWN
        }
        for name in OWN:
            assert type(mine[name]) is type(flask[name]), name
            assert len(mine[name]) == len(flask[name]), name
    else:
        assert fast.body == plain.body


def both(apps: Apps, n: int, headers: dict[str, str] | None = None, **fields: Any) -> Answer:
    """The same submission (but its email) to both apps: alike, and taken by the fast path
    once it has Flask's headers for it."""
    answered = apps.path.answered
    fast = post(apps.fast, comment(n, **fields), headers)
    plain = post(apps.plain, comment(n + 1000, **fields), headers)
    assert_alike(fast, plain)
    return fast if apps.path.answered > answered else Answer("flask", [], b"")


def test_a_plain_submission_is_answered_by_the_fast_path_as_flask_answers_it(apps: Apps) -> None:
    assert both(apps, 1).status == "flask"  # the first: Flask's, and its headers kept
    assert both(apps, 2).status.startswith("202 ")
    assert both(apps, 3).status.startswith("202 ")
    assert apps.path.answered == 2


def test_published_and_held_answers_keep_their_own_headers(
    make_apps: Callable[..., Apps],
) -> None:
    apps = make_apps({"auto_approve": "all", "campaign_threshold": 0})
    assert both(apps, 1).status == "flask"
    assert both(apps, 2).status.startswith("201 ")
    # Spam (the honeypot filled) is answered as held: the other status, whose headers Flask
    # gives first, after the fast path stored it.
    assert both(apps, 3, fax="x").status == "flask"
    assert both(apps, 4, fax="x").status.startswith("202 ")
    assert both(apps, 5).status.startswith("201 ")


@pytest.mark.parametrize("origin", [ALLOWED, "https://elsewhere.example"])
def test_cors_answers_are_kept_per_origin(apps: Apps, origin: str) -> None:
    both(apps, 1)  # headers kept without Origin
    assert both(apps, 2, {"Origin": origin}).status == "flask"  # another key: Flask's first
    fast = both(apps, 3, {"Origin": origin})
    assert fast.status.startswith("202 ")
    allowed = dict(fast.headers).get("Access-Control-Allow-Origin")
    assert allowed == (origin if origin == ALLOWED else None)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"{not json", {}),
        (json.dumps(comment(5, email="not-an-email")).encode(), {}),
        (json.dumps(comment(5, comment="")).encode(), {}),
        (json.dumps([1, 2]).encode(), {}),
        (b'{"name": "\\ud800", "email": "a@example.com", "comment": "x"}', {}),
        (json.dumps(comment(5, redirect="https://evil.example/")).encode(), {}),
        (json.dumps(comment(5)).encode(), {"Content-Type": "text/plain"}),
        (json.dumps(comment(5)).encode(), {"Content-Length": str(70 * 1024)}),
    ],
)
def test_what_the_fast_path_does_not_take_flask_answers(
    apps: Apps, body: bytes, headers: dict[str, str]
) -> None:
    both(apps, 1)
    answered = apps.path.answered
    fast = post(apps.fast, body, headers)
    plain = post(apps.plain, body, headers)
    assert apps.path.answered == answered
    assert_alike(fast, plain)


def test_a_submission_with_an_idempotency_key_is_kept_and_replayed_as_flask_does(
    apps: Apps,
) -> None:
    def keyed(app: Flask, n: int, key: str) -> Answer:
        return post(app, comment(n), {"Idempotency-Key": key})

    keyed(apps.fast, 1, "fast-1")  # Flask's, and its headers kept
    answered = apps.path.answered
    fast = keyed(apps.fast, 2, "fast-2")
    assert apps.path.answered == answered + 1
    assert_alike(fast, keyed(apps.plain, 1002, "plain-2"))
    # The same key and body again: the first answer (the same comment), from either app.
    for app in (apps.fast, apps.plain):
        again = keyed(app, 2, "fast-2")
        assert again.status == fast.status
        assert again.document == fast.document
    # The same key with another body: refused alike (422), by Flask's handler.
    refused = keyed(apps.fast, 3, "fast-2")
    assert refused.status.startswith("422 ")
    assert_alike(refused, keyed(apps.plain, 3, "fast-2"))
    assert apps.path.answered == answered + 1
    # Headers kept with a key are not those of a submission without one, nor the reverse.
    assert both(apps, 4).status == "flask"
    assert both(apps, 5).status.startswith("202 ")


def test_a_refused_submission_releases_its_idempotency_key_on_the_fast_path(
    make_apps: Callable[..., Apps],
) -> None:
    apps = make_apps({"flood_interval_seconds": 60})
    here = "10.9.9.9"  # an address of its own: the flood marker outlives the test
    assert post(apps.fast, comment(1), {"Idempotency-Key": "a"}, address=here).status[:3] == "202"
    refused = post(apps.fast, comment(2), {"Idempotency-Key": "b"}, address=here)
    assert refused.status.startswith("429 ")
    # Released: the same key again is processed afresh (refused again, not a 409 or a replay).
    again = post(apps.fast, comment(2), {"Idempotency-Key": "b"}, address=here)
    assert again.status.startswith("429 ")
    assert again.document["type"] == refused.document["type"]


def test_paths_and_methods_it_does_not_take(apps: Apps) -> None:
    both(apps, 1)
    answered = apps.path.answered
    for path in (PATH + "/", f"/api/v1/articles/{ARTICLE}/comments/x", "/api/v1//articles/x"):
        assert_alike(
            post(apps.fast, comment(7), path=path), post(apps.plain, comment(8), path=path)
        )
    assert apps.path.answered == answered


def test_a_refusal_after_the_insert_is_flasks_problem_document(
    make_apps: Callable[..., Apps],
) -> None:
    apps = make_apps({"flood_interval_seconds": 60})
    set_policy(apps.plain, {**RELAXED_POLICY, "flood_interval_seconds": 60})
    here = "10.8.8.8"  # an address of its own: the flood marker outlives the test
    fast = post(apps.fast, comment(1), address=here)
    assert fast.status.startswith("202 ")
    # The same address again within the flood interval: refused by the insert, after the
    # domain ran on the fast path, answered by Flask's handler.
    answered = apps.path.answered
    refused = post(apps.fast, comment(2), address=here)
    assert refused.status.startswith("429 ")
    assert apps.path.answered == answered
    post(
        apps.plain, comment(3), address=here
    )  # the plain app's first, from the same address: refused too
    assert_alike(refused, post(apps.plain, comment(4), address=here))
    assert refused.document["type"] == "/problems/comment-flood"


def test_a_rate_limit_counted_by_the_insert_is_answered_as_flask_answers_it(
    make_apps: Callable[..., Apps],
) -> None:
    apps = make_apps(rate_limits_enabled=True, rate_limit_submit="4/minute")  # shared: one address
    both(apps, 1)
    assert both(apps, 2).status.startswith("202 ")
    fast = post(apps.fast, comment(3))
    plain = post(apps.plain, comment(1003))
    assert fast.status.startswith("429 ")
    assert_alike(fast, plain)


def test_writes_no_replica_confirmed_are_answered_503_as_flask_does(
    apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    both(apps, 1)
    submit = Submissions.submit

    def unconfirmed(self: Submissions, request: Any) -> Any:
        accepted = submit(self, request)
        durability._report_unconfirmed("comment insert", 0, 1)
        return accepted

    monkeypatch.setattr(Submissions, "submit", unconfirmed)
    fast, plain = post(apps.fast, comment(2)), post(apps.plain, comment(1002))
    assert fast.status.startswith("503 ")
    assert_alike(fast, plain)
    assert durability.unconfirmed_writes() == []


def test_a_kept_answer_no_replica_confirmed_is_answered_503_and_then_replayed(
    apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    post(apps.fast, comment(1), {"Idempotency-Key": "k-1"})  # Flask's, its headers kept
    finish = IdempotentRequests.finish

    def unconfirmed(self: IdempotentRequests, *args: Any) -> None:
        finish(self, *args)
        durability._report_unconfirmed("idempotent answer", 0, 1)

    monkeypatch.setattr(IdempotentRequests, "finish", unconfirmed)
    fast = post(apps.fast, comment(2), {"Idempotency-Key": "k-2"})
    plain = post(apps.plain, comment(1002), {"Idempotency-Key": "p-2"})
    assert fast.status.startswith("503 ")
    assert_alike(fast, plain)
    monkeypatch.undo()
    # The answer was kept (once): the retry replays it, on either path.
    again, plain_again = (
        post(apps.fast, comment(2), {"Idempotency-Key": "k-2"}),
        post(apps.plain, comment(1002), {"Idempotency-Key": "p-2"}),
    )
    assert again.status.startswith("202 ")
    assert_alike(again, plain_again)


def test_a_trusted_proxys_request_id_is_answered(make_apps: Callable[..., Apps]) -> None:
    apps = make_apps(trusted_proxies=1)
    sent = {"X-Request-Id": "proxy-id-1", "X-Forwarded-For": "203.0.113.9"}
    both(apps, 1, sent)
    fast = both(apps, 2, sent)
    assert fast.status.startswith("202 ")
    assert dict(fast.headers)["X-Request-Id"] == "proxy-id-1"


def test_a_signal_receiver_sends_submissions_to_flask(apps: Apps) -> None:
    both(apps, 1)
    seen: list[Any] = []

    def receiver(sender: Any, **extra: Any) -> None:
        seen.append(sender)

    signals.request_finished.connect(receiver, apps.fast)
    try:
        assert both(apps, 2).status == "flask"
    finally:
        signals.request_finished.disconnect(receiver, apps.fast)
    assert seen
    assert both(apps, 3).status.startswith("202 ")


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def deltas(before: dict[Any, float], after: dict[Any, float]) -> dict[Any, float]:
    changed = {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}
    # Durations differ between any two requests: their sum and buckets are not compared; nor
    # the read cache's hits and misses, which its invalidations' timing moves.
    return {k: v for k, v in changed.items() if k[0] in RECORDED}


@pytest.mark.parametrize("policy", [{}, {"auto_approve": "all", "campaign_threshold": 0}])
def test_the_fast_path_records_the_metrics_flask_records(
    make_apps: Callable[..., Apps], policy: dict[str, Any]
) -> None:
    apps = make_apps(policy)
    set_policy(apps.plain, {**RELAXED_POLICY, **policy})
    both(apps, 1)
    both(apps, 2)
    answered = apps.path.answered
    before = scrape()
    post(apps.fast, comment(3))
    fast = deltas(before, scrape())
    assert apps.path.answered == answered + 1
    before = scrape()
    post(apps.plain, comment(4))
    assert fast == deltas(before, scrape())
    status = "201" if policy else "202"
    request_count = (
        "http_request_duration_seconds_count",
        (("method", "POST"), ("route", ROUTE), ("status", status)),
    )
    assert fast[request_count] == 1


@pytest.fixture
def access_lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("service.access")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def json_environ(n: int) -> dict[str, Any]:
    return environ_for(json.dumps(comment(n)).encode(), {"Content-Type": "application/json"})


def test_the_access_line_is_flasks(apps: Apps, access_lines: Lines) -> None:
    fast_app = AccessLog(apps.fast, apps.fast.extensions[EXTENSION_KEY].hasher, "json")
    plain_app = AccessLog(apps.plain, apps.plain.extensions[EXTENSION_KEY].hasher, "json")
    for n in (1, 2):
        call_wsgi(fast_app, json_environ(n))
    answered = apps.path.answered
    fast_answer = call_wsgi(fast_app, json_environ(3))
    assert apps.path.answered == answered + 1
    plain_answer = call_wsgi(plain_app, json_environ(1003))
    fast_line, plain_line = access_lines.records[-2:]

    def shown(record: logging.LogRecord, answer: Answer) -> dict[str, Any]:
        fields = {k: getattr(record, k) for k in ("client", "method", "path", "status", "bytes")}
        assert getattr(record, "request_id", None) in (None, dict(answer.headers)["X-Request-Id"])
        return {"message": record.getMessage(), **fields}

    assert shown(fast_line, fast_answer) == shown(plain_line, plain_answer)


def test_the_stored_comment_is_flasks(apps: Apps) -> None:
    both(apps, 1)
    fast = both(apps, 2, website="https://ann.example/")
    assert fast.status.startswith("202 ")
    plain = post(apps.plain, comment(2, website="https://ann.example/"))

    def stored(app: Flask, comment_id: str) -> dict[str, Any]:
        response = app.test_client().get(f"/api/v1/moderation/comments/{comment_id}", headers=AUTH)
        assert response.status_code == 200
        document: dict[str, Any] = response.get_json()
        return document

    mine = stored(apps.fast, fast.document["id"])
    flask = stored(apps.plain, plain.document["id"])
    assert list(mine) == list(flask)
    different = {k for k in mine if mine[k] != flask[k]}
    assert different <= {"id", "created_at", "updated_at", "history"}, different
    assert [{**h, "at": ""} for h in mine["history"]] == [{**h, "at": ""} for h in flask["history"]]
