"""Routes of the pages blueprint: the widget's script, the thread page without JavaScript,
the demo article. Thin: data from the store, HTML from the templates, headers from
security.py, files from assets.py."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, url_for
from werkzeug.wrappers import Response

from ..api.context import services
from ..schemas import PageArgsSchema
from . import assets
from .security import page_policy, secure_page
from .thread_view import Node, comment_html, display_date, is_web_url, thread

bp = Blueprint("pages", __name__, template_folder="templates", static_folder=None)
bp.add_app_template_filter(comment_html, "comment_html")
bp.add_app_template_filter(display_date, "display_date")
bp.add_app_template_test(is_web_url, "web_url")

THREAD_PAGE_SIZE = 50
DEMO_ARTICLE = "welcome-to-comments"
_page_args = PageArgsSchema()


@bp.get("/embed.js")
def embed_js() -> Response:
    return assets.serve(assets.embed_script(), request)


@bp.get("/assets/<name>")
def stylesheet(name: str) -> Response:
    try:
        asset = assets.stylesheet(name)
    except KeyError:
        abort(404)
    return assets.serve(asset, request)


@bp.get("/threads/<slug:article_id>")
def thread_page(article_id: str) -> Response:
    """The approved comments and the form as plain HTML: readable and postable with
    JavaScript off. The form posts to the API, whose 303 brings the browser back here."""
    svc = services()
    args = _page_args.load(
        {"cursor": request.args.get("cursor")} if "cursor" in request.args else {}
    )
    cursor = args["cursor"]
    page = svc.store.cached_public_page(article_id, THREAD_PAGE_SIZE, cursor)
    if page is None:
        svc.rate_limits.check("read", svc.hasher.ip(request.remote_addr or ""))
        page = svc.store.public_page(article_id, THREAD_PAGE_SIZE, cursor)
    nodes = thread(document for _, document in page.items)
    reply_to = request.args.get("reply_to")
    parent = next((doc for node in _walk(nodes) if (doc := node.comment)["id"] == reply_to), None)
    back = url_for("pages.thread_page", article_id=article_id, _external=True)
    html = render_template(
        "thread.html",
        article_id=article_id,
        nodes=nodes,
        total=page.total,
        next_cursor=page.next_cursor,
        posted=request.args.get("posted") == "1",
        closed=svc.store.submission_settings(article_id).closed,
        parent=parent,
        redirect_to=back + "?posted=1#form",
    )
    return secure_page(Response(html, mimetype="text/html"), page_policy(forms=True))


def _walk(nodes: list[Node]) -> list[Node]:
    found: list[Node] = []
    stack = list(nodes)
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(node.replies)
    return found


@bp.get("/")
def demo() -> Response:
    """A demo article with the widget, a count in its header and a link to the console."""
    html = render_template("demo.html", article_id=DEMO_ARTICLE)
    policy = page_policy(scripts=True, connect=True)
    return secure_page(Response(html, mimetype="text/html"), policy)
