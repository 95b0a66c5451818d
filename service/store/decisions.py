"""Moderators' changes to a comment: a move to another status (one, or many pipelined),
deletion."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from ..clock import iso_from_ms
from ..clock import now_ms as now
from ..events import COMMENT_DELETED, comment_subject
from ..models import HistoryEntry, StoredComment
from ..states import STATE_RULES, STATUSES, Status
from .durability import evalsha
from .records import RecordLoader, compact, status_rule_args

# What each status implies, as the transition script takes it (in the index groups' order).
_RULE_ARGS = status_rule_args(stamps=True)


class ContentChanged(Exception):
    """A publication rendered from content that is no longer the stored one (the comment was
    erased or anonymised since it was read): read it again and publish what is there now."""


class VersionMismatch(Exception):
    """The comment's version is not one the caller's If-Match accepts: it moved on since the
    caller read it. ``current`` is the comment as it is now."""

    def __init__(self, current: StoredComment) -> None:
        super().__init__(current.id, current.version)
        self.current = current


@dataclass(frozen=True)
class Move:
    """One comment's move, as :meth:`Decisions.transition_many` takes it: ``public_json`` is
    rendered from ``comment`` as it was read (see :meth:`Decisions.transition`)."""

    comment: StoredComment
    target: str
    entry: HistoryEntry
    public_json: str
    # With an If-Match: the versions it accepts (another one: VersionMismatch); None: any.
    accepted_versions: tuple[int, ...] | None = None
    # A reason that joins the comment's reasons with the move (replacing one of its code).
    add_reason: dict[str, str] | None = None
    # Also trust the commenter key that sent it: an approval then forgives the key's earlier
    # rejections and spam verdicts, so its next comments are auto-approved (policy.is_trusted).
    trust: bool = False


# The commenter record's field that a trusting approval deletes.
_FORGIVEN = STATE_RULES[Status.REJECTED].author_stamp or ""
# A move's outcome: the comment as the move left it, None when it no longer exists,
# ContentChanged when the content it rendered from is no longer the stored one, or
# VersionMismatch when the move's accepted versions no longer include the stored one.
MoveOutcome = StoredComment | None | ContentChanged | VersionMismatch


@dataclass(frozen=True)
class _Call:
    """One TRANSITION_COMMENT call, ready to send: its keys, its args, what it invalidates."""

    comment_id: str
    keys: list[str]
    args: list[Any]
    touched: list[str]


class Decisions(RecordLoader):
    def transition(
        self,
        comment: StoredComment,
        target: str,
        entry: HistoryEntry,
        public_json: str,
        now_ms: int,
        *,
        accepted_versions: tuple[int, ...] | None = None,
        add_reason: dict[str, str] | None = None,
    ) -> StoredComment | None:
        """Atomically move a comment to ``target`` and return it as the move left it; None if
        it no longer exists. ``public_json``, rendered from ``comment``, is published only if
        that is still the stored content, else :class:`ContentChanged`. Who decided is the
        history entry's actor. With ``accepted_versions`` (an If-Match), a comment at another
        version is left alone: :class:`VersionMismatch`. ``add_reason`` joins the comment's
        reasons with the change (replacing one of its code)."""
        move = Move(
            comment,
            target,
            entry,
            public_json,
            accepted_versions=accepted_versions,
            add_reason=add_reason,
        )
        call = self._transition_call(move, now_ms)
        outcome = self._transition_outcome(call, self._transition(keys=call.keys, args=call.args))
        if isinstance(outcome, ContentChanged):
            raise outcome
        return outcome

    def transition_many(self, moves: Sequence[Move], now_ms: int) -> list[MoveOutcome]:
        """Each move as :meth:`transition` makes it, one atomic script call per comment, all
        of them in one pipelined round trip; outcomes in the moves' order. Every comment must
        appear once (a second move of one comment would be judged against the first read)."""
        calls = [self._transition_call(move, now_ms) for move in moves]
        if not calls:
            return []
        # One round trip with the replicas' confirmation after it (durability.py), the
        # scripts loaded again if Redis lost them (a restart).
        replies = self.replica_wait.batch(
            [evalsha(self._transition.plain, call.keys, call.args) for call in calls],
            [self._transition.plain],
            what="decisions",
        )
        outcomes: list[MoveOutcome] = []
        for call, reply in zip(calls, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            try:
                outcomes.append(self._transition_outcome(call, reply))
            except VersionMismatch as moved:  # this move's refusal, not the others'
                outcomes.append(moved)
        return outcomes

    def _transition_call(self, move: Move, now_ms: int) -> _Call:
        comment, k = move.comment, self.keys
        if move.trust and Status(move.target) is not Status.APPROVED:
            raise ValueError("only an approval can trust the author")
        codes = comment.reason_codes
        if move.add_reason is not None and move.add_reason["code"] not in codes:
            codes += (move.add_reason["code"],)
        touched = [
            k.comment(comment.id),
            k.article_public(comment.article_id),
            k.author(comment.email_hash),
            k.retention(k.bucket(comment.article_id)),
            k.events(comment.article_id),
            k.event_content(comment.article_id, comment.id),
            *k.index_groups(comment.article_id, codes),
        ]
        # The commenter key that sent it earns or loses trust by the decision.
        commenter = (
            [
                k.commenter(comment.email_hash, comment.commenter_id),
                k.author_commenters(comment.email_hash),
            ]
            if comment.commenter_id and comment.email_hash
            else []
        )
        versions = move.accepted_versions
        args: list[Any] = [
            comment.id,
            Status(move.target),
            now_ms,
            move.entry.to_json(),
            move.public_json,
            compact(comment.content()),
            len(STATUSES),
            *_RULE_ARGS,
            len(commenter),
            "" if versions is None else ",".join(map(str, versions)) or "-",
            "" if move.add_reason is None else compact(move.add_reason),
            _FORGIVEN if move.trust else "",
            move.entry.at,
            move.entry.actor,
            comment_subject(comment),
            *self.event_retention.script_args(now_ms, per_bucket=True),
        ]
        return _Call(comment.id, touched + commenter, args, touched)

    def _transition_outcome(self, call: _Call, reply: Any) -> StoredComment | None | ContentChanged:
        if reply is None:
            return None
        outcome, *stored = cast(list[Any], reply)
        if int(outcome) == -1:
            raw, doc = stored
            raise VersionMismatch(self._decode(call.comment_id, json.loads(raw), doc))
        if int(outcome) == 0:
            return ContentChanged(call.comment_id)
        if int(outcome) == 2:
            self._changed(*call.touched)
        raw, doc = stored
        return self._decode(call.comment_id, json.loads(raw), doc)

    def delete(
        self, comment: StoredComment, *, actor: str = "operator", kind: str = COMMENT_DELETED
    ) -> bool:
        """Remove the comment and its personal data, its event text too, with a
        ``comment.deleted`` event (or ``kind``: an erasure's is ``comment.erased``)."""
        k = self.keys
        touched = [
            k.comment(comment.id),
            k.article_public(comment.article_id),
            k.author_comments(comment.email_hash),
            k.retention(k.bucket(comment.article_id)),
            k.reported(k.bucket(comment.article_id)),
            *k.index_groups(comment.article_id, comment.reason_codes),
            k.events(comment.article_id),
            k.event_content(comment.article_id, comment.id),
        ]
        moment = now()
        maxlen, minid, _ = self.event_retention.script_args(moment, per_bucket=True)
        existed = self._delete(
            keys=touched,
            args=[comment.id, kind, iso_from_ms(moment), actor, comment_subject(comment)]
            + [maxlen, minid],
        )
        self._changed(*touched)
        # Its readers' reports and a moderator's claim go with it (hash and string: not among
        # the script's sorted sets).
        self.redis.delete(k.reports(comment.id), k.claim(comment.id))
        self._changed(k.claim(comment.id))
        return bool(existed)
