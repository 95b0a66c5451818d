"""no_control_characters refuses exactly what its three checks refuse, with the same message,
whatever its one-scan shortcut for a text with nothing to refuse."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from marshmallow import ValidationError

from service import schemas


def refusal(value: str) -> str | None:
    try:
        schemas.no_control_characters(value)
    except ValidationError as error:
        return str(error.messages[0])
    return None


def by_the_three_checks(value: str) -> str | None:
    for pattern, message in (
        (schemas._CONTROL, "Must not contain control characters."),
        (schemas._BIDI_CONTROL, "Must not contain bidirectional override characters."),
        (schemas._COMBINING_RUN, "Too many combining marks on one character."),
    ):
        if pattern.search(value):
            return message
    return None


_SUSPECTS = st.sampled_from(["\x00", "\x07", "\x1b", "\x7f", "\x9f", "\u202e", "\u2066", "\u0301"])
_TEXTS = st.lists(st.text(max_size=5) | _SUSPECTS | _SUSPECTS.map(lambda c: c * 9)).map("".join)


@given(_TEXTS)
@example("ok\ttabs\nand lines")
@example("e" + "\u0301" * 8)
@example("e" + "\u0301" * 9)
def test_the_same_verdict_as_the_three_checks(value: str) -> None:
    assert refusal(value) == by_the_three_checks(value)


@pytest.mark.parametrize("value", ["bell\x07", "evil\u202egnp", "z" + "\u0300" * 9])
def test_each_check_still_refuses(value: str) -> None:
    assert refusal(value) is not None
