"""Reading request bodies: size, content type and syntax, each with its own status."""

from __future__ import annotations

import io
import json
from typing import IO, Any
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
    """413 for a body over ``limit`` bytes, however it is framed.

    A Content-Length says so up front. A chunked body has none: werkzeug would read it
    through a stream capped at the limit and stop there silently, so a form over the limit was
    parsed cut short (and stored) and JSON over it failed as invalid. Such a body is read here,
    at most limit + 1 bytes, and handed on whole from memory; one byte more than the limit is
    413 before anything parses it."""
    environ = request.environ
    length = request.content_length
    if length is not None:
        if length > limit:
            _drain(environ.get("wsgi.input"), min(length, DRAIN_LIMIT))
            raise RequestEntityTooLarge(f"The request body is larger than {limit} bytes.")
        return
    # The WSGI keys, not request.headers: this runs on every request, the read path included.
    if "HTTP_TRANSFER_ENCODING" not in environ:
        return  # no length and no framing: HTTP says there is no body
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    body = _read_at_most(stream, limit + 1)
    if len(body) > limit:
        _drain(stream, DRAIN_LIMIT - len(body))
        raise RequestEntityTooLarge(f"The request body is larger than {limit} bytes.")
    environ["wsgi.input"] = io.BytesIO(body)
    # The body now ends where the stream does, which is what this key promises werkzeug (it
    # reads a stream without Content-Length only when the server sets it, as gunicorn does).
    environ["wsgi.input_terminated"] = True


def _read_at_most(stream: IO[bytes], size: int) -> bytes:
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        try:
            chunk = stream.read(min(65536, remaining))
        except Exception:
            # The server's de-chunking failed (gunicorn raises its own parse errors for a bad
            # chunk size or terminator, or IOError when the client goes away): the client
            # sent no readable body, which is its error, not the service's.
            raise BadRequest("The chunked request body is malformed or incomplete.") from None
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _drain(stream: IO[bytes] | None, budget: int) -> None:
    """Read and drop up to ``budget`` bytes, so that an ordinary client sees the 413 rather
    than a reset connection, at a bounded cost."""
    while stream is not None and budget > 0:
        try:
            chunk = stream.read(min(65536, budget))
        except Exception:
            return  # the 413 stands whatever the rest of the body looks like
        if not chunk:
            return
        budget -= len(chunk)


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
