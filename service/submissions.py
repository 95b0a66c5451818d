"""A submission's way in: the pure policy's verdicts, then one atomic insert.

One Redis round trip, whatever the data size: the policy and the article's state come from
the worker's cache (Redis invalidates them when they change; a miss costs one pipeline), and a
single script counts the client's rate limits, checks the parent and the flood guards,
drops a duplicate, reads the standing of the commenter key presented (service/commenter_keys.py),
detects a campaign (service/moderation/campaigns.py), and stores the comment as the policy
judged it for that standing (held, when it completes a campaign), with its spam check queued.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from functools import lru_cache

from . import commenter_keys
from .clock import iso_from_ms, now_ms, parse_iso_ms
from .documents import render_public
from .domain_errors import (
    ArticleClosed,
    CommentFlood,
    ParentNotPublished,
    RateLimited,
)
from .hashing import Hasher
from .ids import new_id
from .models import HistoryEntry, StoredComment
from .moderation import campaigns
from .moderation.policy import (
    Policy,
    ProfanityFinder,
    Submission,
    Verdict,
    campaign_reason,
    duplicate_fingerprint,
    evaluate_standings,
    policy_from_document,
    trusted_since,
    with_reason,
)
from .policy_terms import submission_term_hashes
from .spam_worker import check_entry
from .states import Status
from .store import CampaignProbe, CommentStore, Guards, Judgement, Outcome, WindowCounter


@dataclass(frozen=True)
class Accepted:
    """A stored submission: ``comment`` as submitted (its status and reasons are the
    verdict's), and the verdict that applied."""

    comment: StoredComment
    verdict: Verdict
    commenter_key: str | None = None  # the key the answer hands out (commenter_keys.py)
    # The author's token to edit or delete it (service/author_edits.py), shown once, and
    # when the policy's edit window for it ends (the widget offers Edit and Delete until then).
    edit_token: str | None = None
    edit_until: str | None = None

    @property
    def status(self) -> str:
        return self.verdict.status


@lru_cache(maxsize=8)
def load_policy(document: str | None) -> Policy:
    """The stored policy, parsed once per distinct document (PUT validated it)."""
    return Policy() if document is None else policy_from_document(json.loads(document))


@dataclass(frozen=True)
class SubmissionRequest:
    """One submission as the domain takes it: the validated fields, where it came from, and
    the client's rate-limit counters (counted by the insert itself, in its round trip)."""

    article_id: str
    name: str
    email: str
    comment: str
    website: str | None
    parent_id: str | None
    honeypot: str | None
    client_ip: str
    ip_hash: str
    limits: tuple[WindowCounter, ...] = ()
    # The commenter key the client presented, if any (see service/commenter_keys.py), and
    # whether its answer can carry a new one (a form that redirects cannot).
    commenter_key: str | None = None
    hand_out_key: bool = True


class Submissions:
    """The way in for new comments, built once per app over its store and settings."""

    def __init__(
        self,
        store: CommentStore,
        hasher: Hasher,
        profanity: ProfanityFinder,
        *,
        spam_checks: bool = False,
        send_client_ip: bool = False,
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.profanity = profanity
        # Queue each stored comment for the outside spam services (service/spam_worker.py),
        # inside its insert, only when they are configured.
        self.spam_checks = spam_checks
        self.send_client_ip = send_client_ip

    @staticmethod
    def _campaign_probe(
        comment: StoredComment, fingerprint: str, policy: Policy
    ) -> CampaignProbe | None:
        """What the insert needs to detect a campaign with this comment (None: detection off,
        or a text too short to judge); ``fingerprint`` is its text as duplicates are compared
        (normalised: the sketch's words are its words)."""
        if policy.campaign_threshold <= 0:
            return None
        signature = campaigns.sketch_normalized(fingerprint)
        if signature is None:
            return None
        encoded = campaigns.encode(signature)
        return CampaignProbe(
            author=campaigns.author_tag(comment.email_hash),
            sketch=encoded,
            window_ms=policy.campaign_window_seconds * 1000,
            threshold=policy.campaign_threshold,
        )

    def submit(self, request: SubmissionRequest) -> Accepted:
        """Judge and store one submission. Every refusal is a :mod:`~service.domain_errors`
        exception; nothing is stored then."""
        store, hasher, article_id = self.store, self.hasher, request.article_id
        settings = store.submission_settings(article_id)
        if settings.closed:
            raise ArticleClosed()
        policy = load_policy(settings.policy_json)
        created = now_ms()
        email_term_hash, ip_term_hash = submission_term_hashes(
            policy, hasher, request.email, request.client_ip
        )
        verdicts = evaluate_standings(
            Submission(
                name=request.name,
                email=request.email,
                comment=request.comment,
                website=request.website,
                client_ip=request.client_ip,
                honeypot=request.honeypot,
                email_term_hash=email_term_hash,
                ip_term_hash=ip_term_hash,
            ),
            created,
            policy,
            self.profanity,
        )
        at = iso_from_ms(created)
        edit_token = secrets.token_urlsafe(32)  # stored only as its keyed hash
        base = StoredComment(
            id=new_id(created, store.keys.bucket(article_id)),
            article_id=article_id,
            name=request.name,
            email=request.email,
            comment=request.comment,
            website=request.website,
            parent_id=request.parent_id,
            status=Status.PENDING.value,
            created_at=at,
            updated_at=at,
            email_hash=hasher.email(request.email),
            edit_token_hash=hasher.edit_token(edit_token),
        )
        public_json = render_public(base.public())
        judged = (
            [verdicts.untrusted]
            if verdicts.trusted is None
            else [verdicts.untrusted, verdicts.trusted]
        )
        # Should it complete a campaign, the script holds the verdict that applies with the
        # campaign reason (store/inserts.py).
        fingerprint = duplicate_fingerprint(base.comment)
        probe = self._campaign_probe(base, fingerprint, policy)
        guards = Guards(
            duplicate_key=hasher.duplicate(base.email, article_id, fingerprint),
            ip_hash=request.ip_hash,
            email_hash=base.email_hash,
            duplicate_window_ms=policy.duplicate_window_seconds * 1000,
            flood_interval_ms=policy.flood_interval_seconds * 1000,
            hourly_cap=policy.flood_hourly_cap,
        )
        key = commenter_keys.exchange(
            hasher, request.commenter_key, base.email_hash, policy, hand_out=request.hand_out_key
        )
        result = store.insert_submission(
            base,
            public_json,
            [_judgement(verdict, base.created_at) for verdict in judged],
            guards,
            created,
            trusted_since_ms=(None if verdicts.trusted is None else trusted_since(created, policy)),
            limits=request.limits,
            key=key.exchange,
            campaign=probe,
            spam_check=(
                check_entry(store.cipher, base, request.client_ip if self.send_client_ip else None)
                if self.spam_checks
                else None
            ),
        )
        retry_after = max(1, -(-result.retry_after_ms // 1000))
        if result.outcome is Outcome.RATE_LIMITED and result.limit is not None:
            raise RateLimited(result.limit.description, retry_after)
        if result.outcome is Outcome.PARENT_NOT_PUBLISHED:
            raise ParentNotPublished()
        if result.outcome in (Outcome.TOO_SOON, Outcome.HOURLY_CAP):
            raise CommentFlood(retry_after, hourly=result.outcome is Outcome.HOURLY_CAP)
        verdict = judged[result.chosen]
        if result.campaign is not None:
            joined = result.campaign
            verdict = with_reason(
                verdict, campaign_reason(joined.campaign_id, joined.comments, joined.authors)
            )
        # A dropped duplicate (Outcome.DROPPED_DUPLICATE) is answered exactly like a stored
        # comment: whether an email has commented is no one's to learn here.
        return Accepted(
            comment=base,
            verdict=verdict,
            commenter_key=key.handed_out(result.key_rotated),
            edit_token=edit_token,
            # As author_edits.py reckons it: from the stored created_at.
            edit_until=iso_from_ms(parse_iso_ms(at) + policy.edit_window_seconds * 1000),
        )


def _judgement(verdict: Verdict, at: str) -> Judgement:
    return Judgement(
        status=verdict.status,
        reasons=tuple(r.as_dict() for r in verdict.reasons),
        entry=HistoryEntry(
            at=at,
            actor="policy",
            to=verdict.status,
            note=", ".join(r.code for r in verdict.reasons),
        ),
    )
