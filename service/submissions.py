"""A submission's way in: facts from Redis, the pure policy's verdict, one atomic insert.

Two Redis round trips, whatever the data size: one pipeline for the facts (policy, the
author's record, the article's state, the parent), one script for the guarded insert.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .clock import iso_from_ms, now_ms
from .errors import Problem, validation_problem
from .hashing import Hasher
from .ids import new_id
from .models import HistoryEntry, PublicComment, StoredComment
from .moderation.policy import (
    Facts,
    Policy,
    ProfanityFinder,
    Submission,
    Verdict,
    duplicate_fingerprint,
    evaluate,
    policy_from_document,
)
from .store import CommentStore, Guards, Outcome


@dataclass(frozen=True)
class Accepted:
    comment: StoredComment
    verdict: Verdict


@lru_cache(maxsize=8)
def load_policy(document: str | None) -> Policy:
    """The stored policy, parsed once per distinct document (PUT validated it)."""
    return Policy() if document is None else policy_from_document(json.loads(document))


def submit(
    store: CommentStore,
    hasher: Hasher,
    profanity: ProfanityFinder,
    render_public: Callable[[PublicComment], str],
    article_id: str,
    fields: dict[str, Any],
    client_ip: str,
    ip_hash: str,
) -> Accepted:
    email: str = fields["email"]
    email_hash = hasher.email(email)
    facts = store.submission_facts(article_id, email_hash, fields["parent_id"])
    if facts.closed:
        raise Problem(403, "Forbidden", "Comments on this article are closed.",
                      slug="comments-closed")
    if facts.parent_published is False:
        raise validation_problem({"parent_id": ["Not a published comment of this article."]})

    policy = load_policy(facts.policy_json)
    created = now_ms()
    verdict = evaluate(
        Submission(name=fields["name"], email=email, comment=fields["comment"],
                   website=fields["website"], client_ip=client_ip, honeypot=fields["fax"]),
        Facts(now_ms=created, last_approved_ms=facts.last_approved_ms,
              last_negative_ms=facts.last_negative_ms),
        policy, profanity,
    )
    at = iso_from_ms(created)
    comment = StoredComment(
        id=new_id(created), article_id=article_id, name=fields["name"], email=email,
        comment=fields["comment"], website=fields["website"], parent_id=fields["parent_id"],
        status=verdict.status, created_at=at, updated_at=at, email_hash=email_hash,
        reasons=tuple(r.as_dict() for r in verdict.reasons),
    )
    entry = HistoryEntry(at=at, actor="policy", to=comment.status,
                         note=", ".join(r.code for r in verdict.reasons))
    public_doc: PublicComment = comment.public()
    guards = Guards(
        duplicate_key=hasher.duplicate(email, article_id, duplicate_fingerprint(comment.comment)),
        ip_hash=ip_hash, email_hash=email_hash,
        duplicate_window_ms=policy.duplicate_window_seconds * 1000,
        flood_interval_ms=policy.flood_interval_seconds * 1000,
        hourly_cap=policy.flood_hourly_cap,
    )
    result = store.insert(comment, render_public(public_doc), entry, guards, created)
    retry_after = str(max(1, -(-result.retry_after_ms // 1000)))
    if result.outcome is Outcome.DUPLICATE:
        raise Problem(409, "Conflict", "The same comment was already submitted to this article.",
                      slug="duplicate-comment")
    if result.outcome in (Outcome.TOO_SOON, Outcome.HOURLY_CAP):
        detail = ("Comments are coming too fast; wait before posting again."
                  if result.outcome is Outcome.TOO_SOON
                  else "Too many comments from this address in the last hour.")
        raise Problem(429, "Too Many Requests", detail, slug="comment-flood",
                      headers={"Retry-After": retry_after})
    return Accepted(comment=comment, verdict=verdict)
