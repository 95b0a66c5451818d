"""Data requests (export and erasure of one person's comments), on the moderation API."""

from __future__ import annotations

from flask import Response, request

from ..data_rights import erase_author
from ..schemas import EraseRequestSchema, ExportRequestSchema, ModeratorCommentSchema
from .context import services
from .moderation import bp
from .public import render_public
from .requests import json_body
from .responses import json_response

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
    erased = erase_author(svc.store, svc.hasher.email(args["email"]),
                          anonymise_published=args["mode"] == "anonymise",
                          render_public=render_public)
    return json_response({"deleted": erased.deleted, "anonymised": erased.anonymised})
