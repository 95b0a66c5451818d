"""Block and hold terms that name a person, kept as keyed hashes.

A moderator blocks a troll by their email or their IP address; stored as typed, that address
would sit in the policy document, in every reason the rule gave and in Redis's append-only
file, and outlive the person's erasure. So at ``PUT /moderation/policy`` a term that parses as
an email address (email-validator, no DNS) or an IP address (``ipaddress``) is replaced by
``hash:<keyed hash>`` (service/hashing.py, purposes ``term-email`` and ``term-ip``), and a
submission's own email and client address are hashed the same way to be compared with it:
an exact match, where a word term matches inside a field. The pure policy only ever sees the
hashes (see HASHED_TERM in service/moderation/policy.py).

Word terms, including domains (``example.com``) and partial addresses (``10.99``), stay in
plaintext: they name no one, and the reasons they give about an email or an IP never repeat
the value they matched.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from email_validator import EmailNotValidError, validate_email

from .hashing import Hasher
from .moderation.policy import HASHED_TERM, Policy, split_terms

LIST_SETTINGS = ("block_terms", "hold_terms")


def _as_email(term: str) -> str | None:
    if "@" not in term:
        return None
    try:
        return validate_email(term, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def _as_ip(term: str) -> str | None:
    try:
        return str(ipaddress.ip_address(term))
    except ValueError:
        return None


def stored_term(term: str, hasher: Hasher) -> str:
    """The term as the policy document keeps it."""
    if term.startswith(HASHED_TERM):
        return term  # already a hash: a moderator sending back what GET /policy showed
    email = _as_email(term)
    if email is not None:
        return HASHED_TERM + hasher.email_term(email)
    ip = _as_ip(term)
    if ip is not None:
        return HASHED_TERM + hasher.ip_term(ip)
    return term


def hash_identifier_terms(document: dict[str, Any], hasher: Hasher) -> dict[str, Any]:
    """A validated policy document with its address terms replaced by their hashes."""
    hashed = dict(document)
    for setting in LIST_SETTINGS:
        if setting in hashed:
            hashed[setting] = list(dict.fromkeys(stored_term(t, hasher) for t in hashed[setting]))
    return hashed


def submission_term_hashes(
    policy: Policy, hasher: Hasher, email: str, client_ip: str
) -> tuple[str | None, str | None]:
    """The email's and the client address's hashes that hashed terms are compared with; none
    (and no HMAC computed) when the policy has no hashed term."""
    if not (split_terms(policy.block_terms)[1] or split_terms(policy.hold_terms)[1]):
        return None, None
    ip = _as_ip(client_ip)
    return hasher.email_term(email), None if ip is None else hasher.ip_term(ip)
