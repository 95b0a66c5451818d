"""The sweep: the post-steps a split change still owes when its request died between steps
(store/steps.py, docs/sharding-plan.md §2.0).

Each bucket's outbox names the changes whose bucket step is done and whose later steps may not
be. An entry younger than STEP_TIMEOUT_MS is in flight (its request runs the steps and removes
it); an older one is abandoned: the sweep runs its owed steps (each safe to run again: the memo
makes a done step a no-op), and the last step removes the entry. An entry whose comment is gone
or was changed again since is removed as it is: the later change owns the comment's state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from ..clock import now_ms
from .client import mget
from .decisions import Decisions
from .keys import BUCKETS
from .steps import STEP_TIMEOUT_MS

# Outbox entries read per bucket and pass.
SWEEP_BATCH = 100


@dataclass
class SweepReport:
    completed: int = 0  # changes whose owed steps ran
    dropped: int = 0  # entries of comments gone or changed again since
    unknown: int = 0  # entries of a kind this version does not know (left in place)


class Sweeps(Decisions):
    def owed_steps(self, cutoff_ms: int, batch: int = SWEEP_BATCH) -> list[tuple[int, str]]:
        """Outbox entries (bucket, member) written before ``cutoff_ms``: up to ``batch`` of
        each bucket, in one pipelined round trip (one per node on a cluster)."""
        pipe = self.redis.pipeline(transaction=False)
        for bucket in range(BUCKETS):
            pipe.zrangebyscore(self.keys.outbox(bucket), "-inf", cutoff_ms, start=0, num=batch)
        return [
            (bucket, str(member))
            for bucket, members in enumerate(cast(list[Any], pipe.execute()))
            for member in members
        ]

    def sweep_owed(self, *, at_ms: int | None = None) -> SweepReport:
        """Run the owed steps of every outbox entry older than STEP_TIMEOUT_MS (by ``at_ms``,
        default now), then remove the entry. Safe to run again, and alongside requests."""
        cutoff = (now_ms() if at_ms is None else at_ms) - STEP_TIMEOUT_MS
        report = SweepReport()
        seen: set[tuple[int, str]] = set()
        while True:
            owed = [entry for entry in self.owed_steps(cutoff) if entry not in seen]
            if not owed:
                return report
            seen.update(owed)
            self._sweep_entries(owed, report)

    def _sweep_entries(self, owed: list[tuple[int, str]], report: SweepReport) -> None:
        k = self.keys
        decisions = []
        for bucket, member in owed:
            kind, _, rest = member.partition(":")
            comment_id, _, version_text = rest.rpartition(":")
            if kind != "d" or not comment_id or not version_text.isdigit():
                report.unknown += 1
                continue
            decisions.append((bucket, member, comment_id, int(version_text)))
        raws = mget(self.redis, [k.comment(comment_id) for _, _, comment_id, _ in decisions])
        for (bucket, member, comment_id, version), raw in zip(decisions, raws, strict=True):
            record = json.loads(raw) if raw is not None else None
            undo = record.get("undo") if isinstance(record, dict) else None
            owed_post = undo.get("owed") if isinstance(undo, dict) else None
            if (
                not isinstance(record, dict)
                or int(record.get("version") or 1) != version
                or not isinstance(owed_post, dict)
            ):
                self.redis.zrem(k.outbox(bucket), member)
                report.dropped += 1
                continue
            email_hash = str(owed_post.get("email") or "")
            self.finish_transition(
                comment_id,
                email_hash,
                self.transition_author_keys(email_hash, str(record.get("commenter") or "")),
                [k.comment(comment_id), k.outbox(bucket)],
                json.dumps({"post": owed_post}),
            )
            self._changed(k.comment(comment_id))
            report.completed += 1
