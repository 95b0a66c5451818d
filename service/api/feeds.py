"""Atom feeds of published comments: one article's, and the whole site's.

Public and cacheable like the JSON reads (ETag, 304, the same Cache-Control), served from the
worker's memory when it can; a feed that reaches Redis counts against the client's read limit,
as a page does.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, request
from werkzeug.wrappers import Response as BaseResponse

from ..feeds import ATOM_CONTENT_TYPE, FEED_ENTRIES, render_feed
from ..store.feeds import FeedEntries
from .context import services
from .responses import cacheable

bp = Blueprint("feeds", __name__, url_prefix="/feeds")


@bp.get("/articles/<slug:article_id>.atom")
def article_feed(article_id: str) -> BaseResponse:
    store = services().store
    entries = store.cached_article_feed(article_id, FEED_ENTRIES)
    if entries is None:
        _count_read()
        entries = store.article_feed(article_id, FEED_ENTRIES)
    return _atom(
        entries,
        feed_name=f"{services().config.key_prefix}/articles/{article_id}",
        title=f"Comments on {article_id}",
        self_path=f"/feeds/articles/{article_id}.atom",
        alternate=f"/api/v1/articles/{article_id}/comments",
    )


@bp.get("/recent.atom")
def recent_feed() -> BaseResponse:
    store = services().store
    entries = store.cached_recent_feed(FEED_ENTRIES)
    if entries is None:
        _count_read()
        entries = store.recent_feed(FEED_ENTRIES)
    return _atom(
        entries,
        feed_name=f"{services().config.key_prefix}/recent",
        title="Recent comments",
        self_path="/feeds/recent.atom",
        alternate=None,
    )


def _atom(
    entries: FeedEntries, *, feed_name: str, title: str, self_path: str, alternate: str | None
) -> BaseResponse:
    rendered: tuple[bytes, str] | None = entries.memo.get("atom")
    if rendered is None:  # once per version of the feed (a cached one keeps its rendering)
        body = render_feed(
            feed_name=feed_name,
            title=title,
            self_path=self_path,
            docs=entries.docs,
            alternate=alternate,
        )
        rendered = (body, hashlib.sha1(body, usedforsecurity=False).hexdigest())
        entries.memo["atom"] = rendered
    return cacheable(*rendered, content_type=ATOM_CONTENT_TYPE)


def _count_read() -> None:
    """Count a feed that reaches Redis against the client's read limit."""
    svc = services()
    svc.rate_limits.check("read", svc.hasher.ip(request.remote_addr or ""))
