"""Reader reports: one per client per comment, rate-limited, counted against the policy's
report_threshold (reached exactly once under concurrency, on the real Redis), unpublish or flag,
the Reported queue, dismissal and decisions ending a review; nothing about the reporter shown."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.api.context import EXTENSION_KEY
from service.config import Config
from service.store import ReportOutcome
from tests.conftest import AUTH, RELAXED_POLICY, MakeApp, approve, submit
from tests.crowd import at_once

MODERATION = "/api/v1/moderation"


def report(
    client: FlaskClient, comment_id: str, ip: str, reason: str = "spam", **extra: Any
) -> Any:
    return client.post(
        f"/api/v1/comments/{comment_id}/reports",
        json={"reason": reason, **extra},
        environ_base={"REMOTE_ADDR": ip},
    )


def published(client: FlaskClient, **fields: Any) -> str:
    comment_id: str = submit(client, **fields).get_json()["id"]
    assert approve(client, comment_id).status_code == 200
    return comment_id


def set_policy(client: FlaskClient, **settings: Any) -> None:
    response = client.put(f"{MODERATION}/policy", json={**RELAXED_POLICY, **settings}, headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)


def view(client: FlaskClient, comment_id: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(
        f"{MODERATION}/comments/{comment_id}", headers=AUTH
    ).get_json()
    return found


def reported_queue(client: FlaskClient) -> list[dict[str, Any]]:
    page = client.get(f"{MODERATION}/queue?view=reported", headers=AUTH)
    assert page.status_code == 200
    found: list[dict[str, Any]] = page.get_json()["comments"]
    return found


def public_ids(client: FlaskClient) -> list[str]:
    return [c["id"] for c in client.get("/api/v1/articles/a1/comments").get_json()["comments"]]


def test_one_report_per_client_per_comment(client: FlaskClient) -> None:
    comment_id = published(client)
    first = report(client, comment_id, "192.0.2.1", note="Selling pills.")
    assert first.status_code == 202
    assert first.get_json() == {"comment_id": comment_id, "reason": "spam"}
    again = report(client, comment_id, "192.0.2.1", "abuse")
    assert again.status_code == 409 and again.get_json()["type"] == "/problems/already-reported"
    assert report(client, comment_id, "192.0.2.2", "abuse").status_code == 202
    reports = client.get(f"{MODERATION}/comments/{comment_id}/reports", headers=AUTH).get_json()
    assert reports["active"] == 2 and reports["counts"] == {"abuse": 1, "spam": 1}
    assert [r["note"] for r in reports["reports"]] == ["Selling pills.", ""]
    assert set(reports["reports"][0]) == {"reason", "note", "at", "dismissed"}  # no reporter


def test_only_published_comments_can_be_reported(client: FlaskClient) -> None:
    held = submit(client).get_json()["id"]
    assert report(client, held, "192.0.2.1").status_code == 404
    assert report(client, "0" * 26, "192.0.2.1").status_code == 404
    assert report(client, "nonsense", "192.0.2.1").status_code == 404
    comment_id = published(client, comment="Another one.")
    bad = report(client, comment_id, "192.0.2.1", "boring")
    assert bad.status_code == 422 and "reason" in bad.get_json()["errors"]


def test_reaching_the_threshold_sends_the_comment_back_to_review(client: FlaskClient) -> None:
    comment_id = published(client)
    for n, reason in enumerate(["spam", "abuse", "spam"]):
        assert comment_id in public_ids(client)
        assert report(client, comment_id, f"192.0.2.{n}", reason).status_code == 202
    assert comment_id not in public_ids(client)
    record = view(client, comment_id)
    assert record["status"] == "pending"
    [reason] = [r for r in record["reasons"] if r["code"] == "reported"]
    assert reason["detail"] == "3 reader reports: spam 2, abuse 1"
    assert record["history"][-1]["actor"] == "readers"
    queue = client.get(f"{MODERATION}/queue?reason=reported", headers=AUTH).get_json()
    assert [c["id"] for c in queue["comments"]] == [comment_id]
    [item] = reported_queue(client)
    assert item["id"] == comment_id and item["reports"] == {"abuse": 1, "spam": 2}
    # A moderator approves it again: the review is over, the reports stop counting.
    assert approve(client, comment_id).status_code == 200
    assert reported_queue(client) == []
    assert report(client, comment_id, "192.0.2.9").status_code == 202
    assert view(client, comment_id)["status"] == "approved"  # one active report, not three


def test_flag_keeps_the_comment_published_and_lists_it(client: FlaskClient) -> None:
    set_policy(client, report_threshold=2, report_action="flag")
    comment_id = published(client)
    for n in range(3):
        assert report(client, comment_id, f"192.0.2.{n}", "off_topic").status_code == 202
    assert comment_id in public_ids(client)
    assert view(client, comment_id)["status"] == "approved"
    [item] = reported_queue(client)
    assert item["reports"] == {"off_topic": 3}


def test_dismissed_reports_stop_counting(client: FlaskClient) -> None:
    set_policy(client, report_threshold=2, report_action="flag")
    comment_id = published(client)
    for n in range(2):
        report(client, comment_id, f"192.0.2.{n}")
    assert len(reported_queue(client)) == 1
    dismissed = client.post(f"{MODERATION}/comments/{comment_id}/reports/dismiss", headers=AUTH)
    assert dismissed.get_json() == {"comment_id": comment_id, "dismissed": 2}
    assert reported_queue(client) == []
    assert report(client, comment_id, "192.0.2.0").status_code == 409  # still one per client
    report(client, comment_id, "192.0.2.5")
    assert reported_queue(client) == []  # one active report
    report(client, comment_id, "192.0.2.6")
    assert len(reported_queue(client)) == 1
    listed = client.get(f"{MODERATION}/comments/{comment_id}/reports", headers=AUTH).get_json()
    assert [r["dismissed"] for r in listed["reports"]] == [True, True, False, False]


def test_the_reported_view_takes_no_other_filter(client: FlaskClient) -> None:
    response = client.get(f"{MODERATION}/queue?view=reported&article_id=a1", headers=AUTH)
    assert response.status_code == 422


def test_deleting_a_comment_forgets_its_reports(client: FlaskClient) -> None:
    set_policy(client, report_threshold=1, report_action="flag")
    comment_id = published(client)
    report(client, comment_id, "192.0.2.1")
    assert client.delete(f"{MODERATION}/comments/{comment_id}", headers=AUTH).status_code == 204
    assert reported_queue(client) == []
    store = client.application.extensions[EXTENSION_KEY].store
    assert not store.redis.exists(store.keys.reports(comment_id))


def test_reports_are_rate_limited_per_client(config: Config, make_app: MakeApp) -> None:
    app = make_app(replace(config, rate_limits_enabled=True, rate_limit_report="2/minute"))
    client = app.test_client()
    set_policy(client)
    ids = [published(client, comment=f"c{n}") for n in range(3)]
    assert [report(client, i, "192.0.2.1").status_code for i in ids] == [202, 202, 429]
    assert report(client, ids[2], "192.0.2.2").status_code == 202


READERS = 20


@pytest.mark.parametrize("action", ["unpublish", "flag"])
def test_the_threshold_is_reached_exactly_once_under_concurrency(
    app: Flask, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    client = app.test_client()
    set_policy(client, report_threshold=5, report_action=action)
    comment_id = published(client)
    store = app.extensions[EXTENSION_KEY].store
    outcomes: list[ReportOutcome] = []
    real_report = store.report

    def counted(*args: Any, **kwargs: Any) -> Any:
        result = real_report(*args, **kwargs)
        outcomes.append(result.outcome)
        return result

    monkeypatch.setattr(store, "report", counted)

    def work(n: int) -> int:
        return int(report(app.test_client(), comment_id, f"198.51.100.{n}").status_code)

    statuses = Counter(at_once(READERS, work))
    reached = outcomes.count(ReportOutcome.THRESHOLD_REACHED)
    assert reached == 1, Counter(outcomes)
    record = view(client, comment_id)
    if action == "unpublish":
        # Reports that came after it was unpublished find no published comment (404).
        assert statuses[202] >= 5 and statuses[202] + statuses[404] == READERS, statuses
        assert record["status"] == "pending" and record["version"] == 3
        assert [h["actor"] for h in record["history"]].count("readers") == 1
    else:
        assert statuses == Counter({202: READERS})
        assert record["status"] == "approved" and record["version"] == 2
    assert [c["id"] for c in reported_queue(client)] == [comment_id]
