"""The text policy: what names, comments, websites and query numbers may hold.

The attacks (issue 11, item 12): a website with a NUL, '"><script>' or a port of
99999999999999; names and comments with U+200D, U+FEFF, tag characters, U+2028 or private-use
characters (two names that look the same); ``limit=٣`` read as 3. Each is a 422 problem+json
naming the field, while real names and texts in many scripts are still accepted whole.

The property tests compare service/text_policy.py (regexes and str.isprintable, for speed)
with a reference written here from Unicode categories one character at a time.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from service import text_policy
from service.text_policy import comment_problem, name_problem, web_url_problem
from tests.conftest import AUTH, submit

SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
REAL_NAMES = [
    "Ann",
    "Zoë Ødegaard",
    "José María",
    "O'Brien-Smith",
    "Ελένη",
    "Алёна",
    "محمد",
    "\u200fשלום",
    "נועה",
    "राहुल",
    "प्रिया क्\u200dष",
    "क्\u200cष",
    "می\u200cخواهم",
    "ශ්\u200dරී",
    "王小明",
    "さくら",
    "김민준",
    "Nguyễn Văn An",
    "ผู้ใช้",
    "e\u0301mile",
    "😀",
    "👍🏿",
    "👨\u200d👩\u200d👧\u200d👦",
    "👩🏽\u200d💻",
    "🧑🏻\u200d❤️\u200d💋\u200d🧑🏼",
    "❤️\u200d🔥",
    "🏳️\u200d🌈",
    "🇫🇷 Marie",
    SCOTLAND,
    "1️⃣",
    "Anna ❤️",
    "ℹ️",
]
REAL_COMMENTS = [
    *REAL_NAMES,
    "First line\nsecond line\n\nThird paragraph.",
    "مرحبا بكم، هذا تعليق عربي طويل بعض الشيء.",
    "این یک نظر فارسی است که می\u200cخواهم بنویسم.",
    "यह एक हिन्दी टिप्पणी है। क्\u200dष और क्\u200cष दोनों।",
    "മലയാളം ന്\u200d ന്\u200c",
    "这是一条中文评论，包含标点符号。",
    "Un texte français avec espace insécable\u00a0: oui !",
    "Hyphen\u00adation pasted from a word processor.",
    "Family: 👨\u200d👩\u200d👧 — and Wales \U0001f3f4\U000e0067\U000e0062\U000e0077"
    "\U000e006c\U000e0073\U000e007f.",
    "\t indented line",
]
NAME_ATTACKS = [
    "An\u200dn",
    "Ann\u200d",
    "\u200dAnn",
    "Ann\ufeff",
    "\ufeffAnn",
    "A\U000e0041nn",
    "Ann\U000e0041\U000e007f",
    "a\u2028b",
    "a\u2029b",
    "Ann\ue000",
    "Ann\U000f0000",
    "An\u200bn",
    "Ann\u2060",
    "Ann\ufe0f",
    "Ann\U000e0100",
    "A\u00adnn",
    "\u200e",
    "\u0301\u0302",
    "\u3164",
    "\u2800",
    "Ann\ufdd0",
    "Ann\U0010ffff",
    "Ann\U0001fffe",
    "\U000e007f",
    "\U0001f3f4\U000e0067",
    "\u200c",
    "Ann\u200c",
]
COMMENT_ATTACKS = [
    a for a in NAME_ATTACKS if a not in ("a\u2028b", "a\u2029b", "A\u00adnn", "\u2800")
]


def problem(response: Any, field: str) -> None:
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    errors = response.get_json()["errors"]
    assert list(errors) == [field], errors


# -- names and comments over HTTP -----------------------------------------------------------


@pytest.mark.parametrize("name", REAL_NAMES)
def test_real_names_are_accepted_whole(client: FlaskClient, name: str) -> None:
    response = submit(client, name=name)
    assert response.status_code == 202, response.get_data(as_text=True)
    stored = client.get(
        f"/api/v1/moderation/comments/{response.get_json()['id']}", headers=AUTH
    ).get_json()
    assert stored["name"] == unicodedata.normalize("NFC", name)


@pytest.mark.parametrize("comment", REAL_COMMENTS)
def test_real_comments_are_accepted_whole(client: FlaskClient, comment: str) -> None:
    response = submit(client, comment=comment)
    assert response.status_code == 202, response.get_data(as_text=True)
    stored = client.get(
        f"/api/v1/moderation/comments/{response.get_json()['id']}", headers=AUTH
    ).get_json()
    assert stored["comment"] == unicodedata.normalize("NFC", comment).strip()


@pytest.mark.parametrize("name", NAME_ATTACKS)
def test_name_attacks_are_422_naming_the_field(client: FlaskClient, name: str) -> None:
    problem(submit(client, name=name), "name")


@pytest.mark.parametrize("comment", COMMENT_ATTACKS)
def test_comment_attacks_are_422_naming_the_field(client: FlaskClient, comment: str) -> None:
    problem(submit(client, comment=comment), "comment")


def test_form_submissions_follow_the_same_policy(client: FlaskClient) -> None:
    form = {"name": "An\u200dn", "email": "ann@example.com", "comment": "Hi"}
    problem(client.post("/api/v1/articles/a1/comments", data=form), "name")


def test_line_separators_in_a_comment_become_newlines(client: FlaskClient) -> None:
    response = submit(client, comment="one\u2028two\u2029three")
    assert response.status_code == 202
    stored = client.get(
        f"/api/v1/moderation/comments/{response.get_json()['id']}", headers=AUTH
    ).get_json()
    assert stored["comment"] == "one\ntwo\nthree"


def test_two_names_that_look_the_same_cannot_both_be_used(client: FlaskClient) -> None:
    assert submit(client, name="Ann").status_code == 202
    for disguise in (
        "An\u200dn",
        "Ann\ufeff",
        "Ann\U000e0020",
        "Ann\ufe0f",
        "A\u200cnn",
        "Ann\u2060",
        "Ann\U000e0100",
    ):
        problem(submit(client, name=disguise), "name")


# -- website --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "website",
    [
        "https://a.example.org/\x00",
        "https://a.example.org\x00/",
        'https://a.example.org/"><script>',
        "https://a.example.org/'onmouseover='x",
        "https://a.example.org/<b>",
        "https://a.example.org:99999999999999/",
        "https://a.example.org:65536/",
        "https://a.example.org:0/",
        "https://a.example.org:٣/",
        "https://a.example.org/a\\b",
        "https://a.example.org/\u200b",
        "https://a.example.org/`x`",
        "https://a.example.org/\ufeff",
        "javascript:alert(1)",
        "https://a.example.org/" + "p" * 480,
    ],
)
def test_website_attacks_are_422(client: FlaskClient, website: str) -> None:
    problem(submit(client, website=website), "website")


@pytest.mark.parametrize(
    "website",
    [
        "https://example.org",
        "http://example.org:8080/path?q=1&r=%22x%22#top",
        "https://example.org:65535/",
        "https://example.org:1/",
        "https://bücher.de/",
        "http://例え.jp/パス",
        "http://[::1]:8000/",
        "https://user@example.org/",
        "https://example.org/%3Cscript%3E",
    ],
)
def test_real_websites_are_accepted(client: FlaskClient, website: str) -> None:
    response = submit(client, website=website)
    assert response.status_code == 202, response.get_data(as_text=True)


def test_form_redirect_gets_the_same_url_check(client: FlaskClient) -> None:
    form = {
        "name": "Ann",
        "email": "ann@example.com",
        "comment": "Hi",
        "redirect": "https://news.example.org:99999999999999/",
    }
    problem(client.post("/api/v1/articles/a1/comments", data=form), "redirect")


@given(st.integers(min_value=65536, max_value=10**30))
@settings(max_examples=50, deadline=None)
def test_any_port_out_of_range_is_refused(port: int) -> None:
    assert web_url_problem(f"https://example.org:{port}/") is not None


@given(st.integers(min_value=1, max_value=65535))
@settings(max_examples=50, deadline=None)
def test_any_port_in_range_is_accepted(port: int) -> None:
    assert web_url_problem(f"https://example.org:{port}/") is None


# -- numbers in query strings -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/articles/a1/comments",
        "/api/v1/moderation/queue",
        "/api/v1/moderation/comments?status=pending",
    ],
)
@pytest.mark.parametrize("limit", ["٣", "３", "+3", " 3", "3 ", "3.0", "-3", "0x3", "3_0", "", "१"])
def test_limit_takes_ascii_digits_only(client: FlaskClient, path: str, limit: str) -> None:
    joiner = "&" if "?" in path else "?"
    response = client.get(f"{path}{joiner}limit={limit}", headers=AUTH)
    problem(response, "limit")


def test_limit_of_ascii_digits_is_read(client: FlaskClient) -> None:
    for _ in range(4):
        submit(client)
    assert (
        len(client.get("/api/v1/moderation/queue?limit=3", headers=AUTH).get_json()["comments"])
        == 3
    )
    assert client.get("/api/v1/articles/a1/comments?limit=3").status_code == 200
    assert client.get("/api/v1/articles/a1/comments?limit=003").status_code == 200


# -- the policy against a reference written from Unicode categories -------------------------


def _in(character: str | None, ranges: str) -> bool:
    return character is not None and re.fullmatch(f"[{ranges}]", character) is not None


def _tag_spans(text: str) -> set[int]:
    """Indexes of the tag characters that belong to an emoji tag sequence."""
    inside: set[int] = set()
    for start, character in enumerate(text):
        if character != "\U0001f3f4":
            continue
        end = start + 1
        while end < len(text) and "\U000e0020" <= text[end] <= "\U000e007e" and end - start <= 32:
            end += 1
        if end > start + 1 and end < len(text) and text[end] == "\U000e007f":
            inside.update(range(start + 1, end + 1))
    return inside


def reference_allows(text: str, *, comment: bool) -> bool:
    """The policy of service/text_policy.py's docstring, character by character."""
    picto = text_policy._PICTOGRAPHIC
    scripts = text_policy._JOINING_SCRIPTS
    tags = _tag_spans(text)
    for i, c in enumerate(text):
        before = text[i - 1] if i > 0 else None
        before2 = text[i - 2] if i > 1 else None
        after = text[i + 1] if i + 1 < len(text) else None
        category = unicodedata.category(c)
        if c in "\t\n" or category == "Zs" or c in "\u200e\u200f\u061c":
            continue
        if c in "\u200c\u200d" and (
            (_in(before, scripts) and _in(after, scripts)) or _in(before, text_policy._VIRAMAS)
        ):
            continue
        if (
            c == "\u200d"
            and _in(after, picto)
            and (
                _in(before, picto)
                or (_in(before, text_policy._EMOJI_MODIFIERS) and _in(before2, picto))
            )
        ):
            continue
        if c in "\ufe0e\ufe0f" and (_in(before, picto) or (before or "") in list("#*0123456789")):
            continue
        if (
            "\ufe00" <= c <= "\ufe0d"
            and before is not None
            and (
                (not before.isascii() and (before.isalnum() or before == "_"))
                or _in(before, text_policy._MATH_SYMBOLS)
            )
        ):
            continue
        if "\U000e0100" <= c <= "\U000e01ef" and _in(before, text_policy._CJK_IDEOGRAPHS):
            continue
        if "\u180b" <= c <= "\u180f" and _in(before, text_policy._MONGOLIAN_LETTERS):
            continue
        if i in tags:
            continue
        if (
            comment
            and c == "\u00ad"
            and before is not None
            and after is not None
            and (before.isalnum() or before == "_")
            and (after.isalnum() or after == "_")
        ):
            continue
        if category == "Cn" and not (0xFDD0 <= ord(c) <= 0xFDEF or ord(c) % 0x10000 >= 0xFFFE):
            continue
        if category in ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"):
            return False
        if _in(c, text_policy._SELECTORS):
            return False
    blanks = "\u115f\u1160\u3164\uffa0" + ("" if comment else "\u2800")
    if any(c in blanks for c in text):
        return False
    return any(
        unicodedata.category(c)[0] in "LNPS"
        or (
            unicodedata.category(c) == "Cn"
            and not (0xFDD0 <= ord(c) <= 0xFDEF or ord(c) % 0x10000 >= 0xFFFE)
        )
        for c in text
    )


# Text built from what the policy is about: letters of the joining scripts and of Latin,
# emoji and their modifiers, every kind of invisible character, and anything at all.
_INTERESTING = st.sampled_from(
    [
        "a",
        "Z",
        "5",
        "#",
        " ",
        "\n",
        "\t",
        "\u00a0",
        "\u3000",
        "é",
        "\u0301",
        "_",
        "م",
        "ی",
        "خ",
        "ש",
        "क",
        "्",
        "ष",
        "ന",
        "്",
        "ශ",
        "්",
        "ර",
        "王",
        "\u1820",
        "😀",
        "👨",
        "👩",
        "💻",
        "❤",
        "🔥",
        "🏳",
        "🌈",
        "\U0001f3f4",
        "🏽",
        "\u2764",
        "∩",
        "\u2202",
        "\u200d",
        "\u200c",
        "\u200b",
        "\u200e",
        "\u061c",
        "\u2060",
        "\ufeff",
        "\u00ad",
        "\ufe0f",
        "\ufe0e",
        "\ufe00",
        "\U000e0100",
        "\u180b",
        "\u180e",
        "\U000e0067",
        "\U000e0062",
        "\U000e0073",
        "\U000e007f",
        "\U000e0001",
        "\ue000",
        "\U000f0000",
        "\ufdd0",
        "\U0010ffff",
        "\U0001fb00",
        "\U0001fa7d",
        "\u2028",
        "\u2029",
        "\u3164",
        "\u2800",
        "\u0600",
    ]
)
_TEXT = st.lists(st.one_of(_INTERESTING, st.characters()), min_size=1, max_size=12).map("".join)


@given(_TEXT)
@settings(max_examples=1500, deadline=None)
def test_names_and_comments_follow_the_reference_policy(text: str) -> None:
    assert (name_problem(text) is None) is reference_allows(text, comment=False), repr(text)
    assert (comment_problem(text) is None) is reference_allows(text, comment=True), repr(text)


# Unassigned code points are accepted (they may be newer characters), except the
# noncharacters; drawn apart, as Cn is most of the code space.
_NONCHARACTERS = [chr(c) for c in range(0xFDD0, 0xFDF0)] + [
    chr(plane * 0x10000 + last) for plane in range(17) for last in (0xFFFE, 0xFFFF)
]
_ALWAYS_REFUSED = st.one_of(
    st.characters(categories=("Cf", "Co", "Cs", "Zl", "Zp")).filter(
        lambda c: (
            c not in "\u200c\u200d\u200e\u200f\u061c\u00ad\u180e"
            and not ("\U000e0020" <= c <= "\U000e007f")
        )
    ),
    st.sampled_from(_NONCHARACTERS),
)


@given(
    st.text(st.characters(categories=("L", "N", "P", "S", "Zs")), min_size=1),
    _ALWAYS_REFUSED,
    st.integers(min_value=0),
)
@settings(max_examples=500, deadline=None)
def test_an_invisible_character_anywhere_in_plain_text_is_refused(
    text: str, invisible: str, at: int
) -> None:
    at %= len(text) + 1
    disguised = text[:at] + invisible + text[at:]
    assert name_problem(disguised) is not None
    assert comment_problem(disguised) is not None


@given(
    st.text(st.characters(codec="ascii", categories=("L", "N", "P", "S")), min_size=2),
    st.sampled_from(["\u200d", "\u200c", "\ufe0f", "\ufe00", "\U000e0100", "\U000e0041"]),
    st.integers(min_value=0),
)
@settings(max_examples=500, deadline=None)
def test_joiners_and_selectors_inside_latin_text_are_refused(
    text: str, invisible: str, at: int
) -> None:
    at = 1 + at % (len(text) - 1)
    # A keycap: "1" U+FE0F is the emoji presentation of the digit, and allowed.
    assume(not (invisible == "\ufe0f" and text[at - 1] in "#*0123456789"))
    assert name_problem(text[:at] + invisible + text[at:]) is not None
