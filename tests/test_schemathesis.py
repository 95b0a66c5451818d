"""Schemathesis over every operation of openapi.yaml, against the app in-process (WSGI).

Each operation is its own test with a fresh Redis (the ``app`` fixture flushes it) seeded
with the comment and the email the spec's examples name, so the id- and email-taking
operations reach their 200 paths. Generation is derandomized: every run sends the same cases.
Every default check runs (``call_and_validate`` with no ``checks``); a failure means the
contract or the code is wrong, never the check.

What the test adapts, each for a rule OpenAPI cannot state and the contract states in words:
valid cases get an allowed redirect origin, an existing parent comment, one list filter at a
time (``meet_unstated_constraints``), and no undeclared query parameters (``filter_query``).
Each operation's test also checks, once its cases ran, that there were enough of them and that
one reached a 2xx; the module prints "schemathesis: N cases over M operations, F failures".
Nothing depends on another test having run: any test, alone or in any order, checks itself.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from flask import Flask
from hypothesis import HealthCheck, settings
from redis import Redis
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import service.api.webhooks
import service.submissions
from service.app import create_app
from service.config import Config
from tests.conftest import AUTH, MODERATOR_TOKEN, approve, close_app

pytestmark = pytest.mark.slow  # over 1,400 generated cases

SPEC_PATH = Path(__file__).resolve().parents[1] / "openapi.yaml"
# The id, article and email the spec's schema examples use; seeded before each operation.
SEEDED_ID = "01J0Z8Q5D2V7XW3M9K4T6R1ABC"
SEEDED_ARTICLE = "2024-05-first-post"
SEEDED_EMAIL = "reader@example.org"
SEEDED_WEBHOOK = "01J0Z8Q5D2V7XW3M9K4T6R1WHK"
ALLOWED_ORIGIN = "https://news.example.org"  # conftest's config.allowed_origins
URL = re.compile(r"\s*https?://", re.IGNORECASE)
COMMENT_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
MAX_EXAMPLES = 40
# Every operation that takes input gets at least this many cases (MAX_EXAMPLES fuzzed, plus
# what the examples and coverage phases add); fewer means its cases were silently skipped. One
# without parameters or body (/healthz...) has only a few distinct cases to send.
MIN_CASES_PER_OPERATION = MAX_EXAMPLES // 2
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

schema = schemathesis.openapi.from_path(SPEC_PATH)
# The whole module's run, for the summary line only (no test reads it).
totals: Counter[str] = Counter()


@dataclass
class OperationRun:
    """What one operation's test did: cases sent, cases that failed a check, statuses."""

    cases: int = 0
    failures: int = 0
    statuses: set[int] = field(default_factory=set)
    takes_input: bool = False


@pytest.fixture
def operation_run(request: pytest.FixtureRequest) -> Iterator[OperationRun]:
    """Checks, after all of an operation's cases ran, that it had cases and reached a 2xx."""
    run = OperationRun()
    yield run
    totals.update(operations=1, cases=run.cases, failures=run.failures)
    if run.failures:
        return  # the test has failed already, with the case that broke it
    name = request.node.name
    assert run.cases >= (MIN_CASES_PER_OPERATION if run.takes_input else 1), (
        f"{name}: only {run.cases} cases"
    )
    assert any(200 <= code < 300 for code in run.statuses), (
        f"{name} never answered 2xx: {sorted(run.statuses)}"
    )


@pytest.fixture(scope="module", autouse=True)
def summary(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if totals["operations"]:
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():  # what capsys.disabled() does
            print(
                f"\nschemathesis: {totals['cases']} cases over {totals['operations']} "
                f"operations, {totals['failures']} failures"
            )


@pytest.fixture
def config(config: Config) -> Config:
    """conftest's config, with the moderator-login throttle out of reach.

    The ignored_auth check probes every moderation case with bad and missing tokens; from one
    client address that soon trips the throttle, whose 429 the check (rightly) does not take
    for a refusal of the credentials. The throttle is tested in tests/test_privacy.py, and
    its answer is checked against the contract in test_answers_..._conform below.
    """
    # The moderators' bearer (what every case sends) opens GET /metrics too, so that operation
    # reaches its 200 like the others; its own token is tested in tests/test_observability.py.
    return replace(config, auth_failure_limit=1_000_000, metrics_token=MODERATOR_TOKEN)


@pytest.fixture
def seeded_app(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The app with the comments the spec's examples name, and one of each kind of record.

    - published, under the example id, article and email (``CommentId``, ``ArticleId``,
      ``SubmittedEmail`` examples), so id- and email-taking operations reach their 200s;
    - published, then anonymised by an erasure request: a record without email or website;
    - pending, with the policy's reasons.
    """
    client = app.test_client()

    def post(email: str, **extra: str) -> str:
        response = client.post(
            f"/api/v1/articles/{SEEDED_ARTICLE}/comments",
            json={"name": "Ann", "email": email, "comment": "A thoughtful remark.", **extra},
        )
        assert response.status_code == 202, response.get_data(as_text=True)
        comment_id: str = response.get_json()["id"]
        SEEDED_EDIT_TOKEN[comment_id] = response.get_json()["edit_token"]
        return comment_id

    monkeypatch.setattr(service.submissions, "new_id", lambda _ms, _bucket: SEEDED_ID)
    assert post(SEEDED_EMAIL) == SEEDED_ID
    monkeypatch.undo()
    assert approve(client, SEEDED_ID).status_code == 200
    assert (
        approve(client, post("gone@example.org", website="https://gone.example.org/")).status_code
        == 200
    )
    erased = client.post(
        "/api/v1/moderation/data-requests/erase",
        headers=AUTH,
        json={"email": "gone@example.org", "mode": "anonymise"},
    )
    assert erased.get_json() == {"deleted": 0, "anonymised": 1}
    post("waiting@example.org", comment="See https://a.example and https://b.example")
    # A webhook endpoint under the spec's example id (WebhookId).
    monkeypatch.setattr(service.api.webhooks, "new_id", lambda _ms: SEEDED_WEBHOOK)
    created = client.post(
        "/api/v1/moderation/webhooks",
        headers=AUTH,
        json={"url": "https://cms.example.org/hooks", "event_types": ["comment.approved"]},
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    monkeypatch.undo()
    # A campaign: the same long text from three authors (tests/test_campaigns.py).
    campaign = "Vote NO on measure 12: it will raise your taxes and destroy local jobs. Act now!"
    first = ""
    for n in range(3):
        posted = post(f"sock{n}@example.org", comment=campaign)
        first = first or posted
    SEEDED_CAMPAIGN[:] = [first]
    return app


# The seeded comments' edit tokens (by id), as their submissions' answers showed them.
SEEDED_EDIT_TOKEN: dict[str, str] = {}
# The seeded campaign's id (its first comment's), once seeded.
SEEDED_CAMPAIGN: list[str] = []


def positive(case: Any, location: ParameterLocation) -> bool:
    return case.meta is None or not case.meta.is_negative_at(location)


def meet_unstated_constraints(case: Any) -> None:
    """Adjust schema-valid cases for the rules OpenAPI cannot state (they are in its prose).

    Only components generated as valid are touched, so negative cases stay as generated:

    - which origins may receive a form's 303 (``redirect``) is deployment configuration
      (ALLOWED_ORIGINS): a valid URL is pointed at the test config's allowed origin;
    - ``parent_id`` must name a published comment of the same article: a valid id becomes the
      seeded published comment, and the article the seeded one's;
    - ``article_id`` and ``reason`` filter the moderation lists one at a time: when both were
      generated, ``reason`` is dropped; the Reported queue (``view=reported``) takes neither;
    - ``If-Match`` names the comment's current version, which is state, not schema: a valid
      one becomes ``*`` (tests/test_versions.py covers the versions);
    - an ``Idempotency-Key`` is unique per post attempt: a valid one is made unique per case
      (tests/test_idempotency.py covers the reuse of one);
    - an ``Edit-Token`` is the one the comment's answer showed: a valid one becomes the seeded
      comment's (tests/test_author_edits.py covers wrong ones);
    - a campaign id names a detected campaign: a valid one becomes the seeded campaign's.
    - bulk decisions name each comment once and trust an author only with an approval: a
      repeated item is dropped, ``trust_author`` is cleared on other actions.
    """
    path = case.path_parameters
    if isinstance(path, dict) and positive(case, ParameterLocation.PATH):
        if "campaign_id" in path and SEEDED_CAMPAIGN:
            path["campaign_id"] = SEEDED_CAMPAIGN[0]
    headers = case.headers  # a case-insensitive mapping, not a dict
    if headers is not None and positive(case, ParameterLocation.HEADER):
        if "If-Match" in headers:
            headers["If-Match"] = "*"
        if "Idempotency-Key" in headers:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        if "Edit-Token" in headers and SEEDED_ID in SEEDED_EDIT_TOKEN:
            headers["Edit-Token"] = SEEDED_EDIT_TOKEN[SEEDED_ID]
    body = case.body
    if isinstance(body, dict) and positive(case, ParameterLocation.BODY):
        decisions = body.get("decisions")
        if isinstance(decisions, list) and all(isinstance(d, dict) for d in decisions):
            once = {d.get("comment_id"): d for d in reversed(decisions)}
            body["decisions"] = [d for d in decisions if once.get(d.get("comment_id")) is d]
            for decision in body["decisions"]:
                if decision.get("action") != "approve" and "trust_author" in decision:
                    decision["trust_author"] = False
        redirect = body.get("redirect")
        if isinstance(redirect, str) and URL.match(redirect):
            body["redirect"] = f"{ALLOWED_ORIGIN}/comments?sent=1"
        parent = body.get("parent_id")
        if (
            isinstance(parent, str)
            and COMMENT_ID.search(parent)
            and positive(case, ParameterLocation.PATH)
        ):
            body["parent_id"] = SEEDED_ID
            case.path_parameters["article_id"] = SEEDED_ARTICLE
    query = case.query
    if (
        isinstance(query, dict)
        and positive(case, ParameterLocation.QUERY)
        and query.get("article_id") is not None
        and query.get("reason") is not None
    ):
        del query["reason"]
    if isinstance(query, dict) and positive(case, ParameterLocation.QUERY):
        if query.get("view") == "reported":  # the Reported queue takes no filter
            query.pop("article_id", None)
            query.pop("reason", None)


@schema.hook
def filter_query(context: Any, query: dict[str, Any] | None) -> bool:
    """Send no undeclared query parameters.

    The service ignores them by design (cache busters, tracking tags; the contract says so),
    but OpenAPI cannot declare "any other parameter" and schemathesis counts one as invalid
    data that must be refused.
    """
    declared = {parameter.name for parameter in context.operation.query}
    return not query or set(query) <= declared


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_api_conforms_to_the_contract(
    case: Any, seeded_app: Flask, operation_run: OperationRun
) -> None:
    operation_run.cases += 1
    operation_run.takes_input = bool(
        list(case.operation.iter_parameters()) or list(case.operation.body)
    )
    # The checks that send requests of their own (ignored_auth...) use the schema's transport.
    case.operation.schema.app = seeded_app
    meet_unstated_constraints(case)
    try:
        response = case.call_and_validate(app=seeded_app, headers=AUTH)
    except BaseException:  # schemathesis' FailureGroup is a BaseExceptionGroup
        operation_run.failures += 1
        raise
    if case.method.upper() == case.operation.method.upper():
        operation_run.statuses.add(response.status_code)


CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_answers_the_generator_cannot_reach_conform(config: Config, redis_client: Redis) -> None:
    """The login throttle's 429 (switched off above) and the 413 for a body over the limit."""
    app = create_app(replace(config, auth_failure_limit=3))
    try:
        check_unreachable_answers(app, config)
    finally:
        close_app(app)


def check_unreachable_answers(app: Flask, config: Config) -> None:
    bad = {"Authorization": "Bearer not-a-moderator-token-at-all"}
    queue = schema["/api/v1/moderation/queue"]["GET"]
    for _ in range(3):
        queue.Case().call(app=app, headers=bad)
    throttled = queue.Case().call_and_validate(app=app, headers=AUTH, checks=CONFORMANCE)
    assert throttled.status_code == 429
    export = schema["/api/v1/moderation/data-requests/export"]["POST"].Case(
        body={"email": SEEDED_EMAIL}, media_type="application/json"
    )
    assert export.call_and_validate(app=app, headers=AUTH, checks=CONFORMANCE).status_code == 429
    submit = schema["/api/v1/articles/{article_id}/comments"]["POST"].Case(
        path_parameters={"article_id": SEEDED_ARTICLE},
        media_type="application/json",
        body={"name": "Ann", "email": SEEDED_EMAIL, "comment": "x" * config.max_body_bytes},
    )
    assert submit.call_and_validate(app=app, checks=CONFORMANCE).status_code == 413


def test_policy_takes_integral_numbers(app: Flask) -> None:
    # 90.0 is an integer by JSON Schema's rules (found by this suite, once a 422).
    response = app.test_client().put(
        "/api/v1/moderation/policy", headers=AUTH, json={"trusted_days": 90.0}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["trusted_days"] == 90


def test_schemathesis_loads_every_operation_of_the_contract() -> None:
    """Every operation openapi.yaml declares is one schemathesis can generate cases for, so
    each gets its own test above (an operation it cannot load would get none)."""
    document = yaml.safe_load(SPEC_PATH.read_text())
    declared = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    loaded, broken = set(), []
    for result in schema.get_all_operations():
        if isinstance(result, Ok):
            loaded.add(result.ok().label)
        else:
            broken.append(result.err())
    assert not broken
    assert loaded == declared
