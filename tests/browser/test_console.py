"""The moderator console (GET /moderate) in Debian's Chromium, against the real service.

Each test works on articles of its own (the service is shared by the session) and filters the
console by that article, as a moderator would.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Host, OpenContext, axe_violations, csp_violations
from tests.browser.sites import article_id, embed_page, queue_ids
from tests.browser.test_widget import PENDING, fill_form, reload_until
from tests.servicehelpers import MODERATOR_TOKEN, Service

ROOT = Path(__file__).resolve().parents[2]
# Written to docs/screenshots/ (linked from the README) when UPDATE_SCREENSHOTS=1 (make
# screenshots), else to the test's temporary folder: an ordinary run leaves the tree alone.
# The machine is shared: give assertions the contexts' 10 s rather than Playwright's 5 s.
expect.set_options(timeout=10_000)
SCREENSHOTS = ROOT / "docs" / "screenshots"


def post(live: Service, article: str, comment: str, **fields: Any) -> str:
    body = {"name": "Ann", "email": "ann@example.com", "comment": comment, **fields}
    response = requests.post(
        live.url(f"/api/v1/articles/{article}/comments"), json=body, timeout=10
    )
    assert response.status_code == 202, response.text
    comment_id: str = response.json()["id"]
    return comment_id


def status_of(live: Service, comment_id: str) -> str:
    response = live.moderate("GET", f"/comments/{comment_id}")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


def published(live: Service, article: str) -> list[str]:
    response = requests.get(live.url(f"/api/v1/articles/{article}/comments"), timeout=10)
    assert response.status_code == 200
    return [c["id"] for c in response.json()["comments"]]


def page_errors(page: Page) -> list[str]:
    """The page's uncaught errors, as they happen. (A lambda: Playwright cannot wrap a
    builtin method such as list.append as a handler.)"""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def tab_to(page: Page, target: Locator, limit: int = 60) -> None:
    """Press Tab until ``target`` has the focus: it is reachable by keyboard alone."""
    for _ in range(limit):
        if target.evaluate("node => node === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{target} never got the focus by Tab")


@pytest.fixture
def console(live: Service, open_context: OpenContext) -> Iterator[Page]:
    page = open_context().new_page()
    page.goto(live.url("/moderate"))
    yield page


def sign_in(page: Page, token: str = MODERATOR_TOKEN) -> None:
    page.get_by_label("Moderator token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def show_article(page: Page, article: str, status: str = "pending") -> None:
    page.get_by_label("Status").select_option(status)
    page.get_by_label("Article", exact=True).fill(article)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#list-status")).to_contain_text(f"{status} comments")


def comments(page: Page) -> Locator:
    return page.locator("#comments > li")


def test_sign_in_keeps_the_token_in_session_storage_only(
    live: Service, open_context: OpenContext
) -> None:
    context = open_context()
    page = context.new_page()
    errors = page_errors(page)
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    response = page.goto(live.url("/moderate"))
    assert response is not None and response.headers["cache-control"] == "no-store"
    # A wrong token is refused, said next to the field, and not kept.
    sign_in_button = page.get_by_role("button", name="Sign in")
    page.get_by_label("Moderator token").fill("not-the-token-not-the-token-00")
    sign_in_button.click()
    expect(page.locator("#token-error")).to_contain_text("sign in again")
    assert page.evaluate("sessionStorage.length") == 0
    sign_in(page)
    assert page.evaluate("sessionStorage.getItem('moderator-token')") == MODERATOR_TOKEN
    assert page.evaluate("localStorage.length") == 0
    assert context.cookies() == []
    expect(page.locator("#pending-count")).to_contain_text("pending")
    # A reload keeps the session (same tab); a new tab of another context does not.
    page.reload()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Moderator token")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    assert urls and not [u for u in urls if MODERATOR_TOKEN in u]
    assert page.url == live.url("/moderate")
    assert csp_violations(page) == [] and errors == []


def test_keyboard_only_moderation(live: Service, console: Page) -> None:
    article = article_id("keys")
    first, second, third = (post(live, article, f"Comment number {n}.") for n in (1, 2, 3))
    page = console
    errors = page_errors(page)
    tab_to(page, page.get_by_label("Moderator token"))
    page.keyboard.type(MODERATOR_TOKEN)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    tab_to(page, page.get_by_label("Article", exact=True))
    page.keyboard.type(article)
    page.keyboard.press("Enter")
    expect(comments(page)).to_have_count(3)
    # Showing a list moves the focus to it (out of the field): the keys act on the list.
    expect(page.locator("#queue-title")).to_be_focused()
    page.keyboard.press("j")
    expect(comments(page).nth(0)).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(comments(page).nth(0)).to_be_focused()
    page.keyboard.press("a")  # approve the first
    expect(comments(page)).to_have_count(2)
    assert status_of(live, first) == "approved"
    expect(comments(page).nth(0)).to_be_focused()  # the next comment is the current one
    page.keyboard.press("r")
    expect(comments(page)).to_have_count(1)
    assert status_of(live, second) == "rejected"
    page.keyboard.press("x")
    expect(page.locator("#selected-count")).to_have_text("1 selected")
    page.keyboard.press("s")
    expect(comments(page)).to_have_count(0)
    assert status_of(live, third) == "spam"
    page.keyboard.press("u")  # undo the last decision: back to pending
    expect(comments(page)).to_have_count(1)
    assert status_of(live, third) == "pending"
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard keys")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("approve the current comment")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert published(live, article) == [first]
    assert csp_violations(page) == [] and errors == []


def test_bulk_decisions_and_undo(live: Service, console: Page) -> None:
    article = article_id("bulk")
    ids = [post(live, article, f"Bulk comment {n}.") for n in range(3)]
    page = console
    sign_in(page)
    show_article(page, article)
    expect(comments(page)).to_have_count(3)
    page.get_by_label("Select all on this page").check()
    expect(page.locator("#selected-count")).to_have_text("3 selected")
    page.get_by_label("Note for the next decision (optional)").fill("welcome")
    page.get_by_role("button", name="Approve selected").click()
    expect(page.get_by_role("status")).to_contain_text("Approved 3 comments.")
    expect(comments(page)).to_have_count(0)
    assert sorted(published(live, article)) == sorted(ids)
    assert all(status_of(live, i) == "approved" for i in ids)
    # Undo: each published comment goes back to pending (unpublished), through the API.
    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("status")).to_contain_text("Undone: 3 comments restored.")
    expect(comments(page)).to_have_count(3)
    assert published(live, article) == []
    history = live.moderate("GET", f"/comments/{ids[0]}").json()["history"]
    assert [(h["from"], h["to"], h["note"]) for h in history[1:]] == [
        ("pending", "approved", "welcome"),
        ("approved", "pending", "undo"),
    ]
    # Two selected of three, rejected at once; the third stays.
    page.get_by_label("Select the comment by Ann").nth(0).check()
    page.get_by_label("Select the comment by Ann").nth(2).check()
    page.get_by_role("button", name="Reject selected").click()
    expect(comments(page)).to_have_count(1)
    assert [status_of(live, i) for i in ids] == ["rejected", "pending", "rejected"]
    # The Undo offer expires after a few seconds.
    expect(page.get_by_role("button", name="Undo")).to_be_hidden(timeout=12_000)
    assert queue_ids(live, article) == [ids[1]]


def test_the_queue_shows_every_field_as_text_and_the_reasons(live: Service, console: Page) -> None:
    article = article_id("fields")
    hostile = '<img src=x onerror="window.__pwned=1"> two links http://a.example http://b.example'
    post(live, article, hostile, name="<b>Mallory</b>", website="https://mallory.example/")
    page = console
    sign_in(page)
    show_article(page, article)
    item = comments(page).nth(0)
    expect(item.locator(".text")).to_have_text(hostile)
    expect(item.get_by_role("heading")).to_have_text("<b>Mallory</b>")
    expect(item).to_contain_text("ann@example.com")
    expect(item).to_contain_text("https://mallory.example/")
    expect(item).to_contain_text(article)
    expect(item.locator("time")).to_have_count(1)
    expect(item.get_by_role("list", name="Reasons")).to_contain_text("Links: 2 links")
    assert item.locator("img").count() == 0 and item.locator("b").count() == 0
    assert page.evaluate("window.__pwned") is None
    item.get_by_role("button", name="History").click()
    expect(item.locator(".history li")).to_have_count(1)
    expect(item.locator(".history")).to_contain_text("pending by policy")
    expect(item.get_by_role("button", name="History")).to_have_attribute("aria-expanded", "true")


def test_close_and_reopen_an_article(live: Service, console: Page) -> None:
    article = article_id("closing")
    page = console
    sign_in(page)
    page.get_by_role("link", name="Articles").click()
    page.get_by_label("Article id").fill(article)
    page.get_by_role("button", name="Close commenting").click()
    expect(page.locator("#article-result")).to_have_text(f"Commenting on {article} is closed.")
    body = {"name": "Ann", "email": "ann@example.com", "comment": "Closed?"}
    url = live.url(f"/api/v1/articles/{article}/comments")
    assert requests.post(url, json=body, timeout=10).status_code == 403
    page.get_by_role("button", name="Reopen commenting").click()
    expect(page.locator("#article-result")).to_have_text(f"Commenting on {article} is open.")
    assert requests.post(url, json=body, timeout=10).status_code == 202


def test_policy_errors_are_shown_by_field(live: Service, console: Page) -> None:
    before = live.moderate("GET", "/policy").json()
    page = console
    sign_in(page)
    page.get_by_role("link", name="Policy").click()
    days = page.get_by_label("Trusted days")
    expect(days).to_have_value(str(before["trusted_days"]))
    days.fill("0")
    page.get_by_role("button", name="Save policy").click()
    expect(days).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#policy-trusted_days-error")).to_contain_text("greater than or equal to 1")
    expect(page.locator("#policy-result")).to_contain_text("Not saved")
    assert live.moderate("GET", "/policy").json() == before
    days.fill(str(before["trusted_days"]))
    page.get_by_label("Hold terms").fill("bananas\nkumquats")
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator("#policy-result")).to_have_text("Policy saved.")
    try:
        assert live.moderate("GET", "/policy").json()["hold_terms"] == ["bananas", "kumquats"]
    finally:
        assert live.moderate("PUT", "/policy", json=before).status_code == 200


def test_approve_and_trust_this_author(live: Service, console: Page) -> None:
    """The policy trusts known commenters. This one's earlier comment was rejected, so a plain
    approval would leave their next one held (tests/test_bulk_decisions.py); one click
    approves and trusts them, and their next comment is published at once."""
    article = article_id("trust")
    url = live.url(f"/api/v1/articles/{article}/comments")
    author = {"name": "Tracy", "email": "tracy@example.com"}

    def send(comment: str, key: str | None) -> requests.Response:
        extra = {"commenter_key": key} if key else {}
        return requests.post(url, json={**author, "comment": comment, **extra}, timeout=10)

    first = send("My first comment here.", None)
    assert first.status_code == 202
    rejected = live.moderate("POST", f"/comments/{first.json()['id']}/reject", json={})
    assert rejected.status_code == 200
    second = send("A better second comment.", first.json()["commenter_key"])
    assert second.status_code == 202
    page = console
    sign_in(page)
    show_article(page, article)
    expect(comments(page)).to_have_count(1)
    page.get_by_role("button", name="Approve and trust this author").click()
    expect(page.get_by_role("status")).to_contain_text("Approved and trusted 1 comment.")
    expect(comments(page)).to_have_count(0)
    assert status_of(live, second.json()["id"]) == "approved"
    third = send("Back again.", second.json()["commenter_key"])
    assert third.status_code == 201  # published at once


def test_the_console_has_no_accessibility_violations(live: Service, console: Page) -> None:
    article = article_id("axe")
    post(live, article, "Read more at http://a.example and http://b.example today.")
    post(live, article, "A second one,\nwith a line break.", website="https://bo.example/")
    page = console
    assert axe_violations(page) == []  # the sign-in screen
    sign_in(page)
    show_article(page, article)
    comments(page).nth(0).get_by_role("button", name="History").click()
    expect(comments(page).nth(0).locator(".history li")).to_have_count(1)
    comments(page).nth(1).get_by_role("checkbox").check()
    assert axe_violations(page) == []  # the queue, with a selection and a history open
    page.get_by_role("button", name="Approve selected").click()
    expect(page.get_by_role("button", name="Undo")).to_be_visible()
    assert axe_violations(page) == []  # the Undo offer
    page.get_by_role("button", name="Keyboard keys (?)").click()
    assert axe_violations(page) == []  # the keys dialog
    page.keyboard.press("Escape")
    page.get_by_role("link", name="Policy").click()
    page.get_by_label("Trusted days").fill("0")
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_label("Trusted days")).to_have_attribute("aria-invalid", "true")
    assert axe_violations(page) == []  # the policy, with a field error
    page.get_by_role("link", name="Articles").click()
    assert axe_violations(page) == []
    assert csp_violations(page) == []


def pending_text(n: int) -> str:
    return "1 comment pending" if n == 1 else f"{n} comments pending"


def test_the_pending_count_follows_the_queue(live: Service, open_context: OpenContext) -> None:
    """The count is polled: a comment sent meanwhile shows up at the next poll (the page's
    timers run on Playwright's clock, fast-forwarded past the polling interval)."""
    context = open_context()
    context.clock.install()
    page = context.new_page()
    page.goto(live.url("/moderate"))
    sign_in(page)
    count = page.locator("#pending-count")
    expect(count).to_contain_text("pending")
    before = live.moderate("GET", "/queue?limit=1").json()["total"]
    expect(count).to_have_text(pending_text(before))
    post(live, article_id("count"), "One more for the queue.")
    page.clock.fast_forward(16_000)
    expect(count).to_have_text(pending_text(before + 1))


def test_paging_filters_and_undo_outside_the_pending_queue(live: Service, console: Page) -> None:
    article = article_id("pages")
    ids = [post(live, article, f"Paged comment {n}.") for n in range(23)]
    linked = post(live, article_id("reasons"), "See http://a.example and http://b.example")
    page = console
    sign_in(page)
    show_article(page, article)
    expect(comments(page)).to_have_count(20)
    expect(page.locator("#list-status")).to_have_text(
        "Page 1: 20 of 23 pending comments, oldest first."
    )
    page.get_by_role("button", name="Next page").click()
    expect(comments(page)).to_have_count(3)
    expect(comments(page).nth(0)).to_have_attribute("data-id", ids[20])
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    page.get_by_role("button", name="Previous page").click()
    expect(comments(page)).to_have_count(20)
    expect(comments(page).nth(0)).to_have_attribute("data-id", ids[0])
    # Article and reason filter one at a time; by reason, across articles.
    page.get_by_label("Reason", exact=True).select_option("links")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#filter-error")).to_have_text(
        "Filter by an article or by a reason, one at a time."
    )
    page.get_by_label("Article", exact=True).fill("")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(f'#comments > li[data-id="{linked}"]')).to_have_count(1)
    for item in comments(page).all():
        expect(item.get_by_role("list", name="Reasons")).to_contain_text("Links")
    # In the approved list, a rejection's Undo publishes the comment again.
    assert live.moderate("POST", f"/comments/{ids[0]}/approve", json={}).status_code == 200
    page.get_by_label("Reason", exact=True).select_option("")
    show_article(page, article, "approved")
    expect(comments(page)).to_have_count(1)
    comments(page).nth(0).get_by_role("button", name="Reject").click()
    expect(comments(page)).to_have_count(0)
    assert published(live, article) == []
    page.get_by_role("button", name="Undo").click()
    expect(comments(page)).to_have_count(1)
    assert published(live, article) == [ids[0]]


def test_the_whole_path_from_the_widget_to_the_console_and_back(
    live: Service, host: Host, open_context: OpenContext
) -> None:
    """A reader posts in the widget on an embedding site and sees their comment pending; a
    moderator approves it in the console; after a reload it is on the article, for the reader
    and for a second browser (context) that never posted."""
    article = article_id("path")
    url = host.page(f"/{article}", embed_page(live, article))
    reader = open_context().new_page()
    reader_errors = page_errors(reader)
    reader.goto(url)
    expect(reader.get_by_text("No comments yet.")).to_be_visible()
    fill_form(reader, "Pat Reader", "pat@example.net", "Approved through the console, I hope.")
    with reader.expect_response(lambda r: r.request.method == "POST") as posted:
        reader.get_by_role("button", name="Post Comment").click()
    assert posted.value.status == 202
    comment_id = posted.value.json()["id"]
    expect(reader.locator(f"#c-{comment_id}")).to_contain_text(PENDING)
    reader.reload()
    expect(reader.locator(f"#c-{comment_id}")).to_contain_text(PENDING)
    stranger = open_context().new_page()
    stranger.goto(url)
    expect(stranger.get_by_text("No comments yet.")).to_be_visible()

    moderator = open_context().new_page()
    moderator_errors = page_errors(moderator)
    moderator.goto(live.url("/moderate"))
    sign_in(moderator)
    show_article(moderator, article)
    item = comments(moderator).nth(0)
    expect(item).to_have_attribute("data-id", comment_id)
    expect(item.locator(".text")).to_have_text("Approved through the console, I hope.")
    expect(item).to_contain_text("pat@example.net")  # moderators see the email
    item.get_by_role("button", name="Approve", exact=True).click()
    expect(moderator.get_by_role("status")).to_contain_text("Approved 1 comment.")
    expect(comments(moderator)).to_have_count(0)

    reader.reload()
    published_item = reader.locator(f"#c-{comment_id}")
    expect(published_item).to_contain_text("Approved through the console, I hope.")
    expect(published_item).not_to_contain_text(PENDING)
    expect(reader.get_by_role("heading", name="1 comment")).to_be_visible()
    # The second browser may serve its cached page for its max-age (5 s) first.
    reload_until(stranger, stranger.locator(f"comment-thread #c-{comment_id}"))
    expect(stranger.locator(f"#c-{comment_id}")).to_contain_text("Approved through the console")
    assert "pat@example.net" not in stranger.content()
    assert reader_errors == [] and moderator_errors == []
    assert csp_violations(moderator) == []


def test_screenshots_of_the_console(live: Service, console: Page, tmp_path: Path) -> None:
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    article = "the-river-crossing-queue"  # unique per session: each has its own store
    post(
        live,
        article,
        "Read the full report at https://example.org/report and https://example.org/annex.",
        name="Olena",
        email="olena@example.org",
        website="https://olena.example.org/",
    )
    post(
        live,
        article,
        "Is there a follow-up planned?\nI would like to read it.",
        name="Ivan",
        email="ivan@example.net",
    )
    page = console
    page.set_viewport_size({"width": 1100, "height": 1000})
    sign_in(page)
    show_article(page, article)
    comments(page).nth(0).get_by_role("button", name="History").click()
    expect(comments(page).nth(0).locator(".history li")).to_have_count(1)
    comments(page).nth(1).get_by_role("checkbox").check()
    page.screenshot(path=str(folder / "console.png"), full_page=True)
    assert (folder / "console.png").stat().st_size > 10_000
