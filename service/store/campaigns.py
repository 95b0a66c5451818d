"""Campaign sketches in Redis, so that every worker sees every recent text: LSH band sets of
recent comments (see service/moderation/campaigns.py), and the members of each campaign."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from ..states import STATUSES
from ._core import StoreCore
from .records import compact

# Enough for a campaign's recent texts; bounded, so that a flood of similar texts costs the same.
CANDIDATES_PER_BAND = 20
CAMPAIGN_TTL_SECONDS = 7 * 86_400


@dataclass(frozen=True)
class Sketch:
    """One comment's sketch, to record in its band sets."""

    comment_id: str
    email_hash: str
    sketch: str
    band_labels: list[str]
    now_ms: int
    window_ms: int


@dataclass(frozen=True)
class Candidate:
    comment_id: str
    email_hash: str
    sketch: str


class Campaigns(StoreCore):
    def campaign_candidates(
        self, band_labels: list[str], now_ms: int, window_ms: int
    ) -> list[Candidate]:
        """The recent comments sharing a band with a sketch (one read-only round trip)."""
        reply = cast(
            list[Any],
            self._campaign_candidates(
                keys=[self.keys.campaign_band(label) for label in band_labels],
                args=[now_ms, window_ms, CANDIDATES_PER_BAND],
            ),
        )
        found = []
        for raw in reply:
            other, email, sig = str(raw).split("|", 2)
            found.append(Candidate(other, email, sig))
        return found

    def record_sketches(self, sketches: list[Sketch]) -> None:
        """Sketches join their band sets: one pipeline (one round trip, one fsync)."""
        pipe = self.redis.pipeline(transaction=False)
        for item in sketches:
            self._record_sketch(
                keys=[self.keys.campaign_band(label) for label in item.band_labels],
                args=[
                    f"{item.comment_id}|{item.email_hash}|{item.sketch}",
                    item.now_ms,
                    item.window_ms,
                ],
                client=pipe,
            )
        pipe.execute()

    def join_campaign(
        self, campaign_id: str, comment_ids: list[str], reason: dict[str, str], if_status: str
    ) -> None:
        """The comments join the campaign; those new to it get the reason (while in
        ``if_status``): two round trips, however many members."""
        key = self.keys.campaign(campaign_id)
        known = cast(list[Any], self.redis.smismember(key, comment_ids))
        fresh = [c for c, member in zip(comment_ids, known, strict=True) if not int(member)]
        pipe = self.redis.pipeline(transaction=False)
        if fresh:
            pipe.sadd(key, *fresh)
        pipe.expire(key, CAMPAIGN_TTL_SECONDS)
        touched = []
        for comment_id in fresh:
            keys = self._reason_keys(comment_id, reason["code"])
            touched += keys
            self._add_reason(
                keys=keys,
                args=[comment_id, compact(reason), if_status, *(s.value for s in STATUSES)],
                client=pipe,
            )
        pipe.execute()
        self._changed(*touched)

    def _reason_keys(self, comment_id: str, code: str) -> list[str]:
        return [
            self.keys.comment(comment_id),
            *(self.keys.reason_status_index(code, s) for s in STATUSES),
        ]

    def campaign_members(self, campaign_id: str) -> list[str]:
        return sorted(
            str(m) for m in cast(set[Any], self.redis.smembers(self.keys.campaign(campaign_id)))
        )

    def add_reason(self, comment_id: str, reason: dict[str, str], *, if_status: str = "") -> bool:
        """Add a reason to a comment where it stands (no status change), only while it is in
        ``if_status`` when given."""
        code = reason["code"]
        keys = [
            self.keys.comment(comment_id),
            *(self.keys.reason_status_index(code, s) for s in STATUSES),
        ]
        added = bool(
            self._add_reason(
                keys=keys,
                args=[comment_id, compact(reason), if_status, *(s.value for s in STATUSES)],
            )
        )
        if added:
            self._changed(*keys)
        return added
