"""Machine-wide cost of a stretch of work, from two readings of ``/proc/stat``.

A benchmark run measures the whole machine (the load generator, the servers, Redis, the
kernel), not one process: on a shared 2-core machine what a request costs is CPU time spent
anywhere on its behalf.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class MachineSample:
    """Cumulative counters of the whole machine, from /proc/stat."""

    busy_ticks: int  # clock ticks all CPUs spent working
    total_ticks: int  # busy + idle + iowait
    switches: int  # context switches since boot


@dataclass(frozen=True)
class MachineCost:
    """Per request, over one run: CPU time of everything on the machine (load generator,
    servers, Redis, the kernel), context switches; and the share of CPU left idle."""

    cpu_us_per_request: float
    idle_share: float
    switches_per_request: float


def parse_proc_stat(text: str) -> MachineSample:
    """The "cpu" (all CPUs) and "ctxt" lines of /proc/stat. Idle and iowait count as not
    busy; guest time is already inside user and nice."""
    busy = total = switches = -1
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if name == "cpu":
            fields = [int(value) for value in rest.split()]
            user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
            busy = user + nice + system + irq + softirq + steal
            total = busy + idle + iowait
        elif name == "ctxt":
            switches = int(rest)
    if busy < 0 or switches < 0:
        raise ValueError("no cpu or ctxt line")
    return MachineSample(busy, total, switches)


def machine_sample() -> MachineSample | None:
    """The machine's counters now; None where /proc/stat is not readable."""
    try:
        with open("/proc/stat") as stat:
            return parse_proc_stat(stat.read())
    except (OSError, ValueError):
        return None


def machine_cost(
    before: MachineSample | None, after: MachineSample | None, requests: int
) -> MachineCost | None:
    """What the machine spent per request between two samples, and the CPU it left idle."""
    if before is None or after is None or requests <= 0 or after.total_ticks <= before.total_ticks:
        return None
    busy = after.busy_ticks - before.busy_ticks
    total = after.total_ticks - before.total_ticks
    return MachineCost(
        cpu_us_per_request=round(busy / os.sysconf("SC_CLK_TCK") / requests * 1e6, 1),
        idle_share=round(1 - busy / total, 3),
        switches_per_request=round((after.switches - before.switches) / requests, 2),
    )
