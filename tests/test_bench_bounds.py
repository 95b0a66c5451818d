"""bench/bounds.py: the A/A p99 spread and the mixed load's prediction from its parts."""

from __future__ import annotations

import pytest

from bench.bounds import mix_cost, mixed_from_parts, p99_spread, submit_cost_for_mixed


def test_p99_spread_is_highest_over_lowest() -> None:
    spread = p99_spread([12.0, 48.0, 24.0])
    assert spread is not None
    assert (spread.runs, spread.low_ms, spread.high_ms) == (3, 12.0, 48.0)
    assert spread.factor == pytest.approx(4.0)


def test_p99_spread_without_runs() -> None:
    assert p99_spread([]) is None
    assert p99_spread([0.0]) is None  # a run that measured nothing


def test_mix_cost_weighs_one_write_in_ten() -> None:
    assert mix_cost(100.0, 1000.0) == pytest.approx(190.0)


def test_mixed_from_parts() -> None:
    # Reads as cheap as the ceiling's GET and submissions as cheap as the floor: 1.
    assert mixed_from_parts(200.0, 800.0, 200.0, 800.0) == pytest.approx(1.0)
    # A submission four times the floor's cost: (0.9*200 + 0.1*800) / (0.9*200 + 0.1*3200).
    assert mixed_from_parts(200.0, 3200.0, 200.0, 800.0) == pytest.approx(260 / 500)


def test_submit_cost_for_mixed_is_the_inverse_of_the_prediction() -> None:
    allowed = submit_cost_for_mixed(0.8, 150.0, 280.0, 740.0)
    assert mixed_from_parts(150.0, allowed, 280.0, 740.0) == pytest.approx(0.8)
    # Reads so costly that no submission is cheap enough.
    assert submit_cost_for_mixed(0.8, 10_000.0, 280.0, 740.0) == 0.0
