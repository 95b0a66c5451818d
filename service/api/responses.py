"""Building responses the same way everywhere: JSON bodies, cacheable public reads."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from werkzeug.wrappers import Response as BaseResponse

from .. import json_text

# Short enough that a newly approved comment shows within seconds, long enough that a CDN
# absorbs a front-page burst; ETags make the revalidation cheap. Every public read (the JSON
# pages and counts, the feeds) is cached the same way.
PUBLIC_CACHE_CONTROL = "public, max-age=5, stale-while-revalidate=30"


def json_response(body: Any, status: int = 200) -> Response:
    return Response(
        json_text.compact(body),
        status=status,
        mimetype="application/json",
    )


def cacheable(body: bytes, etag: str, content_type: str = "application/json") -> BaseResponse:
    """A public read: ``304`` when the client's ``If-None-Match`` holds ``etag``, else the
    body; both with the ETag and the public Cache-Control."""
    if request.if_none_match.contains(etag):
        response = Response(status=304)
        del response.headers["Content-Type"]
    else:
        response = Response(body, content_type=content_type)
    response.set_etag(etag)
    response.headers["Cache-Control"] = PUBLIC_CACHE_CONTROL
    return response
