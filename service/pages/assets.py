"""The pages' static files, assembled once per process: minified, gzipped, hashed.

``embed.js`` is widget.js with its stylesheet (widget.css) and its strings (locales/*.json)
filled in, then minified (rjsmin, rcssmin: whitespace and comments only, nothing renamed), so
what a site loads is one file and the sources stay readable. Each asset carries a content hash
for its ETag; :func:`serve` answers 304 to a matching ``If-None-Match`` and gzip to clients
that accept it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import rcssmin
import rjsmin
from flask import Request
from werkzeug.wrappers import Response

STATIC = Path(__file__).resolve().parent / "static"
# The widget's languages; English is the fallback for every missing string.
LOCALES: tuple[str, ...] = ("en", "uk", "ru", "de", "fr")
CSS_PLACEHOLDER = '"__CSS__"'
STRINGS_PLACEHOLDER = '{"__STRINGS__":0}'
# Sites load embed.js from a fixed URL: a day's max-age, a week of stale-while-revalidate,
# then a 304 thanks to the ETag when it has not changed.
SCRIPT_CACHE = "public, max-age=86400, stale-while-revalidate=604800"
STYLE_CACHE = "public, max-age=3600, stale-while-revalidate=86400"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    mimetype: str
    cache_control: str


def _asset(body: bytes, mimetype: str, cache_control: str) -> Asset:
    digest = hashlib.sha256(body).hexdigest()[:32]
    return Asset(body, gzip.compress(body, 9, mtime=0), digest, mimetype, cache_control)


def widget_source(locales: tuple[str, ...] = LOCALES) -> str:
    """embed.js before minification: the script with its stylesheet and strings (bench/
    embed_size.py measures other selections of locales)."""
    script = (STATIC / "widget.js").read_text()
    css = rcssmin.cssmin((STATIC / "widget.css").read_text())
    strings = {
        lang: json.loads((STATIC / "locales" / f"{lang}.json").read_text()) for lang in locales
    }
    for placeholder in (CSS_PLACEHOLDER, STRINGS_PLACEHOLDER):
        if placeholder not in script.replace(" ", ""):
            raise RuntimeError(f"widget.js lost its placeholder {placeholder}")
    script = script.replace('"__CSS__"', json.dumps(css, ensure_ascii=False))
    return script.replace('{"__STRINGS__": 0}', json.dumps(strings, ensure_ascii=False))


@cache
def embed_script() -> Asset:
    minified = rjsmin.jsmin(widget_source(), keep_bang_comments=False)
    return _asset(minified.encode(), "text/javascript", SCRIPT_CACHE)


STYLESHEETS = ("thread.css", "demo.css")


@cache
def stylesheet(name: str) -> Asset:
    if name not in STYLESHEETS:
        raise KeyError(name)
    css = rcssmin.cssmin((STATIC / name).read_text())
    return _asset(css.encode(), "text/css", STYLE_CACHE)


def serve(asset: Asset, request: Request) -> Response:
    if request.if_none_match.contains(asset.etag):
        response = Response(status=304)
        del response.headers["Content-Type"]
    elif request.accept_encodings.quality("gzip") > 0:
        response = Response(asset.gzipped, mimetype=asset.mimetype)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(asset.body, mimetype=asset.mimetype)
    response.set_etag(asset.etag)
    response.headers["Cache-Control"] = asset.cache_control
    response.vary.add("Accept-Encoding")
    # Any site may load the script (that is its purpose): cross-origin isolated ones too, and
    # with `crossorigin` (subresource integrity, modules), which needs CORS.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
