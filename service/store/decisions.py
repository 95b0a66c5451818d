"""Moderators' changes to a comment: a move to another status, deletion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from ..models import HistoryEntry, StoredComment
from ._core import StoreCore
from .keys import STATUSES
from .records import compact


@dataclass(frozen=True)
class TransitionResult:
    previous: str
    changed: bool



class Decisions(StoreCore):
    def transition(
        self,
        comment: StoredComment,
        target: str,
        entry: HistoryEntry,
        public_json: str,
        now_ms: int,
    ) -> TransitionResult | None:
        """Atomically move a comment to ``target``; None if it no longer exists. Who decided
        is the history entry's actor."""
        k = self.keys
        touched = [k.comment(comment.id), k.article_public(comment.article_id),
                   k.author(comment.email_hash), k.retention(),
                   *k.index_groups(comment.article_id, comment.reason_codes)]
        # The commenter key that sent it earns or loses trust by the decision.
        commenter = ([k.commenter(comment.commenter_id), k.author_commenters(comment.email_hash)]
                     if comment.commenter_id and comment.email_hash else [])
        reply = self._transition(
            keys=touched + commenter,
            args=[comment.id, target, len(STATUSES), *STATUSES, entry.to_json(), public_json,
                  compact(comment.content()), now_ms, "1" if comment.email_hash else "",
                  len(commenter)],
        )
        if reply is None:
            return None
        previous, changed = cast(list[Any], reply)
        self._changed(*touched)
        return TransitionResult(previous=str(previous), changed=bool(int(changed)))

    def delete(self, comment: StoredComment) -> bool:
        k = self.keys
        touched = [k.comment(comment.id), k.article_public(comment.article_id),
                   k.author_comments(comment.email_hash), k.retention(),
                   *k.index_groups(comment.article_id, comment.reason_codes)]
        existed = self._delete(keys=touched, args=[comment.id])
        self._changed(*touched)
        return bool(existed)
