"""TRUSTED_PROXIES on a public address is said out loud at start-up (issue 11, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import Config
from tests.servicehelpers import Service, log_records

WARNING = "TRUSTED_PROXIES=1 with HOST=0.0.0.0"


@pytest.mark.parametrize(
    ("host", "trusted", "warns"),
    [
        ("127.0.0.1", 1, False),
        ("::1", 1, False),
        ("[::1]", 2, False),
        ("localhost", 1, False),
        ("127.0.0.2", 1, False),
        ("0.0.0.0", 0, False),
        ("0.0.0.0", 1, True),
        ("::", 1, True),
        ("192.0.2.10", 2, True),
        ("example.org", 1, True),
    ],
)
def test_exposure_warning(host: str, trusted: int, warns: bool) -> None:
    warning = Config(host=host, trusted_proxies=trusted).exposure_warning()
    assert (warning is not None) == warns
    if warning:
        assert f"HOST={host}" in warning and "X-Forwarded-For" in warning


def test_make_run_defaults_to_loopback() -> None:
    assert Config.from_env({}).host == "127.0.0.1"
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert "export HOST ?= 127.0.0.1" in makefile


@pytest.mark.parametrize(("host", "warns"), [("0.0.0.0", True), ("127.0.0.1", False)])
def test_the_served_service_warns_when_exposed(tmp_path: Path, host: str, warns: bool) -> None:
    service = Service(tmp_path, workers=1, env={"HOST": host, "TRUSTED_PROXIES": "1"})
    service.start()
    try:
        assert service.stop() == 0
    finally:
        service.kill()
    log = service.log.read_text()
    warnings = [r["message"] for r in log_records(log) if r["level"] == "WARNING"]
    assert any(m.startswith(WARNING) for m in warnings) == warns, log
    if not warns:
        assert "TRUSTED_PROXIES=1 with HOST=" not in log
