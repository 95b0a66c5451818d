"""The id encoding, against the plain 5 bits a character reading of ULID's layout."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.ids import _ALPHABET, _encode, id_at, id_time_ms, is_valid_id


def reference(value: int) -> str:
    return "".join(_ALPHABET[(value >> (5 * (25 - i))) & 31] for i in range(26))


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_encode_equals_five_bits_a_character(value: int) -> None:
    assert _encode(value) == reference(value)


def test_encode_edges() -> None:
    assert _encode(0) == "0" * 26
    assert _encode(2**128 - 1) == "7" + "Z" * 25
    made = id_at(1_600_000_000_123, "f" * 20)
    assert is_valid_id(made) and id_time_ms(made) == 1_600_000_000_123
