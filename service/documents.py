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
from collections.abc import Iterable, Sequence
from typing import Any

from marshmallow import Schema, fields, validate

from .models import PublicComment, StoredComment
from .states import STATUS_VALUES, Status

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
    return json.dumps(
        {
            "id": comment.id,
            "article_id": comment.article_id,
            "parent_id": comment.parent_id,
            "name": comment.name,
            "comment": comment.comment,
            "website": comment.website,
            "created_at": comment.created_at,
        },
        separators=_COMPACT,
        ensure_ascii=False,
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


def render_accepted(
    comment: StoredComment, published: bool, commenter_key: str | None
) -> dict[str, Any]:
    """What AcceptedSchema dumps. An unpublished comment answers ``pending`` whatever its
    verdict: spam is answered exactly like a held comment, so a spammer learns nothing."""
    return {
        "id": comment.id,
        "article_id": comment.article_id,
        "status": Status.APPROVED.value if published else Status.PENDING.value,
        "created_at": comment.created_at,
        "commenter_key": commenter_key,
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
    }


def render_moderator_page(
    comments: Iterable[StoredComment], next_cursor: str | None, total: int
) -> bytes:
    """A page of full records (``ModeratorCommentPage``)."""
    return json.dumps(
        {
            "comments": [moderator_view(c) for c in comments],
            "next_cursor": next_cursor,
            "total": total,
        },
        separators=_COMPACT,
        ensure_ascii=False,
    ).encode()


def decided_item(comment: StoredComment) -> dict[str, Any]:
    """One bulk decision's result when it was applied (``BulkDecisionResult``)."""
    return {"comment_id": comment.id, "status": 200, "comment": moderator_view(comment)}


def refused_item(comment_id: str, problem: dict[str, Any]) -> dict[str, Any]:
    """One bulk decision's result when it was not: its problem document."""
    return {"comment_id": comment_id, "status": problem["status"], "problem": problem}


def render_export(email: str, comments: Iterable[StoredComment]) -> dict[str, Any]:
    """Every stored comment of one address (``DataExport``)."""
    return {"email": email, "comments": [moderator_view(c) for c in comments]}
