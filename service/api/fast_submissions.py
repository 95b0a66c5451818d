"""Plain JSON submissions answered without Flask's dispatch: the app's fast path for writes.

A submission's required work (validation, the policy, the keyed hashes, the insert) was about
half of its CPU; Flask's request and response objects, routing, hooks and context locals were
the largest part of the rest (bench/submission_cpu.py). So the app's WSGI callable
(``app.wsgi_app``, inside ProxyFix and the access log) runs the common submission itself: a
``POST`` to the submission route with a JSON body under the size limit (the widget's, with its
Idempotency-Key, or an API client's without one). It does what the hooks and the view do, in
their order: the request id and clock (service/observability.py), the purger's start and the
size check (service/app.py), the unconfirmed writes' scope (service/errors.py), the body
parsed and validated as the view does (service/api/requests.py, the same schema), the key's
lease (service/idempotency.py), the same :class:`~service.submissions.SubmissionRequest`
(service/api/public.py), the same answer, kept under the key.

- **Headers.** The answer's headers are Flask's own: those of the first accepted submission
  Flask answered with the same ``Origin`` (CORS) and status, kept with the places of the two
  that differ per answer (``Content-Length``, ``X-Request-Id``). Until Flask has answered one
  such request, Flask answers.
- **Anything else goes to Flask.** A body that does not parse or validate, a request the path
  does not take, any hook, blueprint hook or signal receiver the path does not know, Flask
  settings that change routing (``SERVER_NAME``, ``TRUSTED_HOSTS``), a session key: Flask
  answers from the start, as before; nothing has been written yet. Once the domain has run,
  what it gave is *handed over* (service/handed_over.py) whenever the answer is not a plain
  accepted one: an exception a step raised (a reused or busy key, a refusal, Redis away), a
  key's replay, writes no replica confirmed. Flask dispatches the request as ever, and the
  view takes each outcome instead of taking its step again, raising an exception where the
  step raised it, so Flask's handlers and hooks make the answer.
- **Metrics and the access log** are the same (service/observability.py's
  :func:`~service.observability.record_answer`; the access log wraps this callable).

``tests/test_fast_submissions.py`` compares its answers, metrics, log lines and stored records
with Flask's.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from flask import Flask, signals
from werkzeug.http import parse_options_header

from ..chores import start_purger
from ..config import Config
from ..handed_over import ACCEPTED_JSON, HANDED_OVER, HandedOver
from ..idempotency import Replay
from ..logs import ENVIRON_REQUEST_ID, REQUEST_ID
from ..observability import (
    ENVIRON_STARTED,
    REQUEST_ID_HEADER,
    SUBMIT_ENDPOINT,
    record_answer,
    request_id_of,
)
from ..schemas import ARTICLE_ID_PATTERN
from ..store import durability
from ..submissions import Accepted
from .context import Services
from .public import accepted_answer, submission_request
from .requests import _has_lone_surrogate

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

ROUTE = "/api/v1/articles/<slug:article_id>/comments"
_PATH = re.compile(rf"/api/v1/articles/({ARTICLE_ID_PATTERN.pattern})/comments")
# The hooks the path does (or, for those that only set headers, the kept headers hold), of
# the app and of the route's blueprint: any other one sends every submission to Flask.
KNOWN_HOOKS = {
    "before_request_funcs": {"begin_request", "before_each_request", "collect_unconfirmed_writes"},
    "after_request_funcs": {
        "end_request",
        "security_headers",
        "refuse_unconfirmed",
        "vary_by_origin",
        "cors_after_request",
    },
    "teardown_request_funcs": {"forget_unconfirmed_writes"},
    "url_value_preprocessors": set(),
}
_SCOPES = (None, "public")  # the app's own hooks, then the blueprint's
_SIGNALS = (
    signals.request_started,
    signals.request_finished,
    signals.request_tearing_down,
    signals.got_request_exception,
    signals.appcontext_pushed,
    signals.appcontext_popped,
    signals.appcontext_tearing_down,
)
# Kept headers per key (below): at most this many (all forgotten when full; Origin is the
# client's to choose).
MAX_TEMPLATES = 64
_LENGTH_NAME = "content-length"
_REQUEST_ID_NAME = REQUEST_ID_HEADER.lower()

# What the kept headers may depend on in a request: what flask-cors reads on a POST, and
# whether it carries an Idempotency-Key.
Key = tuple[str | None, str | None, bool]
# The status line, the headers, where Content-Length and X-Request-Id are in them.
Template = tuple[str, tuple[tuple[str, str], ...], int, int]


@lru_cache(maxsize=64)
def _is_json(content_type: str) -> bool:
    """As service/api/requests.py's is_json reads werkzeug's ``request.mimetype``."""
    mimetype = parse_options_header(content_type)[0].lower()
    return mimetype == "application/json" or mimetype.endswith("+json")


def app_is_known(app: Flask) -> bool:
    """Whether the app is as this path knows it: its hooks, its submission route, no setting
    that changes routing, no session. (Flask refuses new hooks and routes once it has served a
    request, so this holds from the first answer kept on.)"""
    for attribute, known in KNOWN_HOOKS.items():
        hooks = getattr(app, attribute)
        for scope in _SCOPES:
            if any(getattr(f, "__name__", None) not in known for f in hooks.get(scope, ())):
                return False
    if app.teardown_appcontext_funcs:
        return False
    rules = [r for r in app.url_map.iter_rules() if r.endpoint == SUBMIT_ENDPOINT]
    return (
        len(rules) == 1
        and rules[0].rule == ROUTE
        and "POST" in (rules[0].methods or ())
        and not app.url_map.host_matching
        and app.config.get("SERVER_NAME") is None
        and not app.config.get("TRUSTED_HOSTS")
        and not app.secret_key
    )


class FastSubmissions:
    """``app.wsgi_app``'s wrapper: JSON submissions here, every other request to ``app``."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp, svc: Services) -> None:
        self.flask = app
        self.wsgi_app = wsgi_app
        self.svc = svc
        config: Config = svc.config
        self.config = config
        self.trust_header = config.trusted_proxies > 0
        self.record = config.metrics_enabled
        # Per key, per status (201, 202): Flask's headers for that answer.
        self.templates: dict[Key, dict[int, Template]] = {}
        self.answered = 0  # submissions answered here (for tests)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        article_id = self._article_of(environ)
        if article_id is None:
            return self.wsgi_app(environ, start_response)
        key: Key = (
            environ.get("HTTP_ORIGIN"),
            environ.get("HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK"),
            "HTTP_IDEMPOTENCY_KEY" in environ,
        )
        templates = self.templates.get(key)
        if templates is None or self._signalled():
            return self._flask(key, environ, start_response)
        return self._submit(article_id, key, templates, environ, start_response)

    def _signalled(self) -> bool:
        """Whether Flask would call a receiver of one of its request signals (a receiver once
        connected to the app stays in ``receivers``: those for the app are asked)."""
        app = self.flask
        return any(
            signal.receivers and next(iter(signal.receivers_for(app)), None) is not None
            for signal in _SIGNALS
        )

    def _article_of(self, environ: dict[str, Any]) -> str | None:
        """The article of a request this path may take, else None (Flask takes it)."""
        if environ.get("REQUEST_METHOD") != "POST":
            return None
        if "HTTP_TRANSFER_ENCODING" in environ:
            return None  # the size check reads a chunked body first: Flask's way
        length = environ.get("CONTENT_LENGTH")
        if not length or not length.isdigit() or int(length) > self.config.max_body_bytes:
            return None
        if not _is_json(environ.get("CONTENT_TYPE", "")):
            return None
        match = _PATH.fullmatch(environ.get("PATH_INFO", ""))
        return match[1] if match is not None else None

    def _flask(
        self, key: Key, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Flask answers; an accepted submission's headers are kept for ``key``."""

        def keeping(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            code = int(status[:3])
            names = [name.lower() for name, _ in headers]
            if (
                code in (201, 202)
                and environ.get(ACCEPTED_JSON)
                and names.count(_LENGTH_NAME) == 1
                and names.count(_REQUEST_ID_NAME) == 1
                and app_is_known(self.flask)
            ):
                templates = self.templates
                if key not in templates and len(templates) >= MAX_TEMPLATES:
                    templates.clear()
                templates.setdefault(key, {})[code] = (
                    status,
                    tuple(headers),
                    names.index(_LENGTH_NAME),
                    names.index(_REQUEST_ID_NAME),
                )
            return start_response(status, headers, *exc)

        return self.wsgi_app(environ, keeping)

    def _submit(
        self,
        article_id: str,
        key: Key,
        templates: dict[int, Template],
        environ: dict[str, Any],
        start_response: Callable[..., Any],
    ) -> Iterable[bytes]:
        svc = self.svc
        length = int(environ["CONTENT_LENGTH"])
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)  # whatever happens next, Flask may read it
        fields = self._fields(raw) if len(raw) == length else None  # short: Flask's 400
        if fields is None or fields.get("redirect") is not None:
            return self._flask(key, environ, start_response)
        # As the hooks begin a request (service/observability.py, service/errors.py).
        environ[ENVIRON_STARTED] = started = time.perf_counter()
        environ[ENVIRON_REQUEST_ID] = request_id = request_id_of(environ, self.trust_header)
        REQUEST_ID.set(request_id)
        scope = durability.begin_request()
        handed = HandedOver()
        try:
            idempotency_key = environ.get("HTTP_IDEMPOTENCY_KEY")
            try:
                start_purger(svc.store, self.config.retention_days)
                client_ip = environ.get("REMOTE_ADDR") or ""
                ip_hash = svc.hasher.ip(client_ip)
                if idempotency_key is not None:
                    # As the view: the fingerprint is of the fields as loaded.
                    handed.begun = svc.idempotency.begin(
                        idempotency_key, ip_hash, article_id, fields
                    )
                    if isinstance(handed.begun, Replay):
                        return self._hand_over(handed, key, environ, start_response)
                fields.pop("redirect", None)
                handed.submitted = svc.submissions.submit(
                    submission_request(
                        svc, article_id, fields, client_ip, ip_hash, hand_out_key=True
                    )
                )
                body, status = accepted_answer(handed.submitted)
            except Exception as error:  # noqa: BLE001 - Flask's handlers answer it
                if idempotency_key is not None and handed.begun is None:
                    handed.begun = error  # begin() raised it, or what came before
                else:
                    handed.submitted = error
                return self._hand_over(handed, key, environ, start_response)
            template = templates.get(status)
            if template is None:  # the other status, not seen yet: Flask answers
                return self._hand_over(handed, key, environ, start_response)
            if handed.begun is not None:
                try:
                    svc.idempotency.finish(handed.begun, status, body, "")
                except Exception as error:  # noqa: BLE001 - Flask's handlers answer it
                    handed.finish_error = error
                    return self._hand_over(handed, key, environ, start_response)
                handed.finished = True
            if durability.unconfirmed_writes():  # the insert's or the kept answer's: a 503
                return self._hand_over(handed, key, environ, start_response)
            data = body.encode()
            status_line, kept, length_at, id_at = template
            headers = list(kept)
            headers[length_at] = (kept[length_at][0], str(len(data)))
            headers[id_at] = (kept[id_at][0], request_id)
            if self.record:
                accepted: Accepted = handed.submitted
                record_answer(ROUTE, True, "POST", status, started, accepted.status)
            self.answered += 1
        finally:
            durability.end_request(scope)
            REQUEST_ID.set(None)
        start_response(status_line, headers)
        return [data]

    def _fields(self, raw: bytes) -> dict[str, Any] | None:
        """The validated fields as the view loads them, or None where the view would refuse
        the body (then Flask answers, with the refusal)."""
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError):
            return None
        if b"\\u" in raw and _has_lone_surrogate(document):
            return None
        try:
            fields: dict[str, Any] = self.svc.submission_schema.load(document)
        except Exception:  # noqa: BLE001 - Flask's handlers answer it
            return None
        return fields

    def _hand_over(
        self,
        handed: HandedOver,
        key: Key,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
    ) -> Iterable[bytes]:
        """Flask answers, carrying on from where the domain's work ended (see the module)."""
        handed.unconfirmed = durability.unconfirmed_writes()
        environ[HANDED_OVER] = handed
        return self._flask(key, environ, start_response)
