"""Bearer-token authentication for moderators.

Tokens are never stored: the service keeps SHA-256 hashes (a token is 256 random bits, so a
plain hash is enough; there is nothing to brute-force). Hashes come from MODERATOR_TOKENS (the
bootstrap) and from Redis (tokens created with the CLI), and the presented token's hash is
compared with every one in constant time. A client that keeps presenting bad tokens is
answered 429 for a while.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping

from flask import Blueprint, Request, Response, g, request

from ..errors import Problem
from .context import Services, services

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="moderation"'}
# Every moderation blueprint lives under this prefix, behind :func:`moderators_only`.
MODERATION_PREFIX = "/api/v1/moderation"


def moderators_only(bp: Blueprint) -> Blueprint:
    """Guard every route of ``bp`` as a moderation route: a moderator's bearer token is
    required (its name lands in ``g.moderator``) and no answer may be stored by any cache.
    Each moderation blueprint applies this one guard to itself."""
    bp.before_request(_require_moderator)
    bp.after_request(_never_cache)
    return bp


def _require_moderator() -> None:
    if request.method == "OPTIONS":
        return  # a CORS preflight carries no credentials by design
    g.moderator = authenticate(request, services())


def _never_cache(response: Response) -> Response:
    # Moderator views hold personal data: no shared cache may keep them.
    response.headers["Cache-Control"] = "no-store"
    return response


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bootstrap_hashes(tokens: Mapping[str, str]) -> dict[str, str]:
    return {name: token_hash(token) for name, token in tokens.items()}


def authenticate(request: Request, svc: Services) -> str:
    """The name of the moderator whose token the request carries, else 401 (or 429)."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise Problem(
            401,
            "Unauthorized",
            "A moderator bearer token is required.",
            slug="unauthorized",
            headers=CHALLENGE,
        )
    config = svc.config
    ip_hash = svc.hasher.ip(request.remote_addr or "")
    stored, failures = svc.store.moderator_token_hashes(ip_hash)
    if failures >= config.auth_failure_limit:
        _throttled(svc.store.auth_failure_ttl(ip_hash))
    found = _moderator_of(token_hash(presented), svc.bootstrap_token_hashes, stored)
    if found is None:
        count, ttl = svc.store.record_auth_failure(ip_hash, config.auth_failure_window_seconds)
        if count >= config.auth_failure_limit:
            _throttled(ttl)
        raise Problem(
            401,
            "Unauthorized",
            "The bearer token is not valid.",
            slug="unauthorized",
            headers=CHALLENGE,
        )
    return found


def _moderator_of(
    candidate: str, bootstrap: Mapping[str, str], stored: Mapping[str, str]
) -> str | None:
    found = None
    # Every hash is compared, always: the time taken says nothing about which came close.
    for name, expected in (*bootstrap.items(), *stored.items()):
        if hmac.compare_digest(candidate, expected):
            found = name
    return found


def still_authorized(request: Request, svc: Services) -> Callable[[str], bool]:
    """For an answer replayed to the same request (service/replayed_reads.py; its key holds
    the Authorization header): given the client's address, whether :func:`authenticate` would
    accept this request's token now, tested as it tests it (the client's failed logins under
    the limit, the token's hash among the configured and stored ones, compared in constant
    time) on what this worker holds in memory, as fresh as Redis. False when that is not in
    memory: the request then goes to Flask, which authenticates it as usual. Counts nothing.
    Only for a request :func:`authenticate` accepted."""
    candidate = token_hash(request.headers.get("Authorization", "").partition(" ")[2].strip())
    limit = svc.config.auth_failure_limit

    def check(address: str) -> bool:
        cached = svc.store.cached_token_hashes(svc.hasher.ip(address))
        if cached is None:
            return False
        stored, failures = cached
        if failures >= limit:
            return False
        return _moderator_of(candidate, svc.bootstrap_token_hashes, stored) is not None

    return check


def _throttled(retry_after: int) -> None:
    raise Problem(
        429,
        "Too Many Requests",
        "Too many failed moderator logins from this address; wait and retry.",
        slug="auth-throttled",
        headers={"Retry-After": str(retry_after)},
    )
