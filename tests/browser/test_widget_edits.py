"""The widget's author edits and idempotent posts (issue 16) in Debian's Chromium, on a host
page with a strict CSP, against the real service: Edit and Delete on the reader's own comments
while the edit window is open (the token kept by id, never with the email), what the service
answers after the window, and one Idempotency-Key per post attempt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Host, OpenContext, axe_violations, csp_violations, watch
from tests.browser.sites import article_id, embed_page, published, queue_ids, strict_csp
from tests.browser.test_widget import EMAIL, PENDING, fill_form
from tests.servicehelpers import Service

MINE = "comment-widget:mine"
EDITED_PENDING = "Your edited comment is awaiting moderation."


def open_thread(live: Service, page: Page, host: Host, article: str) -> None:
    url = host.page(
        f"/{article}", embed_page(live, article), {"Content-Security-Policy": strict_csp(live)}
    )
    page.goto(url)
    expect(page.get_by_role("button", name="Post Comment")).to_be_visible()


def post_in_widget(page: Page, comment: str, name: str = "Ann") -> dict[str, Any]:
    fill_form(page, name, EMAIL, comment)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Post Comment").click()
    assert posted.value.status in (201, 202)
    answer: dict[str, Any] = posted.value.json()
    return answer


def mine(page: Page) -> list[dict[str, Any]]:
    stored: list[dict[str, Any]] = json.loads(
        page.evaluate(f"localStorage.getItem('{MINE}') || '[]'")
    )
    return stored


def moderator_view(live: Service, comment_id: str) -> Any:
    return live.moderate("GET", f"/comments/{comment_id}")


@pytest.fixture
def policy(live: Service) -> Iterator[Any]:
    """``policy(**settings)`` for one test, the session's policy back afterwards."""
    yield live.put_policy
    live.put_policy()


def test_edit_and_delete_ones_own_comment_within_the_window(
    live: Service, open_context: OpenContext, host: Host
) -> None:
    article = article_id("edits")
    someone = published(live, article, name="Bo", comment="Someone else's comment.")
    page = open_context().new_page()
    log = watch(page)
    open_thread(live, page, host, article)
    answer = post_in_widget(page, "My first post")
    item = page.locator(f"comment-thread #c-{answer['id']}")
    expect(item).to_contain_text(PENDING)
    # The token is kept by the comment's id with the window's end: never the email.
    assert mine(page) == [
        {
            "id": answer["id"],
            "token": answer["edit_token"],
            "until": answer["edit_until"],
            "base": live.base + "/",
        }
    ]
    assert "@" not in page.evaluate("JSON.stringify(localStorage)")
    # Edit and Delete on one's own comment only.
    expect(item.get_by_role("button", name="Edit")).to_be_visible()
    others = page.locator(f"comment-thread #c-{someone}")
    expect(others.get_by_role("button", name="Edit")).to_have_count(0)
    expect(others.get_by_role("button", name="Delete")).to_have_count(0)

    item.get_by_role("button", name="Edit").click()
    form = page.get_by_role("form", name="Edit your comment, Ann")
    text = form.get_by_role("textbox", name="Comment", exact=True)
    expect(text).to_be_focused()
    expect(text).to_have_value("My first post")
    # Checked as the post form checks: blanks at once, the service's 422 by field.
    text.fill("")
    form.get_by_role("button", name="Save changes").click()
    expect(text).to_have_attribute("aria-invalid", "true")
    expect(form.locator(f"#ex{answer['id']}-comment")).to_have_text("This field is required.")
    text.fill("My first post, fixed.")
    form.get_by_role("textbox", name="Website", exact=True).fill("ftp://files.example.org")
    with page.expect_response(lambda r: r.request.method == "PATCH") as refused:
        form.get_by_role("button", name="Save changes").click()
    assert refused.value.status == 422
    website = form.get_by_role("textbox", name="Website", exact=True)
    expect(website).to_have_attribute("aria-invalid", "true")
    expect(website).to_be_focused()
    expect(form.locator(f"#ex{answer['id']}-website")).not_to_be_empty()
    expect(form.get_by_role("status")).to_contain_text("Please correct the marked fields.")
    expect(text).not_to_have_attribute("aria-invalid", "true")
    assert axe_violations(page, "comment-thread") == []  # the edit form with its errors
    website.fill("")
    with page.expect_response(lambda r: r.request.method == "PATCH") as saved:
        form.get_by_role("button", name="Save changes").click()
    assert saved.value.status == 200
    assert saved.value.request.headers["edit-token"] == answer["edit_token"]
    expect(item.locator(".body")).to_have_text("My first post, fixed.")
    expect(item).to_contain_text(EDITED_PENDING)
    expect(item.get_by_role("button", name="Edit")).to_be_focused()
    stored = moderator_view(live, answer["id"]).json()
    assert (
        stored["comment"] == "My first post, fixed."
        and stored["edits"][0]["comment"] == "My first post"
    )
    # Still the edited words after a reload (the pending copy was updated).
    page.reload()
    expect(page.locator(f"comment-thread #c-{answer['id']} .body")).to_have_text(
        "My first post, fixed."
    )
    expect(page.locator(f"comment-thread #c-{answer['id']}")).to_contain_text(EDITED_PENDING)
    assert axe_violations(page, "comment-thread") == []  # Edit and Delete shown

    item = page.locator(f"comment-thread #c-{answer['id']}")
    dialogs: list[str] = []

    def confirm(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        item.get_by_role("button", name="Delete").click()
    assert deleted.value.status == 204
    assert dialogs == ["Delete your comment for good?"]
    expect(item).to_have_count(0)
    expect(page.locator("comment-thread [part=status]")).to_have_text(
        "Your comment has been deleted."
    )
    assert moderator_view(live, answer["id"]).status_code == 404
    assert mine(page) == []
    assert answer["id"] not in page.evaluate("JSON.stringify(localStorage)")
    assert csp_violations(page) == [] and not log.errors


def test_a_published_comment_edited_into_a_held_one_says_it_is_back_in_review(
    live: Service, page: Page, host: Host, policy: Any
) -> None:
    policy(auto_approve="all", hold_terms=["kumquats"])
    article = article_id("held-edit")
    open_thread(live, page, host, article)
    answer = post_in_widget(page, "Published at once.")
    assert answer["status"] == "approved"
    item = page.locator(f"comment-thread #c-{answer['id']}")
    expect(page.get_by_role("heading", name="1 comment")).to_be_visible()
    item.get_by_role("button", name="Edit").click()
    form = page.get_by_role("form", name="Edit your comment, Ann")
    form.get_by_role("textbox", name="Comment", exact=True).fill("Now about kumquats.")
    form.get_by_role("button", name="Save changes").click()
    expect(item).to_contain_text(EDITED_PENDING)
    expect(item.get_by_role("status")).to_have_text(EDITED_PENDING)
    expect(page.get_by_role("heading", name="Comments", exact=True)).to_be_visible()  # 0 now
    assert moderator_view(live, answer["id"]).json()["status"] == "pending"
    assert queue_ids(live, article) == [answer["id"]]
    assert csp_violations(page) == []


def test_the_buttons_go_when_the_window_ends(
    live: Service, page: Page, host: Host, policy: Any
) -> None:
    policy(edit_window_seconds=3)
    article = article_id("window")
    open_thread(live, page, host, article)
    answer = post_in_widget(page, "Three seconds to fix my typos.")
    item = page.locator(f"comment-thread #c-{answer['id']}")
    expect(item.get_by_role("button", name="Edit")).to_be_visible()
    expect(item.get_by_role("button", name="Edit")).to_have_count(0, timeout=8_000)
    expect(item.get_by_role("button", name="Delete")).to_have_count(0)
    page.reload()
    expect(page.locator(f"comment-thread #c-{answer['id']}")).to_contain_text(PENDING)
    assert mine(page) == []  # dropped with the window


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_after_the_window_the_service_refusal_says_when_it_ended(
    live: Service, open_context: OpenContext, host: Host, policy: Any, method: str
) -> None:
    """The reader's clock is behind the service's: the widget still offers Edit and Delete,
    and the service's 403 says when the window ended; the token is dropped."""
    policy(edit_window_seconds=1)
    article = article_id("late")
    context = open_context()
    page = context.new_page()
    open_thread(live, page, host, article)
    answer = post_in_widget(page, "Too slow to fix.")
    time.sleep(1.2)
    skewed = [{**mine(page)[0], "until": "2999-01-01T00:00:00.000Z"}]
    page.evaluate(f"localStorage.setItem('{MINE}', {json.dumps(json.dumps(skewed))})")
    page.reload()
    item = page.locator(f"comment-thread #c-{answer['id']}")
    if method == "PATCH":
        item.get_by_role("button", name="Edit").click()
        form = page.get_by_role("form", name="Edit your comment, Ann")
        form.get_by_role("textbox", name="Comment", exact=True).fill("Too late.")
        with page.expect_response(lambda r: r.request.method == "PATCH") as late:
            form.get_by_role("button", name="Save changes").click()
    else:
        page.once("dialog", lambda dialog: dialog.accept())
        with page.expect_response(lambda r: r.request.method == "DELETE") as late:
            item.get_by_role("button", name="Delete").click()
    assert late.value.status == 403
    ends = late.value.json()["window_ends_at"]
    assert ends == answer["edit_until"]
    shown = time.strftime("%-d %b %Y, %H:%M", time.strptime(ends[:16], "%Y-%m-%dT%H:%M"))
    status = item.get_by_role("status")
    expect(status).to_have_text(f"Your comment could be edited or deleted until {shown}.")
    expect(item.locator(".body")).to_have_text("Too slow to fix.")  # nothing changed
    expect(item.get_by_role("button", name="Edit")).to_have_count(0)
    assert mine(page) == []
    assert moderator_view(live, answer["id"]).json()["comment"] == "Too slow to fix."
    assert axe_violations(page, "comment-thread") == []
    assert csp_violations(page) == []


def test_a_retried_post_reuses_its_key_and_is_stored_once(
    live: Service, page: Page, host: Host
) -> None:
    """The first attempt reaches the service, which stores it, but its answer is lost (the
    connection cut); the second is a 503 that never reached it; the third, the same attempt,
    gets the first answer again. A new comment has a new key."""
    article = article_id("retry")
    open_thread(live, page, host, article)
    path = f"{live.base}/api/v1/articles/{article}/comments"
    keys: list[str] = []
    answers: list[int] = []

    def flaky(route: Route) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            answers.append(route.fetch().status)  # stored, then the answer is lost
            route.abort("connectionreset")
        elif len(keys) == 2:
            route.fulfill(
                status=503,
                headers={"Retry-After": "1", "Access-Control-Allow-Origin": host.origin},
                content_type="application/problem+json",
                body=json.dumps({"type": "about:blank", "title": "Service Unavailable"}),
            )
        else:
            route.continue_()

    page.route(path, flaky)
    fill_form(page, "Ann", EMAIL, "Sent over a flaky network.")
    status = page.locator("comment-thread [part=form-status]")
    page.get_by_role("button", name="Post Comment").click()
    expect(status).to_have_text("Your comment could not be sent. Please try again.")
    page.get_by_role("button", name="Post Comment").click()
    expect(status).to_have_text("Comments are unavailable right now. Please try again later.")
    with page.expect_response(lambda r: r.request.method == "POST") as third:
        page.get_by_role("button", name="Post Comment").click()
    assert third.value.status == 202
    comment_id = third.value.json()["id"]
    expect(page.locator(f"comment-thread #c-{comment_id}")).to_contain_text(PENDING)
    assert answers == [202] and len(set(keys)) == 1 and len(keys[0]) == 36
    assert queue_ids(live, article) == [comment_id]  # stored once
    # Another comment: another key.
    page.get_by_role("textbox", name="Comment", exact=True).fill("And a second thought.")
    page.get_by_role("button", name="Post Comment").click()
    expect(page.get_by_text("And a second thought.")).to_be_visible()
    assert len(keys) == 4 and keys[3] != keys[0]
    assert len(queue_ids(live, article)) == 2
    assert csp_violations(page) == []
