"""Request ids and what each request records in the metrics, through the app (real Redis)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from service import metrics
from service.config import Config
from service.observability import REQUEST_ID_HEADER
from tests.conftest import AUTH, RELAXED_POLICY, MakeApp, approve, submit

pytestmark = pytest.mark.usefixtures("redis_client")
METRICS_TOKEN = "metrics-scraper-token-0123456789abcdef"
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.content_type.startswith("text/plain")
    found: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def delta(before: Samples, after: Samples, name: str, **values: str) -> float:
    key = (name, labels(**values))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture
def scraped_app(config: Config, make_app: MakeApp) -> Flask:
    app = make_app(replace(config, metrics_token=METRICS_TOKEN))
    assert (
        app.test_client()
        .put("/api/v1/moderation/policy", json=RELAXED_POLICY, headers=AUTH)
        .status_code
        == 200
    )
    return app


@pytest.fixture
def scraped(scraped_app: Flask) -> FlaskClient:
    return scraped_app.test_client()


# -- request ids ------------------------------------------------------------------------------


def test_every_answer_carries_a_fresh_request_id(client: FlaskClient) -> None:
    first = client.get("/healthz").headers[REQUEST_ID_HEADER]
    second = client.get("/api/v1/articles/nowhere/comments").headers[REQUEST_ID_HEADER]
    missing = client.get("/no/such/route").headers[REQUEST_ID_HEADER]
    assert len({first, second, missing}) == 3
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in (first, second, missing))


def test_a_clients_request_id_is_ignored_without_a_trusted_proxy(client: FlaskClient) -> None:
    answered = client.get("/healthz", headers={REQUEST_ID_HEADER: "chosen-by-client"})
    assert answered.headers[REQUEST_ID_HEADER] != "chosen-by-client"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("5c1f0e9a-77aa-4bd0-9d1e-1c2b3a4d5e6f", True),
        ("Root=1-67891233-abcdef012345678912345678", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("has space", False),
        ("ann@example.com", False),
        ('quote"d', False),
        ("", False),
    ],
)
def test_a_trusted_proxys_request_id_is_kept_when_plain(
    config: Config, make_app: MakeApp, sent: str, kept: bool
) -> None:
    behind_proxy = make_app(replace(config, trusted_proxies=1)).test_client()
    answered = behind_proxy.get("/healthz", headers={REQUEST_ID_HEADER: sent})
    assert (answered.headers[REQUEST_ID_HEADER] == sent) == kept


# -- /metrics on the main port --------------------------------------------------------------


def test_metrics_are_not_on_the_main_port_without_a_token(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0123456789abcdefgh"}, {"Authorization": "Basic x"}],
)
def test_metrics_need_the_token(scraped: FlaskClient, headers: dict[str, str]) -> None:
    response = scraped.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert METRICS_TOKEN not in response.get_data(as_text=True)


# -- what requests record ---------------------------------------------------------------------


def test_requests_are_counted_by_route_rule_never_by_path(scraped: FlaskClient) -> None:
    before = scrape(scraped)
    for article in ("one", "two", "three"):
        assert scraped.get(f"/api/v1/articles/{article}/comments").status_code == 200
    assert scraped.get("/no/such/route").status_code == 404
    after = scrape(scraped)
    rule = "/api/v1/articles/<slug:article_id>/comments"
    count = "http_request_duration_seconds_count"
    assert delta(before, after, count, route=rule, method="GET", status="200") == 3
    assert delta(before, after, count, route="unmatched", method="GET", status="404") == 1
    assert not any("one" in dict(key).get("route", "") for _, key in after)


def test_submissions_are_counted_by_outcome_and_policy_decisions_by_action(
    scraped: FlaskClient,
) -> None:
    before = scrape(scraped)
    assert submit(scraped, "obs").status_code == 202  # held: first comment
    assert submit(scraped, "obs", fax="bot").status_code == 202  # spam, answered the same
    assert submit(scraped, "obs", email="not an address").status_code == 422
    assert (
        scraped.put(
            "/api/v1/moderation/policy",
            json={**RELAXED_POLICY, "auto_approve": "all"},
            headers=AUTH,
        ).status_code
        == 200
    )
    assert submit(scraped, "obs").status_code == 201
    scraped.put("/api/v1/moderation/articles/obs", json={"open": False}, headers=AUTH)
    assert submit(scraped, "obs").status_code == 403
    after = scrape(scraped)
    name = "comment_submissions_total"
    for outcome, expected in (
        ("held", 1),
        ("spam", 1),
        ("invalid", 1),
        ("approved", 1),
        ("refused", 1),
    ):
        assert delta(before, after, name, outcome=outcome) == expected, outcome
    decided = "moderation_decisions_total"
    assert delta(before, after, decided, action="hold", actor="policy") == 1
    assert delta(before, after, decided, action="spam", actor="policy") == 1
    assert delta(before, after, decided, action="approve", actor="policy") == 1


def test_rate_limited_submissions_are_counted(config: Config, make_app: MakeApp) -> None:
    app = make_app(
        replace(
            config,
            metrics_token=METRICS_TOKEN,
            rate_limits_enabled=True,
            rate_limit_submit="1/minute",
        )
    )
    client = app.test_client()
    assert (
        client.put("/api/v1/moderation/policy", json=RELAXED_POLICY, headers=AUTH).status_code
        == 200
    )
    before = scrape(client)
    assert submit(client, "limited").status_code == 202
    assert submit(client, "limited").status_code == 429
    after = scrape(client)
    assert delta(before, after, "comment_submissions_total", outcome="rate_limited") == 1


def test_moderator_decisions_are_counted(scraped: FlaskClient) -> None:
    first = submit(scraped, "decide").get_json()["id"]
    second = submit(scraped, "decide").get_json()["id"]
    before = scrape(scraped)
    assert approve(scraped, first).status_code == 200
    assert (
        scraped.post(f"/api/v1/moderation/comments/{second}/spam", headers=AUTH).status_code == 200
    )
    assert scraped.delete(f"/api/v1/moderation/comments/{second}", headers=AUTH).status_code == 204
    after = scrape(scraped)
    decided = "moderation_decisions_total"
    assert delta(before, after, decided, action="approve", actor="moderator") == 1
    assert delta(before, after, decided, action="spam", actor="moderator") == 1
    assert delta(before, after, decided, action="delete", actor="moderator") == 1


def test_the_queue_gauges_are_read_at_scrape_time(
    scraped: FlaskClient, redis_client: Redis
) -> None:
    empty = scrape(scraped)
    assert empty[("moderation_queue_pending", ())] == 0
    assert empty[("moderation_queue_oldest_pending_seconds", ())] == 0
    submit(scraped, "queue")
    time.sleep(0.3)
    submit(scraped, "queue")
    found = scrape(scraped)
    assert found[("moderation_queue_pending", ())] == 2
    assert 0.25 <= found[("moderation_queue_oldest_pending_seconds", ())] < 30


def wait_for(check: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_read_cache_hits_and_misses_are_counted(scraped: FlaskClient) -> None:
    path = "/api/v1/articles/cached/comments"
    before = scrape(scraped)

    def hit_once() -> bool:
        seen = scrape(scraped)
        scraped.get(path)
        return delta(seen, scrape(scraped), "read_cache_hits_total", cache="public") >= 1

    assert wait_for(hit_once)
    after = scrape(scraped)
    assert delta(before, after, "read_cache_misses_total", cache="public") >= 1
    assert delta(before, after, "read_cache_hits_total", cache="public") >= 1


def test_redis_errors_are_counted_by_kind(config: Config, make_app: MakeApp) -> None:
    down = make_app(
        replace(
            config,
            metrics_token=METRICS_TOKEN,
            redis_url="redis://127.0.0.1:1/0",
            redis_retries=0,
            read_cache=False,
        )
    ).test_client()
    before = samples_of(down)
    assert down.get("/readyz").status_code == 503
    after = samples_of(down)
    assert delta(before, after, "redis_errors_total", kind="ConnectionError") >= 1


def samples_of(client: FlaskClient) -> Samples:
    """A scrape of an app whose Redis is away: the queue gauges are left out, the rest is there."""
    found = scrape(client)
    assert ("moderation_queue_pending", ()) not in found
    return found


def test_switched_off_the_app_records_nothing(config: Config, make_app: MakeApp) -> None:
    off = make_app(replace(config, metrics_enabled=False)).test_client()
    before = metrics.render()
    off.get("/api/v1/articles/switched-off/comments")
    submit(off, "switched-off")
    on = make_app(replace(config, metrics_token=METRICS_TOKEN)).test_client()
    # Rendered directly: the scrape itself would be a request recorded by the app that is on.
    assert metrics.render() == before
    assert on.get("/metrics", headers=SCRAPE).status_code == 200
