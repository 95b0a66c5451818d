"""Wall-clock helpers; timestamps are UTC ISO 8601 with milliseconds."""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso_from_ms(ms: int) -> str:
    # time.gmtime, not datetime: every submission stamps one, and this is a third of the cost
    # (tests/test_clock.py holds it equal to datetime's rendering).
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(ms // 1000)) + f"{ms % 1000:03d}Z"
