"""Campaign sketches in Redis, so that every worker sees every recent text: LSH band sets of
recent comments (see service/moderation/campaigns.py), and the members of each campaign."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from ..states import STATUSES
from ._core import StoreCore
from .records import compact

CANDIDATES_PER_BAND = 50
CAMPAIGN_TTL_SECONDS = 7 * 86_400


@dataclass(frozen=True)
class Candidate:
    comment_id: str
    email_hash: str
    sketch: str


class Campaigns(StoreCore):
    def campaign_candidates(
        self,
        comment_id: str,
        email_hash: str,
        sketch: str,
        band_labels: list[str],
        now_ms: int,
        window_ms: int,
    ) -> list[Candidate]:
        """The recent comments sharing a band with this sketch; the sketch joins them (one
        round trip)."""
        member = f"{comment_id}|{email_hash}|{sketch}"
        reply = cast(
            list[Any],
            self._campaign_candidates(
                keys=[self.keys.campaign_band(label) for label in band_labels],
                args=[member, now_ms, window_ms, comment_id, CANDIDATES_PER_BAND],
            ),
        )
        found = []
        for raw in reply:
            other, email, sig = str(raw).split("|", 2)
            found.append(Candidate(other, email, sig))
        return found

    def join_campaign(self, campaign_id: str, comment_ids: list[str]) -> None:
        key = self.keys.campaign(campaign_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(key, *comment_ids)
        pipe.expire(key, CAMPAIGN_TTL_SECONDS)
        pipe.execute()

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
