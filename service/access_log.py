"""The access log under granian: one line per request, as gunicorn's (service/gunicorn_conf.py).

``<keyed hash of the client address> "GET /path HTTP/1.1" 200 1234 3ms`` — never the address
(the hash is of the one the rate limits count under, after ``TRUSTED_PROXIES``' ProxyFix has
rewritten ``REMOTE_ADDR``), never the query string, the path decoded and redacted of emails,
written through the service's logging, whose record factory redacts every line again
(service/logs.py). This middleware is also where a request starts and ends in the worker's
thread, for whatever else wants to hook both (metrics, request ids).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from .hashing import Hasher
from .logs import ENVIRON_REQUEST_ID, REQUEST_ID, JsonLines, formatter, redact, redact_path

log = logging.getLogger("service.access")


FLUSH_SECONDS = 0.2
# Client address hashes a worker remembers (all forgotten when full).
CLIENT_HASHES = 4096


class BatchedLineHandler(logging.Handler):
    """Writes access lines to stdout in batches, from a thread of its own, every
    FLUSH_SECONDS (and at exit): the request's thread only appends its line to a deque.

    Measured (py-spy, a cached page read under load): a StreamHandler's lock and its write per
    line took 19% of a worker's busy time, its threads queueing on the handler's lock while one
    wrote. An access line may reach stdout up to FLUSH_SECONDS late, and a worker killed
    outright loses at most that much of its access log; nothing else is written this way.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))
        self.lines: deque[str] = deque()
        self.wake = threading.Event()
        self.pid = 0

    def createLock(self) -> None:  # noqa: N802 - logging's name
        self.lock = None  # deque.append is atomic: no lock on the request's path

    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        self._ensure_writer()
        self.lines.append(self.format(record))

    def emit_line(self, data: dict[str, Any]) -> None:
        """A line made without a LogRecord (see _direct_handler), written by the formatter's
        own serializer, which also redacts every value that holds an address."""
        formatter = self.formatter
        assert isinstance(formatter, JsonLines)
        self._ensure_writer()
        self.lines.append(formatter.jsonify_log_record(data))

    def _ensure_writer(self) -> None:
        # One writer thread per process (a fork has none until it logs).
        if self.pid != os.getpid():
            self.pid = os.getpid()
            threading.Thread(target=self._run, name="access-log", daemon=True).start()

    def _run(self) -> None:
        while True:
            self.wake.wait(FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        lines = self.lines
        batch = []
        while lines:
            try:
                batch.append(lines.popleft())
            except IndexError:
                break
        if batch:
            try:
                sys.stdout.write("\n".join(batch) + "\n")
                sys.stdout.flush()
            except (OSError, ValueError):
                pass  # stdout gone (shutting down): nothing to write to


def install_access_log(log_format: str = "text") -> None:
    """Access lines go to stdout, like gunicorn's (``accesslog = "-"``): with ``text`` the line
    is the whole record, with ``json`` one JSON object like every other line. Idempotent."""
    if any(isinstance(h, BatchedLineHandler) for h in log.handlers):
        return
    handler = BatchedLineHandler()
    if log_format == "json":
        handler.setFormatter(formatter("json"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    atexit.register(handler.flush)


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _direct_handler() -> BatchedLineHandler | None:
    """The access log's handler when it is the one the service installs and nothing else
    would see the record (no other handler, no filter): then an access line is written as its
    JSON formatter writes it, without a LogRecord (measured with py-spy: the record, the
    record factory and the formatter's walk of the record were half of a replayed read's
    time). Anything else (a test's handler, another format) gets the record as before."""
    handlers = log.handlers
    if len(handlers) != 1 or log.filters or log.disabled:
        return None
    handler = handlers[0]
    if (
        type(handler) is not BatchedLineHandler
        or handler.filters
        or type(handler.formatter) is not JsonLines
        or not getattr(logging.getLogRecordFactory(), "redacts", False)
        or logging.root.manager.disable >= logging.INFO
    ):
        return None
    return handler


def _json_line_data(
    method: str, path: str, fields: dict[str, Any], request_id: str | None
) -> dict[str, Any]:
    """What JsonLines makes of the access record, key for key: the message redacted as the
    record factory redacts it, the request id the factory stamps, then the fields."""
    data: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": "INFO",
        "logger": log.name,
        "pid": os.getpid(),
        "message": redact(f"{method} {path} {fields['status']}"),
    }
    if request_id is not None:
        data["request_id"] = request_id
    data.update(fields)
    return data


class AccessLog:
    """WSGI middleware: calls ``app`` and logs the request once its answer has started."""

    def __init__(self, app: WSGIApp, hasher: Hasher | None, log_format: str = "text") -> None:
        self.app = app
        self.hasher = hasher
        self.json_lines = log_format == "json"
        self._client_hashes: dict[str, str] = {}
        install_access_log(log_format)

    @staticmethod
    def flush() -> None:
        """Write out what is buffered (the server calls this when it stops the worker:
        granian's workers exit without running atexit hooks)."""
        for handler in log.handlers:
            handler.flush()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if not log.isEnabledFor(logging.INFO):
            return self.app(environ, start_response)
        started = time.perf_counter()
        answer: list[Any] = ["-", "-"]

        def recording_start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            answer[0] = status.split(" ", 1)[0]
            for name, value in headers:
                if name.lower() == "content-length":
                    answer[1] = value
                    break
            return start_response(status, headers, *exc)

        try:
            return self.app(environ, recording_start_response)
        finally:
            self.write(
                environ.get("REMOTE_ADDR"),
                environ.get("REQUEST_METHOD", "-"),
                redact_path(environ.get("PATH_INFO") or ""),
                environ.get("SERVER_PROTOCOL", "-"),
                answer[0],
                answer[1],
                (time.perf_counter() - started) * 1000,
                environ.get(ENVIRON_REQUEST_ID),
            )

    def write(
        self,
        address: str | None,
        method: str,
        path: str,
        protocol: str,
        status: str,
        length: str,
        elapsed_ms: float,
        request_id: str | None,
    ) -> None:
        """One access line; ``path`` already redacted. Also what the bridge's replayed
        answers log (service/replayed_reads.py), so both lines are the same."""
        if not log.isEnabledFor(logging.INFO):
            return
        client = self._client(address) if self.hasher is not None and address else "-"
        if self.json_lines:
            self._json_line(client, method, path, status, length, elapsed_ms, request_id)
        else:
            log.info(
                '%s "%s %s %s" %s %s %dms',
                client,
                method,
                path,
                protocol,
                status,
                length,
                elapsed_ms,
            )

    def _client(self, address: str) -> str:
        """The address's keyed hash, remembered: a client sends many requests, and the HMAC
        was a measurable share of a cached read."""
        known = self._client_hashes.get(address)
        if known is None:
            assert self.hasher is not None
            known = self.hasher.ip(address)
            if len(self._client_hashes) >= CLIENT_HASHES:
                self._client_hashes.clear()
            self._client_hashes[address] = known
        return known

    def _json_line(
        self,
        client: str,
        method: str,
        path: str,
        status: str,
        length: str,
        elapsed_ms: float,
        request_id: str | None,
    ) -> None:
        # The same fields as gunicorn's JSON access line (service/gunicorn_logging.py), with
        # the id the app answered with.
        fields = {
            "client": client,
            "method": method,
            "path": path,
            "status": int(status) if status.isdigit() else None,
            "bytes": int(length) if length.isdigit() else 0,
            "duration_ms": round(elapsed_ms, 3),
        }
        handler = _direct_handler()
        if handler is not None:
            handler.emit_line(_json_line_data(method, path, fields, request_id))
            return
        token = REQUEST_ID.set(request_id)
        try:
            log.info("%s %s %s", method, path, fields["status"], extra=fields)
        finally:
            REQUEST_ID.reset(token)
