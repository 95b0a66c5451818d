"""The timestamp format, against datetime's own rendering of the same instants."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from service.clock import iso_from_ms


def reference(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@given(st.integers(min_value=0, max_value=253_402_300_799_999))  # up to 9999-12-31
def test_iso_from_ms_equals_datetime(ms: int) -> None:
    assert iso_from_ms(ms) == reference(ms)


def test_iso_from_ms_edges() -> None:
    assert iso_from_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_from_ms(951_782_400_999) == "2000-02-29T00:00:00.999Z"
    assert iso_from_ms(1_767_225_599_001) == "2025-12-31T23:59:59.001Z"
