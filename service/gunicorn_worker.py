"""gunicorn's gthread worker, answering its own errors as problem+json like the app does.

gunicorn answers some requests itself, before the app sees them: a garbage request line, a
NUL in a header or a bad ``Content-Length`` (400), a request line over ``limit_request_line``
(414), too many or too large header fields (431). Its answer is an HTML page; this worker
keeps gunicorn's judgement (which status, its log lines, its access log entry) and only
replaces the page with an RFC 9457 document and the headers every answer carries.

gunicorn writes that page in ``Worker.handle_error`` through ``util.write_error``: the
worker lets it write to a stand-in socket, reads the status line back, and sends its own
answer to the client instead.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from .app import SECURITY_HEADERS
from .errors import PROBLEM_MIMETYPE


class _StatusRecorder:
    """What gunicorn's error writer needs of a socket: it keeps the bytes written."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0  # "already non-blocking": write_nonblock then writes at once

    def sendall(self, data: bytes) -> None:
        self.data += data

    def status(self) -> tuple[int, str]:
        """The status code and reason of the recorded ``HTTP/1.1 414 URI Too Long`` line."""
        line = self.data.split(b"\r\n", 1)[0].decode("latin-1")
        _version, code, reason = (line.split(" ", 2) + ["", ""])[:3]
        return (int(code), reason) if code.isdigit() else (500, "Internal Server Error")


def problem_answer(status: int, reason: str, limits: dict[str, int]) -> bytes:
    """The whole HTTP answer for one of gunicorn's own errors."""
    return problem_http(status, reason, _detail(status, limits))


def problem_http(status: int, title: str, detail: str) -> bytes:
    """A whole HTTP answer carrying one problem document, for the workers that answer before
    (or instead of) the app: the same document and headers the app's errors have."""
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    head = [
        f"HTTP/1.1 {status} {title}",
        "Connection: close",
        f"Content-Type: {PROBLEM_MIMETYPE}",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in SECURITY_HEADERS),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _detail(status: int, limits: dict[str, int]) -> str:
    # Our own words, never gunicorn's message: that one quotes the request back.
    if status == 400:
        return (
            "The request is not well-formed HTTP (its request line, a header or its "
            "Content-Length)."
        )
    if status == 414:
        return (
            f"The request line is longer than {limits['line']} bytes; send a long list "
            "of article ids as POST /api/v1/comment-counts."
        )
    if status == 431:
        return (
            f"The request has more than {limits['fields']} header fields or one longer "
            f"than {limits['field_size']} bytes."
        )
    if status >= 500:
        return "The server could not answer this request."
    return "The server refused this request."


class ProblemThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no type hints
    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: Exception) -> None:
        recorder = _StatusRecorder()
        super().handle_error(req, recorder, addr, exc)
        if not recorder.data:
            return  # gunicorn wrote nothing (it could not): neither do we
        status, reason = recorder.status()
        limits = {
            "line": self.cfg.limit_request_line,
            "fields": self.cfg.limit_request_fields,
            "field_size": self.cfg.limit_request_field_size,
        }
        try:
            util.write_nonblock(client, problem_answer(status, reason, limits))
        except Exception:  # the client may be gone already, as gunicorn itself allows
            self.log.debug("Failed to send error message.")
