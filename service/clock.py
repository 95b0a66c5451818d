"""Wall-clock helpers; timestamps are UTC ISO 8601 with milliseconds."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso_from_ms(ms: int) -> str:
    # time.gmtime, not datetime: every submission stamps one, and this is a third of the cost
    # (tests/test_clock.py holds it equal to datetime's rendering).
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(ms // 1000)) + f"{ms % 1000:03d}Z"


def parse_iso_ms(text: str) -> int:
    """The milliseconds of a timestamp as :func:`iso_from_ms` writes it (or any ISO 8601 one
    with an offset; without one, UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
