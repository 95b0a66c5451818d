"""The pages blueprint over the Flask test client: embed.js as served, page headers, the thread
page's HTML, and the form's way back to it. (The browser tests are tests/browser.)"""

from __future__ import annotations

import gzip
import re

from flask.testing import FlaskClient

from service.pages import assets
from tests.conftest import approve, submit

BUDGET_GZIPPED = 12 * 1024


def test_embed_js_is_minified_gzipped_hashed_and_long_cached(client: FlaskClient) -> None:
    plain = client.get("/embed.js")
    assert plain.status_code == 200
    assert plain.mimetype == "text/javascript"
    assert "Content-Encoding" not in plain.headers
    zipped = client.get("/embed.js", headers={"Accept-Encoding": "gzip, br"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert len(zipped.data) <= BUDGET_GZIPPED
    assert "Accept-Encoding" in zipped.headers["Vary"]
    etag = plain.headers["ETag"].strip('"')
    assert re.fullmatch(r"[0-9a-f]{32}", etag)
    assert "max-age=86400" in plain.headers["Cache-Control"]
    assert plain.headers["Access-Control-Allow-Origin"] == "*"  # any site, crossorigin too
    again = client.get("/embed.js", headers={"If-None-Match": plain.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    # Minified: smaller than its sources, and the placeholders were filled.
    assert len(plain.data) < len(assets.widget_source().encode())
    assert b"__CSS__" not in plain.data and b"__STRINGS__" not in plain.data
    assert "Надіслати коментар".encode() in plain.data  # every locale is in the one file


def test_the_widget_never_writes_html_styles_or_code_from_strings() -> None:
    source = assets.embed_script().body.decode()  # comments stripped: the code alone
    for forbidden in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        ".style.",
        "setAttribute('style'",
        "<style",
    ):
        assert forbidden not in source, forbidden


def test_every_locale_has_every_string_the_widget_uses() -> None:
    """English is the fallback, yet each locale says everything itself, the edit and delete
    strings included; and every `t.<name>` the script reads is a string of English."""
    import json

    strings = {
        lang: json.loads((assets.STATIC / "locales" / f"{lang}.json").read_text())
        for lang in assets.LOCALES
    }
    for lang, found in strings.items():
        assert set(found) == set(strings["en"]), lang
        assert all(value for value in found.values()), lang
    script = (assets.STATIC / "widget.js").read_text()
    used = set(re.findall(r"\bt\.(\w+)", script)) | set(re.findall(r"this\.t\.(\w+)", script))
    assert {"post", "edit", "remove", "editEnded", "editPending"} <= used
    assert used <= set(strings["en"]), used - set(strings["en"])


def test_pages_carry_a_strict_policy_and_the_api_keeps_its_own(client: FlaskClient) -> None:
    demo = client.get("/")
    policy = demo.headers["Content-Security-Policy"]
    assert demo.headers.getlist("Content-Security-Policy") == [policy]  # one, not two
    assert "script-src 'self'" in policy and "unsafe" not in policy
    assert "frame-ancestors 'none'" in policy
    assert demo.headers["X-Content-Type-Options"] == "nosniff"
    thread = client.get("/threads/a1")
    assert "script-src" not in thread.headers["Content-Security-Policy"]
    assert "form-action 'self'" in thread.headers["Content-Security-Policy"]
    api = client.get("/api/v1/articles/a1/comments")
    assert api.headers.getlist("Content-Security-Policy") == [
        "default-src 'none'; frame-ancestors 'none'"
    ]


def test_the_demo_embeds_the_widget_a_count_and_the_console_link(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    assert '<script src="/embed.js" defer></script>' in html
    assert re.search(r"<comment-thread article=\"[^\"]+\"></comment-thread>", html)
    assert "<comment-count article=" in html.split("</header>")[0]
    assert 'href="/moderate"' in html
    assert "<noscript>" in html and "/threads/" in html
    assert " style=" not in html and "<style" not in html


def test_thread_page_renders_approved_comments_threaded_and_escaped(client: FlaskClient) -> None:
    hostile = "<img src=x onerror=alert(1)> see https://example.org/x."
    parent = submit(
        client, "t1", name="<b>Ann</b>", comment=hostile, website="https://ann.example/"
    )
    approve(client, parent.get_json()["id"])
    reply = submit(
        client, "t1", name="Bo", comment="Line one\nline two", parent_id=parent.get_json()["id"]
    )
    approve(client, reply.get_json()["id"])
    submit(client, "t1", name="Held", comment="Not yet.")
    page = client.get("/threads/t1")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "<img" not in html and "<b>Ann" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;b&gt;Ann&lt;/b&gt;" in html
    assert '<a href="https://example.org/x" rel="nofollow ugc noopener">' in html
    assert '<a class="author" href="https://ann.example/" rel="nofollow ugc noopener">' in html
    assert "Line one<br>line two" in html
    assert "Not yet." not in html
    # The reply sits inside its parent's item.
    parent_item = html.split(f'id="c-{parent.get_json()["id"]}"')[1]
    assert parent_item.index('class="replies"') < parent_item.index("Line one")
    assert "2 comments on t1" in html
    assert "Your email address will not be published. Required fields are marked *" in html


def test_thread_page_form_comes_back_with_the_notice(client: FlaskClient) -> None:
    html = client.get("/threads/t2").get_data(as_text=True)
    back = re.search(r'name="redirect" value="([^"]+)"', html)
    assert back is not None
    sent = client.post(
        "/api/v1/articles/t2/comments",
        data={"name": "Ann", "email": "ann@example.com", "comment": "Hi", "redirect": back[1]},
    )
    assert sent.status_code == 303
    assert sent.headers["Location"] == "http://localhost/threads/t2?posted=1#form"
    landed = client.get("/threads/t2?posted=1").get_data(as_text=True)
    assert "awaiting moderation" in landed
    # Any other origin is still refused.
    elsewhere = client.post(
        "/api/v1/articles/t2/comments",
        data={
            "name": "Ann",
            "email": "ann@example.com",
            "comment": "Hi",
            "redirect": "http://localhost.evil.example/threads/t2",
        },
    )
    assert elsewhere.status_code == 422


def test_thread_page_reply_form_and_paging(client: FlaskClient) -> None:
    ids = []
    for i in range(52):
        sent = submit(client, "t3", comment=f"Comment {i}")
        approve(client, sent.get_json()["id"])
        ids.append(sent.get_json()["id"])
    first = client.get("/threads/t3").get_data(as_text=True)
    assert "Comment 49" in first and "Comment 50" not in first
    cursor = re.search(r'href="\?cursor=([^"]+)"', first)
    assert cursor is not None
    second = client.get(f"/threads/t3?cursor={cursor[1]}").get_data(as_text=True)
    assert "Comment 51" in second and "Comment 0<" not in second
    reply = client.get(f"/threads/t3?reply_to={ids[0]}").get_data(as_text=True)
    assert f'name="parent_id" value="{ids[0]}"' in reply
    bad = client.get("/threads/t3?cursor=not-a-cursor")
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"


def test_closed_article_page_has_no_form(client: FlaskClient) -> None:
    from tests.conftest import AUTH

    client.put("/api/v1/moderation/articles/t4", json={"open": False}, headers=AUTH)
    html = client.get("/threads/t4").get_data(as_text=True)
    assert "Comments are closed." in html and "<form" not in html


def test_unknown_asset_is_404(client: FlaskClient) -> None:
    assert client.get("/assets/nope.css").status_code == 404
    css = client.get("/assets/thread.css")
    assert css.status_code == 200 and css.mimetype == "text/css"


def test_thread_view_caps_the_depth_and_keeps_text_as_text() -> None:
    import json

    from service.pages.thread_view import MAX_DEPTH, comment_html, thread

    docs = [json.dumps({"id": "c0", "parent_id": None, "comment": "root"})]
    for i in range(1, 8):
        docs.append(json.dumps({"id": f"c{i}", "parent_id": f"c{i - 1}", "comment": str(i)}))
    docs.append(json.dumps({"id": "orphan", "parent_id": "elsewhere", "comment": "?"}))
    top = thread(docs)
    assert [n.comment["id"] for n in top] == ["c0", "orphan"]
    depths = []
    level = top[:1]
    while level:
        depths.append([n.depth for n in level])
        level = [child for n in level for child in n.replies]
    # Depths 0-3 nest one per level; from depth 4 on, replies sit beside their parent.
    assert depths == [[0], [1], [2], [3], [MAX_DEPTH, MAX_DEPTH, MAX_DEPTH, MAX_DEPTH]]
    html = comment_html(
        'a <b>&\n\nsee https://x.example/a_(b). (https://y.example/c) "javascript:x"'
    )
    assert html == (
        "<p>a &lt;b&gt;&amp;</p><p>see "
        '<a href="https://x.example/a_(b)" rel="nofollow ugc noopener">https://x.example/a_(b)</a>'
        '. (<a href="https://y.example/c" rel="nofollow ugc noopener">https://y.example/c</a>)'
        " &#34;javascript:x&#34;</p>"
    )
