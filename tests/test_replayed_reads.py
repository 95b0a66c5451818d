"""Replayed public reads (service/replayed_reads.py) answer exactly what Flask answers.

Two bridges over the same app and Redis: one with the replayer, one without. For every request
the replaying bridge answers twice (the first answer is Flask's and is kept, the second is the
replay) and the plain bridge once; status, every header but the request id's value, and the
body must be the same. The access lines and the metrics must be the same as well, and an
approval must be visible at once (the replay checks the read cache, as a read does).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from devtools.processes import wait_until
from service import access_log, metrics
from service.access_log import AccessLog
from service.api.auth import token_hash
from service.api.context import EXTENSION_KEY
from service.app import SECURITY_HEADERS
from service.config import Config
from service.logs import REQUEST_ID, JsonLines, install_redaction
from service.replayed_reads import ReplayedReads
from service.rsgi_bridge import Answer, RSGIBridge
from tests.conftest import (
    AUTH,
    MODERATOR_TOKEN,
    OTHER_TOKEN,
    RELAXED_POLICY,
    Lines,
    MakeApp,
    approve,
    submit,
)
from tests.servicehelpers import Service, log_records

ARTICLE = "replayed"
PAGE = f"/api/v1/articles/{ARTICLE}/comments"
ALLOWED = "https://news.example.org"  # the test config's allowed origin
PAGE_ROUTE = "/api/v1/articles/<slug:article_id>/comments"
COMMENT = {"name": "Ann", "email": "ann@example.com", "comment": "A first remark."}


class Headers:
    """RSGI's request headers: lower-case names, repeated fields kept."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = [(name.lower(), value) for name, value in pairs]

    def __contains__(self, key: str) -> bool:
        return any(name == key for name, _ in self.pairs)

    def get(self, key: str, default: Any = None) -> Any:
        return next((value for name, value in self.pairs if name == key), default)

    def items(self) -> list[tuple[str, str]]:
        return list(self.pairs)


@dataclass
class Scope:
    path: str
    query_string: str = ""
    headers: Headers = field(default_factory=lambda: Headers([]))
    method: str = "GET"
    proto: str = "http"
    http_version: str = "1.1"
    scheme: str = "http"
    client: str = "127.0.0.1:40000"
    server: str = "127.0.0.1:8000"


class Protocol:
    def __init__(self) -> None:
        self.answers: list[Answer] = []

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answers.append((status, list(headers), body))


def serve(bridge: RSGIBridge, scope: Scope) -> Answer:
    protocol = Protocol()
    # On an event loop in a thread of its own: a test that ran earlier in this process may
    # have left a loop running in this thread (Playwright's sync API does), and asyncio.run
    # refuses to run inside one.
    with ThreadPoolExecutor(max_workers=1) as runner:
        runner.submit(asyncio.run, bridge(scope, protocol)).result()
    assert len(protocol.answers) == 1
    return protocol.answers[0]


@dataclass
class Bridges:
    replaying: RSGIBridge
    plain: RSGIBridge
    replayer: ReplayedReads
    lines: Lines
    client: FlaskClient


def make_bridges(app: Flask, trusted_proxies: int = 0) -> Bridges:
    access = AccessLog(app, app.extensions[EXTENSION_KEY].hasher, "json")
    replayer = ReplayedReads(access, trusted_proxies=trusted_proxies)
    settings: dict[str, Any] = {
        "threads": 2,
        "max_body_bytes": 64 * 1024,
        "read_timeout": 5.0,
        "extra_headers": SECURITY_HEADERS,
    }
    lines = Lines()
    return Bridges(
        RSGIBridge(access, replayer=replayer, **settings),
        RSGIBridge(access, **settings),
        replayer,
        lines,
        app.test_client(),
    )


@pytest.fixture
def bridges(app: Flask) -> Iterator[Bridges]:
    made = make_bridges(app)
    logger = logging.getLogger("service.access")
    logger.addHandler(made.lines)
    try:
        yield made
    finally:
        logger.removeHandler(made.lines)


def publish(client: FlaskClient, article: str, count: int) -> None:
    for n in range(count):
        response = submit(client, article, comment=f"Comment number {n} on {article}.")
        assert response.status_code in (201, 202), response.get_data(as_text=True)
        if response.status_code == 202:
            assert approve(client, response.get_json()["id"]).status_code == 200


def without_request_id(headers: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], str]:
    ids = [value for name, value in headers if name.lower() == "x-request-id"]
    assert len(ids) == 1, headers
    return [(n, "<id>" if n.lower() == "x-request-id" else v) for n, v in headers], ids[0]


def access_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = {k: getattr(record, k) for k in ("client", "method", "path", "status", "bytes")}
    return {**fields, "message": record.getMessage()}


def until_replayed(bridges: Bridges, scope: Scope) -> tuple[Answer, logging.LogRecord]:
    """The first replayed answer to ``scope``, and its access line. A value just read from
    Redis is cached only once the cache's listener is up (a moment, for the moderation cache,
    which starts listening on its first use): until then Flask answers, and is kept again."""
    deadline = time.monotonic() + 3
    while True:
        before, lines = bridges.replayer.replayed, len(bridges.lines.records)
        answer = serve(bridges.replaying, scope)
        if bridges.replayer.replayed == before + 1:
            return answer, bridges.lines.records[lines]
        assert time.monotonic() < deadline, "never replayed"
        time.sleep(0.01)


def assert_replayed_like_flask(bridges: Bridges, scope: Scope) -> Answer:
    """Flask's answer, kept; the replay; the plain bridge's Flask answer: all the same."""
    first = serve(bridges.replaying, scope)
    replayed, replay_line = until_replayed(bridges, scope)
    before = bridges.replayer.replayed
    flask = serve(bridges.plain, scope)
    flask_line = bridges.lines.records[-1]
    assert bridges.replayer.replayed == before
    for answer in (first, flask):
        assert replayed[0] == answer[0]
        assert without_request_id(replayed[1])[0] == without_request_id(answer[1])[0]
        assert replayed[2] == answer[2]
    # A request id of its own (unless a trusted proxy sent one), in the header and in the
    # access line, as Flask's.
    replay_id = without_request_id(replayed[1])[1]
    if "x-request-id" not in scope.headers:
        assert replay_id not in (without_request_id(first[1])[1], without_request_id(flask[1])[1])
        assert len(replay_id) == 32
    assert getattr(replay_line, "request_id", None) == replay_id
    assert getattr(flask_line, "request_id", None) == without_request_id(flask[1])[1]
    assert access_fields(replay_line) == access_fields(flask_line)
    return replayed


def etag_of(answer: Answer) -> str:
    return next(value for name, value in answer[1] if name.lower() == "etag")


def test_replayed_pages_and_counts_are_flasks_answers(bridges: Bridges) -> None:
    publish(bridges.client, ARTICLE, 3)
    publish(bridges.client, "other", 1)
    page = assert_replayed_like_flask(bridges, Scope(PAGE))
    assert page[0] == 200 and b'"total":3' in page[2]
    etag = etag_of(page)
    requests = [
        Scope(PAGE, headers=Headers([("Origin", ALLOWED)])),
        Scope(PAGE, headers=Headers([("Origin", "https://elsewhere.example")])),
        Scope(PAGE, headers=Headers([("If-None-Match", etag)])),
        Scope(PAGE, headers=Headers([("If-None-Match", etag), ("Origin", ALLOWED)])),
        Scope(PAGE, headers=Headers([("If-None-Match", '"not-the-etag"')])),
        Scope(PAGE, headers=Headers([("If-None-Match", f'"x", {etag}')])),
        Scope(PAGE, "limit=2"),
        Scope(PAGE, "limit=50"),
        Scope(PAGE + "/"),  # strict_slashes off: the same route
        Scope("/api/v1/comment-counts", f"article_id={ARTICLE}&article_id=other"),
        Scope("/api/v1/comment-counts", f"article_id=other&article_id={ARTICLE}"),
        Scope(
            "/api/v1/comment-counts",
            f"article_id={ARTICLE}",
            headers=Headers([("Origin", ALLOWED), ("Accept", "application/json")]),
        ),
    ]
    statuses = []
    for scope in requests:
        statuses.append(assert_replayed_like_flask(bridges, scope)[0])
    assert statuses == [200, 200, 304, 304, 200, 304, 200, 200, 200, 200, 200, 200]
    # The allowed origin's variant carries CORS; the other does not: two keys, two answers.
    allowed = dict(serve(bridges.replaying, requests[0])[1])
    other = dict(serve(bridges.replaying, requests[1])[1])
    assert allowed.get("Access-Control-Allow-Origin") == ALLOWED
    assert "Access-Control-Allow-Origin" not in other
    assert "Origin" in allowed["Vary"] and "Origin" in other["Vary"]


def test_an_approval_is_visible_at_once_and_a_second_worker_sees_it(
    bridges: Bridges, app: Flask, make_app: MakeApp, config: Config
) -> None:
    publish(bridges.client, ARTICLE, 2)
    counts = Scope("/api/v1/comment-counts", f"article_id={ARTICLE}")
    assert b'"total":2' in assert_replayed_like_flask(bridges, Scope(PAGE))[2]
    assert f'"{ARTICLE}":2'.encode() in assert_replayed_like_flask(bridges, counts)[2]
    # The approval is made by another worker (its own app and cache): this worker learns of
    # it only through Redis's invalidation, which the replay's check applies.
    other = make_app(config).test_client()
    publish(other, ARTICLE, 1)
    replayed_before = bridges.replayer.replayed
    page = serve(bridges.replaying, Scope(PAGE))
    assert b'"total":3' in page[2]
    assert f'"{ARTICLE}":3'.encode() in serve(bridges.replaying, counts)[2]
    assert bridges.replayer.replayed == replayed_before, "a stale answer was replayed"
    assert b'"total":3' in assert_replayed_like_flask(bridges, Scope(PAGE))[2]
    assert f'"{ARTICLE}":3'.encode() in assert_replayed_like_flask(bridges, counts)[2]


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_a_replay_records_the_metrics_flask_records(bridges: Bridges) -> None:
    publish(bridges.client, ARTICLE, 1)
    # Kept and replayed once: the cache may take a moment to listen (longer on a cluster,
    # where it tracks every primary), and until then nothing is kept.
    until_replayed(bridges, Scope(PAGE))
    request_key = (
        "http_request_duration_seconds_count",
        (("method", "GET"), ("route", PAGE_ROUTE), ("status", "200")),
    )
    hits_key = ("read_cache_hits_total", (("cache", "public"),))
    misses_key = ("read_cache_misses_total", (("cache", "public"),))

    def recorded() -> tuple[float, float, float]:
        found = scrape()
        return found.get(request_key, 0.0), found.get(hits_key, 0.0), found.get(misses_key, 0.0)

    before, replays = recorded(), bridges.replayer.replayed
    serve(bridges.replaying, Scope(PAGE))
    after_replay = recorded()
    assert bridges.replayer.replayed == replays + 1
    serve(bridges.plain, Scope(PAGE))
    after_flask = recorded()
    replay_delta = [a - b for a, b in zip(after_replay, before, strict=True)]
    flask_delta = [a - b for a, b in zip(after_flask, after_replay, strict=True)]
    assert replay_delta == flask_delta == [1.0, 1.0, 0.0]


def test_what_is_not_a_cached_public_get_goes_to_flask(bridges: Bridges) -> None:
    publish(bridges.client, ARTICLE, 1)
    for scope in (
        Scope(PAGE, method="HEAD"),
        Scope("/api/v1/moderation/queue"),  # 401: never kept
        Scope("/healthz"),  # not marked replayable
        Scope(PAGE, "limit=0"),  # 422
    ):
        first, second = serve(bridges.replaying, scope), serve(bridges.replaying, scope)
        assert first[0] == second[0]
    assert bridges.replayer.replayed == 0
    assert bridges.replayer.entries == {}


def test_behind_a_trusted_proxy_the_id_and_client_are_the_proxys(
    make_app: MakeApp, config: Config
) -> None:
    app = make_app(replace(config, trusted_proxies=1))
    made = make_bridges(app, trusted_proxies=1)
    logger = logging.getLogger("service.access")
    logger.addHandler(made.lines)
    try:
        publish(made.client, ARTICLE, 1)
        forwarded = Headers([("X-Forwarded-For", "203.0.113.9, 198.51.100.7")])
        assert_replayed_like_flask(made, Scope(PAGE, headers=forwarded))
        client = made.lines.records[-1].client  # type: ignore[attr-defined]
        hasher = app.extensions[EXTENSION_KEY].hasher
        assert client == hasher.ip("198.51.100.7")
        with_id = Headers([("X-Request-Id", "proxy-id-123"), ("X-Forwarded-For", "192.0.2.1")])
        replayed = assert_replayed_like_flask(made, Scope(PAGE, headers=with_id))
        assert ("X-Request-Id", "proxy-id-123") in replayed[1]
    finally:
        logger.removeHandler(made.lines)


@pytest.mark.slow
def test_under_granian_replays_are_logged_and_never_stale(tmp_path: Path) -> None:
    """The real service (python -m service.serve, granian, one worker): many reads of a page,
    every one logged with its own id, the same bytes; an approval shows on the next read."""
    service = Service(tmp_path, workers=1)
    service.start()
    try:
        service.put_policy(auto_approve="all")
        with requests.Session() as session:
            assert service.submit(session, ARTICLE, COMMENT).status_code == 201
            answers = [session.get(service.url(PAGE), timeout=10) for _ in range(30)]
            assert {a.status_code for a in answers} == {200}
            assert len({a.content for a in answers}) == 1
            ids = [a.headers["X-Request-Id"] for a in answers]
            assert len(set(ids)) == 30
            second = service.submit(session, ARTICLE, {**COMMENT, "comment": "Another one."})
            assert second.status_code == 201
            assert session.get(service.url(PAGE), timeout=10).json()["total"] == 2

        def logged_ids() -> set[str]:
            records = log_records(service.log.read_text())
            return {r["request_id"] for r in records if r["logger"] == "service.access"}

        assert wait_until(lambda: set(ids) <= logged_ids(), 5), "a read was not logged"
    finally:
        service.kill()


QUEUE = "/api/v1/moderation/queue"


def bearer(token: str) -> Headers:
    return Headers([("Authorization", f"Bearer {token}")])


def hold(client: FlaskClient, count: int) -> None:
    policy = {**RELAXED_POLICY, "auto_approve": "trusted"}  # first-time commenters are held
    assert client.put("/api/v1/moderation/policy", json=policy, headers=AUTH).status_code == 200
    for n in range(count):
        response = submit(
            client, ARTICLE, email=f"new-{n}@example.com", comment=f"Held comment {n}."
        )
        assert response.status_code == 202, response.get_data(as_text=True)


def test_moderator_listings_are_replayed_with_the_token_checked_every_time(
    bridges: Bridges, app: Flask, make_app: MakeApp, config: Config
) -> None:
    svc = app.extensions[EXTENSION_KEY]
    hold(bridges.client, 2)
    queue = Scope(QUEUE, "limit=50", headers=bearer(MODERATOR_TOKEN))
    first = assert_replayed_like_flask(bridges, queue)
    assert first[0] == 200 and ("Cache-Control", "no-store") in first[1]
    assert assert_replayed_like_flask(bridges, Scope(QUEUE, headers=bearer(OTHER_TOKEN)))[0] == 200
    by_status = Scope("/api/v1/moderation/comments", "status=pending", headers=bearer(OTHER_TOKEN))
    assert assert_replayed_like_flask(bridges, by_status)[0] == 200

    # A token made with the CLI, replayed, then revoked by another process: refused at once.
    svc.store.save_moderator_token_hash("carol", token_hash("carol-token-0123456789abcdef"))
    carol = Scope(QUEUE, headers=bearer("carol-token-0123456789abcdef"))
    assert assert_replayed_like_flask(bridges, carol)[0] == 200
    other = make_app(config).extensions[EXTENSION_KEY].store
    assert other.revoke_moderator("carol")
    replayed = bridges.replayer.replayed
    assert serve(bridges.replaying, carol)[0] == 401
    assert bridges.replayer.replayed == replayed

    # A new held comment, submitted through another worker: the next answer shows it.
    hold(make_app(config).test_client(), 1)
    assert b'"total":3' in serve(bridges.replaying, queue)[2]
    assert bridges.replayer.replayed == replayed
    assert b'"total":3' in assert_replayed_like_flask(bridges, queue)[2]

    # Too many failed logins from this client: 429 for everyone's token from it, replayed or not.
    ip_hash = svc.hasher.ip("127.0.0.1")
    for _ in range(config.auth_failure_limit):
        other.record_auth_failure(ip_hash, config.auth_failure_window_seconds)
    replayed = bridges.replayer.replayed
    # Flask's path first: the count it reads is then this worker's in memory, and the kept
    # answer (from before) must not be replayed over it.
    assert serve(bridges.plain, queue)[0] == 429
    assert serve(bridges.replaying, queue)[0] == 429
    assert bridges.replayer.replayed == replayed


def test_per_request_listings_are_not_replayed(bridges: Bridges) -> None:
    hold(bridges.client, 1)
    for query in ("view=reported", "unclaimed=true"):
        scope = Scope(QUEUE, query, headers=bearer(MODERATOR_TOKEN))
        assert serve(bridges.replaying, scope)[0] == serve(bridges.replaying, scope)[0] == 200
    assert bridges.replayer.replayed == 0


@contextmanager
def only_the_services_handler() -> Iterator[access_log.BatchedLineHandler]:
    """The access logger as the service has it: its own JSON handler alone, the redacting
    record factory installed (pytest adds capture handlers to loggers while a test runs)."""
    install_redaction()
    access_log.install_access_log("json")
    logger = access_log.log
    saved = logger.handlers
    ours = [h for h in saved if isinstance(h, access_log.BatchedLineHandler)]
    assert len(ours) == 1 and type(ours[0].formatter) is JsonLines
    logger.handlers = [ours[0]]
    try:
        yield ours[0]
    finally:
        logger.handlers = saved


@pytest.mark.parametrize(
    ("path", "request_id", "status"),
    [
        (PAGE, "0123456789abcdef0123456789abcdef", "200"),
        ("/api/v1/articles/ann@example.com/comments", None, "404"),
        (QUEUE, "proxy-id", "-"),
    ],
)
def test_an_access_line_made_without_a_record_is_the_records_line(
    path: str, request_id: str | None, status: str
) -> None:
    """The access line the bridge's replays (and every request) write without a LogRecord
    (service/access_log.py _direct_handler) is the line the JSON formatter makes of the
    record, field for field and in the same order; only the time may differ, by the moment
    between the two."""
    with only_the_services_handler() as handler:
        assert access_log._direct_handler() is handler
    fields = {
        "client": "a1b2",
        "method": "GET",
        "path": path,
        "status": int(status) if status.isdigit() else None,
        "bytes": 254,
        "duration_ms": 0.123,
    }
    direct = json.loads(
        handler.formatter.jsonify_log_record(  # type: ignore[union-attr]
            access_log._json_line_data("GET", path, fields, request_id)
        )
    )
    token = REQUEST_ID.set(request_id)
    try:
        record = access_log.log.makeRecord(
            access_log.log.name,
            logging.INFO,
            __file__,
            1,
            "%s %s %s",
            ("GET", path, fields["status"]),
            None,
            extra=fields,
        )
    finally:
        REQUEST_ID.reset(token)
    via_record = json.loads(handler.format(record))
    assert list(direct) == list(via_record)
    times = (direct.pop("time"), via_record.pop("time"))
    assert direct == via_record
    assert "ann@example.com" not in json.dumps(direct)
    parsed = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in times]
    assert all(t.endswith("Z") and len(t) == 24 for t in times)
    assert abs((parsed[0] - parsed[1]).total_seconds()) < 1


def test_with_another_handler_the_access_line_is_a_record() -> None:
    with only_the_services_handler():
        assert access_log._direct_handler() is not None
        extra = Lines()
        access_log.log.addHandler(extra)
        try:
            assert access_log._direct_handler() is None
        finally:
            access_log.log.removeHandler(extra)
        assert access_log._direct_handler() is not None
