"""Reading request bodies: size, content type and syntax, each with its own status."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# How much of an oversized body is read and thrown away before answering 413. gunicorn itself
# drains only 64 KiB; reading a bit more lets ordinary clients see the 413 instead of a reset,
# while the bound keeps a hostile upload from costing more than this.
DRAIN_LIMIT = 1024 * 1024


def reject_oversized(request: Request, limit: int) -> None:
    length = request.content_length
    if length is not None and length > limit:
        stream = request.environ.get("wsgi.input")
        remaining = min(length, DRAIN_LIMIT)
        while stream is not None and remaining > 0:
            chunk = stream.read(min(65536, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
        raise RequestEntityTooLarge(f"The request body is larger than {limit} bytes.")


def is_json(request: Request) -> bool:
    mimetype = request.mimetype
    return mimetype == "application/json" or mimetype.endswith("+json")


def is_form(request: Request) -> bool:
    return request.mimetype in FORM_TYPES


def json_body(request: Request, *, allow_empty: bool = False) -> Any:
    """The parsed JSON body: 415 if it is not JSON, 400 if it does not parse."""
    raw = request.get_data(cache=True)
    if allow_empty and not raw:
        return {}
    if not is_json(request):
        raise UnsupportedMediaType("Send the body as application/json.")
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        # ValueError covers invalid UTF-8 too; RecursionError is absurdly deep nesting.
        raise BadRequest("The body is not valid JSON.") from None
    if b"\\u" in raw and _has_lone_surrogate(document):
        # JSON may spell a lone UTF-16 surrogate ("\ud800"); no such text can be stored or
        # sent on as UTF-8, so it is refused here rather than failing later.
        raise BadRequest("The body contains an unpaired Unicode surrogate escape.")
    return document


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def submission_body(request: Request) -> tuple[Any, bool]:
    """The submitted fields and whether they came from an HTML form."""
    if is_form(request):
        return request.form.to_dict(flat=True), True
    if is_json(request):
        return json_body(request), False
    raise UnsupportedMediaType(
        "Send the comment as application/json or application/x-www-form-urlencoded."
    )


def query_args(query: bytes) -> MultiDict[str, str]:
    """A raw query string parsed like Flask's request.args (UTF-8, blank values kept), for
    views that memoise their parsed arguments by it. Undecodable bytes become U+FFFD where
    werkzeug keeps them percent-encoded; no such value passes any query schema's pattern."""
    return MultiDict(parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True))
