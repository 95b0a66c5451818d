"""Data requests (export and erasure of one person's comments), on the moderation API."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ..documents import render_export, render_public
from ..models import PublicComment
from ..schemas import EraseRequestSchema, ExportRequestSchema
from ..states import Status
from .auth import MODERATION_PREFIX, moderators_only
from .context import services
from .requests import json_body
from .responses import json_response

# Its own blueprint, behind the same guard as the rest of the moderation API.
bp = moderators_only(Blueprint("data_requests", __name__, url_prefix=MODERATION_PREFIX))

ANONYMOUS = "Anonymous"
_export = ExportRequestSchema()
_erase = EraseRequestSchema()


@bp.post("/data-requests/export")
def export_comments() -> Response:
    svc = services()
    email: str = _export.load(json_body(request))["email"]
    comments = svc.store.comments_of(svc.hasher.email(email))
    return json_response(render_export(email, comments))


@bp.post("/data-requests/erase")
def erase_comments() -> Response:
    svc = services()
    args = _erase.load(json_body(request))
    email_hash = svc.hasher.email(args["email"])
    deleted = anonymised = 0
    for comment in svc.store.comments_of(email_hash):
        if args["mode"] == "anonymise" and comment.status == Status.APPROVED:
            public = PublicComment(id=comment.id, article_id=comment.article_id,
                                   parent_id=comment.parent_id, name=ANONYMOUS,
                                   comment=comment.comment, website=None,
                                   created_at=comment.created_at)
            anonymised += svc.store.anonymise(comment, ANONYMOUS, render_public(public))
        else:
            deleted += svc.store.delete(comment)
    svc.store.forget_author(email_hash)
    return json_response({"deleted": deleted, "anonymised": anonymised})
