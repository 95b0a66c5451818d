"""The servers and worker layouts ``bench/http_bench.py`` tries, for the ceiling and the service.

The ceiling is the bare Flask app (bench/ceiling_app.py) under **every** layout here; the
fastest of them is *the* ceiling every scenario's ratio is taken against, so a ratio says how
close the service comes to the best that any production server does with Flask on this
machine, not only to what its own server does. The service runs under each of
:data:`SERVICE_LAYOUTS` (its launcher, ``SERVER=...``), each beside the ceiling of the same
server, which is how the default server was chosen and how the choice can be re-checked.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from service.server import GRANIAN_TASK_IMPL


@dataclass(frozen=True)
class Layout:
    """One server with one worker layout. ``workers``/``threads`` None: the harness's
    ``--workers`` and the service's THREADS default (4)."""

    name: str
    server: str  # gunicorn or granian
    note: str
    workers: int | None = None
    threads: int | None = None
    # gunicorn: its worker class (None: the service's own, service/gunicorn_conf.py);
    # granian: its interface, "wsgi" or "rsgi" (the service's bridge, service/rsgi_bridge.py).
    kind: str | None = None
    extra: tuple[str, ...] = field(default=())
    # The service only: extra environment, and the scenarios measured on it when it is not
    # the default service (of those selected).
    env: tuple[tuple[str, str], ...] = field(default=())
    scenarios: tuple[str, ...] = ("read", "submit")

    def label(self, workers: int) -> str:
        setting = "".join(f" {key}={value}" for key, value in self.env)
        return f"{self.name} {self.workers or workers}x{self.threads or 4}{setting}"

    def ceiling_argv(self, port: int, workers: int) -> list[str]:
        """The bare app under this layout on 127.0.0.1:``port``."""
        w = str(self.workers or workers)
        t = str(self.threads or 4)
        python = sys.executable
        if self.server == "gunicorn":
            argv = [python, "-m", "gunicorn", "-c", "python:service.gunicorn_conf", "-w", w]
            if self.kind is not None:
                argv += ["-k", self.kind]
            if self.kind in (None, "gthread"):
                argv += ["--threads", t]
            return [*argv, *self.extra, "bench.ceiling_app:app"]
        interface = self.kind or "wsgi"
        argv = [python, "-m", "granian", "--interface", interface, "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--workers", w, "--http", "1", "--no-ws"]
        argv += ["--no-access-log", "--log-level", "warning"]
        if interface == "wsgi":
            argv += ["--blocking-threads", t]
            target = "bench.ceiling_app:app"
        else:
            # As the service runs (service/server.py): the ceiling gets what the service gets.
            argv += ["--loop", "uvloop", "--task-impl", GRANIAN_TASK_IMPL]
            target = "bench.ceiling_app:rsgi_app"  # THREADS from the environment
        return [*argv, *self.extra, target]

    def service_env(self, workers: int) -> dict[str, str]:
        """What the service's launcher needs to serve itself under this layout."""
        return {
            "SERVER": self.server,
            "WORKERS": str(self.workers or workers),
            "THREADS": str(self.threads or 4),
            **dict(self.env),
        }


# The service's own layouts: what `make run` serves with (granian: the RSGI bridge; gunicorn:
# gthread with the buffering worker).
GRANIAN_SERVICE = Layout(
    "granian-rsgi", "granian", "the service's default: RSGI + bridge (rsgi_bridge.py)", kind="rsgi"
)
GRANIAN_SERVICE_2 = Layout(
    "granian-rsgi",
    "granian",
    "RSGI + bridge, 2 workers",
    workers=2,
    kind="rsgi",
)
# The default service without its replayed reads (service/replayed_reads.py): what the bridge's
# fast path saves, measured in the same run on every read scenario.
GRANIAN_NO_REPLAY = Layout(
    "granian-rsgi",
    "granian",
    "the default without replayed reads",
    kind="rsgi",
    env=(("REPLAY_READS", "false"),),
    scenarios=("read", "counts", "queue"),
)
GUNICORN_SERVICE = Layout(
    "gunicorn-gthread", "gunicorn", "SERVER=gunicorn: gthread + buffering_worker.py"
)
CEILING_LAYOUTS: tuple[Layout, ...] = (
    GUNICORN_SERVICE,
    Layout("gunicorn-sync", "gunicorn", "sync workers (no keep-alive)", workers=8, kind="sync"),
    Layout(
        "gunicorn-gevent",
        "gunicorn",
        "gevent, 100 connections per worker",
        threads=1,
        kind="gevent",
        extra=("--worker-connections", "100"),
    ),
    Layout("granian-wsgi", "granian", "WSGI, blocking threads", workers=2, threads=4),
    Layout("granian-wsgi", "granian", "WSGI, blocking threads", workers=4, threads=2),
    Layout("granian-wsgi", "granian", "WSGI, 1 blocking thread", workers=2, threads=1),
    GRANIAN_SERVICE,
    GRANIAN_SERVICE_2,
)
# The service under each server it supports; the first is the default whose scenarios make the
# main table. Each is compared with the ceiling of the same layout too.
SERVICE_LAYOUTS: tuple[Layout, ...] = (
    GRANIAN_SERVICE,
    GRANIAN_NO_REPLAY,
    GRANIAN_SERVICE_2,
    GUNICORN_SERVICE,
)
