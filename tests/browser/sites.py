"""Host pages and seeded threads for the browser tests.

A host page is an embedding site's article on its own origin (the ``host`` fixture), with the
widget embedded exactly as the README tells sites to. Threads are seeded over the real API
(submit, then approve through the moderation API), so the widget reads what the service stores.
"""

from __future__ import annotations

import secrets
from typing import Any

from tests.servicehelpers import Service


def strict_csp(live: Service) -> str:
    """The policy of issue 12, with the service's origin as ``<service>``."""
    service = live.base
    return (
        f"default-src 'none'; script-src 'self' {service}; connect-src {service}; "
        f"style-src 'self' {service}; img-src 'self'"
    )


def article_id(label: str = "story") -> str:
    """An article no other test uses (the service lives for the whole session)."""
    return f"{label}-{secrets.token_hex(4)}"


def embed_page(
    live: Service,
    article: str,
    *,
    attrs: str = "",
    html_lang: str = "en",
    head: str = "",
    before: str = "",
    after: str = "",
    counts: tuple[str, ...] = (),
) -> str:
    count_tags = "".join(
        f'<p><comment-count article="{a}"></comment-count> comments</p>' for a in counts
    )
    return f"""<!doctype html>
<html lang="{html_lang}"><head><meta charset="utf-8"><title>Article {article}</title>
<script src="{live.base}/embed.js" defer></script>{head}</head>
<body><header>{count_tags}</header><main><h1>An article</h1>{before}
<comment-thread article="{article}" {attrs}></comment-thread>{after}</main></body></html>"""


def submit(live: Service, article: str, **fields: Any) -> str:
    """A comment over the API (pending under the default policy); its id."""
    body = {"name": "Seed", "email": "seed@example.org", "comment": "A seeded comment."}
    body.update(fields)
    response = live.submit(None, article, body)
    assert response.status_code in (201, 202), response.text
    comment_id: str = response.json()["id"]
    return comment_id


def approve(live: Service, comment_id: str) -> None:
    response = live.moderate("POST", f"/comments/{comment_id}/approve", json={})
    assert response.status_code == 200, response.text


def published(live: Service, article: str, **fields: Any) -> str:
    """A comment submitted and approved; its id."""
    comment_id = submit(live, article, **fields)
    approve(live, comment_id)
    return comment_id


def queue_ids(live: Service, article: str) -> list[str]:
    response = live.moderate("GET", "/queue", params={"article_id": article, "limit": 100})
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["comments"]]
