"""What one ``bench/http_bench.py`` run can say about two of issue 17's targets by itself.

- **p99.** The target compares a scenario's p99 with the ceiling's (at most 3x). On a shared
  machine the ceiling's own p99 moves between its runs, with the same server and code, by
  more than that: :func:`p99_spread` is that A/A factor, from the ceiling's runs of the same
  run (phase 1 and phase 2 of bench/http_bench.py). While it exceeds the target's factor, a
  p99 verdict compares moments of the neighbours' load, not code.
- **mixed.** A 90/10 load costs, per request, about nine tenths of a read and one tenth of a
  submission (the mixed floor: of a ceiling GET and a floor write). On a CPU-bound machine
  (idle near 0) req/s goes as 1 / CPU per request, so :func:`mixed_from_parts` predicts
  mixed / mixfloor from the read, submit, ceiling and floor rows' CPU per request, and
  :func:`submit_cost_for_mixed` says how little a submission must cost for mixed to reach a
  target: a bound on submit's CPU that the submission's required work
  (bench/submission_cpu.py) may or may not allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# One request in ten of the mixed load is a submission (bench/http_scenarios.lua, mode mixed).
WRITE_SHARE = 0.1


@dataclass(frozen=True)
class Spread:
    runs: int
    low_ms: float
    high_ms: float

    @property
    def factor(self) -> float:
        """Highest over lowest p99 of the same server's runs (1.0 for a single run)."""
        return self.high_ms / self.low_ms if self.low_ms > 0 else 0.0


def p99_spread(p99s_ms: Sequence[float]) -> Spread | None:
    """The spread of one server's p99 over its runs; None without runs."""
    values = [p for p in p99s_ms if p > 0]
    if not values:
        return None
    return Spread(len(values), min(values), max(values))


def mix_cost(read_us: float, write_us: float, write_share: float = WRITE_SHARE) -> float:
    """CPU per request of a load of reads with ``write_share`` writes."""
    return (1 - write_share) * read_us + write_share * write_us


def mixed_from_parts(
    read_us: float,
    submit_us: float,
    ceiling_us: float,
    floor_us: float,
    write_share: float = WRITE_SHARE,
) -> float:
    """mixed / mixfloor as the parts' CPU per request predicts it (CPU-bound machine)."""
    mixed = mix_cost(read_us, submit_us, write_share)
    return mix_cost(ceiling_us, floor_us, write_share) / mixed if mixed > 0 else 0.0


def submit_cost_for_mixed(
    target: float,
    read_us: float,
    ceiling_us: float,
    floor_us: float,
    write_share: float = WRITE_SHARE,
) -> float:
    """The most a submission may cost (CPU per request) for mixed / mixfloor to reach
    ``target``, reads costing ``read_us``; 0 when no submission cost is low enough."""
    allowed = mix_cost(ceiling_us, floor_us, write_share) / target
    return max(0.0, (allowed - (1 - write_share) * read_us) / write_share)
