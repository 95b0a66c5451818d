"""service/json_text.py writes what the standard library's compact encoder writes."""

from __future__ import annotations

import dataclasses
import datetime
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.json_text import compact
from service.states import Status

_STANDARD = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

# Every code point but the surrogates (which no UTF-8 text holds), controls and non-ASCII
# first among them.
_TEXT = st.text(st.characters(exclude_categories=["Cs"]))
_SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | _TEXT
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=30,
)


@given(_DOCUMENTS)
def test_the_same_text_as_the_standard_library(document: object) -> None:
    assert compact(document) == _STANDARD.encode(document)


def test_a_str_enum_is_its_value() -> None:
    assert compact({"status": Status.APPROVED}) == '{"status":"approved"}'


@pytest.mark.parametrize(
    "document",
    [
        "\ud800 lone surrogate",  # no UTF-8 text holds one; orjson refuses it
        {"n": 2**70},  # beyond 64 bits
        {1: "a key that is not a string"},
    ],
)
def test_what_orjson_refuses_is_written_by_the_standard_library(document: object) -> None:
    assert compact(document) == _STANDARD.encode(document)


@pytest.mark.parametrize(
    "document",
    [dataclasses.make_dataclass("Point", ["x"])(1), datetime.datetime(2026, 1, 1)],
)
def test_what_the_standard_library_refuses_is_still_refused(document: object) -> None:
    with pytest.raises(TypeError):
        _STANDARD.encode(document)
    with pytest.raises(TypeError):
        compact(document)


def test_a_float_is_the_same_number() -> None:
    for number in (0.1, 1.5, 1e16, -2.5e-7, 123456.789):
        assert json.loads(compact({"x": number}))["x"] == number
