"""The widget in Chromium, embedded in host pages on another origin, against the real service."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from playwright.sync_api import Dialog, Page, Request, expect

from tests.browser.conftest import Host, OpenContext, PageLog, axe_violations, csp_violations, watch
from tests.browser.sites import (
    approve,
    article_id,
    embed_page,
    published,
    queue_ids,
    strict_csp,
)
from tests.servicehelpers import Service

PENDING = "Your comment is awaiting moderation."
EMAIL = "reader.one@example.net"


def requests_to(page: Page, live: Service) -> list[Request]:
    """Every request the page makes to the service, from now on."""
    seen: list[Request] = []
    page.on("request", lambda r: seen.append(r) if r.url.startswith(live.base) else None)
    return seen


def fill_form(page: Page, name: str, email: str, comment: str, website: str = "") -> None:
    page.get_by_role("textbox", name="Name", exact=True).fill(name)
    page.get_by_role("textbox", name="Email", exact=True).fill(email)
    page.get_by_role("textbox", name="Website", exact=True).fill(website)
    page.get_by_role("textbox", name="Comment", exact=True).fill(comment)


def reload_until(page: Page, locator: Any, timeout: float = 15.0) -> None:
    """Reload until ``locator`` matches (public pages may be cached for a few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        with page.expect_response(lambda r: "/comments?" in r.url):
            page.reload()
        page.wait_for_timeout(100)
        if locator.count() or time.monotonic() > deadline:
            return
        page.wait_for_timeout(500)


def comment_items(page: Page) -> Any:
    return page.locator("comment-thread li.comment")


# -- the whole path -----------------------------------------------------------------------


def test_post_pending_survives_reload_then_published_for_everyone(
    live: Service, host: Host, open_context: OpenContext
) -> None:
    article = article_id()
    url = host.page(f"/{article}", embed_page(live, article))
    context = open_context()
    page = context.new_page()
    log = watch(page)
    page.goto(url)
    expect(page.get_by_text("No comments yet.")).to_be_visible()
    fill_form(page, "Ann Reader", EMAIL, "First!\nSecond line.")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Post Comment").click()
    assert posted.value.status == 202
    comment_id = posted.value.json()["id"]
    item = page.locator(f"#c-{comment_id}")
    expect(item).to_contain_text(PENDING)
    expect(item.locator(".body p")).to_have_text("First!Second line.")
    assert item.locator("br").count() == 1  # the line break kept
    # The browser remembers it by id, never with the email.
    stored = page.evaluate("JSON.stringify(localStorage)")
    assert comment_id in stored and EMAIL not in stored and "@" not in stored

    page.reload()
    expect(page.locator(f"#c-{comment_id}")).to_contain_text(PENDING)
    # Nobody else sees it.
    stranger = open_context().new_page()
    stranger.goto(url)
    expect(stranger.get_by_text("No comments yet.")).to_be_visible()
    assert stranger.locator(f"comment-thread #c-{comment_id}").count() == 0

    approve(live, comment_id)
    page.reload()
    item = page.locator(f"#c-{comment_id}")
    expect(item).to_contain_text("First!")
    expect(item).not_to_contain_text(PENDING)
    expect(page.get_by_role("heading", name="1 comment")).to_be_visible()
    # Published: dropped from the pending ones (its edit token stays until the window ends).
    assert comment_id not in (page.evaluate("localStorage.getItem('comment-widget:pending')") or "")
    # The stranger's browser may serve its cached page for its max-age (5 s) first.
    reload_until(stranger, stranger.locator(f"comment-thread #c-{comment_id}"))
    expect(stranger.locator(f"#c-{comment_id}")).to_contain_text("First!")
    assert not log.errors


def test_a_pending_comment_is_forgotten_after_a_few_days(
    live: Service, open_context: OpenContext, host: Host
) -> None:
    article = article_id()
    url = host.page(f"/{article}", embed_page(live, article))
    now = time.time() * 1000
    kept = [
        ("01M8S0000000000000000OLD00", 8, "Too old to keep."),
        ("01M8S0000000000000000NEW00", 1, "Still waiting."),
    ]
    entries = [
        {
            "id": comment_id,
            "article_id": article,
            "base": live.base + "/",
            "parent_id": None,
            "name": "Ann",
            "comment": text,
            "website": None,
            "created_at": time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime((now - days * 86_400_000) / 1000)
            ),
        }
        for comment_id, days, text in kept
    ]
    context = open_context()
    context.add_init_script(
        f"if (!sessionStorage.seeded) {{ sessionStorage.seeded = 1; "
        f"localStorage.setItem('comment-widget:pending', {json.dumps(json.dumps(entries))}); }}"
    )
    page = context.new_page()
    page.goto(url)
    expect(page.get_by_text("Still waiting.")).to_be_visible()
    expect(page.get_by_text("Too old to keep.")).to_have_count(0)
    stored = json.loads(page.evaluate("localStorage.getItem('comment-widget:pending')"))
    assert [entry["id"] for entry in stored] == ["01M8S0000000000000000NEW00"]


def test_only_the_script_and_one_page_of_comments_on_load(
    live: Service, page: Page, host: Host
) -> None:
    article = article_id()
    published(live, article)
    seen = requests_to(page, live)
    page.goto(host.page(f"/{article}", embed_page(live, article)))
    expect(comment_items(page)).to_have_count(1)
    page.wait_for_load_state("networkidle")
    paths = [r.url[len(live.base) :] for r in seen]
    assert paths == ["/embed.js", f"/api/v1/articles/{article}/comments?limit=50"]


def test_nothing_is_fetched_until_the_thread_nears_the_viewport(
    live: Service, page: Page, host: Host
) -> None:
    article = article_id()
    published(live, article)
    filler = "".join(f"<p>Paragraph {i} of a long article.</p>" for i in range(400))
    seen = requests_to(page, live)
    page.goto(host.page(f"/{article}", embed_page(live, article, before=filler)))
    page.wait_for_load_state("networkidle")
    assert [r.url for r in seen if "/api/" in r.url] == []
    page.locator("comment-thread").scroll_into_view_if_needed()
    expect(comment_items(page)).to_have_count(1)
    assert len([r for r in seen if "/api/" in r.url]) == 1


# -- the form -----------------------------------------------------------------------------


def test_field_errors_are_shown_by_their_fields_and_announced(
    live: Service, page: Page, host: Host
) -> None:
    article = article_id()
    seen = requests_to(page, live)
    page.goto(host.page(f"/{article}", embed_page(live, article)))
    # Blank required fields: told at once, without a request.
    page.get_by_role("button", name="Post Comment").click()
    for name in ("name", "email", "comment"):
        expect(page.locator(f"comment-thread #e-{name}")).to_have_text("This field is required.")
    assert not [r for r in seen if r.method == "POST"]
    # What the service refuses: its 422 errors, each by its field.
    fill_form(page, "\u200b", "not-an-email", "Text kept.", website="ftp://files.example.org")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Post Comment").click()
    assert posted.value.status == 422
    errors = posted.value.json()["errors"]
    assert {"name", "email", "website"} <= set(errors)
    for label in ("Name", "Email", "Website"):
        field = page.get_by_role("textbox", name=label, exact=True)
        expect(field).to_have_attribute("aria-invalid", "true")
        described = field.get_attribute("aria-describedby")
        message = page.locator(f"comment-thread #{described}")
        expect(message).not_to_be_empty()
    expect(page.locator("comment-thread #e-email")).to_contain_text("Not a valid email address")
    expect(page.get_by_role("textbox", name="Comment", exact=True)).not_to_have_attribute(
        "aria-invalid", "true"
    )
    expect(page.get_by_role("textbox", name="Comment", exact=True)).to_have_value("Text kept.")
    status = page.locator("comment-thread [part=form-status]")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_contain_text("Please correct the marked fields.")
    # The first invalid field has the focus.
    assert page.evaluate(
        "document.querySelector('comment-thread').shadowRoot.activeElement.id"
    ) == ("f-name")
    # Fixed, the errors go.
    fill_form(page, "Ann", EMAIL, "Text kept.")
    page.get_by_role("button", name="Post Comment").click()
    expect(page.get_by_text(PENDING).first).to_be_visible()
    expect(page.get_by_role("textbox", name="Name", exact=True)).not_to_have_attribute(
        "aria-invalid", "true"
    )


def test_the_form_has_the_notice_labels_and_a_hidden_honeypot(
    live: Service, page: Page, host: Host
) -> None:
    article = article_id()
    page.goto(host.page(f"/{article}", embed_page(live, article)))
    expect(
        page.get_by_text(
            "Your email address will not be published. Required fields are marked *", exact=True
        )
    ).to_be_visible()
    for label in ("Name", "Email", "Comment", "Website"):
        expect(page.get_by_role("textbox", name=label, exact=True)).to_be_visible()
    for label in ("Name", "Email", "Comment"):
        expect(page.get_by_role("textbox", name=label, exact=True)).to_have_attribute(
            "aria-required", "true"
        )
    honeypot = page.locator("comment-thread input[name=fax]")
    assert honeypot.get_attribute("tabindex") == "-1"
    assert honeypot.evaluate("(i) => i.closest('[aria-hidden=true]') !== null")
    box = honeypot.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 0  # off screen
    # Not in the tab order: tabbing through the form never lands on it.
    page.get_by_role("textbox", name="Name", exact=True).focus()
    focused = []
    for _ in range(6):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.shadowRoot?.activeElement?.name"))
    assert "fax" not in focused and "comment" in focused


def test_too_many_comments_shows_the_wait(live: Service, page: Page, host: Host) -> None:
    article = article_id()
    live.put_policy(flood_interval_seconds=120)
    try:
        page.goto(host.page(f"/{article}", embed_page(live, article)))
        fill_form(page, "Ann", EMAIL, "One.")
        page.get_by_role("button", name="Post Comment").click()
        expect(page.get_by_text(PENDING).first).to_be_visible()
        page.get_by_role("textbox", name="Comment", exact=True).fill("Two, too fast.")
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.get_by_role("button", name="Post Comment").click()
        assert posted.value.status == 429
        wait = int(posted.value.headers["retry-after"])
        expect(page.locator("comment-thread [part=form-status]")).to_have_text(
            re.compile(rf"Too many comments\. Please try again in {wait} seconds?\.")
        )
        expect(page.get_by_role("textbox", name="Comment", exact=True)).to_have_value(
            "Two, too fast."
        )
    finally:
        live.put_policy()


def test_a_closed_article_replaces_the_form(live: Service, page: Page, host: Host) -> None:
    article = article_id()
    page.goto(host.page(f"/{article}", embed_page(live, article)))
    closed = live.moderate("PUT", f"/articles/{article}", json={"open": False})
    assert closed.status_code == 200
    fill_form(page, "Ann", EMAIL, "Too late.")
    page.get_by_role("button", name="Post Comment").click()
    expect(page.get_by_text("Comments are closed.")).to_be_visible()
    assert page.locator("comment-thread form").count() == 0


def test_unavailable_service_keeps_what_was_typed(live: Service, page: Page, host: Host) -> None:
    # The one answer stubbed in the browser: the shared session service cannot lose its Redis
    # for one test. Its shape is the service's own 503 (tests/test_faults.py makes it for real).
    article = article_id()
    page.goto(host.page(f"/{article}", embed_page(live, article)))
    page.route(
        f"{live.base}/api/v1/articles/{article}/comments",
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "5", "Access-Control-Allow-Origin": host.origin},
            content_type="application/problem+json",
            body=json.dumps({"type": "about:blank", "title": "Service Unavailable", "status": 503}),
        ),
    )
    fill_form(page, "Ann", EMAIL, "Keep me.")
    page.get_by_role("button", name="Post Comment").click()
    expect(page.locator("comment-thread [part=form-status]")).to_have_text(
        "Comments are unavailable right now. Please try again later."
    )
    expect(page.get_by_role("textbox", name="Comment", exact=True)).to_have_value("Keep me.")
    expect(page.get_by_role("button", name="Post Comment")).to_be_enabled()


# -- the thread ---------------------------------------------------------------------------


def test_replies_nest_under_their_parent_and_reply_sets_parent_id(
    live: Service, page: Page, host: Host
) -> None:
    article = article_id()
    root = published(live, article, name="Root", comment="Root comment.")
    ids = [root]
    for depth in range(1, 7):  # a chain deeper than the indentation cap
        ids.append(published(live, article, name=f"Depth {depth}", parent_id=ids[-1]))
    page.goto(host.page(f"/{article}", embed_page(live, article)))
    expect(comment_items(page)).to_have_count(7)
    depth_of = page.evaluate(
        """(ids) => ids.map((id) => {
            let depth = 0;
            let node = document.querySelector('comment-thread').shadowRoot
                .getElementById('c-' + id);
            while ((node = node.parentElement.closest('li.comment'))) depth++;
            return depth;
        })""",
        ids,
    )
    assert depth_of == [0, 1, 2, 3, 4, 4, 4]  # nested, capped at 4

    # Reply moves the form under the comment; the post carries its parent_id.
    page.get_by_role("button", name="Reply: Root").click()
    form = page.locator(f"comment-thread #c-{root} form")
    expect(form).to_be_visible()
    expect(form).to_contain_text("Replying to Root")
    assert page.evaluate(
        "document.querySelector('comment-thread').shadowRoot.activeElement.name"
    ) == ("comment")
    fill_form(page, "Replier", EMAIL, "A reply to the root.")
    with page.expect_request(lambda r: r.method == "POST") as sent:
        page.get_by_role("button", name="Post Comment").click()
    body = sent.value.post_data_json
    assert isinstance(body, dict) and body["parent_id"] == root
    expect(page.locator(f"comment-thread #c-{root} > ol.replies > li.pending")).to_contain_text(
        "A reply to the root."
    )
    # The form went back to the end of the thread.
    expect(page.locator(f"comment-thread #c-{root} form")).to_have_count(0)
    expect(page.locator("comment-thread section > [part=form-box] form")).to_be_visible()


def focused_in_widget(page: Page) -> str:
    """The name (or part) of what has the focus inside the widget's shadow root."""
    found: str = page.evaluate(
        """() => {
            const active = document.querySelector('comment-thread').shadowRoot.activeElement;
            return active ? (active.name || active.getAttribute('part') || active.tagName) : '';
        }"""
    )
    return found


def test_keyboard_only_reply_and_post(live: Service, page: Page, host: Host) -> None:
    article = article_id()
    root = published(live, article, name="Root")
    page.goto(host.page(f"/{article}", embed_page(live, article)))
    expect(comment_items(page)).to_have_count(1)
    page.keyboard.press("Tab")
    assert focused_in_widget(page) == "reply-button"
    page.keyboard.press("Enter")  # the form moves under the comment, the focus into it
    assert focused_in_widget(page) == "comment"
    page.keyboard.type("Typed with the keyboard only.")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert focused_in_widget(page) == "name"
    page.keyboard.type("Kim")
    page.keyboard.press("Tab")
    page.keyboard.type("kim.keys@example.net")
    for _ in range(3):  # website, comment, then the submit button
        page.keyboard.press("Tab")
    assert focused_in_widget(page) == "submit"
    with page.expect_request(lambda r: r.method == "POST") as sent:
        page.keyboard.press("Enter")
    body = sent.value.post_data_json
    assert isinstance(body, dict) and body["parent_id"] == root and body["name"] == "Kim"
    expect(page.locator(f"comment-thread #c-{root} li.pending")).to_contain_text(
        "Typed with the keyboard only."
    )


def test_load_more_follows_next_cursor(live: Service, page: Page, host: Host) -> None:
    article = article_id()
    ids = [published(live, article, comment=f"Comment number {i}.") for i in range(5)]
    seen = requests_to(page, live)
    page.goto(host.page(f"/{article}", embed_page(live, article, attrs='page-size="2"')))
    expect(comment_items(page)).to_have_count(2)
    expect(page.get_by_role("heading", name="5 comments")).to_be_visible()
    more = page.get_by_role("button", name="Load more comments")
    more.click()
    expect(comment_items(page)).to_have_count(4)
    more.click()
    expect(comment_items(page)).to_have_count(5)
    expect(more).to_be_hidden()
    shown = comment_items(page).evaluate_all("(items) => items.map((i) => i.id.slice(2))")
    assert shown == ids  # oldest first, no duplicates
    pages = [r.url for r in seen if "/comments" in r.url]
    assert len(pages) == 3 and all("cursor=" in u for u in pages[1:])


def test_counts_on_a_page_come_from_one_request(live: Service, page: Page, host: Host) -> None:
    a, b, c = article_id("a"), article_id("b"), article_id("c")
    for _ in range(2):
        published(live, a)
    published(live, b)
    seen = requests_to(page, live)
    html = embed_page(live, a, counts=(a, b, c, a))
    page.goto(host.page(f"/{a}-counts", html))
    counts = page.locator("comment-count")
    expect(counts).to_have_text(["2", "1", "0", "2"])
    page.wait_for_load_state("networkidle")
    count_requests = [r.url for r in seen if "comment-counts" in r.url]
    assert len(count_requests) == 1
    assert sorted(re.findall(r"article_id=([^&]+)", count_requests[0])) == sorted([a, b, c])


def test_hostile_comment_and_website_are_inert_text(live: Service, page: Page, host: Host) -> None:
    article = article_id()
    hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    comment_id = published(
        live,
        article,
        name="<b>Mallory</b>",
        comment=hostile
        + "\njavascript:window.__pwned=3 https://ok.example.org/a."
        + " (see https://wiki.example.org/Foo_(bar))",
        website="https://mallory.example.org/",
    )
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    page.goto(host.page(f"/{article}", embed_page(live, article)))
    item = page.locator(f"comment-thread #c-{comment_id}")
    expect(item).to_contain_text(hostile)  # shown as the text it is
    expect(item.locator(".author")).to_have_text("<b>Mallory</b>")
    assert item.locator("img, script, b").count() == 0
    links = item.locator("a").evaluate_all(
        "(links) => links.map((a) => [a.getAttribute('href'), a.rel])"
    )
    assert links == [
        ["https://mallory.example.org/", "nofollow ugc noopener"],
        ["https://ok.example.org/a", "nofollow ugc noopener"],  # the full stop left out
        ["https://wiki.example.org/Foo_(bar)", "nofollow ugc noopener"],  # its own bracket kept
    ]
    page.wait_for_timeout(200)
    assert page.evaluate("window.__pwned") is None and dialogs == []

    # A javascript: website is refused by the API and the widget says so by the field.
    fill_form(page, "Mallory", EMAIL, "Click my name.", website="javascript:alert(1)")
    page.get_by_role("button", name="Post Comment").click()
    expect(page.get_by_role("textbox", name="Website", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    assert not queue_ids(live, article)


def test_an_unlisted_origin_gets_a_clear_console_message(
    live: Service, page: Page, page_log: PageLog, host: Host
) -> None:
    article = article_id()
    host.page(f"/{article}", embed_page(live, article))
    page.goto(f"{host.other_origin}/{article}")
    expect(page.get_by_text("Comments could not be loaded.")).to_be_visible()
    errors = " ".join(page_log.texts("error"))
    assert "ALLOWED_ORIGINS" in errors and host.other_origin in errors


# -- locales ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "button", "heading"),
    [
        ('attrs=lang="uk"', "Надіслати коментар", "3 коментарі"),
        ("html=ru", "Отправить комментарий", "3 комментария"),
        ('attrs=lang="de"', "Kommentar abschicken", "3 Kommentare"),
        ("html=fr", "Publier le commentaire", "3 commentaires"),
        ('attrs=lang="en-GB"', "Post Comment", "3 comments"),
    ],
)
def test_the_language_comes_from_lang_or_the_page(
    live: Service, page: Page, host: Host, where: str, button: str, heading: str
) -> None:
    article = article_id(where.split("=")[-1].strip('"'))
    for _ in range(3):
        published(live, article)
    kind, value = where.split("=", 1)
    html = (
        embed_page(live, article, attrs=value)
        if kind == "attrs"
        else embed_page(live, article, html_lang=value)
    )
    page.goto(host.page(f"/{article}", html))
    expect(page.get_by_role("button", name=button)).to_be_visible()
    expect(page.get_by_role("heading", name=heading)).to_be_visible()


def test_every_string_can_be_overridden(live: Service, page: Page, host: Host) -> None:
    article = article_id()
    host.page(
        "/site-strings.js",
        "window.CommentWidgetStrings = {en: {leave: 'Your say', reply: 'Answer'}};",
        {"Content-Type": "text/javascript"},
    )
    published(live, article)
    attrs = """strings='{"post": "Send it"}'"""
    head = '<script src="/site-strings.js"></script>'
    page.goto(host.page(f"/{article}", embed_page(live, article, attrs=attrs, head=head)))
    expect(page.get_by_role("button", name="Send it")).to_be_visible()  # the element's
    expect(page.get_by_role("heading", name="Your say")).to_be_visible()  # the site's
    expect(page.get_by_role("button", name=re.compile("^Answer"))).to_be_visible()
    expect(page.get_by_text("Your email address will not be published.")).to_be_visible()


def test_a_published_comment_shows_at_once(live: Service, page: Page, host: Host) -> None:
    article = article_id()
    live.put_policy(auto_approve="all")
    try:
        page.goto(host.page(f"/{article}", embed_page(live, article)))
        fill_form(page, "Ann", EMAIL, "Published straight away.")
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.get_by_role("button", name="Post Comment").click()
        assert posted.value.status == 201
        item = page.locator(f"comment-thread #c-{posted.value.json()['id']}")
        expect(item).to_contain_text("Published straight away.")
        expect(item).not_to_contain_text(PENDING)
        expect(page.get_by_role("heading", name="1 comment")).to_be_visible()
        expect(page.locator("comment-thread [part=form-status]")).to_have_text(
            "Your comment has been published."
        )
        assert "comment-widget:pending" not in page.evaluate("Object.keys(localStorage)")
        assert page.get_by_role("textbox", name="Comment", exact=True).input_value() == ""
    finally:
        live.put_policy()


# -- isolation, themes, CSP ---------------------------------------------------------------

COMPUTED = """(thread) => {
    const root = thread.shadowRoot;
    const pick = (node) => {
        const s = getComputedStyle(node);
        return [s.color, s.backgroundColor, s.fontSize, s.fontFamily, s.display, s.margin,
                s.padding, s.borderTopWidth, s.textTransform, s.letterSpacing];
    };
    return {
        button: pick(root.querySelector('button[type=submit]')),
        p: pick(root.querySelector('p.notice')),
        form: pick(root.querySelector('form')),
        host: pick(thread),
    };
}"""

HOSTILE_CSS = """
button, p, form { color: #f0f !important; background: #ff0 !important; font-size: 31px !important;
  display: inline !important; margin: 40px !important; padding: 30px !important;
  border: 9px dashed red !important; font-family: fantasy !important; }
body { color: #0f0; font-size: 25px; text-transform: uppercase; letter-spacing: 3px; }
"""


def test_host_page_css_does_not_change_the_widget(live: Service, page: Page, host: Host) -> None:
    article = article_id()
    host.page("/hostile.css", HOSTILE_CSS, {"Content-Type": "text/css"})
    plain = host.page(f"/{article}", embed_page(live, article))
    hostile = host.page(
        f"/{article}-hostile",
        embed_page(live, article, head='<link rel="stylesheet" href="/hostile.css">'),
    )
    styles = []
    for url in (plain, hostile):
        page.goto(url)
        expect(page.get_by_role("button", name="Post Comment")).to_be_visible()
        styles.append(page.locator("comment-thread").evaluate(COMPUTED))
    # The host page's own paragraphs did change: the hostile sheet was applied.
    assert page.locator("header p, h1").first.evaluate("(n) => getComputedStyle(n).color") in (
        "rgb(0, 255, 0)",
        "rgb(255, 0, 255)",
    )
    assert styles[0] == styles[1]


def luminance(css_colour: str) -> float:
    channels = [int(v) / 255 for v in re.findall(r"\d+", css_colour)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(
    ("theme", "scheme", "dark"),
    [
        ("dark", "light", True),
        ("light", "dark", False),
        ("auto", "dark", True),
        ("auto", "light", False),
    ],
)
def test_themes(
    live: Service, open_context: OpenContext, host: Host, theme: str, scheme: str, dark: bool
) -> None:
    article = article_id(theme)
    published(live, article, comment="A comment to show the theme.")
    page = open_context(color_scheme=scheme).new_page()
    page.goto(host.page(f"/{article}", embed_page(live, article, attrs=f'theme="{theme}"')))
    expect(comment_items(page)).to_have_count(1)
    colour, ground = page.locator("comment-thread").evaluate(
        "(t) => [getComputedStyle(t).color, getComputedStyle(t).backgroundColor]"
    )
    assert (luminance(colour) > luminance(ground)) is dark
    assert contrast(colour, ground) >= 7
    assert axe_violations(page, "comment-thread") == []


def test_strict_csp_host_page_has_zero_violations(live: Service, page: Page, host: Host) -> None:
    article = article_id()
    parent = published(live, article, comment="Visit https://example.org/ for more.")
    published(live, article, parent_id=parent)
    published(live, article)
    html = embed_page(live, article, attrs='page-size="2"', counts=(article,))
    page.goto(host.page(f"/{article}", html, {"Content-Security-Policy": strict_csp(live)}))
    expect(page.locator("comment-count")).to_have_text("3")
    page.get_by_role("button", name="Load more comments").click()
    expect(comment_items(page)).to_have_count(3)
    page.get_by_role("button", name=re.compile("^Reply")).first.click()
    fill_form(page, "Ann", EMAIL, "Posted under a strict CSP.")
    page.get_by_role("button", name="Post Comment").click()
    expect(page.get_by_text(PENDING).first).to_be_visible()
    fill_form(page, "Ann", "bad", "x")
    with page.expect_response(lambda r: r.request.method == "POST") as refused:
        page.get_by_role("button", name="Post Comment").click()
    assert refused.value.status == 422
    expect(page.get_by_role("textbox", name="Email", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    # The widget styled itself (its sheet applied) under the policy.
    assert page.locator("comment-thread").evaluate("(t) => getComputedStyle(t).display") == "block"
    assert csp_violations(page) == []


# -- accessibility ------------------------------------------------------------------------


def test_axe_finds_nothing_in_the_widget(live: Service, page: Page, host: Host) -> None:
    article = article_id()
    parent = published(live, article, name="Ann", website="https://ann.example.org/")
    published(live, article, name="Bo", parent_id=parent, comment="Line one\nline two")
    page.goto(host.page(f"/{article}", embed_page(live, article, counts=(article,))))
    expect(comment_items(page)).to_have_count(2)
    assert axe_violations(page, "comment-thread") == []
    # With a pending comment, field errors and the reply form open.
    fill_form(page, "Cy", EMAIL, "Pending one.")
    page.get_by_role("button", name="Post Comment").click()
    expect(page.get_by_text(PENDING).first).to_be_visible()
    page.get_by_role("button", name="Reply: Ann").click()
    fill_form(page, "Dee", "nope", "Bad email.")
    page.get_by_role("button", name="Post Comment").click()
    expect(page.get_by_role("textbox", name="Email", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    assert axe_violations(page, "comment-thread") == []
    assert axe_violations(page) == []  # the whole host page, shadow root included
