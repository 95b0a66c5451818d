"""The moderators' API: the queue and listings, one comment, decisions (one, or many at once),
deletion, the policy and closing articles."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NoReturn

from flask import Blueprint, Response, g, request

from .. import metrics, states
from ..clock import iso_from_ms, now_ms
from ..documents import (
    decided_item,
    moderator_view,
    refused_item,
    render_claim,
    render_moderator_page,
    render_public,
    render_reports,
)
from ..domain_errors import ClaimHeld, CommentNotFound, Conflict, DomainError, StaleVersion
from ..errors import domain_problem, problem_document
from ..ids import is_valid_id
from ..models import HistoryEntry, StoredComment
from ..moderation.policy import policy_to_document
from ..policy_terms import hash_identifier_terms
from ..replayed_reads import replayable
from ..schemas import (
    ArticleSettingsSchema,
    BulkDecisionsSchema,
    DecisionSchema,
    PolicySchema,
    QueueArgsSchema,
    StatusListArgsSchema,
)
from ..spam_worker import enqueue_feedback
from ..store import Claim, ClaimRefused, ContentChanged, Move, VersionMismatch
from ..submissions import load_policy
from .auth import MODERATION_PREFIX, moderators_only, still_authorized
from .context import services
from .requests import json_body, query_args
from .responses import json_response
from .versions import accepted_versions, with_etag

bp = moderators_only(Blueprint("moderation", __name__, url_prefix=MODERATION_PREFIX))

_queue_args = QueueArgsSchema()
_list_args = StatusListArgsSchema()
_decision = DecisionSchema()
_bulk_decisions = BulkDecisionsSchema()
_policy = PolicySchema()
_article_settings = ArticleSettingsSchema()
# The decision verbs and the status each leads to are the states' (approve -> approved...).
DECISIONS = states.DECISIONS
BULK_ACTIONS = states.BULK_ACTIONS
DECISION_ATTEMPTS = 2
# What a decision tells the outside spam service (submit-spam, submit-ham).
FEEDBACK = {states.Status.SPAM.value: "spam", states.Status.APPROVED.value: "ham"}
_CHANGED_MEANWHILE = "The comment changed while it was being decided; read it and decide again."


@bp.get("/queue")
def queue() -> Response:
    args = _queue_query(request.query_string)
    return _listing("pending", args, reported=args["view"] == "reported")


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
    comment = _load(comment_id)
    return with_etag(json_response(moderator_view(comment)), comment)


@bp.post(f"/comments/<comment_id>/<any({', '.join(DECISIONS)}):decision>")
def decide(comment_id: str, decision: str) -> Response:
    note: str = _decision.load(json_body(request, allow_empty=True))["note"]
    target = DECISIONS[decision].value
    decided = decide_comment(comment_id, target, note, accepted_versions(request))
    return with_etag(json_response(moderator_view(decided)), decided)


def decide_comment(
    comment_id: str, target: str, note: str, versions: tuple[int, ...] | None = None
) -> StoredComment:
    """The calling moderator's decision on one comment, as the decision routes (one, or a
    campaign's in bulk) make it; refusals raise domain errors."""
    svc = services()
    # An approval publishes the comment as read here; the store refuses that if its content
    # changed since (an erase landed in between), and it is read again. Content changes once
    # at most (anonymised), so a read after a refusal is current: a refusal on the last
    # attempt would be a bug, answered 409 rather than hidden.
    for _ in range(DECISION_ATTEMPTS):
        comment = _load(comment_id)
        moment = now_ms()
        entry = HistoryEntry(
            at=iso_from_ms(moment), actor=f"moderator:{g.moderator}", to=target, note=note
        )
        try:
            decided = svc.store.transition(
                comment,
                target,
                entry,
                render_public(comment.public()),
                now_ms=moment,
                accepted_versions=versions,
            )
        except ContentChanged:
            continue
        except VersionMismatch as moved:
            raise StaleVersion(moved.current) from None
        if decided is None:  # deleted between the read and the decision
            _not_found()
        # Decided: its claim is released, its reports are dealt with (they stop counting).
        svc.store.finish_review(comment_id, comment.article_id, decided=True)
        _after_decision(decided, target)
        return decided
    raise Conflict(_CHANGED_MEANWHILE)


def _after_decision(decided: StoredComment, target: str) -> None:
    """What follows a moderator's decision, one or in bulk (besides finishing its review):
    counted, and a spam/ham verdict reported back to the spam service by its worker."""
    svc = services()
    action = states.STATE_RULES[states.Status(target)].decision or target
    metrics.count_decision(action, "moderator")
    if svc.config.spam_check_key and target in FEEDBACK:
        enqueue_feedback(svc.store, decided, FEEDBACK[target])


@bp.post("/decisions")
def decide_many() -> Response:
    items: list[dict[str, Any]] = _bulk_decisions.load(json_body(request))["decisions"]
    return json_response({"results": _apply_decisions(items)})


def _apply_decisions(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item decided as the single route decides one comment (one atomic script call per
    comment), all at once: the comments are read in one or two round trips, moved in one
    pipelined round trip, and those whose content changed in between (an erase) read and
    moved again. Results in the items' order: the comment, or the item's own problem."""
    store = services().store
    results: dict[str, dict[str, Any]] = {}
    decided: dict[str, str] = {}  # id -> article of each comment decided
    waiting = []
    for item in items:
        if is_valid_id(item["comment_id"]):
            waiting.append(item)
        else:
            results[item["comment_id"]] = _item_problem(item, CommentNotFound())
    for _ in range(DECISION_ATTEMPTS):
        if not waiting:
            break
        found = store.get_many([item["comment_id"] for item in waiting])
        moment = now_ms()
        moving, moves = [], []
        for item in waiting:
            comment = found.get(item["comment_id"])
            if comment is None:
                results[item["comment_id"]] = _item_problem(item, CommentNotFound())
                continue
            target = BULK_ACTIONS[item["action"]].value
            entry = HistoryEntry(
                at=iso_from_ms(moment),
                actor=f"moderator:{g.moderator}",
                to=target,
                note=item["note"],
            )
            public_json = render_public(comment.public())
            moving.append(item)
            versions = None if item["version"] is None else (item["version"],)
            moves.append(
                Move(
                    comment,
                    target,
                    entry,
                    public_json,
                    accepted_versions=versions,
                    trust=item["trust_author"],
                )
            )
        waiting = []
        for item, outcome in zip(moving, store.transition_many(moves, moment), strict=True):
            if isinstance(outcome, ContentChanged):
                waiting.append(item)
            elif outcome is None:  # deleted between the read and the decision
                results[item["comment_id"]] = _item_problem(item, CommentNotFound())
            elif isinstance(outcome, VersionMismatch):  # moved on since it was reviewed
                results[item["comment_id"]] = _item_problem(item, StaleVersion(outcome.current))
            else:
                _after_decision(outcome, BULK_ACTIONS[item["action"]].value)
                results[item["comment_id"]] = decided_item(outcome)
                decided[outcome.id] = outcome.article_id
    for item in waiting:
        results[item["comment_id"]] = _item_problem(item, Conflict(_CHANGED_MEANWHILE))
    # The decided ones' reviews end together: one pipelined round trip.
    store.finish_reviews([(i, decided[i]) for i, r in results.items() if r["status"] == 200])
    return [results[item["comment_id"]] for item in items]


def _item_problem(item: dict[str, Any], error: DomainError) -> dict[str, Any]:
    return refused_item(item["comment_id"], problem_document(domain_problem(error)))


@bp.post("/comments/<comment_id>/claim")
def claim_comment(comment_id: str) -> Response:
    """Claim the comment for review, or renew one's own claim; 409 naming the holder when
    another moderator has it."""
    svc = services()
    answer = (
        svc.store.claim(comment_id, g.moderator, now_ms(), svc.config.claim_seconds * 1000)
        if is_valid_id(comment_id)
        else None
    )
    if answer is None:
        _not_found()
    if not answer.granted:
        raise _held(answer.claim)
    return json_response({"comment_id": comment_id, **render_claim(answer.claim)})


@bp.delete("/comments/<comment_id>/claim")
def release_comment_claim(comment_id: str) -> Response:
    """Release one's own claim (nothing held is fine); 409 when another moderator holds it."""
    if not is_valid_id(comment_id):
        _not_found()
    try:
        services().store.release_claim(comment_id, g.moderator)
    except ClaimRefused as refused:
        raise _held(refused.claim) from None
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


def _held(claim: Claim) -> ClaimHeld:
    return ClaimHeld(claim.moderator, iso_from_ms(claim.since_ms), iso_from_ms(claim.until_ms))


@bp.get("/comments/<comment_id>/reports")
def list_reports(comment_id: str) -> Response:
    """Readers' reports of the comment (never who sent them)."""
    comment = _load(comment_id)
    reports = services().store.reports_of(comment.id)
    return json_response(render_reports(comment.id, reports))


@bp.post("/comments/<comment_id>/reports/dismiss")
def dismiss_reports(comment_id: str) -> Response:
    """The reports were looked at and need nothing: they stop counting, the comment leaves
    the Reported queue (its status stays as it is)."""
    comment = _load(comment_id)
    dismissed = services().store.finish_review(comment.id, comment.article_id, decided=False)
    return json_response({"comment_id": comment.id, "dismissed": dismissed})


@bp.delete("/comments/<comment_id>")
def delete_comment(comment_id: str) -> Response:
    comment = _load(comment_id)
    if services().store.delete(comment, actor=f"moderator:{g.moderator}"):
        metrics.count_decision("delete", "moderator")
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
    services().store.save_policy_json(
        json.dumps(complete, sort_keys=True), actor=f"moderator:{g.moderator}"
    )
    return json_response(complete)


@bp.put("/articles/<slug:article_id>")
def put_article(article_id: str) -> Response:
    is_open: bool = _article_settings.load(json_body(request))["open"]
    services().store.set_article_open(article_id, is_open, actor=f"moderator:{g.moderator}")
    return json_response({"article_id": article_id, "open": is_open})


def _listing(status: str, args: Mapping[str, Any], *, reported: bool = False) -> Response:
    store = services().store
    listing = store.list_by_status(
        status,
        args["limit"],
        args["cursor"],
        article_id=args["article_id"],
        reason=args["reason"],
        reported=reported,
    )
    if reported or args["unclaimed"]:
        # The Reported queue shows each comment's active reports by reason (one more round
        # trip); ?unclaimed=true drops what others claimed (one's own claims stay). Both are
        # rendered per request.
        counts = store.active_report_counts([c.id for c in listing.comments]) if reported else None
        shown = listing.comments
        if args["unclaimed"]:
            mine = g.moderator
            shown = [
                c
                for c in shown
                if (held := listing.claims.get(c.id)) is None or held.moderator == mine
            ]
        own = render_moderator_page(
            shown, listing.next_cursor, listing.total, listing.claims, counts
        )
        return Response(own, mimetype="application/json")
    body: bytes | None = listing.memo.get("body")
    if body is None:  # rendered once per version of the page (see Listing.memo)
        body = render_moderator_page(
            listing.comments, listing.next_cursor, listing.total, listing.claims
        )
        listing.memo["body"] = body
    authorized = still_authorized(request, services())

    def still_current(address: str) -> bool:
        # The same answer while this worker holds the same listing and would accept the same
        # token from this client; its two cache hits are counted as Flask's path counts them.
        if not store.still_holds_listing(
            listing,
            status,
            args["limit"],
            args["cursor"],
            article_id=args["article_id"],
            reason=args["reason"],
        ):
            return False
        if not authorized(address):
            return False
        store.count_cache_hits(public=1, moderation=1)
        return True

    # This body is the same for every moderator (claims show whose they are): answered again
    # without Flask, the token still checked on every request (service/replayed_reads.py).
    replayable(still_current)
    return Response(body, mimetype="application/json")


def _load(comment_id: str) -> StoredComment:
    comment = services().store.get(comment_id) if is_valid_id(comment_id) else None
    if comment is None:
        _not_found()
    return comment


def _not_found() -> NoReturn:
    raise CommentNotFound()
