"""The service's own pages in Chromium: the thread page with JavaScript off, the demo article,
and the screenshots the README shows."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from devtools.processes import ROOT
from tests.browser.conftest import Host, OpenContext, axe_violations, csp_violations, watch
from tests.browser.sites import article_id, embed_page, published, queue_ids
from tests.servicehelpers import Service

# Screenshots are written to docs/screenshots/ (linked from the README) when
# UPDATE_SCREENSHOTS=1 (make screenshots); otherwise to the test's temporary folder, so that
# an ordinary run leaves the work tree as it was.
SCREENSHOTS = ROOT / "docs" / "screenshots"


def test_thread_page_without_javascript(live: Service, open_context: OpenContext) -> None:
    article = article_id("nojs")
    parent = published(live, article, name="Ann", comment="<b>bold?</b>\nsecond line")
    published(live, article, name="Bo", parent_id=parent, comment="A reply.")
    page = open_context(java_script_enabled=False).new_page()
    page.goto(live.url(f"/threads/{article}"))
    expect(page.get_by_role("heading", name=f"2 comments on {article}")).to_be_visible()
    expect(page.locator(f"#c-{parent} > article .body")).to_have_text("<b>bold?</b>second line")
    expect(page.locator(f"#c-{parent} > ol.replies")).to_contain_text("A reply.")

    # Reply, then post: the browser lands back on the page with the notice.
    page.get_by_role("link", name="Reply to Ann").click()
    expect(page.get_by_role("heading", name="Reply to Ann")).to_be_visible()
    page.get_by_role("textbox", name="Name", exact=True).fill("Cy")
    page.get_by_role("textbox", name="Email", exact=True).fill("cy.nojs@example.net")
    page.get_by_role("textbox", name="Comment", exact=True).fill("Posted without JavaScript.")
    with page.expect_navigation():
        page.get_by_role("button", name="Post Comment").click()
    assert page.url.startswith(live.url(f"/threads/{article}?posted=1"))
    expect(page.get_by_role("status")).to_contain_text("awaiting moderation")
    queued = live.moderate("GET", "/queue", params={"article_id": article}).json()["comments"]
    assert [(c["name"], c["parent_id"]) for c in queued] == [("Cy", parent)]
    assert "cy.nojs@example.net" not in page.content()


def test_thread_page_is_accessible_and_csp_clean(live: Service, page: Page) -> None:
    article = article_id("nojs-axe")
    parent = published(live, article, name="Ann", website="https://ann.example.org/")
    published(live, article, name="Bo", parent_id=parent)
    page.goto(live.url(f"/threads/{article}"))
    expect(page.get_by_role("button", name="Post Comment")).to_be_visible()
    assert axe_violations(page) == []
    page.goto(live.url(f"/threads/{article}?reply_to={parent}&posted=1"))
    assert axe_violations(page) == []
    assert csp_violations(page) == []


def test_demo_article_embeds_the_widget_with_a_count(
    live: Service, open_context: OpenContext
) -> None:
    page = open_context().new_page()
    log = watch(page)
    page.goto(live.url("/"))
    expect(page.get_by_role("link", name="Moderate")).to_have_attribute("href", "/moderate")
    expect(page.locator("header comment-count")).to_have_text("0")
    page.get_by_role("textbox", name="Name", exact=True).fill("Newcomer")
    page.get_by_role("textbox", name="Email", exact=True).fill("newcomer@example.org")
    page.get_by_role("textbox", name="Comment", exact=True).fill("Hello from the demo.")
    page.get_by_role("button", name="Post Comment").click()
    expect(page.get_by_text("Your comment is awaiting moderation.").first).to_be_visible()
    assert csp_violations(page) == []
    assert axe_violations(page) == []
    assert not log.errors
    # Clean up: the demo article is shared by the session.
    for comment_id in queue_ids(live, "welcome-to-comments"):
        live.moderate("DELETE", f"/comments/{comment_id}")


def test_screenshots_light_and_dark(
    live: Service, open_context: OpenContext, host: Host, tmp_path: Path
) -> None:
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    article = "the-river-crossing"  # unique per session: each has its own store
    first = published(
        live,
        article,
        name="Olena",
        website="https://olena.example.org/",
        comment="A clear account of what happened, thank you.\nThe timeline helps a lot.",
    )
    published(
        live, article, name="Marc", parent_id=first, comment="Agreed. The sources are linked too."
    )
    published(live, article, name="Ivan", comment="Is there a follow-up planned?")
    html = embed_page(live, article)
    for scheme in ("light", "dark"):
        page = open_context(color_scheme=scheme, viewport={"width": 760, "height": 900}).new_page()
        page.goto(host.page(f"/{article}-{scheme}", html))
        expect(page.locator("comment-thread li.comment")).to_have_count(3)
        page.locator("comment-thread").screenshot(path=str(folder / f"widget-{scheme}.png"))
    page = open_context(viewport={"width": 760, "height": 900}).new_page()
    page.goto(live.url(f"/threads/{article}"))
    page.screenshot(path=str(folder / "thread-page.png"), full_page=True)
    for name in ("widget-light.png", "widget-dark.png", "thread-page.png"):
        data = (folder / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000, name
