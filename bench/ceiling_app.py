"""The ceiling and the write floor for ``bench/http_bench.py``: bare Flask, two routes.

``GET /ceiling`` (also ``/``) is the least a Flask app can do per request: a small JSON
document through ``jsonify``, nothing else. The harness runs this app under the service's own
gunicorn configuration (``-c python:service.gunicorn_conf``, same ``WORKERS``), so the ratio of
a scenario's req/s to this route's req/s is the share of the ceiling that the service keeps;
the ceiling itself is what Flask + gunicorn + wrk reach on this machine.

``POST /write-floor`` is the least a write can cost: it reads the request body and stores it
with ONE Redis command (``SET {<FLOOR_KEY_PREFIX>}:floor:<16 hex> <body> PX 600000``), then
answers ``{"status": "pending"}`` with 202. No parsing, validation, policy or index. The harness
points ``FLOOR_REDIS_URL`` at the Redis the service uses (the embedded one is append-only with
``appendfsync always``: every SET waits for an fsync), so its req/s is the most any submission
can reach here. The client is the service's own (``service/store/client.py``), made lazily in
each worker on the first write: importing the app needs no Redis, and ``/ceiling`` never
touches it. Without ``FLOOR_REDIS_URL`` the route answers 503. With ``?busy_us=N`` it first
burns N microseconds of its thread's CPU in Python (:func:`burn_cpu`): the busy mixed floor,
a write that costs what a submission costs but runs none of the service's code.

    python -m gunicorn -c python:service.gunicorn_conf bench.ceiling_app:app
    python -m granian --interface wsgi bench.ceiling_app:app
    python -m granian --interface rsgi --loop uvloop bench.ceiling_app:rsgi_app

``GET /page`` is the read's physical bound: bare Flask answering a body of the same shape and
size as the service's 50-comment page (~24 KB of JSON, made once at import, as the service keeps
its pages pre-rendered): what serving those bytes costs this server, wrk and the kernel, with
none of the service's code. The difference between ``/ceiling`` and ``/page`` is payload, not
code. ``GET /queue-page`` is the same for the moderator queue's page of 50: moderator views carry
the email, every reason with its detail, the history, the version and the claim, so the queue's
page is more than twice the read's (~53 KB).

``rsgi_app`` is the app behind the service's own RSGI bridge (service/rsgi_bridge.py, with
THREADS, MAX_BODY_BYTES and REQUEST_READ_TIMEOUT from the environment as the service reads
them): the ceiling of the layout the service is served with under granian.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time

from flask import Flask, Response, jsonify, request

from service.config import Config
from service.rsgi_bridge import RSGIBridge
from service.store.client import RedisClient, make_redis

FLOOR_TTL_MS = 10 * 60 * 1000  # floor keys expire: nothing accumulates in a shared Redis

app = Flask(__name__)

_client: RedisClient | None = None
_client_lock = threading.Lock()


_config = Config.from_env()
rsgi_app = RSGIBridge(
    app,
    threads=_config.threads,
    max_body_bytes=_config.max_body_bytes,
    read_timeout=_config.request_read_timeout,
)


@app.get("/")
@app.get("/ceiling")
def ceiling() -> Response:
    return jsonify({"status": "ok", "comments": []})


PAGE_WORDS = (
    "the council said that budget plans for the new library would be reviewed next week "
    "while residents asked whether parking and bus routes near the station could change"
).split()


def page_body(comments: int = 50, length: int = 303) -> bytes:
    """A page like ``GET /api/v1/articles/<id>/comments?limit=50`` answers: the same fields,
    texts of ``length`` characters (the page is then within 0.2% of the
    service's 23,683 bytes), rendered once (the service stores its documents rendered)."""
    docs = []
    for n in range(1, comments + 1):
        words = [PAGE_WORDS[(n * 7 + i * (1 + n % 5)) % len(PAGE_WORDS)] for i in range(60)]
        text = " ".join(words)[: length - 12] + f" (seed {n})"
        docs.append(
            {
                "id": f"01M8SE95Z{n:017d}",
                "article_id": "bench-read",
                "parent_id": None,
                "name": f"Seed reader {n}",
                "comment": text,
                "website": None,
                "created_at": "2026-12-01T18:36:11.620Z",
            }
        )
    document = {"article_id": "bench-read", "comments": docs, "next_cursor": None, "total": 50}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


PAGE_BODY = page_body()

# A held comment's reasons as the bench's pending comments have them (a first comment that
# completes the seeds' campaign: their texts are alike), and the history entry that says so.
QUEUE_REASONS = [
    {
        "code": "first_comment",
        "detail": "no approved comment sent with this commenter key in the last 90 days "
        "(or a rejected one since)",
        "action": "hold",
    },
    {
        "code": "campaign",
        "detail": "campaign 01M8SE95Z00000000000000001: 250 similar comments from 250 authors",
        "action": "hold",
    },
]


def queue_body(comments: int = 50, length: int = 303) -> bytes:
    """A page like ``GET /api/v1/moderation/queue?limit=50`` answers: the moderator view's
    fields (schemas.py's moderator schema), rendered once."""
    docs = []
    page = json.loads(page_body(comments, length))["comments"]
    for n, public in enumerate(page, start=1):
        at = public["created_at"]
        docs.append(
            {
                **public,
                "article_id": "bench-queue",
                "email": f"seed-pending-{n}@example.com",
                "status": "pending",
                "updated_at": at,
                "decided_by": None,
                "decided_at": None,
                "note": None,
                "reasons": QUEUE_REASONS,
                "history": [
                    {
                        "at": at,
                        "actor": "policy",
                        "from": None,
                        "to": "pending",
                        "note": "first_comment, campaign",
                    }
                ],
                "version": 2,
                "edits": [],
                "claim": None,
            }
        )
    document = {"comments": docs, "next_cursor": "MDFNOFNFOTVaMDAwMDAwMDAwMDAwMDA1MA", "total": 300}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


QUEUE_BODY = queue_body()


@app.get("/page")
def page() -> Response:
    return Response(PAGE_BODY, mimetype="application/json")


@app.get("/queue-page")
def queue_page() -> Response:
    return Response(QUEUE_BODY, mimetype="application/json")


def _floor_client(url: str) -> RedisClient:
    """One client (and connection pool) per worker process, made on the first write; gunicorn
    preloads the app in the master, so nothing made at import time may hold a connection."""
    global _client
    client = _client
    if client is None:
        with _client_lock:
            if _client is None:
                _client = make_redis(url)  # the service's own client settings
            client = _client
    return client


# The most CPU a floor write may be asked to burn (``?busy_us=``): a submission's order of size.
MAX_BUSY_US = 100_000


def burn_cpu(microseconds: int) -> None:
    """Spend ``microseconds`` of this thread's CPU in Python bytecode, holding the GIL as the
    service's own Python does (released only where the interpreter switches threads): the
    busy mixed floor's write (bench/http_bench.py, mixbusy) costs what a submission costs,
    without the service's code."""
    end = time.thread_time_ns() + microseconds * 1000
    total = 0
    while time.thread_time_ns() < end:
        for i in range(64):
            total += i * i


@app.post("/write-floor")
def write_floor() -> tuple[Response, int]:
    url = os.environ.get("FLOOR_REDIS_URL")
    if not url:
        return jsonify({"status": "unavailable", "error": "FLOOR_REDIS_URL is not set"}), 503
    body = request.get_data()
    busy_us = request.args.get("busy_us", type=int) or 0
    if busy_us > 0:
        burn_cpu(min(busy_us, MAX_BUSY_US))
    prefix = os.environ.get("FLOOR_KEY_PREFIX") or "bench"
    key = "{" + prefix + "}:floor:" + secrets.token_hex(8)
    _floor_client(url).set(key, body, px=FLOOR_TTL_MS)
    return jsonify(status="pending"), 202
