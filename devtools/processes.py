"""Real processes for tests and benchmarks: ports, bounded waits, process groups, ``/proc``.

Every wait is bounded; :meth:`GroupProcess.kill` is safe to call in ``finally`` whatever
happened. Linux only (``/proc``), like the service's own tests and benchmarks.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class ProcessError(RuntimeError):
    """A child exited while starting, was not ready in time, or would not stop."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def http_status(port: int, path: str, timeout: float = 2.0) -> int | None:
    """The status of a GET on 127.0.0.1:``port``, or None when nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def send_signal(pid: int | None, signum: int) -> None:
    """Signal a process that may already be gone."""
    if pid is None:
        return
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def kill_group(pgid: int) -> None:
    """SIGKILL a whole process group that may already be gone."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class GroupProcess:
    """A child in a session, hence a process group, of its own, its output in a log file.

    The group is why: stopping the child takes everything it started with it (the server's
    workers), and a Ctrl-C in the terminal reaches only the harness, which then stops the child
    in order (SIGTERM first: ``service.serve`` forwards it to the server, granian or gunicorn,
    then stops its Redis).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        *,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ProcessError(f"{self.name} is not running")
        return self.process.pid

    def start(self) -> None:
        """Start the child (appending to its log: a restart keeps the earlier output)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        """Raise, with the log's end, if the child has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise ProcessError(
                f"{self.name} exited with {self.process.returncode}:\n" + self.log_tail()
            )

    def wait_ready(self, port: int, path: str, timeout: float) -> None:
        """Wait for a 200 on ``path``; on failure kill the group and raise with the log."""

        def ready() -> bool:
            self.check_alive()
            return http_status(port, path, timeout=2.0) == 200

        try:
            if wait_until(ready, timeout, 0.1):
                return
        except ProcessError:
            self.kill()
            raise
        self.kill()
        raise ProcessError(
            f"{self.name} was not ready on {path} within {timeout:.0f}s:\n" + self.log_tail()
        )

    def terminate(self, timeout: float) -> int | None:
        """SIGTERM the child and wait; its exit status, or None when it had to be killed.

        Whatever is left of the group afterwards (nothing, normally) is killed too.
        """
        process, self.process = self.process, None
        if process is None:
            return None
        code: int | None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        kill_group(process.pid)
        process.wait(10)
        return code

    def kill(self) -> None:
        """SIGKILL the whole group, at once."""
        process, self.process = self.process, None
        if process is not None:
            kill_group(process.pid)
            process.wait(10)

    def log_tail(self, chars: int = 5000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


# -- the process tree, from /proc ---------------------------------------------------------


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
