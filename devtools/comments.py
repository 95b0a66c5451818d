"""Storing a comment as it is, for tests and benchmarks: through the store's own insert script
(so it is exactly what a submission creates), with its own status and reasons as the verdict,
no guard and no commenter key."""

from __future__ import annotations

from service.clock import now_ms
from service.documents import render_public
from service.models import HistoryEntry, StoredComment
from service.store import CommentStore, Guards, Judgement, Outcome


def insert_as_is(
    store: CommentStore, comment: StoredComment, *, at_ms: int | None = None
) -> Outcome:
    entry = HistoryEntry(at=comment.created_at, actor="policy", to=comment.status)
    judgement = Judgement(comment.status, comment.reasons, entry)
    return store.insert_submission(
        comment,
        render_public(comment.public()),
        [judgement],
        Guards.off(),
        now_ms() if at_ms is None else at_ms,
    ).outcome
