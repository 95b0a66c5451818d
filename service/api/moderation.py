"""The moderators' API: the queue and listings, one comment, decisions, deletion, the policy
and closing articles."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NoReturn

from flask import Blueprint, Response, g, request

from ..clock import iso_from_ms, now_ms
from ..errors import Problem
from ..ids import is_valid_id
from ..models import HistoryEntry, StoredComment
from ..moderation.policy import policy_to_document
from ..policy_terms import hash_identifier_terms
from ..schemas import (
    ArticleSettingsSchema,
    DecisionSchema,
    ModeratorCommentSchema,
    PolicySchema,
    QueueArgsSchema,
    StatusListArgsSchema,
    moderator_view,
)
from ..submissions import load_policy
from .auth import authenticate
from .context import services
from .public import render_public
from .requests import json_body, query_args
from .responses import json_response

bp = Blueprint("moderation", __name__, url_prefix="/api/v1/moderation")

_comment_view = ModeratorCommentSchema()
_queue_args = QueueArgsSchema()
_list_args = StatusListArgsSchema()
_decision = DecisionSchema()
_policy = PolicySchema()
_article_settings = ArticleSettingsSchema()
DECISIONS = {"approve": "approved", "reject": "rejected", "spam": "spam"}


@bp.before_request
def require_moderator() -> None:
    if request.method == "OPTIONS":
        return  # a CORS preflight carries no credentials by design
    g.moderator = authenticate(request, services())


@bp.after_request
def never_cache(response: Response) -> Response:
    # Moderator views hold personal data: no shared cache may keep them.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/queue")
def queue() -> Response:
    return _listing("pending", _queue_query(request.query_string))


@bp.get("/comments")
def list_comments() -> Response:
    args = _status_query(request.query_string)
    return _listing(args["status"], args)


# A moderator's client polls the same few listings over and over: their arguments are parsed
# (and validated) once per distinct query string. Shared between requests, so read-only.
@lru_cache(maxsize=1024)
def _queue_query(query: bytes) -> Mapping[str, Any]:
    return MappingProxyType(_queue_args.load(query_args(query)))


@lru_cache(maxsize=1024)
def _status_query(query: bytes) -> Mapping[str, Any]:
    return MappingProxyType(_list_args.load(query_args(query)))


@bp.get("/comments/<comment_id>")
def get_comment(comment_id: str) -> Response:
    return json_response(_comment_view.dump(_load(comment_id)))


@bp.post("/comments/<comment_id>/<any(approve, reject, spam):decision>")
def decide(comment_id: str, decision: str) -> Response:
    svc = services()
    note: str = _decision.load(json_body(request, allow_empty=True))["note"]
    comment = _load(comment_id)
    moment = now_ms()
    target = DECISIONS[decision]
    entry = HistoryEntry(at=iso_from_ms(moment), actor=f"moderator:{g.moderator}", to=target,
                         note=note)
    result = svc.store.transition(comment, target, entry, render_public(comment.public()),
                                  now_ms=moment)
    if result is None:  # deleted between the read and the decision
        _not_found()
    return json_response(_comment_view.dump(_load(comment_id)))


@bp.delete("/comments/<comment_id>")
def delete_comment(comment_id: str) -> Response:
    services().store.delete(_load(comment_id))
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


@bp.get("/policy")
def get_policy() -> Response:
    return json_response(policy_to_document(load_policy(services().store.policy_json())))


@bp.put("/policy")
def put_policy() -> Response:
    # Email and IP terms are kept only as keyed hashes (see policy_terms).
    document = hash_identifier_terms(_policy.load(json_body(request)), services().hasher)
    # Store the complete document, defaults filled in, so every worker reads the same policy.
    complete = policy_to_document(load_policy(json.dumps(document, sort_keys=True)))
    services().store.save_policy_json(json.dumps(complete, sort_keys=True))
    return json_response(complete)


@bp.put("/articles/<slug:article_id>")
def put_article(article_id: str) -> Response:
    is_open: bool = _article_settings.load(json_body(request))["open"]
    services().store.set_article_open(article_id, is_open)
    return json_response({"article_id": article_id, "open": is_open})


def _listing(status: str, args: Mapping[str, Any]) -> Response:
    listing = services().store.list_by_status(
        status, args["limit"], args["cursor"], article_id=args["article_id"],
        reason=args["reason"],
    )
    body: bytes | None = listing.memo.get("body")
    if body is None:  # rendered once per version of the page (see Listing.memo)
        body = json.dumps({"comments": [moderator_view(c) for c in listing.comments],
                           "next_cursor": listing.next_cursor, "total": listing.total},
                          separators=(",", ":"), ensure_ascii=False).encode()
        listing.memo["body"] = body
    return Response(body, mimetype="application/json")


def _load(comment_id: str) -> StoredComment:
    comment = (services().store.get(comment_id)
               if is_valid_id(comment_id) else None)
    if comment is None:
        _not_found()
    return comment


def _not_found() -> NoReturn:
    raise Problem(404, "Not Found", "No comment has this id.", slug="comment-not-found")
