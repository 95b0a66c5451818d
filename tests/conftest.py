"""Shared fixtures: a real Redis (embedded by default, REDIS_URL when set), the app, clients.

Every response the suite receives outside a moderator's successful view, and every log record,
is scanned for email addresses after each test: a leak fails the test that caused it. Every app
a test builds must be closed (``close_app``, or ``make_app`` which closes its apps): a cache
listener thread still running long after its test is reported, naming that test.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from devtools.topologies import LocalCluster
from service import chores, clock
from service.api.context import EXTENSION_KEY
from service.app import create_app
from service.config import Config
from service.crypto import KeyRing
from service.embedded import EmbeddedRedis
from service.events import SETTLE_MS
from service.logs import JsonLines
from service.store import eventlog, make_redis
from service.store._core import StoreCore
from service.store.client import primaries

EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
MODERATOR_TOKEN = "test-moderator-token-0123456789abcdef"
OTHER_TOKEN = "second-moderator-token-abcdef0123456789"
AUTH = {"Authorization": f"Bearer {MODERATOR_TOKEN}"}


# TEST_REDIS=cluster: the whole suite on a local 3-primary Redis Cluster that the session
# starts (.ci/run's cluster pass); REDIS_URL may also name any server or cluster of your own.
CLUSTER_PASS = os.environ.get("TEST_REDIS") == "cluster"
# TEST_STEPS=stepped: split changes run one script a step on a single server too, as they do
# on a cluster (service/store/steps.py).
StoreCore.force_stepped = os.environ.get("TEST_STEPS") == "stepped"
# Whether the suite's stores run split changes stepped: one script a step (the round trips a
# test counts; a REDIS_URL naming a cluster of your own is not told apart).
STEPPED = CLUSTER_PASS or StoreCore.force_stepped
# A stepped store's workers sweep owed steps every 30 s (service/chores.py): a background
# lease script that would land in the round-trip tests' counts. The sweep's own tests
# (tests/test_steps.py) run it directly.
chores.SWEEP_EVERY_SECONDS = 24 * 3600


class Lines(logging.Handler):
    """A log handler that keeps every record it is given, for a test to read back."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="session")
def redis_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    if CLUSTER_PASS:
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        yield cluster.url
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A 3-primary Redis Cluster on loopback (the machine's redis-server), for the session."""
    with LocalCluster(tmp_path_factory.mktemp("cluster"), primaries=3) as cluster:
        yield cluster


@pytest.fixture
def cluster(redis_cluster: LocalCluster) -> LocalCluster:
    """The session's cluster, every primary emptied before the test."""
    redis_cluster.flush()
    return redis_cluster


def command_calls(redis: Redis) -> dict[str, int]:
    """INFO commandstats' calls by command, summed over every primary (the one server, or
    each of a cluster's: a request's commands go to whichever owns their keys)."""
    totals: dict[str, int] = {}
    for server in primaries(redis):
        for name, stats in server.info("commandstats").items():
            totals[name] = totals.get(name, 0) + int(stats["calls"])
    return totals


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Redis]:
    # A RedisCluster on the cluster pass: typed as the one-server client the tests use (the
    # commands they send exist on both; FLUSHDB and KEYS go to every primary).
    client = cast(Redis, make_redis(redis_url))
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def config(redis_url: str) -> Config:
    return Config(
        redis_url=redis_url,
        moderator_tokens={"alice": MODERATOR_TOKEN, "bob": OTHER_TOKEN},
        allowed_origins=("https://news.example.org",),
        max_body_bytes=64 * 1024,
        secret_key=b"test-secret-key-0123456789abcdef",
        encryption_keys=KeyRing.parse(KeyRing.generate_entry("test1")),
        rate_limits_enabled=False,
    )


# Most tests submit many comments quickly from one address; the flood and duplicate rules
# have tests of their own (test_api_policy.py), which set the policy they need.
RELAXED_POLICY = {"flood_interval_seconds": 0, "flood_hourly_cap": 0, "duplicate_window_seconds": 0}


@pytest.fixture
def app(config: Config, redis_client: Redis) -> Iterator[Flask]:
    app = create_app(config)
    response = app.test_client().put("/api/v1/moderation/policy", json=RELAXED_POLICY, headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    yield app
    close_app(app)


def close_app(app: Flask) -> None:
    """Stop the app's cache listener threads (public and moderation)."""
    store = app.extensions[EXTENSION_KEY].store
    for cache in (store.cache, store.moderation_cache):
        if cache is not None:
            cache.close()


MakeApp = Callable[[Config], Flask]


@pytest.fixture
def make_app() -> Iterator[MakeApp]:
    """``create_app`` for a test that needs apps of other configs; all closed after the test."""
    apps: list[Flask] = []

    def make(config: Config) -> Flask:
        app = create_app(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        close_app(app)


# The name of a cache's listener thread (service/tracked_cache/cache.py). A closed cache's listener
# ends within its heartbeat (2 s); one still running well after its test ended was never closed.
LISTENER_THREAD = "redis-invalidations"
LISTENER_GRACE_SECONDS = 6.0
# Listener threads that were running when their test ended: the test's id, and when it ended.
_listeners: dict[threading.Thread, tuple[str, float]] = {}


def running_listeners() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == LISTENER_THREAD and t.is_alive()}


def _leaked_listeners(now: float) -> list[str]:
    """The tests whose listeners still run past the grace period (forgotten once reported)."""
    for thread in [t for t in _listeners if not t.is_alive()]:
        del _listeners[thread]
    leaked = [
        thread for thread, (_, ended) in _listeners.items() if now - ended > LISTENER_GRACE_SECONDS
    ]
    return sorted({_listeners.pop(thread)[0] for thread in leaked})


@pytest.fixture(autouse=True)
def no_cache_listener_left_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """Checked without waiting: a listener is judged once the grace period has passed, at the
    end of a later test (or of the session)."""
    before = running_listeners()
    yield
    now = time.monotonic()
    for thread in running_listeners() - before:
        _listeners.setdefault(thread, (request.node.nodeid, now))
    leaked = _leaked_listeners(now)
    assert not leaked, (
        f"cache listener threads still running {LISTENER_GRACE_SECONDS:.0f} s "
        f"after these tests ended (an app without close_app?): {leaked}"
    )


@pytest.fixture(scope="session", autouse=True)
def no_cache_listener_left_at_the_end() -> Iterator[None]:
    yield
    deadline = time.monotonic() + LISTENER_GRACE_SECONDS
    while any(t.is_alive() for t in _listeners) and time.monotonic() < deadline:
        time.sleep(0.1)
    leaked = _leaked_listeners(float("inf"))
    assert not leaked, f"cache listener threads never stopped (no close_app?): {leaked}"


class Exposure:
    """Everything a non-moderator (or anyone, on error) was shown during one test."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def record(self, label: str, text: str) -> None:
        self.texts.append(f"{label}\n{text}")

    def leaks(self) -> list[str]:
        return [t[:300] for t in self.texts if EMAIL_PATTERN.search(t)]


_exposure = Exposure()


class RecordingClient(FlaskClient):
    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        path = response.request.path
        moderator_view = path.startswith("/api/v1/moderation") and response.status_code < 400
        # The contract is a static document whose examples show made-up addresses.
        if not moderator_view and path != "/openapi.yaml":
            headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
            body = response.get_data()
            if response.headers.get("Content-Encoding") == "gzip":  # embed.js
                body = gzip.decompress(body)
            _exposure.record(f"{response.status_code} {path}", headers + "\n" + body.decode())
        return response


@pytest.fixture
def events_settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The event log read by cursor as it stands a settle time later (service/events.py,
    SETTLE_MS): what a test just did is in it. Only the reader's clock moves."""
    reader = SimpleNamespace(now_ms=lambda: clock.now_ms() + SETTLE_MS)
    monkeypatch.setattr(eventlog, "clock", reader)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    app.test_client_class = RecordingClient
    return app.test_client()


class _LogCapture(logging.Handler):
    # Each record as the service writes it (service/logs.py JsonLines: the message, the request
    # id and every extra field), so what is scanned is the line itself.
    lines = JsonLines()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + "\n" + self.lines.format(record)
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + repr(record.exc_info[1])
        _exposure.record(f"log {record.name}", text)


@pytest.fixture(autouse=True)
def no_email_exposed() -> Iterator[Exposure]:
    handler = _LogCapture(level=logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    _exposure.texts.clear()
    yield _exposure
    root.removeHandler(handler)
    root.setLevel(previous_level)
    leaks = _exposure.leaks()
    assert not leaks, f"email address exposed publicly or in logs: {leaks}"


def submit(client: FlaskClient, article: str = "a1", **fields: Any) -> Any:
    body = {"name": "Ann", "email": "ann@example.com", "comment": "A thoughtful remark."}
    body.update(fields)
    return client.post(f"/api/v1/articles/{article}/comments", json=body)


class Browser:
    """A commenter's browser with the widget: it keeps the commenter key each accepted answer
    hands out and sends it back with the next submission (service/commenter_keys.py)."""

    def __init__(self, client: FlaskClient, email: str = "ann@example.com") -> None:
        self.client = client
        self.email = email
        self.key: str | None = None

    def submit(self, article: str = "a1", **fields: Any) -> Any:
        fields.setdefault("email", self.email)
        if self.key is not None:
            fields.setdefault("commenter_key", self.key)
        response = submit(self.client, article, **fields)
        if response.status_code in (201, 202):
            self.key = response.get_json()["commenter_key"]
        return response


def approve(client: FlaskClient, comment_id: str, **body: Any) -> Any:
    return client.post(f"/api/v1/moderation/comments/{comment_id}/approve", json=body, headers=AUTH)


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]
