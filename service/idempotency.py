"""Idempotent submissions: the ``Idempotency-Key`` request header (IETF httpapi draft,
draft-ietf-httpapi-idempotency-key-header).

A client that may send a submission twice (a flaky mobile network, a connection cut after the
server answered) sends a unique key with each post attempt and the same key with each retry of
that attempt. Keys are scoped per client (its IP's keyed hash) and kept 24 hours:

- the first request with a key takes a short lease on it, is processed, and its answer (201,
  202 or 303) is kept with the fingerprint of what was sent (a keyed hash of the validated
  fields and the article);
- the same key with the same fingerprint gets that answer again: same status, same body (the
  same id), and nothing new is stored or counted;
- the same key with another fingerprint is refused (422), and while the first request is still
  being processed a repeat is refused (409, retry shortly);
- a refused first request (any error) releases the key, so its retry is processed afresh.

The kept answer carries the commenter key (and edit token) handed out: it is stored encrypted,
like emails, and given to no one but a client presenting the same key from the same address
with the same request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .domain_errors import IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidIdempotencyKey
from .hashing import Hasher
from .store import CommentStore
from .store.idempotency import IN_FLIGHT

KEEP_MS = 24 * 3_600_000
# Longer than any submission takes; a lease outlived by its request (a worker killed mid-way)
# lets a retry through after this.
LEASE_MS = 60_000
# An sf-string (RFC 8941) as the draft asks, quotes optional: printable ASCII, bounded.
_KEY = re.compile(r'\A"?([\x21\x23-\x7e ]{1,255})"?\Z')


@dataclass(frozen=True)
class Replay:
    """The answer the first request with this key got."""

    status: int
    body: str
    location: str


@dataclass(frozen=True)
class Attempt:
    """A request holding its key's lease: finish it with the answer, or abandon it."""

    ip_hash: str
    key_hash: str
    fingerprint: str


def parse_key(header: str) -> str:
    match = _KEY.match(header.strip())
    if not match or not match.group(1).strip():
        raise InvalidIdempotencyKey()
    return match.group(1)


class IdempotentRequests:
    def __init__(self, store: CommentStore, hasher: Hasher) -> None:
        self.store = store
        self.hasher = hasher

    def begin(
        self, header: str, ip_hash: str, scope: str, fields: Mapping[str, Any]
    ) -> Attempt | Replay:
        """The request's attempt (go ahead), or the answer to give again; refusals raise."""
        key_hash = self.hasher.idempotency_key(parse_key(header))
        canonical = json.dumps([scope, fields], sort_keys=True, default=str, ensure_ascii=False)
        fingerprint = self.hasher.request_fingerprint(canonical)
        held = self.store.begin_idempotent(ip_hash, key_hash, fingerprint, LEASE_MS)
        if held is None:
            return Attempt(ip_hash, key_hash, fingerprint)
        if held.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        if held.state == IN_FLIGHT:
            raise IdempotencyKeyInFlight()
        return Replay(held.status, held.body, held.location)

    def finish(self, attempt: Attempt, status: int, body: str, location: str = "") -> None:
        answer = (status, body, location)
        self.store.finish_idempotent(
            attempt.ip_hash, attempt.key_hash, attempt.fingerprint, answer, KEEP_MS
        )

    def abandon(self, attempt: Attempt) -> None:
        self.store.abandon_idempotent(attempt.ip_hash, attempt.key_hash)
