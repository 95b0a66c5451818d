"""Graceful shutdown under both servers (granian, the default, and gunicorn): a SIGTERM lets
the request in flight finish — here one whose body is still arriving — and answers it; the
service exits 0 with the comment stored (the next start of the same DATA_DIR serves it)."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest
import requests

from tests.servicehelpers import AUTH, RELAXED_POLICY, Service


@pytest.mark.slow
@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_sigterm_finishes_the_request_in_flight(tmp_path: Path, server: str) -> None:
    service = Service(tmp_path, workers=1, env={"SERVER": server})
    service.start()
    try:
        put = requests.put(
            service.url("/api/v1/moderation/policy"),
            json={**RELAXED_POLICY, "auto_approve": "all"},
            headers=AUTH,
            timeout=10,
        )
        assert put.status_code == 200, put.text
        body = json.dumps(
            {"name": "Late", "email": "late@example.com", "comment": "Sent across a shutdown."}
        ).encode()
        with socket.create_connection(("127.0.0.1", service.port), timeout=15) as sock:
            sock.sendall(
                b"POST /api/v1/articles/graceful/comments HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            time.sleep(0.5)  # the request is in the worker, waiting for the rest of its body
            assert service.group.process is not None
            service.group.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            sock.sendall(body[10:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        assert service.group.process.wait(30) == 0
    finally:
        service.kill()
    again = Service(tmp_path, workers=1, key_prefix=service.key_prefix, env={"SERVER": server})
    again.start()
    try:
        page = requests.get(again.url("/api/v1/articles/graceful/comments"), timeout=10)
        assert [c["comment"] for c in page.json()["comments"]] == ["Sent across a shutdown."]
    finally:
        again.kill()
