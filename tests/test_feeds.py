"""The Atom feeds: valid (feedparser, bozo == 0), only published comments, escaped, no email,
cacheable like the JSON reads, and current after every change."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import feedparser
import pytest
from flask.testing import FlaskClient

from service.feeds import ATOM_CONTENT_TYPE, FEED_ENTRIES, render_feed
from tests.conftest import AUTH, EMAIL_PATTERN, approve, submit

pytestmark = pytest.mark.usefixtures("redis_client")
ARTICLE_FEED = "/feeds/articles/{}.atom"
RECENT_FEED = "/feeds/recent.atom"


def parsed(client: FlaskClient, path: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == ATOM_CONTENT_TYPE
    body = response.get_data()
    # Parsed with the headers it was served with, as a feed reader would.
    headers = {
        "content-type": response.headers["Content-Type"],
        "content-location": f"http://comments.test{path}",
    }
    feed = feedparser.parse(body, response_headers=headers)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert not EMAIL_PATTERN.search(body.decode())
    return feed


def publish(client: FlaskClient, article: str, **fields: Any) -> str:
    comment_id: str = submit(client, article, **fields).get_json()["id"]
    assert approve(client, comment_id).status_code == 200
    return comment_id


def test_an_article_feed_holds_its_published_comments_newest_first(client: FlaskClient) -> None:
    first = publish(
        client, "feed-a", name="Ann", comment="First!", website="https://ann.example.org"
    )
    second = publish(client, "feed-a", name="Bo", comment="Second,\nover two lines.")
    submit(client, "feed-a", comment="still held", email="held@example.com")
    publish(client, "other-article", comment="elsewhere")
    feed = parsed(client, ARTICLE_FEED.format("feed-a"))
    assert feed.feed.title == "Comments on feed-a"
    assert [e.title for e in feed.entries] == ["Bo on feed-a", "Ann on feed-a"]
    assert [e.content[0].value for e in feed.entries] == ["Second,\nover two lines.", "First!"]
    assert feed.entries[1].author_detail.href == "https://ann.example.org"
    assert "href" not in feed.entries[0].author_detail
    ids = [e.id for e in feed.entries]
    assert len(set(ids)) == 2 and all(i.startswith("urn:uuid:") for i in ids)
    assert first not in str(ids) and second not in str(ids)  # names of the ids, stable
    assert feed.feed.updated == feed.entries[0].published
    assert feed.feed.links[0].href == "http://comments.test/feeds/articles/feed-a.atom"
    # The same comment keeps its entry id in every rendering and in the site's feed.
    again = parsed(client, RECENT_FEED)
    assert {e.id for e in again.entries} >= set(ids)


def test_an_empty_feed_is_valid(client: FlaskClient) -> None:
    feed = parsed(client, ARTICLE_FEED.format("nothing-yet"))
    assert feed.entries == [] and feed.feed.updated == "1970-01-01T00:00:00Z"


def test_the_site_feed_holds_the_newest_published_comments_of_every_article(
    client: FlaskClient,
) -> None:
    publish(client, "site-1", comment="one")
    publish(client, "site-2", comment="two")
    publish(client, "site-1", comment="three")
    held = submit(client, "site-3", comment="not published", email="held@example.com")
    assert held.status_code == 202
    feed = parsed(client, RECENT_FEED)
    assert feed.feed.title == "Recent comments"
    assert [e.content[0].value for e in feed.entries][:3] == ["three", "two", "one"]
    assert "not published" not in str(feed)


def test_feeds_hold_at_most_their_size(client: FlaskClient) -> None:
    client.put(
        "/api/v1/moderation/policy",
        json={"auto_approve": "all", "flood_interval_seconds": 0, "flood_hourly_cap": 0},
        headers=AUTH,
    )
    for i in range(FEED_ENTRIES + 3):
        assert (
            submit(client, "long", comment=f"number {i}", email=f"n{i}@example.com").status_code
            == 201
        )
    feed = parsed(client, ARTICLE_FEED.format("long"))
    assert len(feed.entries) == FEED_ENTRIES
    assert feed.entries[0].content[0].value == f"number {FEED_ENTRIES + 2}"
    assert len(parsed(client, RECENT_FEED).entries) == FEED_ENTRIES


MARKUP = '<script>alert("x")</script> & <b>bold</b> ]]> \' "quoted"'


def test_text_is_escaped_never_markup(client: FlaskClient) -> None:
    publish(client, "escape", name='Eve <img src=x onerror="y">', comment=MARKUP)
    raw = client.get(ARTICLE_FEED.format("escape")).get_data(as_text=True)
    assert "<script>" not in raw and "<b>" not in raw and "<img" not in raw
    assert "&lt;script&gt;" in raw
    feed = parsed(client, ARTICLE_FEED.format("escape"))
    (entry,) = feed.entries
    assert entry.content[0].type == "text/plain"
    assert entry.content[0].value == MARKUP
    assert entry.author == 'Eve <img src=x onerror="y">'


def test_no_email_reaches_a_feed(client: FlaskClient) -> None:
    publish(client, "private", name="Quiet", email="quiet.reader@example.com", comment="Hello")
    for path in (ARTICLE_FEED.format("private"), RECENT_FEED):
        body = client.get(path).get_data(as_text=True)
        assert "quiet.reader" not in body and "example.com" not in body
        assert not EMAIL_PATTERN.search(body)


def test_feeds_are_cacheable_and_revalidate_with_304(client: FlaskClient) -> None:
    publish(client, "cached", comment="one")
    for path in (ARTICLE_FEED.format("cached"), RECENT_FEED):
        first = client.get(path)
        etag = first.headers["ETag"]
        assert re.fullmatch(r'"[0-9a-f]{40}"', etag)
        assert first.headers["Cache-Control"] == "public, max-age=5, stale-while-revalidate=30"
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.data == b""
        assert again.headers["ETag"] == etag
        assert again.headers["Cache-Control"] == first.headers["Cache-Control"]
    etags = {p: client.get(p).headers["ETag"] for p in (ARTICLE_FEED.format("cached"), RECENT_FEED)}
    publish(client, "cached", comment="two")
    for path, etag in etags.items():
        changed = client.get(path, headers={"If-None-Match": etag})
        assert changed.status_code == 200, path
        assert "two" in changed.get_data(as_text=True)


def test_unpublishing_and_anonymising_reach_the_feeds(client: FlaskClient) -> None:
    kept = publish(client, "changes", name="Kept", email="kept@example.com", comment="stays")
    gone = publish(client, "changes", name="Gone", email="gone@example.com", comment="goes away")
    for path in (ARTICLE_FEED.format("changes"), RECENT_FEED):
        assert "goes away" in client.get(path).get_data(as_text=True)
    assert (
        client.post(f"/api/v1/moderation/comments/{gone}/reject", headers=AUTH).status_code == 200
    )
    erased = client.post(
        "/api/v1/moderation/data-requests/erase",
        json={"email": "kept@example.com", "mode": "anonymise"},
        headers=AUTH,
    )
    assert erased.status_code == 200 and erased.get_json()["anonymised"] == 1
    for path in (ARTICLE_FEED.format("changes"), RECENT_FEED):
        deadline = time.monotonic() + 3
        while True:
            feed = parsed(client, path)
            contents = [e.content[0].value for e in feed.entries]
            authors = [e.author for e in feed.entries if e.content[0].value == "stays"]
            if (
                "goes away" not in contents and authors == ["Anonymous"]
            ) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert "goes away" not in contents, path
        assert authors == ["Anonymous"], (path, kept)


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/articles/bad%20id.atom",
        "/feeds/articles/.atom",
        "/feeds/articles/x.rss",
        "/feeds/recent.rss",
    ],
)
def test_anything_else_under_feeds_is_404(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"


def test_characters_xml_cannot_carry_are_dropped() -> None:
    """A comment stored before the text policy could hold a control character: the feed
    still parses."""
    doc = json.dumps(
        {
            "id": "01J0Z8Q5D2V7XW3M9K4T6R1ABC",
            "article_id": "old",
            "parent_id": None,
            "name": "Old\x0bName",
            "comment": "bell\x07 and \ufffe gone, tab\tand newline\nkept",
            "website": None,
            "created_at": "2020-01-01T00:00:00.000Z",
        }
    )
    body = render_feed(feed_name="t", title="t", self_path="/t.atom", docs=[doc], alternate=None)
    feed = feedparser.parse(body, response_headers={"content-type": ATOM_CONTENT_TYPE})
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.entries[0].content[0].value == "bell and  gone, tab\tand newline\nkept"
    assert feed.entries[0].author == "OldName"
