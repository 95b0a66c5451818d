"""Readers' reports of published comments: one per client (its IP's keyed hash, the only
thing kept about the reporter), counted against the policy's threshold inside one script."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

from ..states import Status
from ._core import StoreCore
from .durability import evalsha
from .records import compact


class ReportOutcome(Enum):
    NOT_PUBLISHED = -1
    ALREADY_REPORTED = 0
    STORED = 1
    THRESHOLD_REACHED = 2  # this report made it: exactly one report per review does


@dataclass(frozen=True)
class ReportResult:
    outcome: ReportOutcome
    active: int = 0
    counts: dict[str, int] | None = None  # active reports by reason, when the threshold hit


@dataclass(frozen=True)
class Report:
    reason: str
    note: str
    at_ms: int
    dismissed: bool


class Reports(StoreCore):
    def report(
        self,
        comment_id: str,
        article_id: str,
        reporter_ip_hash: str,
        reason: str,
        note: str,
        threshold: int,
        now_ms: int,
    ) -> ReportResult:
        k = self.keys
        reply = cast(
            list[Any],
            self._report(
                keys=[
                    k.article_status_index(article_id, Status.APPROVED),
                    k.reports(comment_id),
                    k.reported(k.bucket(article_id)),
                ],
                args=[
                    comment_id,
                    reporter_ip_hash,
                    compact({"reason": reason, "note": note, "at": now_ms}),
                    threshold,
                ],
            ),
        )
        outcome = ReportOutcome(int(reply[0]))
        if outcome is ReportOutcome.THRESHOLD_REACHED:
            self._changed(k.reported(k.bucket(article_id)))
            counts = {str(r): int(n) for r, n in json.loads(reply[2]).items()}
            return ReportResult(outcome, int(reply[1]), counts)
        return ReportResult(outcome, int(reply[1]) if len(reply) > 1 else 0)

    def reports_of(self, comment_id: str) -> list[Report]:
        """Every report of the comment, oldest first (reporters are not named)."""
        raws = cast(list[Any], self.redis.hvals(self.keys.reports(comment_id)))
        found = [json.loads(raw) for raw in raws]
        return sorted(
            (
                Report(
                    str(r["reason"]),
                    str(r.get("note") or ""),
                    int(r["at"]),
                    bool(r.get("dismissed")),
                )
                for r in found
            ),
            key=lambda r: r.at_ms,
        )

    def active_report_counts(self, comment_ids: list[str]) -> dict[str, dict[str, int]]:
        """Active reports by reason for each comment, in one round trip."""
        if not comment_ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for comment_id in comment_ids:
            pipe.hvals(self.keys.reports(comment_id))
        counts: dict[str, dict[str, int]] = {}
        for comment_id, raws in zip(comment_ids, pipe.execute(), strict=True):
            reasons = Counter(
                str(r["reason"]) for r in map(json.loads, raws) if not r.get("dismissed")
            )
            counts[comment_id] = dict(sorted(reasons.items()))
        return counts

    def finish_review(self, comment_id: str, article_id: str, *, decided: bool) -> int:
        """Dismiss the active reports and take the comment (of ``article_id``) out of the
        Reported queue; with a decision, release its claim too. How many reports were
        dismissed."""
        k = self.keys
        keys = [k.reports(comment_id), k.reported(k.bucket(article_id))]
        if decided:
            keys.append(k.claim(comment_id))
        dismissed = int(self._finish_review(keys=keys, args=[comment_id]))
        self._changed(*keys)
        return dismissed

    def finish_reviews(self, decided: list[tuple[str, str]]) -> None:
        """:meth:`finish_review` of each decided comment (its id and article), in one
        pipelined round trip (bulk decisions): one script call per comment, as atomic as one
        alone."""
        if not decided:
            return
        k = self.keys
        touched = []
        commands = []
        for comment_id, article_id in decided:
            keys = [k.reports(comment_id), k.reported(k.bucket(article_id)), k.claim(comment_id)]
            commands.append(evalsha(self._finish_review.plain, keys, [comment_id]))
            touched += keys
        replies = self.replica_wait.batch(commands, [self._finish_review.plain], what="reviews")
        self._changed(*touched)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
