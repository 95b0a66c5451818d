"""How the API is put together: blueprints that stand alone, statuses from one place."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskClient

from service import states
from service.api import moderation
from service.documents import HistoryEntrySchema, ModeratorCommentSchema
from service.events import EVENT_TYPES
from service.schemas import StatusListArgsSchema
from tests.conftest import AUTH

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "service" / "api"
BLUEPRINT_MODULES = {"public", "moderation", "data_requests", "ops", "observe", "feeds"}


def relative_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                names.add(node.module.split(".")[0])
            else:
                names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", sorted(BLUEPRINT_MODULES))
def test_blueprints_import_no_other_blueprint(module: str) -> None:
    path = API / f"{module}.py"
    assert "Blueprint(" in path.read_text(encoding="utf-8"), f"{module} defines a blueprint"
    assert not relative_imports(path) & (BLUEPRINT_MODULES - {module})


def test_the_package_registers_nothing_by_importing() -> None:
    # service/api/__init__.py only names the blueprints; none attaches routes to another.
    tree = ast.parse((API / "__init__.py").read_text(encoding="utf-8"))
    imported = [
        alias.asname
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]
    assert imported and all(name and name.endswith("_bp") for name in imported)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/moderation/data-requests/export", {"email": "a@example.com"}),
        (
            "POST",
            "/api/v1/moderation/data-requests/erase",
            {"email": "a@example.com", "mode": "delete"},
        ),
        ("GET", "/api/v1/moderation/queue", None),
    ],
)
def test_every_moderation_blueprint_is_guarded_and_never_cached(
    client: FlaskClient, method: str, path: str, body: Any
) -> None:
    refused = client.open(path, method=method, json=body)
    assert refused.status_code == 401
    assert refused.headers["Cache-Control"] == "no-store"
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="moderation"'
    answered = client.open(path, method=method, json=body, headers=AUTH)
    assert answered.status_code == 200
    assert answered.headers["Cache-Control"] == "no-store"
    invalid = client.open(
        path, method=method, json={"unknown": 1}, headers=AUTH, query_string={"limit": "0"}
    )
    assert invalid.status_code == 422
    assert invalid.headers["Cache-Control"] == "no-store"


def test_openapi_status_enums_are_the_states() -> None:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    assert tuple(spec["components"]["schemas"]["CommentStatus"]["enum"]) == (states.STATUS_VALUES)

    # Every other status enum of the contract is a subset (the submission answer's).
    def enums(node: Any) -> list[list[str]]:
        found = []
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "status" and isinstance(value, dict) and "enum" in value:
                    found.append(value["enum"])
                found += enums(value)
        elif isinstance(node, list):
            for value in node:
                found += enums(value)
        return found

    for enum in enums(spec["components"]["schemas"]):
        assert set(enum) <= set(states.STATUS_VALUES), enum


def test_openapi_event_types_are_the_events() -> None:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    assert set(schemas["EventType"]["enum"]) == set(EVENT_TYPES)
    # A webhook subscribes to at most every type once: the limit follows the list.
    limits = {
        name: schemas[name]["properties"]["event_types"]["maxItems"]
        for name in ("WebhookCreate", "WebhookUpdate")
    }
    assert set(limits.values()) == {len(EVENT_TYPES)}, limits


def one_of(schema: Any, field: str) -> tuple[str, ...]:
    validator = schema.fields[field].validate
    assert validator is not None, field
    return tuple(validator.choices)


def test_status_validators_derive_from_the_states() -> None:
    assert one_of(StatusListArgsSchema(), "status") == states.STATUS_VALUES
    assert one_of(ModeratorCommentSchema(), "status") == states.STATUS_VALUES
    history = HistoryEntrySchema()
    assert one_of(history, "to") == one_of(history, "from_") == states.STATUS_VALUES


def test_decisions_are_the_states(client: FlaskClient) -> None:
    assert moderation.DECISIONS is states.DECISIONS
    rule = next(
        r for r in client.application.url_map.iter_rules() if r.endpoint == "moderation.decide"
    )
    verbs = rule.rule.split("any(")[1].split(")")[0]
    assert [v.strip() for v in verbs.split(",")] == list(states.DECISIONS)
