"""Security headers for HTML pages the service renders itself (one helper for every page).

The API's answers are data and get ``default-src 'none'`` (service/app.py); a page needs a
little more, and says exactly what: its own stylesheets, its own scripts when it has any, calls
to its own API. Never ``'unsafe-inline'`` or ``'unsafe-eval'``: no inline script, no inline
style attribute, no ``eval`` on any page. A response that carries a Content-Security-Policy of
its own keeps it (the app's hook adds the data-only headers only to responses without one).
"""

from __future__ import annotations

from werkzeug.wrappers import Response


def page_policy(*, scripts: bool = False, connect: bool = False, forms: bool = False) -> str:
    """A strict Content-Security-Policy for a page of this service.

    ``scripts``: the page loads scripts from this origin; ``connect``: they call its API;
    ``forms``: the page has forms that post to this origin.
    """
    directives = [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'" if forms else "form-action 'none'",
    ]
    if scripts:
        directives.append("script-src 'self'")
    if connect:
        directives.append("connect-src 'self'")
    return "; ".join(directives)


def secure_page(response: Response, policy: str, *, cache_control: str = "no-cache") -> Response:
    """Set the page's CSP and the headers every page carries; ``cache_control`` as the page
    needs (``no-store`` for anything that shows what a moderator sees)."""
    headers = response.headers
    headers["Content-Security-Policy"] = policy
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cache-Control"] = cache_control
    return response
