"""`make run` keeps its embedded Redis running: kill -9 it, and the service heals by itself.

The real service (``python -m service.serve``, as ``make run``), a real redis-server killed
with SIGKILL, real HTTP. Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests

from devtools.processes import is_running, wait_until
from service.embedded import EmbeddedRedis, RedisSupervisor
from tests.servicehelpers import RELAXED_POLICY, Service

pytestmark = pytest.mark.slow  # the real service, started per test: seconds each

# First restart after 0.5 s; the server then loads its AOF; a worker reconnects on its next
# request. Far more than that, and nothing is healing.
RECOVERY_SECONDS = 20.0


def test_killed_embedded_redis_is_restarted_and_keeps_acknowledged_comments(tmp_path: Path) -> None:
    service = Service(
        tmp_path, workers=2, redis_url=None, env={"REDIS_TIMEOUT": "0.5", "REDIS_RETRIES": "1"}
    )
    service.start()
    try:
        service.put_policy(**RELAXED_POLICY)
        body = {"name": "Ann", "email": "ann@example.com", "comment": "Kept across a crash."}
        accepted = service.submit(None, "supervised", body)
        assert accepted.status_code == 202, accepted.text
        comment_id = accepted.json()["id"]

        victim = service.redis_server_pid()
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: not is_running(victim), 10)
        started = time.monotonic()

        def ready() -> bool:
            try:
                return requests.get(service.url("/readyz"), timeout=2).status_code == 200
            except requests.RequestException:
                return False

        assert wait_until(ready, RECOVERY_SECONDS, 0.2), service.log_text()
        print(
            f"\n[kill -9 embedded Redis] /readyz 200 again after {time.monotonic() - started:.1f} s"
        )
        service.embedded_redis_pid = service.redis_server_pid()  # so cleanup finds it
        assert service.embedded_redis_pid != victim

        found = service.moderate("GET", f"/comments/{comment_id}")
        assert found.status_code == 200, found.text
        assert found.json()["id"] == comment_id
        after = service.submit(None, "supervised", {**body, "comment": "And after it."})
        assert after.status_code == 202, after.text
        # The supervisor logs the restart once the new server answers, which may be a moment
        # after a worker already reconnected.
        assert wait_until(lambda: "embedded Redis restarted" in service.log_text(), 5), (
            service.log_text()
        )
        assert "embedded Redis is down" in service.log_text()
        assert service.stop() == 0
        assert not is_running(service.embedded_redis_pid), "Redis outlived the service"
    finally:
        service.kill()


def test_supervisor_backs_off_between_restarts(tmp_path: Path) -> None:
    redis = EmbeddedRedis(tmp_path)
    redis.start()
    supervisor = RedisSupervisor(redis, first_delay=0.3, max_delay=10.0, poll_interval=0.05)
    supervisor.start()
    try:
        gaps = []
        for restarts in (1, 2, 3):
            assert redis.process is not None
            redis.process.kill()
            killed = time.monotonic()
            # restarts counts servers that started and answered a PING.
            assert wait_until(lambda: supervisor.restarts == restarts, 15)  # noqa: B023
            gaps.append(time.monotonic() - killed)
        # 0.3 s, 0.6 s, 1.2 s of back-off (plus the start itself each time).
        assert gaps[0] >= 0.3 and gaps[1] >= 0.6 and gaps[2] >= 1.2, gaps
        assert gaps[2] > gaps[0], gaps
    finally:
        supervisor.stop()
        redis.stop()
