"""Operations: liveness, readiness and the API contract itself."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response

from .context import services
from .responses import json_response

bp = Blueprint("ops", __name__)

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"


@bp.get("/healthz")
def healthz() -> Response:
    # Liveness only: a process that can answer this should not be restarted, even when Redis
    # is away (that is what /readyz reports).
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    # An unreachable Redis raises here and becomes the 503 problem with Retry-After.
    services().store.ping()
    return json_response({"status": "ready"})


@bp.get("/openapi.yaml")
def openapi() -> Response:
    response = Response(OPENAPI_PATH.read_bytes(), mimetype="application/yaml")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
