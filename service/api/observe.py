"""``GET /metrics`` on the main port, for a scraper holding ``METRICS_TOKEN`` (a bearer token).

Without METRICS_TOKEN the route answers 404, as if it were not there: the default exposure is
the separate metrics port (README, Metrics), which the public proxy never reaches.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request
from werkzeug.exceptions import NotFound

from .. import metrics
from ..errors import Problem
from ..observability import queue_collector
from .context import services

bp = Blueprint("observe", __name__)

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="metrics"'}


@bp.get("/metrics")
def scrape() -> Response:
    svc = services()
    expected = svc.config.metrics_token
    if expected is None:
        raise NotFound()
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.encode()
    ):
        raise Problem(
            401,
            "Unauthorized",
            "The metrics bearer token is required.",
            slug="unauthorized",
            headers=CHALLENGE,
        )
    body = metrics.render([queue_collector(svc.store)])
    response = Response(body, content_type=metrics.EXPOSITION_CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
