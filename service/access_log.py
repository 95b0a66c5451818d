"""The access log under granian: one line per request, as gunicorn's (service/gunicorn_conf.py).

``<keyed hash of the client address> "GET /path HTTP/1.1" 200 1234 3ms`` — never the address
(the hash is of the one the rate limits count under, after ``TRUSTED_PROXIES``' ProxyFix has
rewritten ``REMOTE_ADDR``), never the query string, the path decoded and redacted of emails,
written through the service's logging, whose record factory redacts every line again
(service/logs.py). This middleware is also where a request starts and ends in the worker's
thread, for whatever else wants to hook both (metrics, request ids).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from .hashing import Hasher
from .logs import redact_path

log = logging.getLogger("service.access")


def install_access_log() -> None:
    """Access lines go to stdout as they are, like gunicorn's (``accesslog = "-"``): the line
    is the whole record. Idempotent."""
    if any(getattr(h, "access_log", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.access_log = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class AccessLog:
    """WSGI middleware: calls ``app`` and logs the request once its answer has started."""

    def __init__(self, app: WSGIApp, hasher: Hasher | None) -> None:
        self.app = app
        self.hasher = hasher
        install_access_log()

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
            address = environ.get("REMOTE_ADDR")
            client = self.hasher.ip(address) if self.hasher is not None and address else "-"
            log.info(
                '%s "%s %s %s" %s %s %dms',
                client,
                environ.get("REQUEST_METHOD", "-"),
                redact_path(environ.get("PATH_INFO") or ""),
                environ.get("SERVER_PROTOCOL", "-"),
                answer[0],
                answer[1],
                (time.perf_counter() - started) * 1000,
            )
