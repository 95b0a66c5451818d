"""html_to_text's fast path for plain tags gives what Python's HTML parser gives."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from service.importers import html_text
from service.importers.html_text import html_to_text


def by_the_parser(html: str, *, keep_newlines: bool) -> str:
    """The definition: the parser's handlers, then spaces collapsed on each line and runs of
    blank lines cut to one (html_text before its fast paths)."""
    if "<" not in html:
        return html_to_text(html, keep_newlines=keep_newlines)  # no markup: no parser
    parser = html_text._Text(keep_newlines)
    parser.feed(html)
    parser.close()
    lines = [re.sub(r"[ \t\f\v]+", " ", line).strip() for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_NAMES = ["p", "br", "em", "a", "div", "li", "B", "Br", "script", "style", "x1"]
_PLAIN_TAGS = st.sampled_from(_NAMES).flatmap(
    lambda name: st.sampled_from([f"<{name}>", f"</{name}>", f"<{name}/>", f"<{name} />"])
)
_OTHER_MARKUP = st.sampled_from(
    ['<a href="https://x.org">', "<!-- c -->", "<", "< b>", "<1>", "</p/>", "<p\n>", "<?x?>"]
)
_TEXT = st.sampled_from(
    ["word", " ", "  ", "\t", "\n", "\n\n\n", "&amp;", "&lt;", "&#8230;", "&", "é", "\f", "\v"]
)
_HTML = st.lists(_TEXT | _PLAIN_TAGS | _OTHER_MARKUP, max_size=25).map("".join)


@settings(max_examples=600)
@given(_HTML, st.booleans())
@example("The <em>council</em> &amp; the <br/>station", True)
@example("<p>one</p>\n\n\n<p>two  \t three</p>", False)
def test_the_same_text_as_the_parser(html: str, keep_newlines: bool) -> None:
    assert html_to_text(html, keep_newlines=keep_newlines) == by_the_parser(
        html, keep_newlines=keep_newlines
    )
