"""Data requests (export and erasure of one person's comments), on the moderation API."""

from __future__ import annotations

from flask import Response, request

from ..models import PublicComment
from ..schemas import EraseRequestSchema, ExportRequestSchema, ModeratorCommentSchema
from .context import services
from .moderation import bp
from .public import render_public
from .requests import json_body
from .responses import json_response

ANONYMOUS = "Anonymous"
_export = ExportRequestSchema()
_erase = EraseRequestSchema()
_comment_view = ModeratorCommentSchema()


@bp.post("/data-requests/export")
def export_comments() -> Response:
    svc = services()
    email: str = _export.load(json_body(request))["email"]
    comments = svc.store.comments_of(svc.hasher.email(email))
    return json_response({"email": email, "comments": _comment_view.dump(comments, many=True)})


@bp.post("/data-requests/erase")
def erase_comments() -> Response:
    svc = services()
    args = _erase.load(json_body(request))
    email_hash = svc.hasher.email(args["email"])
    deleted = anonymised = 0
    for comment in svc.store.comments_of(email_hash):
        if args["mode"] == "anonymise" and comment.status == "approved":
            public = PublicComment(id=comment.id, article_id=comment.article_id,
                                   parent_id=comment.parent_id, name=ANONYMOUS,
                                   comment=comment.comment, website=None,
                                   created_at=comment.created_at)
            anonymised += svc.store.anonymise(comment, ANONYMOUS, render_public(public))
        else:
            deleted += svc.store.delete(comment)
    svc.store.forget_author(email_hash)
    svc.store.revoke_commenters(email_hash)  # the commenter keys bound to it stop working
    return json_response({"deleted": deleted, "anonymised": anonymised})
