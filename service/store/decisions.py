"""Moderators' changes to a comment: a move to another status (one, or many pipelined),
deletion."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.exceptions import NoScriptError

from ..models import HistoryEntry, StoredComment
from ..states import STATE_RULES, STATUSES, Status
from .records import RecordLoader, compact

# What each status implies, as the transition script takes it (in the index groups' order).
_RULE_ARGS: tuple[str, ...] = tuple(
    arg
    for status in STATUSES
    for arg in (
        status.value,
        "1" if STATE_RULES[status].public else "",
        "1" if STATE_RULES[status].awaits_purge else "",
        STATE_RULES[status].author_stamp or "",
    )
)


class ContentChanged(Exception):
    """A publication rendered from content that is no longer the stored one (the comment was
    erased or anonymised since it was read): read it again and publish what is there now."""


@dataclass(frozen=True)
class Move:
    """One comment's move, as :meth:`Decisions.transition_many` takes it: ``public_json`` is
    rendered from ``comment`` as it was read (see :meth:`Decisions.transition`)."""

    comment: StoredComment
    target: str
    entry: HistoryEntry
    public_json: str
    # Also trust the commenter key that sent it: an approval then forgives the key's earlier
    # rejections and spam verdicts, so its next comments are auto-approved (policy.is_trusted).
    trust: bool = False


# The commenter record's field that a trusting approval deletes.
_FORGIVEN = STATE_RULES[Status.REJECTED].author_stamp or ""
# A move's outcome: the comment as the move left it, None when it no longer exists, or
# ContentChanged when the content it rendered from is no longer the stored one.
MoveOutcome = StoredComment | None | ContentChanged


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
    ) -> StoredComment | None:
        """Atomically move a comment to ``target`` and return it as the move left it; None if
        it no longer exists. ``public_json``, rendered from ``comment``, is published only if
        that is still the stored content, else :class:`ContentChanged`. Who decided is the
        history entry's actor."""
        call = self._transition_call(Move(comment, target, entry, public_json), now_ms)
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
        sha = self._transition.sha
        pipe = self.redis.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(sha, len(call.keys), *call.keys, *call.args)
        replies = pipe.execute(raise_on_error=False)
        outcomes: list[MoveOutcome] = []
        for call, reply in zip(calls, replies, strict=True):
            if isinstance(reply, NoScriptError):  # Redis lost its scripts (a restart): load
                reply = self._transition(keys=call.keys, args=call.args)
            elif isinstance(reply, Exception):
                raise reply
            outcomes.append(self._transition_outcome(call, reply))
        return outcomes

    def _transition_call(self, move: Move, now_ms: int) -> _Call:
        comment, k = move.comment, self.keys
        if move.trust and Status(move.target) is not Status.APPROVED:
            raise ValueError("only an approval can trust the author")
        touched = [
            k.comment(comment.id),
            k.article_public(comment.article_id),
            k.author(comment.email_hash),
            k.retention(),
            *k.index_groups(comment.article_id, comment.reason_codes),
        ]
        # The commenter key that sent it earns or loses trust by the decision.
        commenter = (
            [k.commenter(comment.commenter_id), k.author_commenters(comment.email_hash)]
            if comment.commenter_id and comment.email_hash
            else []
        )
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
            _FORGIVEN if move.trust else "",
        ]
        return _Call(comment.id, touched + commenter, args, touched)

    def _transition_outcome(self, call: _Call, reply: Any) -> MoveOutcome:
        if reply is None:
            return None
        outcome, *stored = cast(list[Any], reply)
        if int(outcome) == 0:
            return ContentChanged(call.comment_id)
        if int(outcome) == 2:
            self._changed(*call.touched)
        raw, doc = stored
        return self._decode(call.comment_id, json.loads(raw), doc)

    def delete(self, comment: StoredComment) -> bool:
        k = self.keys
        touched = [
            k.comment(comment.id),
            k.article_public(comment.article_id),
            k.author_comments(comment.email_hash),
            k.retention(),
            *k.index_groups(comment.article_id, comment.reason_codes),
        ]
        existed = self._delete(keys=touched, args=[comment.id])
        self._changed(*touched)
        return bool(existed)
