"""A gthread worker that lets no thread wait on a slow client.

gunicorn's gthread worker hands a connection to a thread as soon as it is readable, and the
thread then blocks on the socket until the headers and the body have arrived: twenty clients
that send their headers and one byte of a body held every thread of a default service, and
/healthz went unanswered (issue 11). :class:`BufferRequestsMixin` reads each request in the
worker's event loop instead, without blocking, and hands it to a thread only once it is all
there, its headers complete and its body as long as Content-Length says (or the last chunk
seen). Answered there without a thread: a request not all arrived within
``REQUEST_READ_TIMEOUT`` seconds (408), headers over 32 KiB (431), and a body declared larger
than MAX_BODY_BYTES (413, once up to 1 MiB of it has been read and thrown away, or at once for
``Expect: 100-continue``). Each is problem+json, and the connection is closed after it.

What still reaches a thread before all of it has arrived, once its headers have: a body sent
after ``Expect: 100-continue`` (the client waits for gunicorn's "100 Continue") and a chunked
body longer than the buffer. For those, the socket of a request being served has a timeout of
``REQUEST_READ_TIMEOUT`` too (a read that times out is a 408 problem for the app), which also
bounds writing to a client that does not read its answer.

TLS and HTTP/2 prior-knowledge connections are left to gunicorn (the service serves neither;
a proxy in front terminates TLS). A mixin, so that it composes with other worker subclasses:
``class Worker(BufferRequestsMixin, SomeThreadWorker)``.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from typing import Any

from gunicorn.http2 import negotiation
from werkzeug.exceptions import RequestTimeout

from .config import Config
from .gunicorn_worker import ProblemThreadWorker, problem_http

MAX_HEAD_BYTES = 32 * 1024
# How much of an oversized body is read and thrown away before the 413, so that a client
# still sending sees the answer rather than a reset (as service/api/requests.py does).
DRAIN_BYTES = 1024 * 1024
_RECV_BYTES = 64 * 1024
_HEAD_END = b"\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"


class Verdict(Enum):
    WAIT = "wait"  # more is coming
    DISPATCH = "dispatch"  # a thread can serve it without waiting on the client
    TOO_LARGE = "too large"  # declared over MAX_BODY_BYTES: drain what is sent, then 413
    TOO_LARGE_NOW = "too large, body not sent yet"  # and Expect: 100-continue: 413 at once
    HEAD_TOO_LARGE = "head too large"  # 431


@dataclass
class _Arrival:
    conn: Any  # gunicorn's TConn
    deadline: float
    data: bytearray = field(default_factory=bytearray)
    # Set once the headers declared an oversized body: bytes still to throw away.
    discard: int | None = None


def examine(data: bytes | bytearray, max_body_bytes: int) -> tuple[Verdict, int]:
    """What to do with the request ``data`` starts with, and the body length it declares."""
    end = data.find(_HEAD_END)
    if end < 0:
        return (Verdict.HEAD_TOO_LARGE if len(data) > MAX_HEAD_BYTES else Verdict.WAIT), 0
    received = len(data) - end - len(_HEAD_END)
    declared, chunked, expects, lengths_seen = 0, False, False, False
    for line in bytes(data[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return Verdict.DISPATCH, 0  # gunicorn answers 400
            if lengths_seen and length != declared:
                return Verdict.DISPATCH, 0  # two lengths that disagree: gunicorn answers 400
            declared, lengths_seen = length, True
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"expect":
            expects = True
    if chunked:
        # Past the limit, werkzeug answers 413 from what is buffered, without waiting.
        done = data.endswith(_LAST_CHUNK) or received > max_body_bytes
        return (Verdict.DISPATCH if done or expects else Verdict.WAIT), 0
    if declared > max_body_bytes:
        return (Verdict.TOO_LARGE_NOW if expects else Verdict.TOO_LARGE), declared
    # A client expecting "100 Continue" sends its body only once gunicorn has answered it.
    done = received >= declared or expects
    return (Verdict.DISPATCH if done else Verdict.WAIT), declared


class TimedInput:
    """``wsgi.input`` whose socket timeout is a 408 for the app, not an error of its own."""

    def __init__(self, stream: Any, seconds: float) -> None:
        self._stream = stream
        self._seconds = seconds

    def _timed(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._stream, method)(*args)
        except TimeoutError:
            raise RequestTimeout(
                f"The request body did not arrive within {self._seconds:g} s."
            ) from None

    def read(self, size: int | None = None) -> bytes:
        data: bytes = self._timed("read", size)
        return data

    def readline(self, size: int | None = None) -> bytes:
        data: bytes = self._timed("readline", size)
        return data

    def readlines(self, hint: int | None = None) -> list[bytes]:
        lines: list[bytes] = self._timed("readlines", hint)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def with_timed_input(app: WSGIApp, seconds: float) -> WSGIApp:
    def timed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.input"] = TimedInput(environ["wsgi.input"], seconds)
        return app(environ, start_response)

    return timed


class BufferRequestsMixin:
    # Set by gunicorn's ThreadWorker (typed here for the mixin's own use).
    cfg: Any
    log: Any
    poller: selectors.BaseSelector
    nr_conns: int
    wsgi: WSGIApp

    def init_process(self) -> None:
        config = Config.from_env()
        self.read_timeout = config.request_read_timeout
        self.max_body_bytes = config.max_body_bytes
        # Insertion order is deadline order: every connection gets the same timeout.
        self.arriving: dict[Any, _Arrival] = {}
        super().init_process()  # type: ignore[misc]  # runs the worker's loop until it stops

    def load_wsgi(self) -> None:
        super().load_wsgi()  # type: ignore[misc]
        self.wsgi = with_timed_input(self.wsgi, self.read_timeout)

    def enqueue_req(self, conn: Any) -> None:
        if (
            self.cfg.is_ssl
            or conn.is_http2
            or negotiation.prior_knowledge_allowed(self.cfg, conn.client)
        ):
            super().enqueue_req(conn)  # type: ignore[misc]
            return
        arrival = _Arrival(conn, time.monotonic() + self.read_timeout)
        if conn.parser is not None:
            # Read ahead of the previous request on this connection (pipelining).
            arrival.data += conn.parser.unreader.take_buffered()
        conn.sock.setblocking(False)
        # gthread enqueues a connection once it is readable: the whole request is usually
        # there already, and is then dispatched at once, without another turn of the loop.
        if not self._receive(arrival):
            return
        if examine(arrival.data, self.max_body_bytes)[0] is Verdict.DISPATCH:
            self._dispatch(arrival)
            return
        self.arriving[conn] = arrival
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, arrival))
        if arrival.data:
            self._advance(arrival)

    def _receive(self, arrival: _Arrival) -> bool:
        """Take what the client has sent so far, without waiting; False once it went away
        (the connection is then closed)."""
        try:
            data = arrival.conn.sock.recv(_RECV_BYTES)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            self._forget(arrival)
            self._close(arrival.conn)
            return False
        arrival.data += data
        return True

    def _on_readable(self, arrival: _Arrival, sock: socket.socket) -> None:
        try:
            data = sock.recv(_RECV_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._forget(arrival)
            self._close(arrival.conn)
            return
        if arrival.discard is not None:
            arrival.discard -= len(data)
            if arrival.discard <= 0:
                self._refuse_too_large(arrival)
            return
        arrival.data += data
        self._advance(arrival)

    def _advance(self, arrival: _Arrival) -> None:
        verdict, declared = examine(arrival.data, self.max_body_bytes)
        if verdict is Verdict.DISPATCH:
            self._forget(arrival)
            self._dispatch(arrival)
        elif verdict is Verdict.HEAD_TOO_LARGE:
            self._refuse(
                arrival,
                431,
                "Request Header Fields Too Large",
                f"The request's headers are over {MAX_HEAD_BYTES} bytes.",
            )
        elif verdict is Verdict.TOO_LARGE_NOW:
            self._refuse_too_large(arrival)
        elif verdict is Verdict.TOO_LARGE:
            received = len(arrival.data) - arrival.data.find(_HEAD_END) - len(_HEAD_END)
            arrival.discard = min(declared, DRAIN_BYTES) - received
            arrival.data = bytearray()
            if arrival.discard <= 0:
                self._refuse_too_large(arrival)

    def _refuse_too_large(self, arrival: _Arrival) -> None:
        # The app's own answer (service/api/requests.py), given here without a thread.
        self._refuse(
            arrival,
            413,
            "Request Entity Too Large",
            f"The request body is larger than {self.max_body_bytes} bytes.",
        )

    def _dispatch(self, arrival: _Arrival) -> None:
        conn = arrival.conn
        conn.sock.setblocking(True)
        conn.init()  # a new connection's parser (plain HTTP/1: nothing that blocks)
        conn.parser.unreader.unread(bytes(arrival.data))
        conn.data_ready = True
        super().enqueue_req(conn)  # type: ignore[misc]

    def handle_request(self, req: Any, conn: Any) -> Any:
        # Runs in a thread, headers parsed: bounds what is left to read, and the answer's write.
        conn.sock.settimeout(self.read_timeout)
        return super().handle_request(req, conn)  # type: ignore[misc]

    def murder_pending(self) -> None:
        super().murder_pending()  # type: ignore[misc]
        now = time.monotonic()
        while self.arriving:
            arrival = next(iter(self.arriving.values()))
            if arrival.deadline > now:
                break
            if arrival.discard is not None:
                self._refuse_too_large(arrival)
            elif arrival.data.strip():
                self._refuse(
                    arrival,
                    408,
                    "Request Timeout",
                    f"The request did not arrive within {self.read_timeout:g} s.",
                )
            else:
                self._forget(arrival)
                self._close(arrival.conn)  # an idle connection: nothing to answer

    def _forget(self, arrival: _Arrival) -> None:
        self.arriving.pop(arrival.conn, None)
        try:
            self.poller.unregister(arrival.conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _refuse(self, arrival: _Arrival, status: int, title: str, detail: str) -> None:
        self._forget(arrival)
        sock = arrival.conn.sock
        self.log.debug("answered %d before dispatch: %s", status, title)
        try:
            for _ in range(16):  # unread input would turn the close into a reset
                if not sock.recv(_RECV_BYTES):
                    break
        except OSError:
            pass
        try:
            sock.send(problem_http(status, title, detail))  # small: fits the socket buffer
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._close(arrival.conn)

    def _close(self, conn: Any) -> None:
        self.nr_conns -= 1
        conn.close()


class BufferingThreadWorker(BufferRequestsMixin, ProblemThreadWorker):
    """gunicorn's gthread worker with requests buffered before dispatch, answering its own
    errors as problem+json."""
