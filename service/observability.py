"""Per request: its id, its metrics. Installed by the app factory before any other hook.

The request id is the ``X-Request-Id`` a trusted proxy sent (``TRUSTED_PROXIES`` above 0: the
same trust as its X-Forwarded-For), if it is a plain token of at most 128 characters; else one
is generated. It is echoed in the response, put in the WSGI environ (gunicorn's access line
reads it there, see service/gunicorn_logging.py) and set in :data:`service.logs.REQUEST_ID`,
so every line the service logs while serving the request carries it.

Metrics are recorded after the response is built, from what the app knows then: the route's
rule (never the path), the method, the status, and for submissions the stored verdict the
view leaves in ``g``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request

from . import metrics
from .api.context import EXTENSION_KEY, Services
from .clock import now_ms
from .config import Config
from .handed_over import HANDED_OVER
from .ids import id_time_ms
from .logs import ENVIRON_REQUEST_ID, REQUEST_ID
from .store import CommentStore

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
# What a proxy's id may look like to be kept (UUIDs, hex, nginx's $request_id, base64...):
# no spaces, no "@", nothing a log line would have to escape.
TRUSTED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
ENVIRON_STARTED = "service.started"
SUBMIT_ENDPOINT = "public.submit_comment"
VERDICT = "submission_verdict"  # g attribute: the stored status of an accepted submission
POLICY_ACTIONS = {"approved": "approve", "pending": "hold", "spam": "spam"}


def new_request_id() -> str:
    return os.urandom(16).hex()


def request_id_of(environ: dict[str, Any], trust_header: bool) -> str:
    """The request's id: the trusted proxy's ``X-Request-Id`` if it is a plain token, else a
    new one."""
    if trust_header:
        sent = environ.get("HTTP_X_REQUEST_ID")
        if sent is not None and TRUSTED_REQUEST_ID.fullmatch(sent):
            return str(sent)
    return new_request_id()


def record_answer(
    route: str | None,
    submission: bool,
    method: str,
    status: int,
    started: float | None,
    verdict: str | None,
) -> None:
    """The metrics of one answered request (``route``: its rule; ``submission``: whether it
    was a submission, whose outcome ``verdict`` is when accepted)."""
    if started is not None:
        metrics.observe_request(route, method, status, time.perf_counter() - started)
    if submission:
        metrics.count_submission(metrics.submission_outcome(status, verdict))
        if verdict in POLICY_ACTIONS:
            metrics.count_decision(POLICY_ACTIONS[verdict], "policy")


def install_observability(app: Flask, config: Config) -> None:
    trust_header = config.trusted_proxies > 0
    record = config.metrics_enabled

    @app.before_request
    def begin_request() -> None:
        environ = request.environ
        if HANDED_OVER in environ:
            # The fast path began this submission (service/api/fast_submissions.py): its id
            # and clock stand, and what it logged so far carries that id.
            REQUEST_ID.set(environ[ENVIRON_REQUEST_ID])
            return
        environ[ENVIRON_STARTED] = time.perf_counter()
        request_id = request_id_of(environ, trust_header)
        environ[ENVIRON_REQUEST_ID] = request_id
        REQUEST_ID.set(request_id)

    @app.after_request
    def end_request(response: Response) -> Response:
        environ = request.environ
        request_id = environ.get(ENVIRON_REQUEST_ID)
        if request_id is not None:
            response.headers[REQUEST_ID_HEADER] = request_id
        if record:
            rule = request.url_rule
            submission = rule is not None and rule.endpoint == SUBMIT_ENDPOINT
            record_answer(
                rule.rule if rule is not None else None,
                submission,
                request.method,
                response.status_code,
                environ.get(ENVIRON_STARTED),
                g.get(VERDICT) if submission else None,
            )
        REQUEST_ID.set(None)
        return response


def queue_collector(store: CommentStore, *, count_errors: bool = True) -> metrics.QueueCollector:
    """The moderation queue's gauges, read from Redis when scraped (one round trip)."""

    def summary() -> tuple[int, float]:
        count, oldest = store.pending_summary()
        if oldest is None:
            return count, 0.0
        return count, max(0, now_ms() - id_time_ms(oldest)) / 1000

    return metrics.QueueCollector(summary, count_errors=count_errors)


def serve_metrics_port(app: Flask, directory: Path | None = None) -> bool:
    """Serve the metrics on METRICS_HOST:METRICS_PORT from this process (a daemon thread),
    if configured; whether it is now listening.

    Called where no request is served and every worker is outlived: gunicorn's master, with
    preload_app (service/wsgi.py), or under granian the launcher (service/serve.py), so a
    scrape never takes a worker's thread. ``directory``: the workers' metrics files, when not
    this process's own (the launcher imported the metrics before it named theirs). A port
    already taken is logged, not fatal: the service serves comments without its metrics port.
    """
    svc: Services = app.extensions[EXTENSION_KEY]
    config = svc.config
    if config.metrics_port is None:
        return False
    # This process forks the workers: its scrape thread records nothing (QueueCollector).
    registry = metrics.ScrapeRegistry(
        [queue_collector(svc.store, count_errors=False)], directory or metrics.METRICS_DIR
    )
    try:
        metrics.serve_http(config.metrics_port, config.metrics_host, registry=registry)
    except OSError as error:
        log.warning(
            "metrics port %s:%s not served: %s",
            config.metrics_host,
            config.metrics_port,
            error.strerror or type(error).__name__,
        )
        return False
    log.info("metrics on http://%s:%s/metrics", config.metrics_host, config.metrics_port)
    return True
