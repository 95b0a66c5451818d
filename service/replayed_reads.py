"""Cached public reads answered again without Flask: the RSGI bridge's fast path.

An article page or a counts list the worker holds in its read cache costs little to find, and
most of its cost under load was everything around it: the hand-over to a thread, the WSGI
environ, Flask's dispatch, hooks and response object (measured in-process: 120 µs a read
against 44 µs for the bare app through the same bridge, bench/README-bench.md). So the first
answer to such a read is kept whole, exactly as the app sent it (status, every header, the
body), and the same request is answered with it again on the worker's event loop, for as
long as what it was built from is still in the read cache:

- **Which answers.** Only those a view marks with :func:`replayable`, with status 200 or 304,
  to a GET without a body: the public page and the counts, and the moderators' plain
  listings (the queue, comments by status). The view hands a check that says, with the read
  cache's own freshness check (service/tracked_cache/cache.py, which applies any
  invalidation already delivered), whether the cache still holds the very value the answer
  was built from. So an answer is replayed only while Flask would build the same one, and
  never after an invalidation of what it shows: the tracked cache's invalidation is the
  replay's too. A listing's check also tests the moderator's token on every request, as
  service/api/auth.py does (a revoked token, or too many failed logins from the client,
  sends the request to Flask, which refuses it); its answer stays ``no-store`` for every
  other cache.
- **The same request.** What these answers depend on in a request is its path, its query
  string, ``Origin`` (CORS), ``If-None-Match`` (304) and ``Authorization``: together they
  are the key. A different value of any of them is another key, answered by Flask the first
  time.
- **What differs per request** is made again each time as the app makes it: the request id
  (``X-Request-Id``: the trusted proxy's, under the same rule as service/observability.py, or
  a new one), the access log line (service/access_log.py, the same line) and the request
  metrics (service/metrics.py, the same series). The read-cache hit is counted by the check,
  as the view counts it.
- **Memory.** At most :data:`MAX_ENTRIES` keys per worker (all forgotten when full), and an
  answer found stale is dropped at once: its body is the cached page's own bytes.

``tests/test_replayed_reads.py`` compares a replayed answer with Flask's, header by header.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import request
from werkzeug.http import parse_list_header

from . import metrics
from .access_log import AccessLog
from .logs import redact_path
from .observability import REQUEST_ID_HEADER, TRUSTED_REQUEST_ID, new_request_id
from .rsgi_bridge import REPLAY_KEY

log = logging.getLogger(__name__)

# The environ key of a view's mark that its answer may be replayed (see replayable); the
# bridge's key for the request is under REPLAY_KEY.
REPLAYABLE = "service.replayable"
MAX_ENTRIES = 512
_REQUEST_ID_NAME = REQUEST_ID_HEADER.lower()
# (path, query string, Origin, If-None-Match, Authorization): everything these answers
# depend on.
Key = tuple[str, str, str | None, str | None, str | None]
Answer = tuple[int, list[tuple[str, str]], bytes]


def replayable(still_current: Callable[[str], bool]) -> None:
    """Called by a view whose answer is the same for every request with the same key, for as
    long as ``still_current(client_address)`` holds: a check of the read cache that counts the
    hits the view counted when it holds (and counts nothing otherwise: Flask then answers and
    counts)."""
    rule = request.url_rule
    request.environ[REPLAYABLE] = (still_current, rule.rule if rule is not None else None)


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    headers: tuple[tuple[str, str], ...]
    id_index: int  # where X-Request-Id is in headers
    body: bytes
    still_current: Callable[[str], bool]  # given the client's address
    route: str | None  # the metrics' label, as Flask's url_rule gave it
    log_path: str  # the path as the access line shows it (decoded, redacted)
    log_length: str  # the Content-Length the access line shows


class ReplayedReads:
    def __init__(self, access_log: AccessLog, *, trusted_proxies: int = 0) -> None:
        self.access_log = access_log
        self.trusted_proxies = trusted_proxies
        self.entries: dict[Key, Replay] = {}
        self.replayed = 0  # answers given from here (for tests)

    def key(self, scope: Any) -> Key | None:
        """This request's key, or None when its answer is never replayed (not a GET). Called
        only for a request without a body."""
        if scope.method != "GET":
            return None
        headers = scope.headers
        origin = inm = authorization = None
        # Repeated fields joined as the bridge's environ joins them (what Flask reads).
        if "origin" in headers:
            origin = _joined(headers, "origin")
        if "if-none-match" in headers:
            inm = _joined(headers, "if-none-match")
        if "authorization" in headers:
            authorization = _joined(headers, "authorization")
        return scope.path, scope.query_string, origin, inm, authorization

    def answer(self, key: Key, scope: Any, started: float) -> Answer | None:
        """The kept answer to this request, or None (then the app answers and is kept)."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        request_id, address = self._request_id_and_address(scope)
        if not entry.still_current(address):
            self.entries.pop(key, None)
            return None
        headers = list(entry.headers)
        headers[entry.id_index] = (REQUEST_ID_HEADER, request_id)
        elapsed = time.perf_counter() - started
        metrics.observe_request(entry.route, "GET", entry.status, elapsed)
        self.access_log.write(
            address,
            "GET",
            entry.log_path,
            f"HTTP/{scope.http_version}",
            str(entry.status),
            entry.log_length,
            elapsed * 1000,
            request_id,
        )
        self.replayed += 1
        return entry.status, headers, entry.body

    def remember(self, environ: dict[str, Any], answer: Answer) -> None:
        """Keep the app's answer to a request the bridge gave a key, if its view marked it."""
        mark = environ.get(REPLAYABLE)
        key = environ.get(REPLAY_KEY)
        if mark is None or key is None:
            return
        status, headers, body = answer
        if status not in (200, 304):
            return
        id_index = next(
            (i for i, (name, _) in enumerate(headers) if name.lower() == _REQUEST_ID_NAME), None
        )
        if id_index is None:
            return
        length = next((v for n, v in headers if n.lower() == "content-length"), "-")
        still_current, route = mark
        entries = self.entries
        if len(entries) >= MAX_ENTRIES:
            entries.clear()
        entries[key] = Replay(
            status=status,
            headers=tuple(headers),
            id_index=id_index,
            body=body,
            still_current=still_current,
            route=route,
            log_path=redact_path(key[0]),
            log_length=length,
        )

    def _request_id_and_address(self, scope: Any) -> tuple[str, str]:
        """As service/observability.py and ProxyFix (x_for=TRUSTED_PROXIES) would have it."""
        address = scope.client.rpartition(":")[0].strip("[]")
        if not self.trusted_proxies:
            return new_request_id(), address
        headers = scope.headers
        request_id = None
        if "x-request-id" in headers:
            sent = _joined(headers, "x-request-id")
            if TRUSTED_REQUEST_ID.fullmatch(sent):
                request_id = sent
        if "x-forwarded-for" in headers:
            forwarded = parse_list_header(_joined(headers, "x-forwarded-for"))
            if len(forwarded) >= self.trusted_proxies and forwarded[-self.trusted_proxies]:
                address = forwarded[-self.trusted_proxies]
        return request_id or new_request_id(), address


def _joined(headers: Any, name: str) -> str:
    values = [value for field, value in headers.items() if field == name]
    return values[0] if len(values) == 1 else ",".join(values)
