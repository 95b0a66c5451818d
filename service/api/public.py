"""What embedding sites and article pages call: submit, read published comments, counts."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, g, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from .. import json_text
from ..author_edits import EditRequest
from ..documents import render_accepted, render_counts, render_edited, render_public_page
from ..errors import validation_problem
from ..handed_over import ACCEPTED_JSON, HANDED_OVER, HandedOver
from ..idempotency import Replay
from ..observability import VERDICT
from ..reader_reports import ReportRequest
from ..replayed_reads import replayable
from ..schemas import (
    CountsArgsSchema,
    CountsRequestSchema,
    EditSchema,
    PageArgsSchema,
    ReportSchema,
)
from ..states import Status
from ..submissions import Accepted, SubmissionRequest
from .context import Services, services
from .requests import json_body, query_args, submission_body
from .responses import PUBLIC_CACHE_CONTROL as PUBLIC_CACHE_CONTROL
from .responses import cacheable, json_response
from .versions import accepted_versions, with_etag

bp = Blueprint("public", __name__, url_prefix="/api/v1")

_page_args = PageArgsSchema()
_counts_args = CountsArgsSchema()
_counts_request = CountsRequestSchema()
_report = ReportSchema()
_edit = EditSchema()
DEFAULT_LIMIT: int = _page_args.fields["limit"].load_default


@bp.post("/articles/<slug:article_id>/comments")
def submit_comment(article_id: str) -> BaseResponse:
    svc = services()
    client_ip = request.remote_addr or ""
    ip_hash = svc.hasher.ip(client_ip)  # for the rate limit and the flood guards alike
    data, from_form = submission_body(request)
    schema = svc.form_submission_schema if from_form else svc.submission_schema
    fields: dict[str, Any] = schema.load(data)
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return _submit(article_id, fields, from_form, client_ip, ip_hash)
    handed_over: HandedOver | None = request.environ.get(HANDED_OVER)
    if handed_over is None:
        attempt = svc.idempotency.begin(key, ip_hash, article_id, fields)
    elif isinstance(handed_over.begun, Exception):
        raise handed_over.begun  # where begin() raised it
    else:
        attempt = handed_over.begun
    if isinstance(attempt, Replay):
        return _replayed(attempt)
    try:
        response = _submit(article_id, fields, from_form, client_ip, ip_hash)
    except BaseException:
        svc.idempotency.abandon(attempt)  # refused: a retry is processed afresh
        raise
    if handed_over is not None and handed_over.finish_error is not None:
        raise handed_over.finish_error  # where finish() raised it
    if handed_over is None or not handed_over.finished:
        svc.idempotency.finish(
            attempt,
            response.status_code,
            response.get_data(as_text=True),
            response.headers.get("Location", ""),
        )
    return response


def _submit(
    article_id: str, fields: dict[str, Any], from_form: bool, client_ip: str, ip_hash: str
) -> BaseResponse:
    svc = services()
    redirect_to = fields.pop("redirect", None)
    if redirect_to is not None and not _allowed_redirect(redirect_to, svc.config.allowed_origins):
        raise validation_problem({"redirect": ["Not an allowed origin for redirects."]})
    # A redirect cannot carry a commenter key back, so none is used or handed out.
    follows_redirect = from_form and redirect_to is not None
    handed_over: HandedOver | None = request.environ.get(HANDED_OVER)
    if handed_over is None:
        request_ = submission_request(
            svc, article_id, fields, client_ip, ip_hash, hand_out_key=not follows_redirect
        )
        accepted = svc.submissions.submit(request_)
    elif isinstance(handed_over.submitted, Exception):
        raise handed_over.submitted  # where submit() raised it
    else:
        accepted = handed_over.submitted
    setattr(g, VERDICT, accepted.status)  # the submission's outcome, for the metrics
    if follows_redirect:
        return redirect(redirect_to, code=303)
    body, status = accepted_answer(accepted)
    response = Response(body, status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"  # it carries the commenter's key
    request.environ[ACCEPTED_JSON] = True
    return response


def submission_request(
    svc: Services,
    article_id: str,
    fields: dict[str, Any],
    client_ip: str,
    ip_hash: str,
    *,
    hand_out_key: bool,
) -> SubmissionRequest:
    """The domain's submission from the validated fields (also the fast path's,
    service/api/fast_submissions.py)."""
    return SubmissionRequest(
        article_id=article_id,
        name=fields["name"],
        email=fields["email"],
        comment=fields["comment"],
        website=fields["website"],
        parent_id=fields["parent_id"],
        honeypot=fields["fax"],
        client_ip=client_ip,
        ip_hash=ip_hash,
        # Counted by the insert, in its one round trip.
        limits=svc.rate_limits.counters("submit", ip_hash),
        commenter_key=fields.get("commenter_key"),
        hand_out_key=hand_out_key,
    )


def accepted_answer(accepted: Accepted) -> tuple[str, int]:
    """An accepted submission's JSON answer and its status (201 published, else 202)."""
    published = accepted.status == Status.APPROVED
    body = render_accepted(
        accepted.comment,
        published,
        accepted.commenter_key,
        accepted.edit_token,
        accepted.edit_until,
    )
    return json_text.compact(body), 201 if published else 202


def _replayed(replay: Replay) -> BaseResponse:
    """The first answer to this Idempotency-Key, again (service/idempotency.py)."""
    if replay.location:
        return redirect(replay.location, code=replay.status)
    response = Response(replay.body, status=replay.status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/comments/<comment_id>/reports")
def report_comment(comment_id: str) -> BaseResponse:
    """A reader reports a published comment (service/reader_reports.py)."""
    svc = services()
    ip_hash = svc.hasher.ip(request.remote_addr or "")
    svc.rate_limits.check("report", ip_hash)
    fields = _report.load(json_body(request))
    svc.reports.report(ReportRequest(comment_id, fields["reason"], fields["note"], ip_hash))
    response = json_response({"comment_id": comment_id, "reason": fields["reason"]}, 202)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.patch("/comments/<comment_id>")
def edit_comment(comment_id: str) -> BaseResponse:
    """The author edits their comment with its edit token (service/author_edits.py)."""
    svc = services()
    fields = _edit.load(json_body(request))
    edited = svc.author_edits.edit(
        EditRequest(
            comment_id=comment_id,
            token=request.headers.get("Edit-Token", ""),
            name=fields.get("name"),
            comment=fields.get("comment"),
            website=fields.get("website"),
            website_given="website" in fields,
            client_ip=request.remote_addr or "",
            accepted_versions=accepted_versions(request),
        )
    )
    response = with_etag(json_response(render_edited(edited)), edited)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("/comments/<comment_id>")
def delete_own_comment(comment_id: str) -> BaseResponse:
    """The author deletes their comment with its edit token."""
    services().author_edits.delete(comment_id, request.headers.get("Edit-Token", ""))
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


@lru_cache(maxsize=4096)
def _parse_page_query(query: bytes) -> tuple[int, str | None]:
    """A page query parsed once per distinct query string: article pages send the same few
    queries over and over, and the schema costs more than the cached page it selects."""
    if not query:
        return DEFAULT_LIMIT, None
    args = _page_args.load(query_args(query))
    return args["limit"], args["cursor"]


@bp.get("/articles/<slug:article_id>/comments")
def list_comments(article_id: str) -> BaseResponse:
    svc = services()
    limit, cursor = _parse_page_query(request.query_string)
    page = svc.store.cached_public_page(article_id, limit, cursor)
    if page is None:
        # Only reads that reach Redis count against the client's limit: the limit protects
        # the store, and what the worker answers from memory costs it nothing.
        _count_read()
        page = svc.store.public_page(article_id, limit, cursor)
    rendered: tuple[bytes, str] | None = page.memo.get("rendered")
    if rendered is None:
        # The documents are stored pre-rendered; only the envelope is built, once per page
        # version (a cached page keeps its rendering).
        body = render_public_page(
            article_id, (doc for _, doc in page.items), page.next_cursor, page.total
        )
        rendered = (body, hashlib.sha1(body, usedforsecurity=False).hexdigest())
        page.memo["rendered"] = rendered
    store = svc.store
    # The same request is answered again from this worker's memory, without Flask, for as long
    # as the cache holds this page (service/replayed_reads.py).
    replayable(lambda _address: store.still_holds_page(article_id, limit, cursor, page))
    return _cacheable(*rendered)


@lru_cache(maxsize=4096)
def _parse_counts_query(query: bytes) -> tuple[str, ...]:
    """Article ids of a counts query, parsed once per distinct query string (pages ask for the
    same lists over and over)."""
    ids = query_args(query).getlist("article_id")
    args = _counts_args.load({"article_id": ids})
    return tuple(dict.fromkeys(args["article_id"]))


@bp.get("/comment-counts")
def comment_counts() -> BaseResponse:
    article_ids = _parse_counts_query(request.query_string)
    counts = _counts_of(article_ids)
    store = services().store
    replayable(lambda _address: store.still_holds_counts(article_ids, counts))  # as list_comments
    return _cacheable(*_counts_document(article_ids, counts))


@bp.post("/comment-counts")
def comment_counts_in_batch() -> BaseResponse:
    """The same counts for a list too long for a URL (see gunicorn_conf.limit_request_line)."""
    ids = _counts_request.load(json_body(request))["article_id"]
    article_ids = tuple(dict.fromkeys(ids))
    body, _ = _counts_document(article_ids, _counts_of(article_ids))
    return Response(body, mimetype="application/json")


def _counts_of(article_ids: tuple[str, ...]) -> tuple[int, ...]:
    svc = services()
    counts = svc.store.cached_counts(article_ids)
    if counts is None:
        _count_read()
        found = svc.store.approved_counts(list(article_ids))
        counts = tuple(found[article_id] for article_id in article_ids)
    return counts


@lru_cache(maxsize=1024)
def _counts_document(article_ids: tuple[str, ...], counts: tuple[int, ...]) -> tuple[bytes, str]:
    """The counts body and its ETag, rendered once per distinct answer: pages send the same
    lists over and over, and counts change far less often than they are read. (At most
    1,024 answers of up to 100 ids: a few MB per worker, whatever clients send.)"""
    body = render_counts(article_ids, counts)
    return body, hashlib.sha1(body, usedforsecurity=False).hexdigest()


def _count_read() -> None:
    """Count a read that reaches Redis against the client's read limit."""
    svc = services()
    svc.rate_limits.check("read", svc.hasher.ip(request.remote_addr or ""))


def _allowed_redirect(url: str, origins: tuple[str, ...]) -> bool:
    """A configured site, or this service itself (its thread page without JavaScript posts
    here and comes back): never anywhere else."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    return origin in origins or origin == request.host_url.rstrip("/").lower()


def _cacheable(body: bytes, etag: str) -> BaseResponse:
    return cacheable(body, etag)
