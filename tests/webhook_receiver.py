"""A real HTTP receiver for webhook tests (loopback, keep-alive), checking every delivery's
signature with the ``standardwebhooks`` library, as a receiver would.

``behaviour(message_id, attempt)`` decides each answer: a status, optional headers, and how
long to stall first (a hanging receiver)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    stall_seconds: float = 0.0
    body: bytes = b""


Behaviour = Callable[[str, int], Answer]


def always_ok(_message_id: str, _attempt: int) -> Answer:
    return Answer()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    verified: bool

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    port: int = 0
    secrets: list[str] = field(default_factory=list)
    behaviour: Behaviour = always_ok
    requests: list[Received] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    delivered: list[str] = field(default_factory=list)  # message ids answered 2xx, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                return True
            except WebhookVerificationError:
                continue
        return False

    def handle(self, headers: dict[str, str], body: bytes) -> Answer:
        message_id = headers.get("webhook-id", "")
        with self.lock:
            self.attempts[message_id] += 1
            attempt = self.attempts[message_id]
            self.requests.append(
                Received(headers, body, time.monotonic(), self.verify(body, headers))
            )
        answer = self.behaviour(message_id, attempt)
        if 200 <= answer.status < 300 and answer.stall_seconds == 0:
            with self.lock:
                self.delivered.append(message_id)
        return answer

    def unique_delivered(self) -> list[str]:
        with self.lock:
            return list(dict.fromkeys(self.delivered))


@contextmanager
def running(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # As real servers do: http.server writes headers and body apart, and Nagle's
            # algorithm against the client's delayed ACK would add 40 ms to every answer.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = receiver.handle(headers, body)
            if answer.stall_seconds:
                time.sleep(answer.stall_seconds)
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
