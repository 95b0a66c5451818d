"""The moderator console: ``GET /moderate`` and its script and stylesheet.

The page is static: everything a moderator sees arrives through the moderation API, called by
the console's script with the token the moderator typed (kept in ``sessionStorage``, sent as an
``Authorization`` header, never in a URL or a cookie). So the page itself holds nothing secret,
yet it is ``no-store`` (what a browser keeps of a moderator's screen is nobody's business) and
has a strict CSP: its own script and stylesheet, calls to its own origin, no inline anything,
no forms that post, no framing.

The script and stylesheet are read once per process, minified (rjsmin, rcssmin) and gzipped,
and served under a name that carries their content hash, so they are cached for good and a
new version is a new URL.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import rcssmin
import rjsmin
from flask import Blueprint, Response, abort, render_template, request

from .security import page_policy, secure_page

bp = Blueprint("console", __name__, url_prefix="/moderate", template_folder="templates")

STATIC = Path(__file__).resolve().parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    kind: str  # js or css
    body: bytes
    gzipped: bytes
    digest: str

    @property
    def name(self) -> str:
        return f"console.{self.digest}.{self.kind}"

    @property
    def mimetype(self) -> str:
        return "text/javascript" if self.kind == "js" else "text/css"


@lru_cache(maxsize=2)
def asset(kind: str) -> Asset:
    """``js`` or ``css``: the console's file, minified, gzipped and hashed, once per process."""
    source = (STATIC / f"console.{kind}").read_text(encoding="utf-8")
    minified = rjsmin.jsmin(source) if kind == "js" else rcssmin.cssmin(source)
    body = minified.encode()
    return Asset(
        kind=kind,
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        digest=hashlib.sha256(body).hexdigest()[:16],
    )


@bp.get("")
def console_page() -> Response:
    html = render_template(
        "console.html",
        js_url=f"/moderate/{asset('js').name}",
        css_url=f"/moderate/{asset('css').name}",
    )
    response = Response(html, mimetype="text/html")
    secure_page(response, page_policy(scripts=True, connect=True), cache_control="no-store")
    return response


@bp.get("/console.<digest>.<any(js, css):kind>")
def console_asset(digest: str, kind: str) -> Response:
    found = asset(kind)
    if digest != found.digest:
        abort(404)  # an old version's URL: the page names the current one
    use_gzip = request.accept_encodings["gzip"] > 0
    response = Response(found.gzipped if use_gzip else found.body, mimetype=found.mimetype)
    if use_gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["ETag"] = f'"{found.digest}"'
    secure_page(response, page_policy(), cache_control=IMMUTABLE)
    return response
