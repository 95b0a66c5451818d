"""New comments: one script checks a submission's limits and guards and stores it with its
indexes, in one round trip."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

from ..events import COMMENT_SUBMITTED, comment_subject, comment_text
from ..models import HistoryEntry, StoredComment
from ..states import STATE_RULES, Status, rule
from ._core import StoreCore
from .campaigns import (
    CAMPAIGN_CODE,
    HELD_ARGS,
    CampaignJoined,
    CampaignProbe,
    campaign_arguments,
    campaign_joined,
)
from .commenters import KeyExchange
from .records import compact
from .spamchecks import BUCKET_MAX_ENTRIES as SPAM_QUEUE_ENTRIES

HOUR_MS = 3_600_000
# The author's fields the trusted-commenter rule reads (policy.is_trusted): the last approval,
# the last rejection or spam verdict.
_STANDING_STAMPS = (
    STATE_RULES[Status.APPROVED].author_stamp or "",
    STATE_RULES[Status.REJECTED].author_stamp or "",
)


@dataclass(frozen=True)
class Judgement:
    """How the policy judged a new comment for one standing of its author."""

    status: str
    reasons: tuple[dict[str, str], ...]
    entry: HistoryEntry
    # The whole history when it is more than the verdict (an imported comment's, which may end
    # in a moderator's decision); None for a new submission, whose history is ``entry``.
    history: tuple[HistoryEntry, ...] | None = None

    @property
    def reason_codes(self) -> tuple[str, ...]:
        if not self.reasons:
            return ()  # most comments (every approved import): no generator, dict and tuple
        return tuple(dict.fromkeys(r["code"] for r in self.reasons))


@dataclass(frozen=True)
class WindowCounter:
    """A fixed-window rate limit counted inside the insert: at most ``amount`` attempts per
    ``window_seconds`` under ``key``; ``description`` names it in a refusal."""

    key: str
    amount: int
    window_seconds: int
    description: str


@dataclass(frozen=True)
class Guards:
    """The duplicate and flood markers a submission must pass, and their limits."""

    duplicate_key: str
    ip_hash: str
    email_hash: str
    duplicate_window_ms: int
    flood_interval_ms: int
    hourly_cap: int
    # A reply is refused unless its parent is published. An imported thread was decided by
    # its source: a reply there may outlive its parent's publication.
    parent_must_be_published: bool = True

    @classmethod
    def off(cls) -> Guards:
        """No duplicate, flood or hourly guard (a comment stored as it is: tests, benches)."""
        return cls("-", "-", "-", 0, 0, 0)

    @classmethod
    def imported(cls) -> Guards:
        """No guard at all: a comment whose source already decided it (service/importers)."""
        return cls("-", "-", "-", 0, 0, 0, parent_must_be_published=False)


class Outcome(Enum):
    STORED = 1
    # A duplicate of a recent comment (same email, article and text, whoever sent it): not
    # stored again, and answered as if it had been (telling the sender otherwise would tell
    # them that the email had commented).
    DROPPED_DUPLICATE = 2
    ALREADY_STORED = 0
    TOO_SOON = -2
    HOURLY_CAP = -3
    RATE_LIMITED = -4
    PARENT_NOT_PUBLISHED = -5


@dataclass(frozen=True)
class InsertResult:
    outcome: Outcome
    retry_after_ms: int = 0
    chosen: int = 0  # which of the judgements was stored
    limit: WindowCounter | None = None  # the exhausted one, when RATE_LIMITED
    # Whether the presented commenter key was valid and rotated (else a new record was made).
    key_rotated: bool = False
    # Stored as part of a campaign (held: ``judgements[chosen]`` with the campaign reason).
    campaign: CampaignJoined | None = None


class Inserts(StoreCore):
    def insert_submission(
        self,
        comment: StoredComment,
        public_json: str,
        judgements: list[Judgement],
        guards: Guards,
        now_ms: int,
        *,
        trusted_since_ms: int | None = None,
        limits: tuple[WindowCounter, ...] = (),
        key: KeyExchange | None = None,
        campaign: CampaignProbe | None = None,
        spam_check: dict[str, str] | None = None,
    ) -> InsertResult:
        """Store a new comment with its indexes in one round trip, unless a rate limit, a
        duplicate or flood guard, or an unpublished parent refuses it.

        ``judgements`` are the policy's for an author without standing and, when
        ``trusted_since_ms`` is given, for a trusted one; the script reads the record of the
        commenter key the submission presented (``key``) and stores the comment as judged for
        the standing that applies (``chosen``). The comment's own status and reasons are
        ignored.

        With ``campaign`` the script also detects a campaign (service/moderation/campaigns.py)
        and records the comment's sketch; when the comment completes a campaign it stores the
        chosen standing's judgement held with the campaign reason instead (campaigns.held_status;
        the reason appended, with its detail, to the reasons and to the history entry's note).
        ``spam_check`` is the spam checker's entry (service/spam_worker.py), queued with the
        comment.
        """
        key = key or KeyExchange.none(guards.email_hash)
        keys, args, variant_indexes = self._insert_arguments(
            comment,
            public_json,
            judgements,
            guards,
            now_ms,
            trusted_since_ms,
            limits,
            key,
            campaign=campaign,
            spam_check=spam_check,
        )
        k = self.keys
        reply = cast(list[Any], self._insert(keys=keys, args=args))
        outcome = Outcome(int(reply[0]))
        if outcome is Outcome.DROPPED_DUPLICATE:
            return InsertResult(outcome, chosen=int(reply[1]) - 1, key_rotated=bool(int(reply[2])))
        if outcome is Outcome.STORED:
            variant = int(reply[1]) - 1
            joined = campaign_joined(reply)
            # Only what the script wrote: evicting the article's page for a held comment
            # would make this worker rebuild an unchanged page after every submission.
            written = [
                k.comment(comment.id),
                k.author_comments(comment.email_hash),
                *variant_indexes[variant],
            ]
            if joined is not None:
                written += [k.comment(i) for i in joined.held]
                written += [
                    k.reason_status_index("campaign", Status.PENDING, b)
                    for b in set(joined.held_buckets)
                ]
            # (A held variant is never published.)
            if joined is None and rule(judgements[variant].status).public:
                written.append(k.article_public(comment.article_id))
            self._changed(*written)
            return InsertResult(
                outcome,
                chosen=variant - (len(judgements) if joined is not None else 0),
                key_rotated=bool(int(reply[2])),
                campaign=joined,
            )
        if outcome is Outcome.RATE_LIMITED:
            return InsertResult(outcome, int(reply[1]), limit=limits[int(reply[2]) - 1])
        return InsertResult(outcome, int(reply[1]) if len(reply) > 1 else 0)

    def _insert_arguments(
        self,
        comment: StoredComment,
        public_json: str,
        judgements: list[Judgement],
        guards: Guards,
        now_ms: int,
        trusted_since_ms: int | None,
        limits: tuple[WindowCounter, ...],
        key: KeyExchange,
        *,
        campaign: CampaignProbe | None = None,
        spam_check: dict[str, str] | None = None,
    ) -> tuple[list[str], list[str | int], list[list[str]]]:
        """The insert script's keys and arguments, and each variant's indexes (the standings',
        then with ``campaign`` each standing's held for a campaign)."""
        standings = 1 if trusted_since_ms is None else 2
        if len(judgements) != standings:
            raise ValueError("one judgement, or two with trusted_since_ms")
        k = self.keys
        hour = now_ms // HOUR_MS
        keys = [
            k.comment(comment.id),
            k.article_public(comment.article_id),
            k.author(comment.email_hash),
            k.duplicate(comment.article_id, guards.duplicate_key),
            k.flood_ip(guards.ip_hash),
            k.commenter(key.email_hash, key.presented_id or key.fresh_id),
            k.hourly(guards.ip_hash, hour),
            k.author_comments(comment.email_hash),
            k.retention(k.bucket(comment.article_id)),
            k.article_status_index(comment.article_id, Status.APPROVED),
            *(counter.key for counter in limits),
        ]
        args: list[str | int] = [
            comment.id,
            now_ms,
            guards.duplicate_window_ms,
            guards.flood_interval_ms,
            guards.hourly_cap,
            (hour + 1) * HOUR_MS - now_ms,
            (comment.parent_id or "") if guards.parent_must_be_published else "",
            "" if trusted_since_ms is None else trusted_since_ms,
            *_STANDING_STAMPS,
            len(limits),
        ]
        for counter in limits:
            args += [counter.amount, counter.window_seconds]
        # One record to vary, with the email encrypted once: every variant carries the same
        # ciphertext.
        base = comment.to_record()
        if base["email"]:
            base["email"] = self.cipher.encrypt(base["email"], "email")
        if key.recorded_id:
            base["commenter"] = key.recorded_id
        content = base.pop("content", None) or comment.content()
        variant_indexes = []
        for judgement in judgements:
            indexes = self._initial_indexes(comment.article_id, judgement.status, judgement)
            variant_indexes.append(indexes)
            implies = rule(judgement.status)
            record = {
                **base,
                "status": judgement.status,
                "reasons": list(judgement.reasons),
                "history": [h.as_dict() for h in judgement.history or (judgement.entry,)],
            }
            if not implies.public:
                record["content"] = content
            keys += indexes
            args += [
                len(indexes),
                compact(record),
                public_json if implies.public else "",
                implies.author_stamp or "",
                "1" if implies.awaits_purge else "",
            ]
        if campaign is not None:
            # Each standing's variant held for a campaign: the script makes its record from
            # the standing's (the campaign reason added, the held status, the content its
            # public document shows when that one is published); only its indexes and what its
            # status implies come here.
            for judgement, own in zip(judgements, variant_indexes[:standings], strict=True):
                status, stamp, purge = HELD_ARGS[judgement.status]
                if status != judgement.status:
                    indexes = self._initial_indexes(comment.article_id, status, judgement, True)
                elif CAMPAIGN_CODE in judgement.reason_codes:
                    indexes = own
                else:  # its standing's, and the campaign reason's
                    bucket = k.bucket(comment.article_id)
                    indexes = [*own, k.reason_status_index(CAMPAIGN_CODE, status, bucket)]
                variant_indexes.append(indexes)
                keys += indexes
                args += [len(indexes), status, stamp, purge]
        campaign_keys, campaign_args = campaign_arguments(k, campaign, now_ms)
        keys += [*campaign_keys, k.spam_checks(comment.article_id)]
        spam_fields = [part for item in (spam_check or {}).items() for part in item]
        args += [*campaign_args, *spam_fields, SPAM_QUEUE_ENTRIES, len(spam_fields)]
        # The event (service/events.py): what it shows of each standing's variant (a held
        # one's the script reads from its record), and its text apart.
        first = judgements[0]
        variants = [(j.status, compact(list(j.reasons))) for j in judgements[:standings]]
        keys += [k.events(comment.article_id), k.event_content(comment.article_id, comment.id)]
        args += [
            COMMENT_SUBMITTED,
            first.entry.at,
            first.entry.actor,
            comment_subject(comment),
            comment_text(comment.name, comment.comment, comment.website),
            *self.event_retention.script_args(now_ms, per_bucket=True),
            *variants[0],
            *variants[-1],
        ]
        keys += [k.commenter(key.email_hash, key.fresh_id), k.author_commenters(key.email_hash)]
        args += [
            key.email_hash,
            key.presented_secret,
            key.fresh_secret,
            key.fresh_id,
            key.ttl_ms,
            key.grace_ms,
            "1" if key.presented_id else "",
        ]
        return keys, args, variant_indexes

    def _initial_indexes(
        self, article_id: str, status: str, judgement: Judgement, held: bool = False
    ) -> list[str]:
        """A new comment's indexes in ``status`` with the judgement's reasons (``held``: and
        the campaign reason)."""
        k = self.keys
        bucket = k.bucket(article_id)
        codes = judgement.reason_codes
        if held and CAMPAIGN_CODE not in codes:
            codes = (*codes, CAMPAIGN_CODE)
        return [
            k.status_index(status, bucket),
            k.article_status_index(article_id, status),
            *(k.reason_status_index(code, status, bucket) for code in codes),
        ]
