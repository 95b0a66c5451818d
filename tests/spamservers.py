"""Local outside services for the spam worker's tests, on loopback HTTP servers of their own.

:class:`AkismetServer` speaks the Akismet protocol (``/1.1/comment-check``, ``submit-spam``,
``submit-ham``): a comment whose text contains "casino" is spam, "BLATANT" adds the ``discard``
pro-tip; a wrong ``api_key`` answers ``invalid`` as Akismet does. :class:`HookServer` answers a
moderation hook's POST with whatever the test queued (a status and a JSON body), recording each
request and its signature header.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

AKISMET_KEY = "test-akismet-key"


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.owner = self  # type: ignore[attr-defined]
        self.server = server
        self.port = server.server_address[1]
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _record(self) -> bytes:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        owner = self.server.owner  # type: ignore[attr-defined]
        owner.requests.append((self.path, dict(self.headers.items()), body))
        return body

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _AkismetHandler(_Handler):
    def do_POST(self) -> None:
        fields = {k: v[0] for k, v in parse_qs(self._record().decode()).items()}
        if fields.get("api_key") != AKISMET_KEY:
            self._answer(200, b"invalid", {"X-akismet-debug-help": "Invalid API key."})
            return
        if self.path.endswith("/comment-check"):
            text = fields.get("comment_content", "")
            spam = "casino" in text.lower()
            headers = {"X-akismet-pro-tip": "discard"} if "BLATANT" in text else {}
            self._answer(200, b"true" if spam else b"false", headers)
        elif self.path.endswith(("/submit-spam", "/submit-ham")):
            self._answer(200, b"Thanks for making the web a better place.")
        else:
            self._answer(404, b"")


class AkismetServer(_Server):
    def __init__(self) -> None:
        super().__init__(_AkismetHandler)

    @property
    def url(self) -> str:
        return self.base + "/1.1"

    def calls(self, method: str) -> list[dict[str, str]]:
        return [
            {k: v[0] for k, v in parse_qs(body.decode()).items()}
            for path, _, body in self.requests
            if path.endswith("/" + method)
        ]


class _HookHandler(_Handler):
    def do_POST(self) -> None:
        self._record()
        owner: HookServer = self.server.owner  # type: ignore[attr-defined]
        status, document = owner.answers.pop(0) if owner.answers else (204, None)
        self._answer(status, b"" if document is None else json.dumps(document).encode())


class HookServer(_Server):
    def __init__(self) -> None:
        super().__init__(_HookHandler)
        self.answers: list[tuple[int, Any]] = []


@contextmanager
def running(server: _Server) -> Iterator[Any]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
