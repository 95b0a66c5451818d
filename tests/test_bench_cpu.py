"""The HTTP benchmark's CPU accounting: what its "cpu us", "cost" and "idle" columns rest on."""

from __future__ import annotations

import os

import pytest

from bench.http_bench import cpu_cost, cpu_ticks, parse_cpu_line


def test_busy_time_leaves_out_idle_and_iowait() -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice
    busy, total = parse_cpu_line("cpu  100 5 40 800 20 3 2 10 7 0")
    assert busy == 100 + 5 + 40 + 3 + 2 + 10  # guest is already counted inside user
    assert total == busy + 800 + 20


def test_older_kernels_without_steal_column() -> None:
    assert parse_cpu_line("cpu  10 0 5 85 0 0 0") == (15, 100)


def test_cost_per_request_and_idle_share() -> None:
    hz = os.sysconf("SC_CLK_TCK")
    # Two CPUs for one second: 2*hz ticks in all, 3/4 of them busy, over 1,500 requests.
    before, after = (1_000, 5_000), (1_000 + 3 * hz // 2, 5_000 + 2 * hz)
    per_request, idle = cpu_cost(before, after, 1_500)
    assert per_request == pytest.approx(1e6 * 1.5 / 1_500, rel=1e-3)
    assert idle == pytest.approx(0.25, abs=1e-3)


def test_no_figure_without_readings_or_requests() -> None:
    assert cpu_cost(None, (1, 2), 10) == (None, None)
    assert cpu_cost((1, 2), (3, 4), 0) == (None, None)
    assert cpu_cost((5, 9), (5, 9), 10) == (None, None)  # no time passed


def test_live_readings_only_grow() -> None:
    # The service and its benchmark run on Linux: /proc/stat is there.
    first = cpu_ticks()
    sum(range(200_000))
    second = cpu_ticks()
    assert first is not None and second is not None
    assert second[0] >= first[0] and second[1] >= first[1]
