"""What recording metrics costs the app per request, in CPU time of this one process.

The same two requests as the HTTP bench's ``read`` and ``submit`` (a page of 50 published
comments from the worker's memory; a held submission), through the app's WSGI callable in
process (Flask's test client: no gunicorn, no sockets), against two apps that differ only in
METRICS_ENABLED, in alternating batches. CPU time (``time.process_time``) of this process
counts only its own work, so a busy shared machine moves it far less than req/s; the figure
is the app's share of a request, which is an upper bound on the share of the whole request
(gunicorn, the kernel and wrk add the same to both sides). Redis: the embedded one, or
REDIS_URL under a key prefix of its own (deleted afterwards).

    python bench/metrics_bench.py [--batches 7] [--requests 400]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402

from devtools.rediskeys import delete_prefix  # noqa: E402
from service import metrics  # noqa: E402
from service.app import create_app  # noqa: E402
from service.config import Config  # noqa: E402
from service.crypto import KeyRing  # noqa: E402
from service.embedded import EmbeddedRedis  # noqa: E402
from service.store import make_redis  # noqa: E402

TOKEN = "metrics-bench-moderator-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POLICY = {"flood_interval_seconds": 0, "flood_hourly_cap": 0, "duplicate_window_seconds": 0}


@contextmanager
def redis_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    with (
        tempfile.TemporaryDirectory(prefix="metrics-bench-") as data,
        EmbeddedRedis(Path(data)) as server,
    ):
        yield server.url


def make_app(url: str, prefix: str, metrics_enabled: bool) -> Flask:
    config = Config(
        redis_url=url,
        key_prefix=prefix,
        moderator_tokens={"bench": TOKEN},
        secret_key=b"metrics-bench-secret-key-0123456789abcdef",
        encryption_keys=KeyRing.parse(KeyRing.generate_entry("bench")),
        rate_limits_enabled=False,
        metrics_enabled=metrics_enabled,
        metrics_port=None,
    )
    return create_app(config)


def seed(client: FlaskClient, article: str) -> None:
    assert (
        client.put(
            "/api/v1/moderation/policy", json={**POLICY, "auto_approve": "all"}, headers=AUTH
        ).status_code
        == 200
    )
    for i in range(50):
        body = {
            "name": f"Reader {i}",
            "email": f"r{i}@example.com",
            "comment": f"comment {i}: " + "the council reviewed the plans " * 10,
        }
        response = client.post(f"/api/v1/articles/{article}/comments", json=body)
        assert response.status_code == 201, response.get_data(as_text=True)
    assert client.put("/api/v1/moderation/policy", json=POLICY, headers=AUTH).status_code == 200


def batch_cpu_us(action: Callable[[int], object], requests: int) -> float:
    started = time.process_time()
    for n in range(requests):
        action(n)
    return (time.process_time() - started) / requests * 1e6


def recording_us() -> dict[str, float]:
    """What a read and a submission record, timed alone (CPU, best of 7 runs of 20,000): the
    lower bound of the added cost, free of the noise of a whole request."""
    cache = metrics.CacheCounters("public")
    route = "/api/v1/articles/<slug:article_id>/comments"

    def read() -> None:
        cache.hit()  # the page, from the worker's memory
        metrics.observe_request(route, "GET", 200, 0.0012)

    def submit() -> None:
        cache.hit()  # the policy and the article's state, from memory
        metrics.observe_request(route, "POST", 202, 0.004)
        metrics.count_submission("held")
        metrics.count_decision("hold", "policy")

    found = {}
    for name, action in (("read", read), ("submit", submit)):
        best = float("inf")
        for _ in range(7):
            started = time.process_time()
            for _ in range(20_000):
                action()
            best = min(best, (time.process_time() - started) / 20_000 * 1e6)
        found[name] = best
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=7)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args(argv)
    with redis_url() as url:
        prefix = "mbench" + secrets.token_hex(3)
        apps = {label: make_app(url, f"{prefix}{label}", label == "on") for label in ("on", "off")}
        clients = {label: app.test_client() for label, app in apps.items()}
        try:
            for client in clients.values():
                seed(client, "read")
                client.get("/api/v1/articles/read/comments?limit=50")  # the cache listener
            time.sleep(0.5)
            nonce = secrets.token_hex(3)

            def reader(client: FlaskClient) -> Callable[[int], object]:
                def read(_n: int) -> object:
                    response = client.get("/api/v1/articles/read/comments?limit=50")
                    assert response.status_code == 200
                    return response

                return read

            def submitter(client: FlaskClient, label: str) -> Callable[[int], object]:
                def submit(n: int) -> object:
                    body = {
                        "name": "Bench",
                        "email": f"b{n % 97}@example.com",
                        "comment": f"bench {nonce} {label} {n} "
                        + "residents asked about the bus routes " * 8,
                    }
                    response = client.post("/api/v1/articles/submit/comments", json=body)
                    assert response.status_code == 202, response.get_data(as_text=True)
                    return response

                return submit

            results: dict[str, dict[str, list[float]]] = {}
            for scenario in ("read", "submit"):
                runs: dict[str, list[float]] = {"on": [], "off": []}
                for batch in range(args.batches):
                    order = ("on", "off") if batch % 2 == 0 else ("off", "on")
                    for label in order:
                        # Metrics are per process (the last app built sets the switch): one
                        # process per app, as under gunicorn, is what this emulates.
                        metrics.set_enabled(label == "on")
                        client = clients[label]
                        action = reader(client) if scenario == "read" else submitter(client, label)
                        runs[label].append(batch_cpu_us(action, args.requests))
                results[scenario] = runs
            metrics.set_enabled(True)
        finally:
            for app in apps.values():
                store = app.extensions["comment_service"].store
                for cache in (store.cache, store.moderation_cache):
                    if cache is not None:
                        cache.close()
            if os.environ.get("REDIS_URL"):
                redis = make_redis(url)
                for label in ("on", "off"):
                    delete_prefix(redis, f"{prefix}{label}")
                redis.close()

    alone = recording_us()
    print(
        "\nThe recording alone (CPU us per request, best of 7): "
        + ", ".join(f"{name} {us:.1f}" for name, us in alone.items())
    )
    print(
        f"App CPU per request in this process (Flask test client, {args.batches} alternating "
        f"batches of {args.requests}); median, and every batch"
    )
    print(
        f"{'scenario':<8} {'off us':>8} {'on us':>8} {'added':>7} {'off/on':>7}  batches (off/on)"
    )
    for scenario, runs in results.items():
        off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
        pairs = " ".join(f"{b / a:.3f}" for a, b in zip(runs["on"], runs["off"], strict=True))
        print(f"{scenario:<8} {off:>8.1f} {on:>8.1f} {on - off:>7.1f} {off / on:>7.3f}  {pairs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
