"""HTML to the plain text the service stores: tags removed, paragraphs and <br> as line
breaks, entities decoded, a link kept as its visible text and its URL. What a source rendered
as HTML then reads the same as a live comment, which is shown as text, never as HTML."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

_BLOCKS = {"p", "div", "blockquote", "ul", "ol", "li", "pre", "h1", "h2", "h3", "h4", "h5", "h6"}
_SKIPPED = {"script", "style"}
_SPACES = re.compile(r"[ \t\f\v]+")
# A tag without attributes (<em>, </p>, <br/>, <br />): most of a comment's markup. A text
# whose every "<" opens one is split here and handed to the same handlers the parser calls,
# at a fifth of the parser's cost; any other markup goes through the parser.
_PLAIN_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)\s*(/?)>")
_BLANK_LINES = re.compile(r"\n{3,}")


class _Text(HTMLParser):
    def __init__(self, keep_newlines: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.keep_newlines = keep_newlines
        self.parts: list[str] = []
        self.link: tuple[str, int] | None = None  # href, where its text starts
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.link = (href.strip(), len(self.parts))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a" and self.link is not None:
            href, start = self.link
            self.link = None
            visible = "".join(self.parts[start:]).strip()
            if href and href != visible and href.startswith(("http://", "https://", "mailto:")):
                self.parts.append(f" ({href})" if visible else href)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if not self.keep_newlines:
            data = re.sub(r"\s+", " ", data)
        self.parts.append(data)


def html_to_text(html: str, *, keep_newlines: bool) -> str:
    """``keep_newlines``: the source's own line breaks are line breaks (WordPress stores a
    comment as typed, with a few tags); otherwise they are HTML whitespace (Disqus)."""
    if "<" not in html:
        # No markup: only entities to decode (most WordPress comments).
        text = unescape(html) if "&" in html else html
        if not keep_newlines:
            text = " ".join(text.split())
        return text.strip()
    parser = _Text(keep_newlines)
    if not _plain_tags_only(parser, html):
        parser = _Text(keep_newlines)
        parser.feed(html)
        parser.close()
    text = "\n".join(_collapse_spaces(line) for line in "".join(parser.parts).split("\n"))
    return (_BLANK_LINES.sub("\n\n", text) if "\n\n\n" in text else text).strip()


def _collapse_spaces(line: str) -> str:
    # The plain search first: most lines have nothing to collapse, and scanning one for the
    # pattern cost ten times as much.
    if "  " in line or "\t" in line or "\f" in line or "\v" in line:
        line = _SPACES.sub(" ", line)
    return line.strip()


def _plain_tags_only(handler: _Text, html: str) -> bool:
    """Feed ``handler`` what the parser would (its data with character references decoded,
    its tags' names in lower case) if every tag of ``html`` is a plain one; False (with the
    handler partly fed) at the first markup that is not, or a <script> or <style>, whose
    content the parser reads as text."""
    position = 0
    for match in _PLAIN_TAG.finditer(html):
        closing, name, self_closing = match.groups()
        data = html[position : match.start()]
        name = name.lower()
        if "<" in data or (closing and self_closing) or name in _SKIPPED:
            return False
        if data:
            handler.handle_data(unescape(data))
        if not closing:
            handler.handle_starttag(name, [])
        if closing or self_closing:
            handler.handle_endtag(name)
        position = match.end()
    rest = html[position:]
    if "<" in rest:
        return False
    if rest:
        handler.handle_data(unescape(rest))
    return True
