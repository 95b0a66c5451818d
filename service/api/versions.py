"""Comment versions over HTTP: a moderator view's ETag, and the versions an If-Match accepts.

A comment's version (models.StoredComment.version) is incremented by every change the store's
scripts make; the ETag of a moderator view is that version (documents.etag_of). A request with
If-Match names the versions it was prepared against, and the store's script compares them with
the stored one in the same atomic step as the change (412 when none matches). Without If-Match,
or with ``*`` (any existing comment), nothing is compared: the behaviour before versions.
"""

from __future__ import annotations

from flask import Request, Response

from ..documents import etag_of, version_of_etag
from ..models import StoredComment


def accepted_versions(request: Request) -> tuple[int, ...] | None:
    """The versions the request's If-Match accepts; None when it sets no condition. Tags that
    are not a version (weak ones included: If-Match compares strongly) accept nothing."""
    if "If-Match" not in request.headers:
        return None
    condition = request.if_match
    if condition.star_tag:
        return None
    versions = (version_of_etag(tag) for tag in condition.as_set())
    return tuple(sorted({v for v in versions if v is not None}))


def with_etag(response: Response, comment: StoredComment) -> Response:
    response.set_etag(etag_of(comment))
    return response
