"""Every document the service answers with, each owned here: its schema beside its renderer.

The schemas say what each audience sees; the renderers build the same documents directly,
because the hot paths render one per submission, decision and page (a schema dump costs
several times as much). Tests keep every renderer equal to its schema. The public schema is
declared over :class:`~service.models.PublicComment`, which has no email attribute; only the
moderator schema names ``email``.

The blueprints take their documents from here, never from each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from marshmallow import Schema, fields, validate

from . import json_text
from .clock import iso_from_ms
from .models import PublicComment, StoredComment
from .states import STATUS_VALUES, Status
from .store.claims import Claim
from .store.reports import Report

_COMPACT = (",", ":")


# -- public: one published comment, a page of them, counts ---------------------------------


class PublicCommentSchema(Schema):
    id = fields.String()
    article_id = fields.String()
    parent_id = fields.String(allow_none=True)
    name = fields.String()
    comment = fields.String()
    website = fields.String(allow_none=True)
    created_at = fields.String()


def render_public(comment: PublicComment) -> str:
    """What PublicCommentSchema dumps, as JSON text: stored pre-rendered with every published
    comment, so a page is a join of stored documents."""
    return json_text.compact(
        {
            "id": comment.id,
            "article_id": comment.article_id,
            "parent_id": comment.parent_id,
            "name": comment.name,
            "comment": comment.comment,
            "website": comment.website,
            "created_at": comment.created_at,
        }
    )


def render_public_page(
    article_id: str, documents: Iterable[str], next_cursor: str | None, total: int
) -> bytes:
    """A page of published comments (``PublicCommentPage``) around documents already rendered
    by :func:`render_public`: only the envelope is built."""
    return (
        '{"article_id":'
        + json.dumps(article_id)
        + ',"comments":['
        + ",".join(documents)
        + "]"
        + ',"next_cursor":'
        + json.dumps(next_cursor)
        + ',"total":'
        + str(total)
        + "}"
    ).encode()


def render_counts(article_ids: Sequence[str], counts: Sequence[int]) -> bytes:
    """The ``CommentCounts`` document: each id with its count, in the order asked."""
    return json.dumps(
        {"counts": dict(zip(article_ids, counts, strict=True))}, separators=_COMPACT
    ).encode()


class AcceptedSchema(Schema):
    """The answer to a submission: enough to find the comment again, never the email."""

    id = fields.String()
    article_id = fields.String()
    status = fields.String(validate=validate.OneOf([Status.APPROVED, Status.PENDING]))
    created_at = fields.String()
    # The commenter's key for their next submission (service/commenter_keys.py), or null.
    commenter_key = fields.String(allow_none=True)
    # The author's token to edit or delete this comment (service/author_edits.py), or null.
    edit_token = fields.String(allow_none=True)
    # When the edit window ends (created_at itself when edits are off).
    edit_until = fields.String(allow_none=True)


def render_accepted(
    comment: StoredComment,
    published: bool,
    commenter_key: str | None,
    edit_token: str | None = None,
    edit_until: str | None = None,
) -> dict[str, Any]:
    """What AcceptedSchema dumps. An unpublished comment answers ``pending`` whatever its
    verdict: spam is answered exactly like a held comment, so a spammer learns nothing."""
    return {
        "id": comment.id,
        "article_id": comment.article_id,
        "status": Status.APPROVED.value if published else Status.PENDING.value,
        "created_at": comment.created_at,
        "commenter_key": commenter_key,
        "edit_token": edit_token,
        "edit_until": edit_until,
    }


# -- moderators: one full record, a page of them, data requests ----------------------------


class HistoryEntrySchema(Schema):
    at = fields.String()
    actor = fields.String()
    from_ = fields.String(data_key="from", allow_none=True, validate=validate.OneOf(STATUS_VALUES))
    to = fields.String(validate=validate.OneOf(STATUS_VALUES))
    note = fields.String()


class ReasonSchema(Schema):
    code = fields.String()
    detail = fields.String()
    action = fields.String()


class EditedVersionSchema(Schema):
    """The author's words as one version had them, before an edit replaced them."""

    version = fields.Integer()
    at = fields.String()
    name = fields.String()
    comment = fields.String()
    website = fields.String(allow_none=True)


class ModeratorCommentSchema(Schema):
    id = fields.String()
    article_id = fields.String()
    parent_id = fields.String(allow_none=True)
    name = fields.String()
    email = fields.String()
    comment = fields.String()
    website = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(STATUS_VALUES))
    created_at = fields.String()
    updated_at = fields.String()
    decided_by = fields.String(allow_none=True)
    decided_at = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    reasons = fields.List(fields.Nested(ReasonSchema))
    history = fields.List(fields.Nested(HistoryEntrySchema))
    version = fields.Integer()
    edits = fields.List(fields.Nested(EditedVersionSchema))


def moderator_view(comment: StoredComment) -> dict[str, Any]:
    """What ModeratorCommentSchema dumps, built directly: a moderator page holds 50 comments,
    and the schema takes ~0.9 ms to dump them where this takes a fifth of that."""
    return {
        "id": comment.id,
        "article_id": comment.article_id,
        "parent_id": comment.parent_id,
        "name": comment.name,
        "email": comment.email,
        "comment": comment.comment,
        "website": comment.website,
        "status": comment.status,
        "created_at": comment.created_at,
        "updated_at": comment.updated_at,
        "decided_by": comment.decided_by,
        "decided_at": comment.decided_at,
        "note": comment.note,
        "reasons": [dict(r) for r in comment.reasons],
        "history": [
            {"at": h.at, "actor": h.actor, "from": h.from_, "to": h.to, "note": h.note}
            for h in comment.history
        ],
        "version": comment.version,
        "edits": [
            {
                "version": int(e["version"]),
                "at": str(e["at"]),
                "name": str(e["name"]),
                "comment": str(e["comment"]),
                "website": e.get("website") or None,
            }
            for e in comment.edits
        ],
    }


def render_edited(comment: StoredComment) -> dict[str, Any]:
    """The author's view of their comment after an edit (``EditedComment``): their words, and
    ``approved`` or ``pending`` (spam is answered like pending, as on submission)."""
    published = comment.status == Status.APPROVED
    return {
        "id": comment.id,
        "article_id": comment.article_id,
        "status": Status.APPROVED.value if published else Status.PENDING.value,
        "name": comment.name,
        "comment": comment.comment,
        "website": comment.website,
        "version": comment.version,
    }


def etag_of(comment: StoredComment) -> str:
    """A moderator view's ETag (unquoted): its version, which every change increments."""
    return f"v{comment.version}"


def version_of_etag(tag: str) -> int | None:
    """The version an ETag of :func:`etag_of` names; None for any other tag."""
    if tag.startswith("v") and tag[1:].isascii() and tag[1:].isdigit() and len(tag) < 12:
        return int(tag[1:])
    return None


def moderator_state(comment: StoredComment) -> dict[str, Any]:
    """The comment's current state in a 412 answer: the moderator view without the email
    (an error body may end up in places a moderator's view does not; GET it for the rest)."""
    view = moderator_view(comment)
    del view["email"]
    return view


def render_claim(claim: Claim) -> dict[str, str]:
    """A moderator's claim on a comment (``Claim``): who, since when, until when."""
    return {
        "moderator": claim.moderator,
        "since": iso_from_ms(claim.since_ms),
        "until": iso_from_ms(claim.until_ms),
    }


def render_moderator_page(
    comments: Iterable[StoredComment],
    next_cursor: str | None,
    total: int,
    claims: Mapping[str, Claim] | None = None,
    reports: Mapping[str, Mapping[str, int]] | None = None,
) -> bytes:
    """A page of full records (``ModeratorCommentPage``), each with the claim on it (or null)
    and, in the Reported queue, its active reports by reason."""
    held = claims or {}

    def item(comment: StoredComment) -> dict[str, Any]:
        view = moderator_view(comment)
        claim = held.get(comment.id)
        view["claim"] = render_claim(claim) if claim else None
        if reports is not None:
            view["reports"] = dict(reports.get(comment.id, {}))
        return view

    return json.dumps(
        {
            "comments": [item(c) for c in comments],
            "next_cursor": next_cursor,
            "total": total,
        },
        separators=_COMPACT,
        ensure_ascii=False,
    ).encode()


def render_reports(comment_id: str, reports: Iterable[Report]) -> dict[str, Any]:
    """A comment's reader reports (``CommentReports``): reason, note, when, dismissed; the
    active ones counted by reason. Nothing about who reported."""
    listed = [
        {"reason": r.reason, "note": r.note, "at": iso_from_ms(r.at_ms), "dismissed": r.dismissed}
        for r in reports
    ]
    counts: dict[str, int] = {}
    for r in listed:
        if not r["dismissed"]:
            counts[str(r["reason"])] = counts.get(str(r["reason"]), 0) + 1
    return {
        "comment_id": comment_id,
        "active": sum(counts.values()),
        "counts": dict(sorted(counts.items())),
        "reports": listed,
    }


def decided_item(comment: StoredComment) -> dict[str, Any]:
    """One bulk decision's result when it was applied (``BulkDecisionResult``)."""
    return {"comment_id": comment.id, "status": 200, "comment": moderator_view(comment)}


def refused_item(comment_id: str, problem: dict[str, Any]) -> dict[str, Any]:
    """One bulk decision's result when it was not: its problem document."""
    return {"comment_id": comment_id, "status": problem["status"], "problem": problem}


def render_export(email: str, comments: Iterable[StoredComment]) -> dict[str, Any]:
    """Every stored comment of one address (``DataExport``)."""
    return {"email": email, "comments": [moderator_view(c) for c in comments]}
