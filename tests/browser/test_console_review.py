"""The console with several moderators and readers (issue 16): decisions on the version read
(412 shown as the comment is now), the Reported tab, claims of the focused comment. Debian's
Chromium against the real service; the second moderator and the readers act over the API.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    OTHER_MODERATOR,
    OTHER_MODERATOR_TOKEN,
    OpenContext,
    axe_violations,
    csp_violations,
)
from tests.browser.sites import article_id
from tests.browser.test_console import (
    SCREENSHOTS,
    comments,
    page_errors,
    post,
    show_article,
    sign_in,
    status_of,
)
from tests.servicehelpers import Service


def as_other(live: Service, method: str, path: str, **kwargs: Any) -> requests.Response:
    """The second moderator's call to the moderation API."""
    return requests.request(
        method,
        live.url("/api/v1/moderation" + path),
        headers={"Authorization": f"Bearer {OTHER_MODERATOR_TOKEN}"},
        timeout=10,
        **kwargs,
    )


def report_from(live: Service, ip: str, comment_id: str, reason: str, note: str = "") -> None:
    """A reader's report, from the loopback address ``ip`` (one report per client: each reader
    of a test is an address of 127.0.0.0/8, which all reach the service on 127.0.0.1)."""
    where = urlsplit(live.base)
    connection = http.client.HTTPConnection(
        where.hostname or "", where.port, timeout=10, source_address=(ip, 0)
    )
    body = json.dumps({"reason": reason, **({"note": note} if note else {})})
    try:
        connection.request(
            "POST",
            f"/api/v1/comments/{comment_id}/reports",
            body,
            {"Content-Type": "application/json"},
        )
        answer = connection.getresponse()
        assert answer.status == 202, answer.read()
    finally:
        connection.close()


def published_by_api(live: Service, article: str, text: str, name: str = "Ann") -> str:
    comment_id = post(live, article, text, name=name)
    assert live.moderate("POST", f"/comments/{comment_id}/approve", json={}).status_code == 200
    return comment_id


def item(page: Page, comment_id: str) -> Any:
    return page.locator(f'#comments > li[data-id="{comment_id}"]')


@pytest.fixture
def console(live: Service, open_context: OpenContext) -> Page:
    page = open_context().new_page()
    page.goto(live.url("/moderate"))
    return page


@pytest.fixture
def reports_at_two(live: Service) -> Iterator[None]:
    """Two readers' reports flag a published comment (it stays visible), for one test."""
    live.put_policy(report_threshold=2, report_action="flag")
    try:
        yield
    finally:
        live.put_policy()


def test_a_decision_on_a_comment_that_moved_on_shows_it_as_it_is_now(
    live: Service, console: Page
) -> None:
    article = article_id("versions")
    first = post(live, article, "Read by one moderator, decided by another.")
    second = post(live, article, "Edited by its author while in review.")
    third = post(live, article, "Nothing happens to this one meanwhile.")
    edit_token = requests.post(  # a comment of its own, to edit with its token
        live.url(f"/api/v1/articles/{article}/comments"),
        json={"name": "Eve", "email": "eve@example.com", "comment": "My first words."},
        timeout=10,
    ).json()
    page = console
    errors = page_errors(page)
    sign_in(page)
    show_article(page, article)
    expect(comments(page)).to_have_count(4)
    # Behind the console's back: the other moderator approves the first comment.
    assert as_other(live, "POST", f"/comments/{first}/approve", json={}).status_code == 200
    with page.expect_response(lambda r: r.url.endswith(f"/{first}/reject")) as refused:
        item(page, first).get_by_role("button", name="Reject").click()
    assert refused.value.status == 412
    assert refused.value.request.headers["if-match"] == '"v1"'
    stale = item(page, first).locator(".stale")
    expect(stale).to_contain_text("changed since you read it")
    expect(stale).to_contain_text(f"now approved, moved by {OTHER_MODERATOR}")
    expect(item(page, first).locator(".meta")).to_contain_text("approved")
    expect(page.get_by_role("status")).to_contain_text("changed meanwhile")
    expect(item(page, first)).to_be_focused()
    assert status_of(live, first) == "approved"  # the console changed nothing
    assert axe_violations(page) == []  # the refused decision, shown
    # Decided again on what it is now (version 2): applied.
    with page.expect_response(lambda r: r.url.endswith(f"/{first}/reject")) as decided:
        item(page, first).get_by_role("button", name="Reject").click()
    assert decided.value.status == 200
    assert decided.value.request.headers["if-match"] == '"v2"'
    expect(item(page, first)).to_have_count(0)
    assert status_of(live, first) == "rejected"

    # In bulk: each item carries its version; the one its author edited is refused alone.
    edited = requests.patch(
        live.url(f"/api/v1/comments/{edit_token['id']}"),
        json={"comment": "My better words."},
        headers={"Edit-Token": edit_token["edit_token"]},
        timeout=10,
    )
    assert edited.status_code == 200
    page.get_by_label("Select all on this page").check()
    with page.expect_response(lambda r: r.url.endswith("/decisions")) as bulk:
        page.get_by_role("button", name="Approve selected").click()
    sent = json.loads(bulk.value.request.post_data or "{}")["decisions"]
    assert {d["comment_id"]: d["version"] for d in sent} == {
        second: 1,
        third: 1,
        edit_token["id"]: 1,
    }
    expect(page.get_by_role("status")).to_contain_text("Approved 2 comments.")
    moved = item(page, edit_token["id"])
    expect(moved.locator(".stale")).to_contain_text("moved by its author (an edit)")
    expect(moved.locator(".text")).to_have_text("My better words.")  # as it is now
    expect(moved.locator(".meta")).to_contain_text("eve@example.com")  # the email kept
    assert [status_of(live, i) for i in (second, third, edit_token["id"])] == [
        "approved",
        "approved",
        "pending",
    ]
    assert csp_violations(page) == [] and errors == []


def test_the_reported_tab_shows_counts_and_notes_and_dismisses(
    live: Service, console: Page, reports_at_two: None
) -> None:
    article = article_id("reported")
    flagged = published_by_api(live, article, "Buy cheap watches at my shop.", name="Spammy")
    rude = published_by_api(live, article, "You are all wrong and stupid.", name="Rude")
    report_from(live, "127.0.0.2", flagged, "spam", "Looks like an advert <b>really</b>")
    report_from(live, "127.0.0.3", flagged, "abuse")
    report_from(live, "127.0.0.2", rude, "abuse", "Insults other readers")
    report_from(live, "127.0.0.3", rude, "abuse")
    page = console
    errors = page_errors(page)
    sign_in(page)
    page.get_by_role("link", name="Reported").click()
    expect(page.get_by_role("heading", name="Reported comments")).to_be_visible()
    expect(page.get_by_label("Status")).to_be_hidden()  # the Reported queue takes no filter
    expect(page.locator("#list-status")).to_contain_text("reported comments")
    one, two = item(page, flagged), item(page, rude)
    counts = one.get_by_role("list", name="Reader reports")
    expect(counts.get_by_role("listitem")).to_have_count(2)
    expect(counts).to_contain_text("Spam: 1")
    expect(counts).to_contain_text("Abuse: 1")
    expect(two.get_by_role("list", name="Reader reports")).to_have_text("Abuse: 2 reports")
    notes = one.get_by_role("list", name="Notes of the reports")
    expect(notes).to_contain_text("Looks like an advert <b>really</b>")  # as text
    assert notes.locator("b").count() == 0
    expect(one.locator(".meta")).to_contain_text("approved")  # flagged, still published
    assert axe_violations(page) == []  # the Reported tab
    # Dismissed: it leaves the Reported queue, stays published, its reports stop counting.
    one.get_by_role("button", name="Dismiss reports").click()
    expect(page.get_by_role("status")).to_contain_text("Dismissed 2 reports")
    expect(one).to_have_count(0)
    reports = live.moderate("GET", f"/comments/{flagged}/reports").json()
    assert reports["active"] == 0 and all(r["dismissed"] for r in reports["reports"])
    assert status_of(live, flagged) == "approved"
    # The normal decisions work here too: rejected, it leaves the queue and the article.
    two.get_by_role("button", name="Reject").click()
    expect(two).to_have_count(0)
    assert status_of(live, rude) == "rejected"
    queue = live.moderate("GET", "/queue", params={"view": "reported", "limit": 200}).json()
    assert not {flagged, rude} & {c["id"] for c in queue["comments"]}
    # Back on the Queue tab, the filters and the pending list return.
    page.get_by_role("link", name="Queue").click()
    expect(page.get_by_label("Status")).to_be_visible()
    expect(page.get_by_role("heading", name="Comments", exact=True)).to_be_visible()
    assert csp_violations(page) == [] and errors == []


def test_the_focused_comment_is_claimed_and_others_claims_are_shown(
    live: Service, console: Page
) -> None:
    article = article_id("claims")
    held, free, third = (post(live, article, f"Claim test {n}.") for n in range(3))
    assert as_other(live, "POST", f"/comments/{held}/claim").status_code == 200
    page = console
    errors = page_errors(page)
    sign_in(page)
    show_article(page, article)
    expect(comments(page)).to_have_count(3)
    expect(item(page, held).locator(".claim")).to_contain_text(
        f"Being reviewed by {OTHER_MODERATOR} since"
    )
    expect(item(page, free).locator(".claim")).to_be_hidden()
    assert axe_violations(page) == []  # a claim shown
    # Focusing a comment claims it for this moderator: the other one is refused it.
    with page.expect_response(lambda r: r.url.endswith(f"/{free}/claim")) as claimed:
        item(page, free).locator(".text").click()
    assert claimed.value.status == 200 and claimed.value.request.method == "POST"
    refused = as_other(live, "POST", f"/comments/{free}/claim")
    assert refused.status_code == 409 and refused.json()["holder"] == "faults"
    # Moving on to the comment the other holds: refused (shown), and this one's released.
    with page.expect_response(lambda r: r.url.endswith(f"/{free}/claim")) as released:
        item(page, held).locator(".text").click()
    assert released.value.request.method == "DELETE" and released.value.status == 204
    expect(item(page, held).locator(".claim")).to_contain_text(OTHER_MODERATOR)
    assert as_other(live, "POST", f"/comments/{free}/claim").status_code == 200
    # The claim is advisory: a decision is taken anyway, and releases the claim (the API
    # does); the focus moves on to the next comment, which is claimed in turn.
    item(page, free).locator(".text").click()
    expect(item(page, free).locator(".claim")).to_contain_text(OTHER_MODERATOR)
    with page.expect_response(lambda r: r.url.endswith(f"/{third}/claim")) as next_claim:
        item(page, free).get_by_role("button", name="Approve", exact=True).click()
    assert next_claim.value.request.method == "POST" and next_claim.value.status == 200
    expect(item(page, free)).to_have_count(0)
    assert status_of(live, free) == "approved"
    listed = live.moderate("GET", "/queue", params={"article_id": article}).json()["comments"]
    assert {c["id"]: (c["claim"] or {}).get("moderator") for c in listed} == {
        held: OTHER_MODERATOR,
        third: "faults",
    }
    expect(item(page, third).locator(".claim")).to_be_hidden()  # one's own claim: no note
    # "Hide comments others are reviewing" leaves out the other's, keeps one's own.
    page.get_by_label("Hide comments others are reviewing").check()
    page.get_by_role("button", name="Show").click()
    expect(comments(page)).to_have_count(1)
    expect(item(page, third)).to_have_count(1)
    page.get_by_label("Hide comments others are reviewing").uncheck()
    page.get_by_role("button", name="Show").click()
    expect(comments(page)).to_have_count(2)
    assert csp_violations(page) == [] and errors == []


def test_screenshots_of_the_reported_tab(
    live: Service, console: Page, reports_at_two: None, tmp_path: Path
) -> None:
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    article = "the-river-crossing-reported"
    advert = published_by_api(
        live, article, "Cheap river cruises, book now at https://cruises.example.", name="Promo"
    )
    report_from(live, "127.0.0.4", advert, "spam", "An advert, not a comment.")
    report_from(live, "127.0.0.5", advert, "spam")
    report_from(live, "127.0.0.6", advert, "off_topic", "Nothing to do with the article.")
    claimed = published_by_api(live, article, "The ferryman was rude to us.", name="Marta")
    report_from(live, "127.0.0.4", claimed, "abuse", "Names a person.")
    report_from(live, "127.0.0.5", claimed, "privacy")
    assert as_other(live, "POST", f"/comments/{claimed}/claim").status_code == 200
    page = console
    page.set_viewport_size({"width": 1100, "height": 900})
    sign_in(page)
    page.get_by_role("link", name="Reported").click()
    expect(item(page, advert).get_by_role("list", name="Notes of the reports")).to_contain_text(
        "An advert"
    )
    expect(item(page, claimed).locator(".claim")).to_be_visible()
    page.screenshot(path=str(folder / "console-reported.png"), full_page=True)
    assert (folder / "console-reported.png").stat().st_size > 10_000
