"""Tooling shared by the test suite and the benchmarks, never part of the service.

- :mod:`devtools.processes`: real processes for tests and benchmarks: free ports, bounded waits,
  a child in a process group of its own (started, waited for, stopped, killed with everything
  it started), and the process tree read from ``/proc``.
- :mod:`devtools.machine`: what the whole machine spent (CPU, context switches) between two
  readings of ``/proc/stat``.

Why a top-level package of its own: ``tests/`` and ``bench/`` both need these, and neither
should import the other's modules (a benchmark importing test helpers, or a test importing a
1,000-line benchmark, couples things that change for different reasons). Inside ``service/``
it would ship in the wheel (``[tool.setuptools.packages.find]`` includes ``service*`` only),
which it must not: it starts servers and sends signals. Like ``tests`` and ``bench``, it is
imported from the repository root (pytest puts the root on ``sys.path``; the bench scripts add
it themselves).
"""
