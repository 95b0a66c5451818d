"""What the real service writes to its logs: no client address, no email, every line formatted.

The service runs as ``make run`` runs it (tests/servicehelpers.py ``Service``), and the test
reads the log output it captured: gunicorn's access and error logs, and the service's own.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from devtools.processes import free_port, wait_until
from service.crypto import KeyRing
from service.hashing import Hasher
from service.logs import REDACTED, REQUEST_ID, JsonLines, install_redaction, redact, redact_path
from tests.servicehelpers import Service, log_records

pytestmark = pytest.mark.slow  # the real service, started per test: seconds each

CLIENT = "203.0.113.7"  # what the proxy in front says the client is (TRUSTED_PROXIES=1)
EMAIL = "victim@example.com"
PROXY_REQUEST_ID = "proxy-7f3a-42"  # what nginx's $request_id or a load balancer would send


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        return sock.recv(4096)


@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_served_requests_log_hashed_addresses_and_no_email(tmp_path: Path, server: str) -> None:
    install_redaction()  # this process logs the URLs it requests too (urllib3)
    # Redis is a closed port here, so /readyz answers 503 and the service logs its warning.
    service = Service(
        tmp_path,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        env={"TRUSTED_PROXIES": "1", "REDIS_RETRIES": "0", "SERVER": server},
    )
    service.start(ready_path="/healthz")
    answered: dict[str, str] = {}  # path -> the X-Request-Id it was answered with
    try:
        forwarded = {"X-Forwarded-For": CLIENT}
        for path, request_id in (
            ("/api/v1/articles/x%40y/comments", None),
            (f"/api/v1/articles/{EMAIL}/comments", PROXY_REQUEST_ID),
            (f"/healthz?email={EMAIL}", EMAIL),  # an id that is an address is not kept
        ):
            headers = {**forwarded, **({"X-Request-Id": request_id} if request_id else {})}
            response = requests.get(service.url(path), headers=headers, timeout=5)
            assert response.status_code in (200, 404)
            answered[path] = response.headers["X-Request-Id"]
        readyz = requests.get(service.url("/readyz"), timeout=5)
        assert readyz.status_code == 503
        # A request line the server refuses: gunicorn's warning names the client and quotes
        # the line (both redacted); granian logs nothing of it.
        assert raw_request(service.port, f"GET /{EMAIL} HTTP/1.1 junk\r\n\r\n".encode()).startswith(
            b"HTTP/1.1 400"
        )
        if server == "gunicorn":
            assert wait_until(lambda: "Invalid request" in service.log.read_text(), 10)
        assert wait_until(lambda: "redis unavailable" in service.log.read_text(), 10)
    finally:
        service.stop()

    log = service.log.read_text()
    records = log_records(log)  # every line, the launcher's and the server's too, is JSON
    secret = (tmp_path / "secret-key").read_text().strip().encode()
    hasher = Hasher(secret)
    access = [r for r in records if r["logger"] in ("gunicorn.access", "service.access")]
    assert len(access) >= 4, log
    for record in access:
        assert "127.0.0.1" not in json.dumps(record) and CLIENT not in json.dumps(record), record
        assert {"client", "method", "path", "status", "bytes", "duration_ms"} <= set(record)
    assert sum(r["client"] == hasher.ip(CLIENT) for r in access) == 3, log
    ready_line = next(r for r in access if r["path"] == "/readyz")
    assert ready_line["client"] == hasher.ip("127.0.0.1") and ready_line["status"] == 503
    # Each access line carries the id its response was answered with; a trusted proxy's id
    # is kept, an id that is an address is replaced.
    by_id = {r["request_id"]: r for r in access if "request_id" in r}
    assert answered[f"/api/v1/articles/{EMAIL}/comments"] == PROXY_REQUEST_ID
    assert answered[f"/healthz?email={EMAIL}"] != EMAIL
    for path, request_id in answered.items():
        assert by_id[request_id]["path"] == redact_path(path.split("?")[0]), (path, log)
    assert by_id[readyz.headers["X-Request-Id"]] is ready_line
    assert "/api/v1/articles/[email redacted]/comments" in log
    invalid = [r for r in records if "Invalid request" in r["message"]]
    assert all(f"ip={hasher.ip('127.0.0.1')}:" in r["message"] for r in invalid), log
    assert bool(invalid) is (server == "gunicorn"), log
    # The service's own warning went through a formatted handler, with the request's id.
    warning = next(r for r in records if r["message"].startswith("redis unavailable"))
    assert (warning["level"], warning["logger"]) == ("WARNING", "service.errors"), log
    assert warning["request_id"] == readyz.headers["X-Request-Id"]
    for leak in (EMAIL, "x%40y", "x@y", CLIENT):
        assert leak not in log, leak


def test_text_lines_remain_for_those_who_ask(tmp_path: Path) -> None:
    service = Service(
        tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0", env={"LOG_FORMAT": "text"}
    )
    service.start(ready_path="/healthz")
    try:
        assert (
            requests.get(service.url(f"/api/v1/articles/{EMAIL}/comments"), timeout=5).ok is False
        )
    finally:
        service.stop()
    log = service.log.read_text()
    assert '"GET /api/v1/articles/[email redacted]/comments HTTP/1.1" 404' in log, log
    assert "[INFO] service.serve: serving on" in log, log
    assert EMAIL not in log


def test_json_lines_redact_extra_fields_and_carry_the_request_id() -> None:
    """An extra field (which does not pass through the message) is redacted when written, and
    a line logged while a request is served carries its id."""
    install_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("tests.json-lines")
    logger.addHandler(handler)
    logger.propagate = False
    token = REQUEST_ID.set("req-1")
    try:
        logger.warning("mail to %s", EMAIL, extra={"to": EMAIL, "nested": {"who": [EMAIL]}})
    finally:
        REQUEST_ID.reset(token)
        logger.removeHandler(handler)
    logger.warning("outside any request")
    line = stream.getvalue().splitlines()[0]
    record = json.loads(line)
    assert EMAIL not in line
    assert record["message"] == f"mail to {REDACTED}" and record["to"] == REDACTED
    assert record["nested"] == {"who": [REDACTED]}
    assert record["request_id"] == "req-1" and record["level"] == "WARNING"
    assert record["time"].endswith("Z")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"mail {EMAIL} now", f"mail {REDACTED} now"),
        ("/api/v1/articles/x%40y/comments", f"/api/v1/articles/{REDACTED}/comments"),
        ("redis://user:secret@redis:6379/0", f"redis://user:{REDACTED}:6379/0"),
        ("nothing personal here", "nothing personal here"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_path_decodes_first() -> None:
    assert redact_path("/a/x%2540y.z/b") == f"/a/{REDACTED}/b"


def test_every_logger_is_redacted_whatever_handler_writes(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    logger = logging.getLogger("some.library")
    with caplog.at_level(logging.INFO):
        logger.warning("sent to %s", EMAIL)
        try:
            raise ValueError(f"bad address {EMAIL}")
        except ValueError:
            logger.exception("failed")
    assert caplog.records and EMAIL not in caplog.text
    assert all(EMAIL not in (r.exc_text or "") + r.getMessage() for r in caplog.records)


def test_the_cli_redacts_what_its_process_logs(redis_url: str, tmp_path: Path) -> None:
    """The CLI is a process of its own: a record logged there after it started (by redis-py,
    the store, anything) is redacted like the service's."""
    code = (
        "import logging, sys\n"
        "from service import cli\n"
        "assert cli.main(['tokens', 'list']) == 0\n"
        f"logging.getLogger('redis').warning('reached %s', {EMAIL!r})\n"
    )
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "ENCRYPTION_KEYS": KeyRing.generate_entry("cli"),
        "DATA_DIR": str(tmp_path),
        "KEY_PREFIX": "cli-logs",
    }
    ran = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert EMAIL not in ran.stderr + ran.stdout
    assert f"reached {REDACTED}" in ran.stderr
