"""The thread page's view of published comments: a page of documents threaded, text as HTML.

Pure functions, no Flask and no Redis. Comment text is escaped piece by piece (markupsafe) and
only the markup built here (paragraphs, line breaks, links) is trusted; the widget renders the
same way in the browser (static/widget.js).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup, escape

# Indentation stops here: deeper replies are listed beside their parent.
MAX_DEPTH = 4
URL = re.compile(r"\bhttps?://[^\s<>\"]+")
TRAILING = ".,;:!?)]'\u2019"
LINK_REL = "nofollow ugc noopener"


@dataclass
class Node:
    comment: dict[str, Any]
    depth: int
    replies: list[Node] = field(default_factory=list)


def thread(documents: Iterable[str]) -> list[Node]:
    """Comments (JSON documents, oldest first) as a tree: a reply under its parent when the
    parent is on the page, else at the top."""
    top: list[Node] = []
    nodes: dict[str, Node] = {}
    homes: dict[str, list[Node]] = {}  # where a node's replies go
    for document in documents:
        comment = json.loads(document)
        parent = nodes.get(comment.get("parent_id") or "")
        depth = 0 if parent is None else min(MAX_DEPTH, parent.depth + 1)
        node = Node(comment, depth)
        (top if parent is None else homes[parent.comment["id"]]).append(node)
        nodes[comment["id"]] = node
        # At the depth cap, replies join the list their parent is in.
        homes[comment["id"]] = (
            node.replies if depth < MAX_DEPTH or parent is None else (homes[parent.comment["id"]])
        )
    return top


def is_web_url(value: str | None) -> bool:
    return bool(value) and urlsplit(value or "").scheme.lower() in ("http", "https")


def trim_url(url: str) -> str:
    """A URL found in prose without the punctuation after it; a closing bracket stays when
    it closes one inside the URL (``https://en.wikipedia.org/wiki/Foo_(bar)``)."""
    while url and url[-1] in TRAILING:
        last = url[-1]
        if last == ")" and url.count("(") >= url.count(")"):
            break
        if last == "]" and url.count("[") >= url.count("]"):
            break
        url = url[:-1]
    return url


def _linked(line: str) -> Markup:
    pieces: list[Markup | str] = []
    last = 0
    for match in URL.finditer(line):
        url = trim_url(match.group(0))
        start = match.start()
        pieces += [
            line[last:start],
            Markup('<a href="{}" rel="{}">{}</a>').format(url, LINK_REL, url),
        ]
        last = start + len(url)
    pieces.append(line[last:])
    return Markup("").join(escape(piece) for piece in pieces)


def comment_html(text: str) -> Markup:
    """Paragraphs at blank lines, ``<br>`` at line breaks, http(s) URLs as links; the rest
    escaped."""
    paragraphs = re.split(r"\n\s*\n", text)
    return Markup("").join(
        Markup("<p>{}</p>").format(Markup("<br>").join(_linked(line) for line in p.split("\n")))
        for p in paragraphs
    )


def display_date(created_at: str) -> str:
    try:
        moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return created_at
    return moment.strftime("%-d %b %Y, %H:%M UTC")
