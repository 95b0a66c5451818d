"""service/server.py: the granian command line the launcher runs."""

from __future__ import annotations

import sys

from service.config import Config
from service.server import GRANIAN_TARGET, granian_argv, server_argv


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_the_service_runs_its_requests_as_granians_rust_tasks_below_python_3_12() -> None:
    argv = server_argv(Config.from_env({"SERVER": "granian"}))
    assert argv[-1] == GRANIAN_TARGET
    assert _option(argv, "--interface") == "rsgi"
    assert _option(argv, "--loop") == "uvloop"
    # granian has Rust tasks below 3.12 only (bench/README-bench.md has what they save).
    assert _option(argv, "--task-impl") == ("rust" if sys.version_info < (3, 12) else "asyncio")


def test_a_wsgi_ceiling_gets_blocking_threads_and_no_event_loop_options() -> None:
    argv = granian_argv(
        Config.from_env({"THREADS": "3"}), "bench.ceiling_app:app", interface="wsgi"
    )
    assert _option(argv, "--blocking-threads") == "3"
    assert "--task-impl" not in argv and "--loop" not in argv
