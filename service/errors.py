"""One error shape for everything: RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, json, request
from marshmallow import ValidationError
from redis.exceptions import RedisClusterException, RedisError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response as BaseResponse

from . import metrics
from .documents import etag_of, moderator_state
from .domain_errors import (
    AlreadyReported,
    ArticleClosed,
    AuthorVersionMismatch,
    ClaimHeld,
    CommentFlood,
    CommentNotFound,
    Conflict,
    DomainError,
    EditTokenInvalid,
    EditWindowClosed,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    ParentNotPublished,
    RateLimited,
    StaleVersion,
    WebhookNotFound,
)
from .handed_over import HANDED_OVER, HandedOver
from .store import durability
from .store.client import is_unavailable

PROBLEM_MIMETYPE = "application/problem+json"
log = logging.getLogger(__name__)


class Problem(HTTPException):
    """An HTTP error with a problem type of our own and optional extension members."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(description=detail)
        self.code = status
        self.title = title
        self.type = f"/problems/{slug}" if slug else "about:blank"
        self.extra_headers = headers or {}
        self.extensions = extensions


def validation_problem(errors: dict[str, Any], detail: str | None = None) -> Problem:
    return Problem(
        422,
        "Unprocessable Content",
        detail or "One or more fields are invalid: " + ", ".join(sorted(errors)) + ".",
        slug="validation-error",
        errors=errors,
    )


def domain_problem(error: DomainError) -> Problem:
    """The one mapping of the domain's refusals to HTTP."""
    if isinstance(error, ArticleClosed):
        return Problem(
            403, "Forbidden", "Comments on this article are closed.", slug="comments-closed"
        )
    if isinstance(error, ParentNotPublished):
        return validation_problem({"parent_id": ["Not a published comment of this article."]})
    if isinstance(error, CommentFlood):
        detail = (
            "Too many comments from this address in the last hour."
            if error.hourly
            else "Comments are coming too fast; wait before posting again."
        )
        return Problem(
            429,
            "Too Many Requests",
            detail,
            slug="comment-flood",
            headers={"Retry-After": str(error.retry_after_seconds)},
        )
    if isinstance(error, RateLimited):
        return Problem(
            429,
            "Too Many Requests",
            f"Rate limit exceeded: {error.description}. Retry later.",
            slug="rate-limited",
            headers={"Retry-After": str(max(1, error.retry_after_seconds))},
        )
    if isinstance(error, CommentNotFound):
        return Problem(404, "Not Found", "No comment has this id.", slug="comment-not-found")
    if isinstance(error, WebhookNotFound):
        return Problem(
            404, "Not Found", "No webhook endpoint has this id.", slug="webhook-not-found"
        )
    if isinstance(error, Conflict):
        return Problem(409, "Conflict", error.detail)
    if isinstance(error, InvalidIdempotencyKey):
        return Problem(
            400,
            "Bad Request",
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            slug="idempotency-key-invalid",
        )
    if isinstance(error, IdempotencyKeyReused):
        return Problem(
            422,
            "Unprocessable Content",
            "This Idempotency-Key was used for a different request; use a new key.",
            slug="idempotency-key-reused",
        )
    if isinstance(error, IdempotencyKeyInFlight):
        return Problem(
            409,
            "Conflict",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            slug="idempotency-key-in-flight",
            headers={"Retry-After": "1"},
        )
    if isinstance(error, AuthorVersionMismatch):
        return Problem(
            412,
            "Precondition Failed",
            f"The comment is at version {error.version} now: read it and edit again.",
            slug="version-mismatch",
            headers={"ETag": f'"v{error.version}"'},
        )
    if isinstance(error, EditTokenInvalid):
        return Problem(
            403,
            "Forbidden",
            "An Edit-Token header with this comment's edit token is required.",
            slug="edit-token-invalid",
        )
    if isinstance(error, EditWindowClosed):
        return Problem(
            403,
            "Forbidden",
            f"This comment could be edited or deleted until {error.ends_at}.",
            slug="edit-window-closed",
            window_ends_at=error.ends_at,
        )
    if isinstance(error, AlreadyReported):
        return Problem(
            409, "Conflict", "You have reported this comment already.", slug="already-reported"
        )
    if isinstance(error, ClaimHeld):
        return Problem(
            409,
            "Conflict",
            f"{error.moderator} is reviewing this comment (claimed at {error.since}, "
            f"until {error.until} unless renewed).",
            slug="claimed",
            holder=error.moderator,
            claimed_since=error.since,
            claimed_until=error.until,
        )
    if isinstance(error, StaleVersion):
        current = error.current
        return Problem(
            412,
            "Precondition Failed",
            f"The comment is at version {current.version} now: read it and decide again.",
            slug="version-mismatch",
            headers={"ETag": f'"{etag_of(current)}"'},
            current=moderator_state(current),
        )
    raise TypeError(f"no problem is defined for {type(error).__name__}")


def problem_document(problem: Problem) -> dict[str, Any]:
    """A problem as its JSON document, for answers that carry several (bulk decisions)."""
    return {
        "type": problem.type,
        "title": problem.title,
        "status": problem.code,
        "detail": problem.description or "",
        **problem.extensions,
    }


def problem_response(
    status: int,
    title: str,
    detail: str,
    type_: str = "about:blank",
    base: BaseResponse | None = None,
    **extensions: Any,
) -> BaseResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extensions}
    response: BaseResponse = base if base is not None else Response()
    response.set_data(json.dumps(body))
    response.status_code = status
    response.mimetype = PROBLEM_MIMETYPE
    return response


def register_error_handlers(app: Flask, *, retry_after: int) -> None:
    @app.errorhandler(Problem)
    def handle_problem(error: Problem) -> BaseResponse:
        response = problem_response(
            error.code or 500,
            error.title,
            error.description or "",
            error.type,
            **error.extensions,
        )
        response.headers.update(error.extra_headers)
        return response

    @app.errorhandler(DomainError)
    def handle_domain(error: DomainError) -> BaseResponse:
        return handle_problem(domain_problem(error))

    @app.errorhandler(ValidationError)
    def handle_validation(error: ValidationError) -> BaseResponse:
        messages = error.messages
        if not isinstance(messages, dict):
            messages = {"_schema": messages}
        return handle_problem(validation_problem(messages))

    @app.errorhandler(HTTPException)
    def handle_http(error: HTTPException) -> BaseResponse:
        # Starting from the exception's own response keeps its headers (Allow on 405,
        # WWW-Authenticate on 401, Retry-After on 429/503) instead of silently dropping them.
        base = error.get_response()
        return problem_response(
            error.code or 500, error.name, error.description or error.name, base=base
        )

    @app.before_request
    def collect_unconfirmed_writes() -> None:
        handed_over: HandedOver | None = request.environ.get(HANDED_OVER)
        carried = handed_over.unconfirmed if handed_over is not None else ()
        g.durability_scope = durability.begin_request(carried)

    @app.teardown_request
    def forget_unconfirmed_writes(_error: BaseException | None) -> None:
        scope = g.pop("durability_scope", None)
        if scope is not None:
            durability.end_request(scope)

    @app.after_request
    def refuse_unconfirmed(response: BaseResponse) -> BaseResponse:
        # A write the primary applied but no replica confirmed in time may not survive a
        # failover: the request was answered as usual (so an Idempotency-Key keeps that
        # answer), the client is told 503 and retries (service/store/durability.py).
        if response.status_code >= 400 or not durability.unconfirmed_writes():
            return response
        metrics.count_redis_error(durability.ReplicasBehind())
        log.warning(
            "writes not confirmed by a replica in time: %s",
            ", ".join(durability.unconfirmed_writes()),
        )
        return unavailable()

    def unavailable() -> BaseResponse:
        response = problem_response(
            503,
            "Service Unavailable",
            "The comment store is temporarily unavailable. Retry later.",
            "/problems/store-unavailable",
        )
        response.headers["Retry-After"] = str(retry_after)
        return response

    @app.errorhandler(RedisError)
    @app.errorhandler(RedisClusterException)
    def handle_redis_error(error: Exception) -> BaseResponse:
        # Unreachable, timing out, resharding (a MOVED/ASK the client could not follow,
        # TRYAGAIN), failing over (CLUSTERDOWN, READONLY, no master), or refusing writes no
        # replica has seen (NOREPLICAS): the client may retry. Anything else is a bug.
        if not is_unavailable(error):
            return handle_unexpected(error)
        metrics.count_redis_error(error)
        log.warning("redis unavailable: %s", type(error).__name__)
        return unavailable()

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> BaseResponse:
        if isinstance(error, HTTPException):
            return handle_http(error)
        if isinstance(error, RedisError):  # a reply error, a script error: still Redis's kind
            metrics.count_redis_error(error)
        log.exception("unhandled error")
        return handle_http(InternalServerError())
