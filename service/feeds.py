"""Atom 1.0 feeds (RFC 4287) of published comments: the one owner of that wire format.

A feed is rendered from the public documents alone (service/documents.py's public comment:
id, article, parent, name, comment, website, time), so it holds exactly what an article page
shows and never anything derived from an email. Text goes in as text: ElementTree escapes
``&``, ``<``, ``>`` and quotes, and characters XML 1.0 cannot carry (the text policy refuses
them; a comment stored before it might hold one) are dropped, so a feed always parses.

Ids are ``urn:uuid:`` names (UUID 5) of the comment ids and of the feed's own path under the
key prefix: stable across renderings and hosts. Links are relative to the service (no Host
header is echoed into a cacheable answer); a feed reader resolves them against the feed's URL.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from typing import Any
from xml.etree import ElementTree as ET

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_CONTENT_TYPE = "application/atom+xml; charset=utf-8"
FEED_ENTRIES = 50  # the newest published comments a feed holds
GENERATOR = "comment-moderation-service"
# Before any comment: the feed's <updated> when it has no entry.
EPOCH = "1970-01-01T00:00:00Z"
_NAMESPACE = uuid.UUID("6f1d0a52-3c9e-5b7a-9d41-2e8f5c0b7a13")
# Code points XML 1.0 does not allow (besides tab, newline, carriage return).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

ET.register_namespace("", ATOM_NS)


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _urn(name: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, name)}"


def _add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attributes)
    if text is not None:
        element.text = _text(text)
    return element


def render_feed(
    *, feed_name: str, title: str, self_path: str, docs: Iterable[str], alternate: str | None
) -> bytes:
    """The Atom document of ``docs`` (public JSON documents, newest first).

    ``feed_name`` names the feed for its id (unique per deployment and feed), ``self_path`` is
    the feed's own path, ``alternate`` the JSON page of the same comments (if there is one).
    """
    comments: list[dict[str, Any]] = [json.loads(doc) for doc in docs]
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    _add(feed, "id", _urn("feed:" + feed_name))
    _add(feed, "title", title, type="text")
    _add(feed, "updated", max((c["created_at"] for c in comments), default=EPOCH))
    _add(feed, "link", rel="self", type="application/atom+xml", href=self_path)
    if alternate is not None:
        _add(feed, "link", rel="alternate", type="application/json", href=alternate)
    _add(feed, "generator", GENERATOR)
    for comment in comments:
        entry = _add(feed, "entry")
        _add(entry, "id", _urn("comment:" + comment["id"]))
        _add(entry, "title", f"{comment['name']} on {comment['article_id']}", type="text")
        author = _add(entry, "author")
        _add(author, "name", comment["name"])
        if comment.get("website"):
            _add(author, "uri", comment["website"])
        _add(entry, "published", comment["created_at"])
        _add(entry, "updated", comment["created_at"])
        _add(
            entry,
            "link",
            rel="related",
            type="application/json",
            href=f"/api/v1/articles/{comment['article_id']}/comments",
        )
        _add(entry, "content", comment["comment"], type="text")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body
