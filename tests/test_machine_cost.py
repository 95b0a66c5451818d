"""The machine accounting (devtools/machine.py): what the HTTP benchmark's "cpu us", "cost",
"cs" and "idle" columns rest on."""

from __future__ import annotations

import os

import pytest

from devtools.machine import MachineSample, machine_cost, machine_sample, parse_proc_stat

PROC_STAT = """cpu  100 5 40 800 20 3 2 10 7 0
cpu0 50 2 20 400 10 1 1 5 3 0
cpu1 50 3 20 400 10 2 1 5 4 0
intr 12345 0 0
ctxt 987654
btime 1764575000
processes 4242
"""


def test_busy_time_leaves_out_idle_and_iowait_and_reads_the_switch_count() -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice
    sample = parse_proc_stat(PROC_STAT)
    assert sample.busy_ticks == 100 + 5 + 40 + 3 + 2 + 10  # guest is already inside user
    assert sample.total_ticks == sample.busy_ticks + 800 + 20
    assert sample.switches == 987654


def test_older_kernels_without_steal_column() -> None:
    sample = parse_proc_stat("cpu  10 0 5 85 0 0 0\nctxt 7\n")
    assert (sample.busy_ticks, sample.total_ticks, sample.switches) == (15, 100, 7)


def test_a_file_without_the_lines_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_proc_stat("intr 1 2 3\n")


def test_cost_per_request_and_idle_share() -> None:
    hz = os.sysconf("SC_CLK_TCK")
    # Two CPUs for one second: 2*hz ticks in all, 3/4 of them busy, over 1,500 requests that
    # took 30,000 context switches.
    before = MachineSample(busy_ticks=1_000, total_ticks=5_000, switches=100)
    after = MachineSample(
        busy_ticks=1_000 + 3 * hz // 2, total_ticks=5_000 + 2 * hz, switches=30_100
    )
    cost = machine_cost(before, after, 1_500)
    assert cost is not None
    assert cost.cpu_us_per_request == pytest.approx(1e6 * 1.5 / 1_500, rel=1e-3)
    assert cost.idle_share == pytest.approx(0.25, abs=1e-3)
    assert cost.switches_per_request == 20.0


def test_no_figure_without_readings_requests_or_time() -> None:
    sample = MachineSample(1, 2, 3)
    assert machine_cost(None, sample, 10) is None
    assert machine_cost(sample, MachineSample(3, 4, 5), 0) is None
    assert machine_cost(sample, sample, 10) is None  # no time passed


def test_live_readings_only_grow() -> None:
    # The service and its benchmark run on Linux: /proc/stat is there.
    first = machine_sample()
    sum(range(200_000))
    second = machine_sample()
    assert first is not None and second is not None
    assert second.busy_ticks >= first.busy_ticks and second.total_ticks >= first.total_ticks
    assert second.switches >= first.switches
