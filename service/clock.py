"""Wall-clock helpers; timestamps are UTC ISO 8601 with milliseconds."""

from __future__ import annotations

import calendar
import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso_from_ms(ms: int) -> str:
    # time.gmtime, not datetime: every submission stamps one, and this is a third of the cost
    # (tests/test_clock.py holds it equal to datetime's rendering).
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(ms // 1000)) + f"{ms % 1000:03d}Z"


def ms_from_iso(stamp: str) -> int:
    """The inverse of :func:`iso_from_ms`."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1000 + int((fraction or "0")[:3].ljust(3, "0"))
