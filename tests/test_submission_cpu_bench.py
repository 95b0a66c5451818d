"""bench/submission_cpu.py's arithmetic on a tiny real run (its own process: it installs the
access log and swaps stdout, which must not leak into other tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_parts_add_up_and_the_bound_lies_between_the_measured_ratio_and_one(
    tmp_path: Path,
) -> None:
    out = tmp_path / "cpu.json"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "submission_cpu.py"), "--n", "8", "--rounds", "1"]
        + ["--json", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    result = json.loads(out.read_text())
    submit, floor, parts, bound = (result[k] for k in ("submit", "floor", "parts", "bound"))
    shown = {k: v for k, v in parts.items() if not k.startswith("(")}
    # Every required part was reached by a real submission (none left at zero).
    for name in ("marshmallow load", "email-validator", "HMACs", "email encryption"):
        assert shown[name] > 0, name
    assert sum(shown.values()) == approx(submit["thread_us"])
    assert floor["redis_call_us"] > 0
    assert bound["floor_total_us"] == approx(floor["process_us"] + floor["redis_us"])
    # Counting only the required work can only raise the ratio, never past the floor's own.
    assert bound["ratio_now"] <= bound["max_ratio"] <= 1.0


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-6, abs=1e-6)
