"""The metrics module: multiprocess sums, dead processes, bounded labels, the off switch."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from devtools.processes import free_port, send_signal, wait_until
from service import metrics
from service.config import METRICS_DIR_VARIABLE
from tests.servicehelpers import Service


def samples(exposition: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(exposition.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def run_recorder(directory: Path, code: str, *, wait: bool = False) -> subprocess.Popen[str]:
    """A process of its own recording into ``directory`` (as a gunicorn worker would)."""
    script = "from service import metrics\n" + textwrap.dedent(code)
    if wait:
        script += "import sys\nprint('ready', flush=True)\nsys.stdin.read()\n"
    env = {**os.environ, METRICS_DIR_VARIABLE: str(directory)}
    return subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_the_module_runs_prometheus_client_in_multiprocess_mode() -> None:
    from prometheus_client import values

    assert values.ValueClass._multiprocess is True
    assert os.environ[METRICS_DIR_VARIABLE] == str(metrics.METRICS_DIR)
    assert metrics.METRICS_DIR.is_dir()


def test_a_scrape_adds_up_every_process(tmp_path: Path) -> None:
    code = """
        metrics.observe_request("/api/v1/comment-counts", "GET", 200, 0.003)
        metrics.count_submission("held")
        metrics.count_submission("held")
        metrics.count_decision("approve", "moderator")
    """
    for _ in range(3):
        recorder = run_recorder(tmp_path, code)
        assert recorder.wait(60) == 0
    found = samples(metrics.render(directory=tmp_path))
    route = {"method": "GET", "route": "/api/v1/comment-counts", "status": "200"}
    assert found[("http_request_duration_seconds_count", labels(**route))] == 3
    assert found[("http_request_duration_seconds_bucket", labels(le="0.0025", **route))] == 0
    assert found[("http_request_duration_seconds_bucket", labels(le="0.005", **route))] == 3
    assert found[("comment_submissions_total", labels(outcome="held"))] == 6
    assert found[("moderation_decisions_total", labels(action="approve", actor="moderator"))] == 3


def test_a_dead_process_keeps_its_counts_and_loses_its_live_gauges(tmp_path: Path) -> None:
    code = """
        metrics.count_webhook_delivery("delivered")
        metrics.set_oldest_undelivered_age(42.0)
    """
    live = run_recorder(tmp_path, code, wait=True)
    assert live.stdout is not None and live.stdout.readline().strip() == "ready"
    gauge = ("webhook_oldest_undelivered_event_age_seconds", ())
    deliveries = ("webhook_deliveries_total", (("result", "delivered"),))
    try:
        found = samples(metrics.render(directory=tmp_path))
        assert found[gauge] == 42.0 and found[deliveries] == 1
    finally:
        assert live.stdin is not None
        live.stdin.close()
        assert live.wait(60) == 0
    after = samples(metrics.render(directory=tmp_path))
    assert gauge not in after  # swept at the scrape: its process is gone
    assert after[deliveries] == 1  # a counter never goes down because a process ended
    assert not list(tmp_path.glob("gauge_live*"))


def test_labels_never_come_from_what_a_client_sent() -> None:
    before = samples(metrics.render())
    metrics.observe_request(None, "BREW", 405, 0.001)
    found = samples(metrics.render())
    key = (
        "http_request_duration_seconds_count",
        (("method", "other"), ("route", metrics.UNMATCHED_ROUTE), ("status", "405")),
    )
    assert found[key] == before.get(key, 0) + 1
    assert not any("BREW" in str(labels) for _, labels in found)


@pytest.mark.parametrize(
    ("status", "verdict", "outcome"),
    [
        (201, "approved", "approved"),
        (202, "pending", "held"),
        (202, "spam", "spam"),
        (303, "pending", "held"),
        (409, None, "conflict"),
        (429, None, "rate_limited"),
        (422, None, "invalid"),
        (403, None, "refused"),
        (413, None, "refused"),
        (503, None, "error"),
    ],
)
def test_submission_outcomes(status: int, verdict: str | None, outcome: str) -> None:
    assert metrics.submission_outcome(status, verdict) == outcome
    assert outcome in metrics.SUBMISSION_OUTCOMES


def test_switched_off_nothing_is_recorded() -> None:
    key = ("smtp_sends_total", (("result", "switch-test"),))
    metrics.count_smtp_send("switch-test")
    counted = samples(metrics.render())[key]
    metrics.set_enabled(False)
    try:
        metrics.count_smtp_send("switch-test")
        metrics.observe_request("/switch-test", "GET", 200, 0.1)
    finally:
        metrics.set_enabled(True)
    found = samples(metrics.render())
    assert found[key] == counted
    assert not any(("route", "/switch-test") in labels for _, labels in found)


def test_the_queue_is_read_at_scrape_time() -> None:
    answers = iter([(3, 12.5), (0, 0.0)])
    collector = metrics.QueueCollector(lambda: next(answers))
    first = samples(metrics.render([collector]))
    assert first[("moderation_queue_pending", ())] == 3
    assert first[("moderation_queue_oldest_pending_seconds", ())] == 12.5
    second = samples(metrics.render([collector]))
    assert second[("moderation_queue_pending", ())] == 0


@pytest.mark.slow
@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_the_served_metrics_count_every_workers_requests(tmp_path: Path, server: str) -> None:
    """The real service (2 workers): the separate port (gunicorn's master serves it, or under
    granian the launcher) and the main port with its token both see every request, whichever
    worker served it, and a killed worker's counts stay."""
    metrics_port = free_port()
    token = "served-metrics-token-0123456789abcdef"
    service = Service(
        tmp_path,
        env={"METRICS_PORT": str(metrics_port), "METRICS_TOKEN": token, "SERVER": server},
        workers=2,
    )
    service.start()
    try:
        path = "/api/v1/articles/served/comments"
        served_by: set[str] = set()
        for _ in range(40):
            with requests.Session() as session:  # a new connection: either worker may take it
                response = session.get(service.url(path), timeout=5)
                assert response.status_code == 200
                served_by.add(response.headers["X-Request-Id"])
        separate = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        assert separate.status_code == 200
        key = (
            "http_request_duration_seconds_count",
            labels(method="GET", route="/api/v1/articles/<slug:article_id>/comments", status="200"),
        )
        assert samples(separate.content)[key] == 40
        files = {p.name for p in (tmp_path / "metrics").glob("histogram_*.db")}
        assert len(files) >= 2, files  # both workers wrote (new connections are spread)
        victim = service.workers()[0]
        send_signal(victim, signal.SIGKILL)
        assert wait_until(
            lambda: victim not in service.workers() and len(service.workers()) == 2, 30
        )
        main_port = requests.get(
            service.url("/metrics"), headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert main_port.status_code == 200
        assert samples(main_port.content)[key] == 40  # the dead worker's requests still count
        assert samples(main_port.content)[("moderation_queue_pending", ())] == 0
        assert requests.get(service.url("/metrics"), timeout=5).status_code == 401
    finally:
        service.stop()
    assert len(served_by) == 40


def test_only_the_metrics_module_imports_prometheus_client() -> None:
    """It must be imported after the multiprocess directory is named: only service/metrics.py
    may import it, and it refuses to load if something imported it first."""
    package = Path(__file__).resolve().parents[1] / "service"
    importers = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name.split(".")[0] == "prometheus_client" for name in names):
                importers.add(path.relative_to(package).as_posix())
    assert importers == {"metrics.py"}
    probe = (
        "import prometheus_client\n"
        "try:\n    import service.metrics\nexcept RuntimeError as error:\n    print(error)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != METRICS_DIR_VARIABLE}
    ran = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert "imported before service.metrics" in ran.stdout, ran.stdout + ran.stderr


def test_a_rate_limit_let_through_uncounted_is_counted_by_scope(tmp_path: Path) -> None:
    # Fail open is never silent: a log line (tests/test_topologies.py) and this series.
    from devtools.topologies import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    port = server.port
    server.stop()
    code = f"""
        from limits import parse
        from service.store import Keys, make_redis
        from service.store.ratelimits import RateLimitCounters
        counters = RateLimitCounters(make_redis("redis://127.0.0.1:{port}/0", retries=0), Keys())
        assert counters.first_exhausted([parse("1/minute")], "read", "client-hash") is None
    """
    recorder = run_recorder(tmp_path / "metrics", code)
    assert recorder.wait(60) == 0
    found = samples(metrics.render(directory=tmp_path / "metrics"))
    assert found[("rate_limits_not_counted_total", labels(scope="read"))] == 1
