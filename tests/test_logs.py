"""What the real service writes to its logs: no client address, no email, every line formatted.

The service runs as ``make run`` runs it (tests/servicehelpers.py ``Service``), and the test
reads the log output it captured: gunicorn's access and error logs, and the service's own.
"""

from __future__ import annotations

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
from service.logs import REDACTED, install_redaction, redact, redact_path
from tests.servicehelpers import Service

pytestmark = pytest.mark.slow  # the real service, started per test: seconds each

CLIENT = "203.0.113.7"  # what the proxy in front says the client is (TRUSTED_PROXIES=1)
EMAIL = "victim@example.com"


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
    try:
        forwarded = {"X-Forwarded-For": CLIENT}
        for path in (
            "/api/v1/articles/x%40y/comments",
            f"/api/v1/articles/{EMAIL}/comments",
            f"/healthz?email={EMAIL}",
        ):
            assert requests.get(service.url(path), headers=forwarded, timeout=5).status_code in (
                200,
                404,
            )
        assert requests.get(service.url("/readyz"), timeout=5).status_code == 503
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
    secret = (tmp_path / "secret-key").read_text().strip().encode()
    hasher = Hasher(secret)
    access = [line for line in log.splitlines() if '"GET ' in line]
    assert len(access) >= 4, log
    for line in access:
        assert "127.0.0.1" not in line and CLIENT not in line, line
    assert sum(line.startswith(hasher.ip(CLIENT) + " ") for line in access) == 3, log
    assert any(
        line.startswith(hasher.ip("127.0.0.1") + " ") and "/readyz" in line for line in access
    ), log
    assert "/api/v1/articles/[email redacted]/comments" in log
    invalid = [line for line in log.splitlines() if "Invalid request" in line]
    assert all(f"ip={hasher.ip('127.0.0.1')}:" in line for line in invalid), log
    assert bool(invalid) is (server == "gunicorn"), log
    # The service's own warning went through a formatted handler, not logging.lastResort.
    assert any(
        "[WARNING] service.errors: redis unavailable" in line for line in log.splitlines()
    ), log
    for leak in (EMAIL, "x%40y", "x@y", CLIENT):
        assert leak not in log, leak


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
