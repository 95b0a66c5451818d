"""The hand-written contract, openapi.yaml, checked against the app it describes.

None of these tests needs Redis: building the app does not connect, and only the routing table
and the static /openapi.yaml route are used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from service.app import create_app
from service.config import Config
from service.crypto import KeyRing

SPEC_PATH = Path(__file__).resolve().parents[1] / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
MODERATION_PREFIX = "/api/v1/moderation"
PROBLEM_MEDIA_TYPE = "application/problem+json"
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
# <converter(args):name> or <name>, as in Flask rules.
RULE_VARIABLE = re.compile(r"<(?:(?P<converter>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def flask_app() -> Flask:
    return create_app(
        Config(
            redis_url="redis://127.0.0.1:1/0",
            moderator_tokens={"t": "x" * 32},
            secret_key=b"k" * 32,
            encryption_keys=KeyRing.parse(KeyRing.generate_entry("t1")),
        )
    )


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


def resolve(spec: dict[str, Any], node: Any) -> Any:
    """Follow local $refs (``#/a/b``) until a node that is not a reference."""
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local references are used: {ref}"
        assert ref not in seen, f"reference cycle at {ref}"
        seen.add(ref)
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def expand_rule(rule: str) -> list[str]:
    """OpenAPI paths for one Flask rule: ``<x:name>`` becomes ``{name}``, ``any()`` literals."""
    paths = [""]
    position = 0
    for match in RULE_VARIABLE.finditer(rule):
        literal = rule[position : match.start()]
        if match["converter"] == "any":
            choices = [c.strip().strip("'\"") for c in (match["args"] or "").split(",")]
            paths = [p + literal + choice for p in paths for choice in choices if choice]
        else:
            paths = [p + literal + "{" + match["name"] + "}" for p in paths]
        position = match.end()
    return [p + rule[position:] for p in paths]


def test_expand_rule() -> None:
    assert expand_rule("/a/<slug:article_id>/comments") == ["/a/{article_id}/comments"]
    assert expand_rule("/c/<cid>/<any(approve, reject):decision>") == [
        "/c/{cid}/approve",
        "/c/{cid}/reject",
    ]
    assert expand_rule("/healthz") == ["/healthz"]


def test_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"] == "3.1.0"
    validate(spec, cls=OpenAPIV31SpecValidator)
    assert spec["info"]["version"] == "1.0.0"
    assert spec["servers"] == [{"url": "/"}]


def test_every_route_is_documented_and_nothing_else(spec: dict[str, Any], flask_app: Flask) -> None:
    routes: set[tuple[str, str]] = set()
    for rule in flask_app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        # The pages (widget script, thread page, demo, console) are HTML and assets for
        # browsers, not the API: the README documents them, tests/test_pages.py and
        # tests/browser test them.
        if flask_app.view_functions[rule.endpoint].__module__.startswith("service.pages"):
            continue
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            routes.update((method, path) for path in expand_rule(rule.rule))
    documented = {(method, path) for method, path, _ in operations(spec)}
    assert documented == routes


def test_operations_have_unique_ids_and_known_tags(spec: dict[str, Any]) -> None:
    ids = [operation.get("operationId") for _, _, operation in operations(spec)]
    assert all(ids) and len(ids) == len(set(ids))
    tags = {tag["name"] for tag in spec["tags"]}
    assert tags == {"public", "moderation", "ops"}
    for _, path, operation in operations(spec):
        assert len(operation["tags"]) == 1 and operation["tags"][0] in tags, path
        assert operation.get("description"), path
        is_moderation = operation["tags"] == ["moderation"]
        assert is_moderation == path.startswith(MODERATION_PREFIX + "/"), path


def test_served_document_is_the_file(flask_app: Flask) -> None:
    response = flask_app.test_client().get("/openapi.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert response.data == SPEC_PATH.read_bytes()


def schema_nodes(spec: dict[str, Any], node: Any, seen: set[int] | None = None) -> Iterator[Any]:
    """Every schema node reachable from ``node``, references followed (each visited once)."""
    seen = set() if seen is None else seen
    node = resolve(spec, node)
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from schema_nodes(spec, value, seen)
    elif isinstance(node, list):
        for value in node:
            yield from schema_nodes(spec, value, seen)


def property_names(spec: dict[str, Any], root: Any) -> set[str]:
    names: set[str] = set()
    for node in schema_nodes(spec, root):
        properties = node.get("properties")
        if isinstance(properties, dict):
            names.update(properties)
        names.update(node.get("required", []) if isinstance(node.get("required"), list) else [])
    return names


def test_public_comment_has_no_email(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    public = schemas["PublicComment"]
    assert public["additionalProperties"] is False
    assert set(public["properties"]) == {
        "id",
        "article_id",
        "parent_id",
        "name",
        "comment",
        "website",
        "created_at",
    }
    assert "email" not in property_names(spec, public)
    assert "email" not in property_names(spec, schemas["SubmissionAccepted"])
    assert schemas["SubmissionAccepted"]["additionalProperties"] is False
    # The moderators' view is the only one that names it.
    assert "email" in schemas["ModeratorComment"]["properties"]


def test_no_public_response_can_carry_an_email(spec: dict[str, Any]) -> None:
    checked = 0
    for method, path, operation in operations(spec):
        if path.startswith(MODERATION_PREFIX):
            continue
        for status, response in operation["responses"].items():
            names = property_names(spec, response)
            assert "email" not in names, f"{method} {path} {status} can expose an email"
            checked += 1
    assert checked > 0


def test_bearer_auth_exactly_on_moderation(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert not spec.get("security"), "no document-wide security requirement"
    for method, path, operation in operations(spec):
        if path.startswith(MODERATION_PREFIX + "/"):
            assert operation.get("security") == BEARER, f"{method} {path} lacks bearerAuth"
            assert "401" in operation["responses"], f"{method} {path} lacks its 401"
        else:
            assert not operation.get("security"), f"{method} {path} must be public"
            assert "401" not in operation["responses"], f"{method} {path} never answers 401"


def all_responses(spec: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            yield f"{method} {path}", str(status), resolve(spec, response)


def test_every_error_is_a_problem_document(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    errors = 0
    for where, status, response in all_responses(spec):
        if status[0] not in "45":
            continue
        content = response.get("content", {})
        assert list(content) == [PROBLEM_MEDIA_TYPE], f"{where} {status}: {list(content)}"
        schema = content[PROBLEM_MEDIA_TYPE]["schema"]
        assert schema == {"$ref": "#/components/schemas/Problem"}, f"{where} {status}"
        errors += 1
    assert errors > 0


def test_documented_error_headers(spec: dict[str, Any]) -> None:
    seen = set()
    for where, status, response in all_responses(spec):
        headers = {name.lower() for name in response.get("headers", {})}
        if status == "401":
            assert "www-authenticate" in headers, where
        if status == "503":
            assert "retry-after" in headers, where
        if status == "405":
            assert "allow" in headers, where
        seen.add(status)
    assert {"400", "401", "404", "405", "413", "415", "422", "503"} <= seen


def test_public_reads_are_cacheable_and_conditional(spec: dict[str, Any]) -> None:
    for path in ("/api/v1/articles/{article_id}/comments", "/api/v1/comment-counts"):
        operation = spec["paths"][path]["get"]
        parameters = [resolve(spec, p) for p in operation["parameters"]]
        assert any(p["in"] == "header" and p["name"] == "If-None-Match" for p in parameters)
        for status in ("200", "304"):
            headers = resolve(spec, operation["responses"][status])["headers"]
            assert {"ETag", "Cache-Control"} <= set(headers), f"{path} {status}"


def test_moderation_answers_are_not_stored(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        if not path.startswith(MODERATION_PREFIX + "/"):
            continue
        for status, response in operation["responses"].items():
            if str(status)[0] in "23":
                headers = resolve(spec, response)["headers"]
                cache = resolve(spec, headers["Cache-Control"])
                assert cache["schema"]["const"] == "no-store", f"{method} {path} {status}"


def test_query_parameter_limits_match_the_code(spec: dict[str, Any]) -> None:
    from service.ids import ID_PATTERN
    from service.schemas import ARTICLE_ID_PATTERN

    schemas = spec["components"]["schemas"]
    assert schemas["ArticleId"]["pattern"] == f"^{ARTICLE_ID_PATTERN.pattern}$"
    assert schemas["CommentId"]["pattern"] == f"^{ID_PATTERN.pattern}$"
    limit = spec["components"]["parameters"]["Limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 200, 50)
    counts = spec["paths"]["/api/v1/comment-counts"]["get"]["parameters"][0]
    assert counts["style"] == "form" and counts["explode"] is True and counts["required"]
    assert (counts["schema"]["minItems"], counts["schema"]["maxItems"]) == (1, 100)


def test_every_problem_type_of_the_code_is_documented(spec: dict[str, Any]) -> None:
    package = Path(__file__).resolve().parents[1] / "service"
    source = "\n".join(p.read_text(encoding="utf-8") for p in package.rglob("*.py"))
    slugs = set(re.findall(r'slug="([a-z0-9-]+)"', source))
    slugs |= set(re.findall(r'"/problems/([a-z0-9-]+)"', source))
    assert "validation-error" in slugs and "store-unavailable" in slugs
    documented = spec["components"]["schemas"]["Problem"]["properties"]["type"]["description"]
    missing = sorted(s for s in slugs if f"`/problems/{s}`" not in documented)
    assert not missing, f"problem types missing from the contract: {missing}"


def test_every_answer_documents_the_security_headers(
    spec: dict[str, Any], flask_app: Flask
) -> None:
    wanted = {
        "X-Content-Type-Options": "NoSniff",
        "Content-Security-Policy": "ContentSecurityPolicy",
        "Referrer-Policy": "ReferrerPolicy",
    }
    for where, status, response in all_responses(spec):
        headers = response.get("headers", {})
        for name, component in wanted.items():
            assert headers.get(name) == {"$ref": f"#/components/headers/{component}"}, (
                f"{where} {status} lacks {name}"
            )
    sent = flask_app.test_client().get("/healthz").headers
    for name, component in wanted.items():
        header = spec["components"]["headers"][component]
        assert header["required"] is True
        assert sent[name] == header["schema"]["const"], name


def test_every_moderation_operation_documents_the_login_throttle(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        if path.startswith(MODERATION_PREFIX + "/"):
            assert operation["responses"].get("429") == {
                "$ref": "#/components/responses/AuthThrottled"
            }, f"{method} {path}"
    throttled = spec["components"]["responses"]["AuthThrottled"]
    assert "/problems/auth-throttled" in throttled["description"]
    assert {"Retry-After", "Cache-Control"} <= set(throttled["headers"])


def test_rate_limited_public_routes_document_their_429(spec: dict[str, Any]) -> None:
    for path, method in [
        ("/api/v1/articles/{article_id}/comments", "post"),
        ("/api/v1/articles/{article_id}/comments", "get"),
        ("/api/v1/comment-counts", "get"),
        ("/api/v1/comment-counts", "post"),
    ]:
        response = resolve(spec, spec["paths"][path][method]["responses"]["429"])
        assert response["headers"]["Retry-After"]["$ref"] == "#/components/headers/RetryAfter"


# The spec's patterns state the code's text, URL and email rules exactly (for the text as
# sent, before trimming): each sample must be accepted by both or refused by both.
ID = "01J0Z8Q5D2V7XW3M9K4T6R1ABC"
TEXT_SAMPLES = {
    True: [
        "Ann",
        "  Ann  ",
        "a\tb",
        "a\nb",
        "a\r\nb",
        "a\rb",
        "Zoë",
        "e\u0301",
        "\u200fשלום",
        "a" + "\u0301" * 8,
        "😀",
        "x" * 100,
        " \n" + "x" * 100 + "\t ",
    ],
    False: [
        "",
        " ",
        "\t\n",
        "\u3000",
        "\x00",
        "a\x07b",
        "a\x0bb",
        "a\x1bb",
        "\x7f",
        "a\x85b",
        "a\x9fb",
        "\u202eevil",
        "a\u2066b",
        "q" + "\u0301" * 9,
        "x" * 101,
        " " + "x" * 101,
    ],
}
FIELD_SAMPLES: dict[str, dict[bool, list[str]]] = {
    "website": {
        True: [
            "https://example.org",
            " http://a.bc/path?q=1#top ",
            "HTTPS://EXAMPLE.ORG",
            "https://a.org:65535/",
            "https://a.org:1/",
            "https://a.org/%22%3C%3E",
            "http://[::]/",
            "http://[1:2:3:4:5:6:7:8]:8080/",
            "http://[fe80::1:2]/",
            "http://localhost:8000/",
            "http://127.0.0.1/",
            "http://[::1]/x",
            "https://user:pw@example.org/",
            "https://ex-ample.co.uk.",
            "",
            "  ",
        ],
        False: [
            "ftp://example.org",
            "https://0.a",
            "example.org",
            "https://exa mple.org",
            "http://",
            "https://-a.org",
            "https://a.org/ x",
            "javascript:alert(1)",
            "https://intranet/",
            "https://" + "a" * 60 + ".org/" + "p" * 440,
            "https://a.org/\x00",
            'https://a.org/"><script>',
            "https://a.org/a\\b",
            "https://a.org:99999999999999/",
            "https://a.org:65536/",
            "https://a.org:0/",
            "https://a.org/it's",
            "https://a.org/\u200b",
            "https://a.org/`x`",
            "http://[bb90B8a8725:Ff:90af1A8b]/",
            "http://[1::2::3]/",
            "http://[::1:]/",
        ],
    },
    "redirect": {
        True: ["https://news.example.org/a?b=c", "http://intranet/x", " https://h/ ", ""],
        False: [
            "//news.example.org",
            "javascript:alert(1)",
            "https://h/ x",
            "https://news.example.org/" + "p" * 1980,
        ],
    },
    "email": {
        True: [
            "a@b.co",
            " Reader@Example.ORG ",
            "x+tag@sub.example.org",
            "o'hara@x.ie",
            "ab--cd@ok.org",
            "a@xn-b.org",
        ],
        False: [
            "a@b",
            "a@b.test",
            "a@B.LOCAL",
            "a@localhost",
            "a..b@c.org",
            ".a@c.org",
            "a@b.c1",
            "not an email",
            "a@-b.org",
            "a@ab--cd.org",
            '"q"@x.org',
            "a@[127.0.0.1]",
            "a@b.co" + " x",
            "a" * 243 + "@example.org",
        ],
    },
    # The invisible-character policy of service/text_policy.py (names and comments only).
    "name": {
        True: [
            *TEXT_SAMPLES[True],
            "\u2028Ann",
            "\u200fAnn\u200e",
            "王小明",
            "😀👍🏿",
            "Ann\U000e0fff",
            "\U0001fb00",
        ],
        False: [
            *TEXT_SAMPLES[False],
            "An\u200dn",
            "Ann\ufeff",
            "A\U000e0041nn",
            "a\u2028b",
            "Ann\ue000",
            "An\u200bn",
            "Ann\ufe0f",
            "A\u00adnn",
            "\u3164",
            "\u2800",
            "a\u200cb",
            "Ann\U000f0000",
            "Ann\U0010fffd",
            "Ann\U0001ffff",
            "Ann\ufdd0",
        ],
    },
    "comment": {
        True: [*TEXT_SAMPLES[True], "a\u2028b", "\u2800"],
        False: [
            *TEXT_SAMPLES[False],
            "An\u200dn",
            "Ann\ufeff",
            "A\U000e0041nn",
            "Ann\ue000",
            "An\u200bn",
            "Ann\ufe0f",
            "\u00adx",
            "\u3164",
            "a\u200cb",
        ],
    },
    "parent_id": {
        True: [ID, f" {ID}\n", "", " "],
        False: [ID[:-1], ID.lower(), ID + "0", "not-an-id"],
    },
}


def spec_accepts(spec: dict[str, Any], node: Any, value: str) -> bool:
    node = resolve(spec, node)
    if "anyOf" in node:
        return any(spec_accepts(spec, branch, value) for branch in node["anyOf"])
    for branch in node.get("allOf", []):
        if not spec_accepts(spec, branch, value):
            return False
    pattern = node.get("pattern")
    return pattern is None or re.search(pattern, value) is not None


def code_accepts(field: str, value: str) -> bool:
    from marshmallow import ValidationError

    from service.schemas import DecisionSchema, PolicySchema, make_submission_schemas

    json_schema, form_schema = make_submission_schemas(False)
    body: dict[str, Any] = {"name": "Ann", "email": "a@b.co", "comment": "Hi"}
    try:
        if field == "note":
            DecisionSchema().load({"note": value})
        elif field == "term":
            PolicySchema().load({"block_terms": [value]})
        elif field == "redirect":
            form_schema.load({**body, "redirect": value})
        else:
            json_schema.load({**body, field: value})
    except ValidationError:
        return False
    return True


def spec_node(spec: dict[str, Any], field: str) -> Any:
    schemas = spec["components"]["schemas"]
    return {
        "name": schemas["CommenterName"],
        "comment": schemas["CommentText"],
        "note": schemas["Note"],
        "term": schemas["PolicyTerm"],
        "website": schemas["WebsiteInput"],
        "email": schemas["SubmittedEmail"],
        "parent_id": schemas["ParentIdInput"],
        "redirect": schemas["FormCommentSubmission"]["properties"]["redirect"],
    }[field]


@pytest.mark.parametrize(
    "field", ["name", "comment", "note", "term", "website", "redirect", "email", "parent_id"]
)
def test_input_patterns_match_the_code(spec: dict[str, Any], field: str) -> None:
    samples = FIELD_SAMPLES.get(field, TEXT_SAMPLES)
    if field in ("comment", "note"):  # longer limits: 100 characters are fine there
        samples = {
            True: samples[True] + ["x" * 101],
            False: [s for s in samples[False] if len(s.strip()) <= 100],
        }
    if field == "note":  # a note may be empty
        samples = {
            True: samples[True] + ["", " ", "\u3000"],
            False: [s for s in samples[False] if s.strip()],
        }
    if field == "term":  # a hashed address term goes back as GET /policy showed it, or not
        samples = {
            True: samples[True] + ["hash:" + "0f" * 16, "hashtag", "hash"],
            False: samples[False] + ["hash:", "hash:" + "0F" * 16, "hash:" + "f" * 31],
        }
    node = spec_node(spec, field)
    for expected, values in samples.items():
        for value in values:
            assert code_accepts(field, value) is expected, (field, value)
            assert spec_accepts(spec, node, value) is expected, (field, value)


def test_a_submission_links_to_every_operation_on_its_comment(spec: dict[str, Any]) -> None:
    by_id = {
        operation["operationId"]: (method, path) for method, path, operation in operations(spec)
    }
    on_a_comment = {op for op, (_, path) in by_id.items() if "{comment_id}" in path}
    assert len(on_a_comment) == 5
    submit = spec["paths"]["/api/v1/articles/{article_id}/comments"]["post"]
    for status in ("201", "202"):
        links = {
            name: resolve(spec, link) for name, link in submit["responses"][status]["links"].items()
        }
        assert {link["operationId"] for link in links.values()} == on_a_comment, status
        for link in links.values():
            assert link["parameters"] == {"comment_id": "$response.body#/id"}
    accepted = spec["components"]["schemas"]["SubmissionAccepted"]
    assert "id" in accepted["required"]


def test_the_counts_get_promise_matches_the_server_limit(spec: dict[str, Any]) -> None:
    import service.gunicorn_conf as conf

    counts = spec["paths"]["/api/v1/comment-counts"]
    promised: int = counts["get"]["x-fits-100-ids-of-length"]

    def request_line(length: int) -> int:  # the longest: trailing slash, 100 ids
        query = "&".join(f"article_id={'a' * length}" for _ in range(100))
        return len(f"GET /api/v1/comment-counts/?{query} HTTP/1.1")

    assert request_line(promised) <= conf.limit_request_line < request_line(promised + 1)
    assert (
        conf.limit_request_line == 8190
        and f"{conf.limit_request_line:,}" in (counts["get"]["description"])
    )
    assert conf.worker_class == "service.buffering_worker.BufferingThreadWorker"
    body = counts["post"]["requestBody"]["content"]["application/json"]["schema"]
    query = resolve(spec, body)["properties"]["article_id"]
    assert (query["minItems"], query["maxItems"]) == (1, 100)
    assert query["items"] == {"$ref": "#/components/schemas/ArticleId"}


# Where the text patterns are simpler than the service, as CommenterName's description says:
# they refuse every joiner, selector and tag character (the service allows them in emoji
# sequences and the scripts that need them), and they do not refuse a text that shows
# nothing (only marks or direction marks), which the service refuses.
PATTERN_STRICTER = [
    "👨\u200d👩\u200d👧",
    "👩🏽\u200d💻",
    "❤️",
    "می\u200cخواهم",
    "क्\u200dष",
    "ന്\u200c",
    "1️⃣",
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
]
PATTERN_LOOSER = ["\u200e", "\u0301", "\u200f\u0302"]


@pytest.mark.parametrize("field", ["name", "comment"])
def test_text_patterns_differ_from_the_code_only_where_the_contract_says(
    spec: dict[str, Any], field: str
) -> None:
    node = spec_node(spec, field)
    for value in PATTERN_STRICTER:
        assert code_accepts(field, value) and not spec_accepts(spec, node, value), value
    for value in PATTERN_LOOSER:
        assert not code_accepts(field, value) and spec_accepts(spec, node, value), value
    assert code_accepts("comment", "soft\u00adhyphen")
    assert not spec_accepts(spec, spec_node(spec, "comment"), "soft\u00adhyphen")
