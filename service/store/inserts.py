"""New comments: one script checks a submission's limits and guards and stores it with its
indexes, in one round trip."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

from ..models import HistoryEntry, StoredComment
from ..states import STATE_RULES, Status, rule
from ._core import StoreCore
from .commenters import KeyExchange
from .records import compact

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

    @property
    def reason_codes(self) -> tuple[str, ...]:
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

    @classmethod
    def off(cls) -> Guards:
        """No duplicate, flood or hourly guard (a comment stored as it is: tests, benches)."""
        return cls("-", "-", "-", 0, 0, 0)


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
    ) -> InsertResult:
        """Store a new comment with its indexes in one round trip, unless a rate limit, a
        duplicate or flood guard, or an unpublished parent refuses it.

        ``judgements`` are the policy's for an author without standing and, when
        ``trusted_since_ms`` is given, for a trusted one; the script reads the record of the
        commenter key the submission presented (``key``) and stores the comment as judged for
        the standing that applies (``chosen``). The comment's own status and reasons are
        ignored.
        """
        if len(judgements) != (1 if trusted_since_ms is None else 2):
            raise ValueError("one judgement, or two with trusted_since_ms")
        k = self.keys
        key = key or KeyExchange.none(guards.email_hash)
        hour = now_ms // HOUR_MS
        keys = [
            k.comment(comment.id),
            k.article_public(comment.article_id),
            k.author(comment.email_hash),
            k.duplicate(guards.duplicate_key),
            k.flood_ip(guards.ip_hash),
            k.commenter(key.presented_id or key.fresh_id),
            k.hourly(guards.ip_hash, hour),
            k.author_comments(comment.email_hash),
            k.retention(),
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
            comment.parent_id or "",
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
            indexes = self._initial_indexes(comment.article_id, judgement)
            variant_indexes.append(indexes)
            implies = rule(judgement.status)
            record = {
                **base,
                "status": judgement.status,
                "reasons": list(judgement.reasons),
                "history": [judgement.entry.as_dict()],
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
        keys += [k.commenter(key.fresh_id), k.author_commenters(key.email_hash)]
        args += [
            key.email_hash,
            key.presented_secret,
            key.fresh_secret,
            key.fresh_id,
            key.ttl_ms,
            key.grace_ms,
            "1" if key.presented_id else "",
        ]
        reply = cast(list[Any], self._insert(keys=keys, args=args))
        outcome = Outcome(int(reply[0]))
        if outcome is Outcome.DROPPED_DUPLICATE:
            return InsertResult(outcome, chosen=int(reply[1]) - 1, key_rotated=bool(int(reply[2])))
        if outcome is Outcome.STORED:
            variant = int(reply[1]) - 1
            # Only what the script wrote: evicting the article's page for a held comment
            # would make this worker rebuild an unchanged page after every submission.
            written = [
                k.comment(comment.id),
                k.author_comments(comment.email_hash),
                *variant_indexes[variant],
            ]
            if rule(judgements[variant].status).public:
                written.append(k.article_public(comment.article_id))
            self._changed(*written)
            return InsertResult(outcome, chosen=variant, key_rotated=bool(int(reply[2])))
        if outcome is Outcome.RATE_LIMITED:
            return InsertResult(outcome, int(reply[1]), limit=limits[int(reply[2]) - 1])
        return InsertResult(outcome, int(reply[1]) if len(reply) > 1 else 0)

    def _initial_indexes(self, article_id: str, judgement: Judgement) -> list[str]:
        k, status = self.keys, judgement.status
        return [
            k.status_index(status),
            k.article_status_index(article_id, status),
            *(k.reason_status_index(code, status) for code in judgement.reason_codes),
        ]
