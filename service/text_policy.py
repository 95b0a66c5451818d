"""Which characters a name or a comment may contain: no invisible impersonation.

Two names that look the same must be the same text. Unicode has characters that draw nothing
(format characters, Cf), that no font knows (private use, Co; unassigned, Cn; surrogates, Cs),
that break lines where a name has none (U+2028/U+2029, Zl/Zp) or that change the look of the
character before them (variation selectors). Each is refused unless real text needs it where
it stands:

- U+200E LRM, U+200F RLM and U+061C ALM, the direction marks right-to-left writing needs:
  anywhere (the embedding, override and isolate controls stay refused, see schemas.py);
- U+200D ZWJ between two pictographic characters (an emoji ZWJ sequence such as a family or
  a profession with a skin tone: the left one may carry U+FE0F or a skin-tone modifier);
- U+200C ZWNJ and U+200D ZWJ between two characters of the Arabic, Syriac or Indic blocks
  (Persian and Urdu write ZWNJ inside words; Devanagari, Bengali, Malayalam, Sinhala... use
  both to choose conjunct forms), or right after an Indic virama (a Malayalam chillu may end a
  word);
- the emoji variation selectors U+FE0E/U+FE0F after a pictographic character or a keycap base
  (``#``, ``*``, ``0``-``9``); U+FE00-U+FE0D after a non-ASCII letter or a mathematical
  symbol (standardized variants); U+E0100-U+E01EF after a CJK ideograph (ideographic
  variants); the Mongolian selectors U+180B-U+180D, U+180F and vowel separator U+180E after a
  Mongolian letter. A selector after a Latin letter ("Ann" + U+FE0F) is refused;
- tag characters U+E0020-U+E007F only inside an emoji tag sequence: U+1F3F4, tags, then
  U+E007F (the flags of England, Scotland and Wales);
- U+00AD SOFT HYPHEN inside a word of a comment (pasted text carries it), never in a name;
- unassigned code points (Cn), except the noncharacters (U+FDD0-U+FDEF and the last two of
  every plane), which never will be assigned: this Python's Unicode tables cannot tell the
  others from characters of a newer Unicode version (each year's new emoji, ideographs...).

Everything else of Cf, Co and Cs is refused, U+FEFF (a byte order mark) always, and
U+2028/U+2029 in a name (a comment has them turned into "\\n" before it is checked, see
:func:`unify_line_separators`). A name must also show something: at least one letter,
digit, punctuation mark or symbol, and none of the blank "letters" U+115F, U+1160, U+3164,
U+FFA0 (Hangul fillers) or U+2800 (the blank braille pattern).

Cost: plain text is checked by ``str.isprintable`` and one regex search, both in C; only text
that holds one of these characters goes through the regex that knows their contexts.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

# Pictographic characters, as far as emoji sequences need them: the emoji blocks and the
# older symbols that take an emoji presentation (Extended_Pictographic, approximated by block).
_PICTOGRAPHIC = (
    "\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a-\u23ff\u24c2"
    "\u25aa-\u25fe\u2600-\u27bf\u2934\u2935\u2b05-\u2b55\u3030\u303d\u3297\u3299"
    "\U0001f000-\U0001faff"
)
_EMOJI_MODIFIERS = "\ufe0f\U0001f3fb-\U0001f3ff"
# Blocks whose writing uses ZWNJ/ZWJ inside words: Arabic (with its supplements and
# presentation forms), Syriac, and the Indic blocks from Devanagari to Sinhala.
_JOINING_SCRIPTS = (
    "\u0600-\u06ff\u0700-\u074f\u0750-\u077f\u0870-\u08ff\u0900-\u0dff"
    "\ufb50-\ufdcf\ufdf0-\ufdff\ufe70-\ufefc"
)
_VIRAMAS = "\u094d\u09cd\u0a4d\u0acd\u0b4d\u0bcd\u0c4d\u0ccd\u0d4d\u0dca"
_MONGOLIAN_LETTERS = "\u1820-\u18aa"
_CJK_IDEOGRAPHS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_MATH_SYMBOLS = "\u2200-\u22ff\u2a00-\u2aff"

# Printable characters (str.isprintable is True for them) that change the one before, and
# printable "letters" that draw nothing.
_SELECTORS = "\ufe00-\ufe0f\U000e0100-\U000e01ef\u180b-\u180d\u180f"
_FILLERS = "\u115f\u1160\u3164\uffa0"
_SUSPECTS_IN_NAMES = re.compile(f"[{_SELECTORS}{_FILLERS}\u2800]")
_SUSPECTS_IN_COMMENTS = re.compile(f"[{_SELECTORS}{_FILLERS}]")

# Each character that may stand only in a given context, with that context. A match is
# removed before the rest is checked. Every alternative starts with the character it allows
# (its context follows as a lookbehind that includes it), so that the regex engine skips
# quickly to the few places that hold one.
_CONTEXTS = [
    # Whitespace text needs (the trimming already happened) and the direction marks.
    "[\t\n\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\u200e\u200f\u061c]",
    # An emoji ZWJ sequence.
    f"\u200d(?<=[{_PICTOGRAPHIC}]\u200d)(?=[{_PICTOGRAPHIC}])",
    f"\u200d(?<=[{_PICTOGRAPHIC}][{_EMOJI_MODIFIERS}]\u200d)(?=[{_PICTOGRAPHIC}])",
    # Joiners inside words of the scripts that need them.
    f"[\u200c\u200d](?<=[{_JOINING_SCRIPTS}][\u200c\u200d])(?=[{_JOINING_SCRIPTS}])",
    f"[\u200c\u200d](?<=[{_VIRAMAS}][\u200c\u200d])",
    # Variation selectors after a base that has variants.
    f"[\ufe0e\ufe0f](?<=[{_PICTOGRAPHIC}#*0-9][\ufe0e\ufe0f])",
    "[\ufe00-\ufe0d](?<=[^\\W\\x00-\\x7f][\ufe00-\ufe0d])",
    f"[\ufe00-\ufe0d](?<=[{_MATH_SYMBOLS}][\ufe00-\ufe0d])",
    f"[\U000e0100-\U000e01ef](?<=[{_CJK_IDEOGRAPHS}][\U000e0100-\U000e01ef])",
    f"[\u180b-\u180f](?<=[{_MONGOLIAN_LETTERS}][\u180b-\u180f])",
    # An emoji tag sequence, flag included (the flag is printable: removing it changes nothing).
    "\U0001f3f4[\U000e0020-\U000e007e]{1,32}\U000e007f",
    # Emoji: printable, and removed here so that the rest is scanned faster.
    "[\U0001f000-\U0001faff]",
]
_ALLOWED_IN_NAMES = re.compile("|".join(_CONTEXTS))
_ALLOWED_IN_COMMENTS = re.compile("|".join([*_CONTEXTS, "\u00ad(?<=\\w\u00ad)(?=\\w)"]))
_LINE_SEPARATORS = re.compile("[\u2028\u2029]")


def unify_line_separators(text: str) -> str:
    """U+2028/U+2029 become "\\n" in a comment: pasted text (and JavaScript) carries them, and
    they mean a line break, which a comment may hold."""
    if "\u2028" in text or "\u2029" in text:
        return _LINE_SEPARATORS.sub("\n", text)
    return text


def name_problem(text: str) -> str | None:
    """Why ``text`` cannot be a name, or None."""
    return _character_problem(text, _ALLOWED_IN_NAMES, _SUSPECTS_IN_NAMES) or _blank(text)


def comment_problem(text: str) -> str | None:
    """Why ``text`` cannot be a comment, or None."""
    return _character_problem(text, _ALLOWED_IN_COMMENTS, _SUSPECTS_IN_COMMENTS) or _blank(text)


def _character_problem(
    text: str, allowed: re.Pattern[str], suspects: re.Pattern[str]
) -> str | None:
    # The fast paths, in C: ASCII text (a flag CPython keeps, no scan) needs only its controls
    # found, which isprintable does; other text one isprintable and one regex scan for the
    # printable suspects, after dropping its line breaks.
    if text.isascii():
        if text.isprintable() or text.replace("\n", "").replace("\t", "").isprintable():
            return None
    elif _clean(text.replace("\n", ""), suspects):
        return None
    rest = allowed.sub("", text)
    if _clean(rest, suspects):
        return None
    character = next(
        (c for c in rest if (not c.isprintable() and not _newer(c)) or suspects.match(c)), None
    )
    if character is None:
        return None
    if character in _FILLERS or character == "\u2800":
        return "Must not contain blank filler characters."
    return (
        f"Must not contain U+{ord(character):04X} ({_describe(character)}) here: "
        "invisible, format, private-use and unassigned characters are allowed only where "
        "the writing needs them."
    )


def _clean(text: str, suspects: re.Pattern[str]) -> bool:
    return text.isprintable() and suspects.search(text) is None


def _newer(character: str) -> bool:
    """An unassigned code point that may be assigned (a noncharacter never is): this Python's
    Unicode tables cannot tell it from a character of a newer Unicode version, such as a new
    emoji or ideograph, so it is not refused."""
    code = ord(character)
    return (
        unicodedata.category(character) == "Cn"
        and not 0xFDD0 <= code <= 0xFDEF
        and code & 0xFFFE != 0xFFFE
    )


def _describe(character: str) -> str:
    category = unicodedata.category(character)
    if category == "Co":
        return "a private-use character"
    if category == "Cs":
        return "a surrogate"
    return unicodedata.name(character, "an unassigned code point")


def _blank(text: str) -> str | None:
    # Short-circuits on the first visible character: the first one, for nearly every text.
    if any(unicodedata.category(c)[0] in "LNPS" or _newer(c) for c in text):
        return None
    return "Must contain a visible letter, digit, punctuation mark or symbol."


# -- web addresses ------------------------------------------------------------------------

# Characters a URL never carries unescaped (RFC 3986) that do harm where it is shown: quotes
# and angle brackets end an HTML attribute ('"><script>'), a backslash reads as "/" to
# browsers (another host), a backtick closes a template; controls and whitespace of any kind,
# a NUL included, are never part of an address.
_URL_UNSAFE = re.compile(
    r"""[\x00-\x20\x7f-\x9f"'<>\\`\u00a0\u1680\u2000-\u200f"""
    "\u2028-\u202f\u205f-\u206f\u3000\ufeff]"
)


def web_url_problem(url: str) -> str | None:
    """Why ``url`` is not a web address a page may link to, or None. The URL field's own
    check (marshmallow's) has already required http(s), a host and the overall form; this
    parses it as a browser would and refuses what that check lets through."""
    match = _URL_UNSAFE.search(url)
    if match:
        return (
            f"Must not contain U+{ord(match.group()):04X}: escape quotes, angle brackets, "
            "backslashes and spaces (%22, %3C...); controls are never allowed."
        )
    try:
        parts = urlsplit(url)
        port = parts.port  # a ValueError when it is not a number from 0 to 65535
    except ValueError:
        # Also an IPv6 literal that is no address ("[bb90b8a8725::1]").
        return "Not a valid URL: the host or the port (a number from 1 to 65535) does not parse."
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "Must be an http or https URL with a host."
    if port == 0:
        return "Not a valid URL: the port must be a number from 1 to 65535."
    return None
