"""The WSGI app served through granian's RSGI interface, each request read whole first.

granian's own WSGI interface calls the app as soon as a request's headers are in, and the app's
thread then blocks on ``wsgi.input`` for as long as the client takes to send the body, with no
time limit: twenty clients sending a header and a byte of a body held every thread, /healthz
went unanswered (measured: > 30 s), just what issue 11 fixed under gunicorn with
service/buffering_worker.py. Here the body is read on the worker's event loop, without a
thread, bounded in size and time, and only a complete request is handed to a thread:

- a body declared over MAX_BODY_BYTES: 413 at once (the client may still be sending; granian
  drains or closes), ``Expect: 100-continue`` included (no "100 Continue" is sent);
- a chunked body that grows past MAX_BODY_BYTES: 413 as soon as it does;
- a body not all arrived within REQUEST_READ_TIMEOUT seconds: 408 (headers have the same
  limit in granian itself, ``--http1-header-read-timeout``);
- the limits gunicorn applied and openapi.yaml states: a request line over 8,190 bytes (414,
  with the advice to POST long lists of ids), a header field over 8,190 bytes (431).

Each of those is the app's own problem+json document, with the same headers, written here.
The app then runs in this worker's pool of THREADS threads, with the body in memory.

A request without a body may be answered on the event loop, without a thread, by a
:class:`Replayer` (service/replayed_reads.py: the public reads the worker has in memory); every
other request, and those it cannot answer, go to the threads.

What granian (hyper) refuses itself, before this code runs, it answers with an empty body, not
problem+json: a malformed request (400) and more than 100 header fields (431). No option
changes that; tests/test_http_limits.py pins what it does.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Protocol

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Answer = tuple[int, list[tuple[str, str]], bytes]

_PROBLEM = "application/problem+json"
# gunicorn's limit_request_line and limit_request_field_size (service/gunicorn_conf.py).
REQUEST_LINE_LIMIT = 8190
FIELD_SIZE_LIMIT = 8190


# Where the bridge puts a request's replay key in the environ (service/replayed_reads.py).
REPLAY_KEY = "service.replay_key"


class BodyTooLarge(Exception):
    pass


class Replayer(Protocol):
    """Answers some requests without a body on the event loop (service/replayed_reads.py)."""

    def key(self, scope: Any) -> Hashable | None: ...

    def answer(self, key: Any, scope: Any, started: float) -> Answer | None: ...

    def remember(self, environ: dict[str, Any], answer: Answer) -> None: ...


class RSGIBridge:
    def __init__(
        self,
        app: WSGIApp,
        *,
        threads: int,
        max_body_bytes: int,
        read_timeout: float,
        extra_headers: Iterable[tuple[str, str]] = (),
        replayer: Replayer | None = None,
    ) -> None:
        self.app = app
        self.replayer = replayer
        self.threads = threads
        # (environ, future, loop) to run; the threads are started in the process that serves.
        self.work: queue.SimpleQueue[tuple[dict[str, Any], asyncio.Future[Answer], Any]] = (
            queue.SimpleQueue()
        )
        # Called when granian stops this worker, after its last request (__rsgi_del__):
        # whatever the process must still write out (its buffered access log).
        self.on_shutdown: list[Callable[[], None]] = []
        self.started = False
        self.start_lock = threading.Lock()
        # A forked worker has none of its parent's threads: it starts its own on first use.
        os.register_at_fork(after_in_child=self._forget_threads)
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self.extra_headers = list(extra_headers)

    def problem(self, status: int, title: str, detail: str) -> Answer:
        body = json.dumps(
            {"type": "about:blank", "title": title, "status": status, "detail": detail}
        ).encode()
        headers = [("content-type", _PROBLEM), ("connection", "close"), *self.extra_headers]
        return status, headers, body

    async def __call__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return
        headers = scope.headers
        refusal = self._over_limits(scope)
        if refusal is not None:
            protocol.response_bytes(*refusal)
            return
        length = headers.get("content-length")
        body = b""
        replay_key = None
        if length is not None or "transfer-encoding" in headers:
            answer = await self._read_body(protocol, length)
            if isinstance(answer, tuple):
                protocol.response_bytes(*answer)
                return
            body = answer
        elif self.replayer is not None:
            replay_key = self.replayer.key(scope)
            if replay_key is not None:
                replayed = self.replayer.answer(replay_key, scope, time.perf_counter())
                if replayed is not None:
                    protocol.response_bytes(*replayed)
                    return
        environ = self._environ(scope, body)
        if replay_key is not None:
            environ[REPLAY_KEY] = replay_key
        if not self.started:
            self._start_threads()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Answer] = loop.create_future()
        self.work.put((environ, done, loop))
        status, out_headers, out = await done
        protocol.response_bytes(status, out_headers, out)

    def __rsgi_del__(self, loop: Any) -> None:
        for hook in self.on_shutdown:
            hook()

    def _start_threads(self) -> None:
        """THREADS threads run the app, fed by one queue. Lighter than run_in_executor
        (measured with py-spy: its futures and their chaining were ~10% of a worker's time)."""
        with self.start_lock:
            if self.started:
                return
            for n in range(self.threads):
                threading.Thread(target=self._serve, name=f"wsgi_{n}", daemon=True).start()
            self.started = True

    def _forget_threads(self) -> None:
        self.started = False
        self.start_lock = threading.Lock()
        self.work = queue.SimpleQueue()

    def _serve(self) -> None:
        while True:
            environ, done, loop = self.work.get()
            try:
                answer = self._run(environ)
            except BaseException as error:  # noqa: BLE001 - the request's, handed back to it
                loop.call_soon_threadsafe(_settle, done, None, error)
            else:
                loop.call_soon_threadsafe(_settle, done, answer, None)

    def _over_limits(self, scope: Any) -> Answer | None:
        target = len(scope.path) + (len(scope.query_string) + 1 if scope.query_string else 0)
        line = len(scope.method) + 1 + target + 1 + len("HTTP/") + len(scope.http_version)
        if line > REQUEST_LINE_LIMIT:
            return self.problem(
                414,
                "URI Too Long",
                f"The request line is longer than {REQUEST_LINE_LIMIT} bytes; send a long list "
                "of article ids as POST /api/v1/comment-counts.",
            )
        for name, value in scope.headers.items():
            if len(name) + 2 + len(value) > FIELD_SIZE_LIMIT:
                return self.problem(
                    431,
                    "Request Header Fields Too Large",
                    f"The request has a header field longer than {FIELD_SIZE_LIMIT} bytes.",
                )
        return None

    async def _read_body(self, protocol: Any, length: str | None) -> bytes | Answer:
        declared = None
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = None  # hyper refuses a bad Content-Length before we see it
        too_large = self.problem(
            413,
            "Request Entity Too Large",
            f"The request body is larger than {self.max_body_bytes} bytes.",
        )
        if declared is not None and declared > self.max_body_bytes:
            return too_large
        try:
            return await asyncio.wait_for(self._collect(protocol), self.read_timeout)
        except BodyTooLarge:
            return too_large
        except TimeoutError:
            return self.problem(
                408,
                "Request Timeout",
                f"The request body did not arrive within {self.read_timeout:g} s.",
            )

    async def _collect(self, protocol: Any) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in protocol:
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge
            parts.append(chunk)
        return b"".join(parts)

    def _environ(self, scope: Any, body: bytes) -> dict[str, Any]:
        client_host, _, client_port = scope.client.rpartition(":")
        server_host, _, server_port = scope.server.rpartition(":")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": scope.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": scope.path,
            "QUERY_STRING": scope.query_string,
            "SERVER_NAME": server_host.strip("[]"),
            "SERVER_PORT": server_port,
            "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
            "REMOTE_ADDR": client_host.strip("[]"),
            "REMOTE_PORT": client_port,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if body or "content-length" in scope.headers:
            environ["CONTENT_LENGTH"] = str(len(body))
        for name, value in scope.headers.items():
            if name == "content-type":
                environ["CONTENT_TYPE"] = value
            elif name in ("content-length", "transfer-encoding"):
                continue
            else:
                key = "HTTP_" + name.upper().replace("-", "_")
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _run(self, environ: dict[str, Any]) -> Answer:
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
            started[:] = [int(status[:3]), headers]
            return lambda data: None

        result = self.app(environ, start_response)
        try:
            out = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        answer: Answer = (started[0], started[1], out)
        if self.replayer is not None and REPLAY_KEY in environ:
            self.replayer.remember(environ, answer)
        return answer


def _settle(
    done: asyncio.Future[Answer], answer: Answer | None, error: BaseException | None
) -> None:
    if done.cancelled():
        return  # the client went away meanwhile
    if error is not None:
        done.set_exception(error)
    else:
        assert answer is not None
        done.set_result(answer)
