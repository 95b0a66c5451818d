"""Data requests (export and erasure of one person's comments), on the moderation API."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ..data_rights import erase_author
from ..documents import render_export
from ..schemas import EraseRequestSchema, ExportRequestSchema
from .auth import MODERATION_PREFIX, moderators_only
from .context import services
from .requests import json_body
from .responses import json_response

# Its own blueprint, behind the same guard as the rest of the moderation API.
bp = moderators_only(Blueprint("data_requests", __name__, url_prefix=MODERATION_PREFIX))

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
    erased = erase_author(
        svc.store, svc.hasher.email(args["email"]), anonymise_published=args["mode"] == "anonymise"
    )
    return json_response({"deleted": erased.deleted, "anonymised": erased.anonymised})
