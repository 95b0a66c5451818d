"""Readers report published comments; enough reports send a comment back to review.

One report per client per comment (keyed by the client's IP hash, the only thing kept about
the reporter). The store's script counts the active reports and says when this report reached
the policy's ``report_threshold``, which happens once per review however many readers report
at the same moment. Then, with ``report_action: unpublish``, the comment goes back to
``pending`` with the reason ``reported`` (its counts by reason); with ``flag`` it stays
published and only waits in the Reported queue. A moderator's decision, or dismissing the
reports, ends the review (the reports stop counting).
"""

from __future__ import annotations

from dataclasses import dataclass

from .clock import iso_from_ms, now_ms
from .domain_errors import AlreadyReported, CommentNotFound
from .ids import is_valid_id
from .models import HistoryEntry
from .moderation.policy import ReportAction, report_reason
from .states import Status
from .store import CommentStore, ReportOutcome, VersionMismatch
from .submissions import load_policy

# Who the history names for a comment its readers sent back to review.
READERS_ACTOR = "readers"
ATTEMPTS = 3


@dataclass(frozen=True)
class ReportRequest:
    comment_id: str
    reason: str
    note: str
    reporter_ip_hash: str


class ReaderReports:
    def __init__(self, store: CommentStore) -> None:
        self.store = store

    def report(self, request: ReportRequest) -> None:
        """Store one reader's report; refusals raise (:class:`CommentNotFound` for what is not
        a published comment, :class:`AlreadyReported`)."""
        store = self.store
        comment = store.get(request.comment_id) if is_valid_id(request.comment_id) else None
        if comment is None or comment.status != Status.APPROVED:
            raise CommentNotFound()
        policy = load_policy(store.submission_settings(comment.article_id).policy_json)
        moment = now_ms()
        result = store.report(
            comment.id,
            comment.article_id,
            request.reporter_ip_hash,
            request.reason,
            request.note,
            policy.report_threshold,
            moment,
        )
        if result.outcome is ReportOutcome.NOT_PUBLISHED:
            raise CommentNotFound()
        if result.outcome is ReportOutcome.ALREADY_REPORTED:
            raise AlreadyReported()
        reached = result.outcome is ReportOutcome.THRESHOLD_REACHED
        if reached and policy.report_action is ReportAction.UNPUBLISH:
            self._back_to_review(comment.id, report_reason(result.counts or {}).as_dict())

    def _back_to_review(self, comment_id: str, reason: dict[str, str]) -> None:
        """Unpublish the comment, unless a moderator decided on it meanwhile: the change
        applies only to the version read here while it is published (If-Match, in effect)."""
        for _ in range(ATTEMPTS):
            comment = self.store.get(comment_id)
            if comment is None or comment.status != Status.APPROVED:
                return  # deleted or decided meanwhile: a moderator has it
            moment = now_ms()
            entry = HistoryEntry(
                at=iso_from_ms(moment), actor=READERS_ACTOR, to=Status.PENDING, note="reported"
            )
            try:
                self.store.transition(
                    comment,
                    Status.PENDING,
                    entry,
                    "",
                    now_ms=moment,
                    accepted_versions=(comment.version,),
                    add_reason=reason,
                )
            except VersionMismatch:
                continue
            return
