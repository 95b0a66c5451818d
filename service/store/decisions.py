"""Moderators' changes to a comment: a move to another status, deletion."""

from __future__ import annotations

import json
from typing import Any, cast

from ..clock import iso_from_ms
from ..clock import now_ms as now
from ..events import COMMENT_DELETED, comment_subject
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


class VersionMismatch(Exception):
    """The comment's version is not one the caller's If-Match accepts: it moved on since the
    caller read it. ``current`` is the comment as it is now."""

    def __init__(self, current: StoredComment) -> None:
        super().__init__(current.id, current.version)
        self.current = current


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
        k = self.keys
        codes = comment.reason_codes
        if add_reason is not None and add_reason["code"] not in codes:
            codes += (add_reason["code"],)
        touched = [
            k.comment(comment.id),
            k.article_public(comment.article_id),
            k.author(comment.email_hash),
            k.retention(),
            k.events(comment.article_id),
            k.event_content(comment.article_id, comment.id),
            *k.index_groups(comment.article_id, codes),
        ]
        # The commenter key that sent it earns or loses trust by the decision.
        commenter = (
            [k.commenter(comment.commenter_id), k.author_commenters(comment.email_hash)]
            if comment.commenter_id and comment.email_hash
            else []
        )
        reply = self._transition(
            keys=touched + commenter,
            args=[
                comment.id,
                Status(target),
                now_ms,
                entry.to_json(),
                public_json,
                compact(comment.content()),
                len(STATUSES),
                *_RULE_ARGS,
                len(commenter),
                "" if accepted_versions is None else ",".join(map(str, accepted_versions)) or "-",
                "" if add_reason is None else compact(add_reason),
                entry.at,
                entry.actor,
                comment_subject(comment),
                *self.event_retention.script_args(now_ms),
            ],
        )
        if reply is None:
            return None
        outcome, *stored = cast(list[Any], reply)
        if int(outcome) == -1:
            raw, doc = stored
            raise VersionMismatch(self._decode(comment.id, json.loads(raw), doc))
        if int(outcome) == 0:
            raise ContentChanged(comment.id)
        if int(outcome) == 2:
            self._changed(*touched)
        raw, doc = stored
        return self._decode(comment.id, json.loads(raw), doc)

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
            k.retention(),
            k.reported(),
            *k.index_groups(comment.article_id, comment.reason_codes),
            k.events(comment.article_id),
            k.event_content(comment.article_id, comment.id),
        ]
        moment = now()
        maxlen, minid, _ = self.event_retention.script_args(moment)
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
