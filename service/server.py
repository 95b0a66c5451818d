"""The HTTP server the launcher runs (``SERVER``): granian by default, gunicorn as the alternative.

granian (Rust: Hyper on Tokio) was measured against gunicorn's sync, gthread and gevent
workers with ``make bench``: it serves the bare Flask ceiling 2-3 times as fast with a lower
p99, and the service likewise (bench/README-bench.md has the figures and the analysis). The
service runs on its RSGI interface, through service/rsgi_bridge.py, not its WSGI one: granian's
WSGI lets a slow body hold a thread without any time limit. What each server does for us:

- **Workers.** granian starts WORKERS processes (forked from its master, which never loads
  the app) and each imports ``service.wsgi`` itself: every Redis connection, cache and
  invalidation thread is made in the process that uses it, so nothing made before a fork is
  shared. gunicorn preloads the app in the master and forks (its clients connect lazily).
- **Threads.** THREADS is the bridge's thread pool per worker (where the app runs) or
  gunicorn's gthread threads.
- **Slow clients.** granian reads headers in Rust within REQUEST_READ_TIMEOUT
  (``--http1-header-read-timeout``), the bridge reads bodies on the event loop within the
  same time and MAX_BODY_BYTES: a thread is taken only once a request is all there.
  gunicorn needs ``service/buffering_worker.py`` for this.
- **Access log.** granian's is off: :mod:`service.access_log` writes the same line as
  gunicorn's (hashed client address, redacted path) through the service's redacting logging.
- **Shutdown.** SIGTERM/SIGINT: both stop accepting, finish the requests in flight within
  ``GRACEFUL_SECONDS`` and exit; ``service.serve`` stops the embedded Redis after them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .config import Config

GRACEFUL_SECONDS = 10
# Where granian starts the app in each worker (gunicorn's is in service/gunicorn_conf.py).
GRANIAN_TARGET = "service.wsgi:rsgi_app"
GUNICORN_TARGET = "service.wsgi:app"
# granian's own lines (its start, its workers) as JSON lines like every other line, when the
# service writes JSON (service/logs.py): granian's logging config with our formatter.
GRANIAN_JSON_LOGGING = Path(__file__).with_name("granian_log.json")
# The RSGI app's coroutine per request run as granian's own Rust task rather than an asyncio
# Task: no Task object, no registration in asyncio's WeakSet of all tasks and no removal
# callback when it is freed (py-spy: ~10% of a worker's Python time on replayed reads). Measured
# with http_bench's layouts side by side (bench/README-bench.md): 8-19% less server CPU per read,
# mixed faster in 4 rounds of 5. granian offers it below Python 3.12 only (it falls back to
# asyncio there itself, with a warning; we ask for asyncio then).
GRANIAN_TASK_IMPL = "rust" if sys.version_info < (3, 12) else "asyncio"


def server_argv(config: Config) -> list[str]:
    """The command that serves the app under ``config.server`` with ``config``'s settings."""
    if config.server == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf"] + [
            GUNICORN_TARGET
        ]
    return granian_argv(config, GRANIAN_TARGET)


def granian_argv(config: Config, target: str, *, interface: str = "rsgi") -> list[str]:
    """granian serving ``target`` (``module:attribute``) as the service is served: an RSGI app
    (service/rsgi_bridge.py) on uvloop, or, for the benchmark's ceilings, a WSGI app
    (``interface="wsgi"``: THREADS are then granian's blocking threads)."""
    header_timeout_ms = max(1, min(60_000, int(config.request_read_timeout * 1000)))
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        interface,
        "--host",
        config.host,
        "--port",
        str(config.port),
        "--workers",
        str(config.workers),
        *(
            ["--blocking-threads", str(config.threads)]
            if interface == "wsgi"
            else ["--loop", "uvloop", "--task-impl", GRANIAN_TASK_IMPL]
        ),
        # HTTP/1.1 only, as gunicorn served: a proxy in front speaks HTTP/2 and TLS.
        "--http",
        "1",
        "--no-ws",
        "--http1-header-read-timeout",
        str(header_timeout_ms),
        "--log-level",
        config.log_level.lower(),
        "--no-access-log",
        *(["--log-config", str(GRANIAN_JSON_LOGGING)] if config.log_format == "json" else []),
        # A worker that dies (killed, out of memory) is replaced, as gunicorn's master does.
        "--respawn-failed-workers",
        "--respawn-interval",
        "1",
        "--workers-kill-timeout",
        str(GRACEFUL_SECONDS),
        target,
    ]
