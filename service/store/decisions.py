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
from .steps import combined_args, step_args, step_reply

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
    """One transition, ready to send: each step's keys (store/steps.py; the author step's
    without its memo, which needs the version step 1 gives), step 1's args, what it
    invalidates."""

    comment_id: str
    email_hash: str
    bucket_keys: list[str]
    args: list[Any]
    author_keys: list[str]
    undo_keys: list[str]
    touched: list[str]

    def combined(self) -> tuple[list[Any], list[Any]]:
        """KEYS and ARGV of the combined script."""
        return combined_args(
            [(self.bucket_keys, self.args), (self.author_keys, []), (self.undo_keys, [])]
        )


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
        reasons with the change (replacing one of its code).

        On a cluster the move is three steps (store/steps.py; TRANSITION_COMMENT): the
        comment's change is atomic, the author's and commenter key's stamps follow it."""
        move = Move(
            comment,
            target,
            entry,
            public_json,
            accepted_versions=accepted_versions,
            add_reason=add_reason,
        )
        call = self._transition_call(move, now_ms)
        if not self.stepped:
            keys, args = call.combined()
            outcome = self._transition_outcome(call, self._transition(keys=keys, args=args))
        else:
            reply = self._transition_steps[0](
                keys=call.bucket_keys, args=step_args(call.args, None)
            )
            carry, answer = step_reply(reply)
            self._after_step("decision", 1)
            outcome = self._transition_outcome(call, answer)
            if carry is not None:
                self.finish_transition(
                    call.comment_id, call.email_hash, call.author_keys, call.undo_keys, carry
                )
        if isinstance(outcome, ContentChanged):
            raise outcome
        return outcome

    def finish_transition(
        self,
        comment_id: str,
        email_hash: str,
        author_keys: list[str],
        undo_keys: list[str],
        carry: str,
    ) -> None:
        """Steps 2 and 3 of a stepped transition whose step 1 handed on ``carry`` (a request's
        own, or one the sweep found owed: store/sweep.py); both safe to run again."""
        k = self.keys
        version = json.loads(carry)["post"]["version"]
        memo = k.step_memo_of(k.tag_for_author(email_hash), f"d:{comment_id}:{version}")
        reply = self._transition_steps[1].plain(
            keys=[*author_keys, memo], args=step_args([], carry)
        )
        self._after_step("decision", 2)
        after_author, _ = step_reply(reply)
        self._transition_steps[2].plain(keys=undo_keys, args=step_args([], after_author))
        self._after_step("decision", 3)

    def transition_many(self, moves: Sequence[Move], now_ms: int) -> list[MoveOutcome]:
        """Each move as :meth:`transition` makes it, one atomic script call per comment, all
        of them in one pipelined round trip; outcomes in the moves' order. Every comment must
        appear once (a second move of one comment would be judged against the first read).
        On a cluster one pipeline a step (store/steps.py), each one round trip per node."""
        calls = [self._transition_call(move, now_ms) for move in moves]
        if not calls:
            return []
        # One round trip with the replicas' confirmation after it (durability.py), the
        # scripts loaded again if Redis lost them (a restart).
        first = self._transition_steps[0].plain if self.stepped else self._transition.plain
        commands = [
            evalsha(first, call.bucket_keys, step_args(call.args, None))
            if self.stepped
            else evalsha(first, *call.combined())
            for call in calls
        ]
        replies = self.replica_wait.batch(commands, [first], what="decisions")
        outcomes: list[MoveOutcome] = []
        owed: list[tuple[_Call, str]] = []
        for call, reply in zip(calls, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            if self.stepped:
                carry, reply = step_reply(reply)
                if carry is not None:
                    owed.append((call, carry))
            try:
                outcomes.append(self._transition_outcome(call, reply))
            except VersionMismatch as moved:  # this move's refusal, not the others'
                outcomes.append(moved)
        if owed:
            self._after_step("decisions", 1)
            self._finish_transitions(owed)
        return outcomes

    def _finish_transitions(self, owed: Sequence[tuple[_Call, str]]) -> None:
        """Steps 2 and 3 of many stepped transitions: one pipeline a step."""
        k = self.keys
        author, undo = self._transition_steps[1].plain, self._transition_steps[2].plain
        commands = []
        for call, carry in owed:
            version = json.loads(carry)["post"]["version"]
            memo = k.step_memo_of(
                k.tag_for_author(call.email_hash), f"d:{call.comment_id}:{version}"
            )
            commands.append(evalsha(author, [*call.author_keys, memo], step_args([], carry)))
        replies = self.replica_wait.batch(commands, [author], what="decisions", wait=False)
        self._after_step("decisions", 2)
        finishing = []
        for (call, _), reply in zip(owed, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            after_author, _ = step_reply(reply)
            finishing.append(evalsha(undo, call.undo_keys, step_args([], after_author)))
        for reply in self.replica_wait.batch(finishing, [undo], what="decisions", wait=False):
            if isinstance(reply, Exception):
                raise reply
        self._after_step("decisions", 3)

    def transition_author_keys(self, email_hash: str, commenter_id: str) -> list[str]:
        """The author step's keys (without its memo)."""
        k = self.keys
        return [
            k.author(email_hash),
            k.commenter(email_hash, commenter_id),
            k.author_commenters(email_hash),
            k.author_comments(email_hash),
        ]

    def _transition_call(self, move: Move, now_ms: int) -> _Call:
        comment, k = move.comment, self.keys
        if move.trust and Status(move.target) is not Status.APPROVED:
            raise ValueError("only an approval can trust the author")
        codes = comment.reason_codes
        if move.add_reason is not None and move.add_reason["code"] not in codes:
            codes += (move.add_reason["code"],)
        bucket = k.bucket(comment.article_id)
        groups = k.index_groups(comment.article_id, codes)
        bucket_keys = [
            k.comment(comment.id),
            k.article_public(comment.article_id),
            k.retention(bucket),
            k.events(comment.article_id),
            k.event_content(comment.article_id, comment.id),
            k.outbox(bucket),
            *groups,
        ]
        # The commenter key that sent it earns or loses trust by the decision.
        keyed = bool(comment.commenter_id and comment.email_hash)
        author_keys = self.transition_author_keys(comment.email_hash, comment.commenter_id or "")
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
            2 if keyed else 0,
            "" if versions is None else ",".join(map(str, versions)) or "-",
            "" if move.add_reason is None else compact(move.add_reason),
            _FORGIVEN if move.trust else "",
            move.entry.at,
            move.entry.actor,
            comment_subject(comment),
            *self.event_retention.script_args(now_ms, per_bucket=True),
        ]
        touched = [*bucket_keys[:5], k.author(comment.email_hash), *groups]
        return _Call(
            comment.id,
            comment.email_hash,
            bucket_keys,
            args,
            author_keys,
            [k.comment(comment.id), k.outbox(bucket)],
            touched,
        )

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
