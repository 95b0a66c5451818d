"""Campaign sketches in Redis, so that every worker sees every recent text: per time bucket
the LSH bands and the sketches of its comments (see service/moderation/campaigns.py), and the
members of each campaign.

Detection runs inside the submission's insert script (store/inserts.py, INSERT_COMMENT): the
sketch is compared with its bands' members, recorded in them, and a campaign's comments held,
all in the insert's one round trip. This room builds that part of the script's arguments and
reads campaigns back.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from ..moderation.campaigns import bucket, since_id
from ..moderation.policy import campaign_reason
from ..states import STATE_RULES, Status, rule
from ._core import StoreCore
from .keys import Keys

# The campaign part of the insert's ARGV when detection is off (its first value "").
CAMPAIGN_OFF: tuple[str | int, ...] = ("",) * 9
# The code of the reason a campaign's comments get (the insert script adds it: its JSON and
# detail format are in the script, store/scripts.py).
CAMPAIGN_CODE = campaign_reason("", 0, 0).code


def held_status(status: str) -> str:
    """The status of a comment that the policy judged ``status`` when it completes a campaign:
    the campaign reason holds it (policy.with_reason: the stricter of its verdict's action
    and hold), so a published one waits for review and a spam one stays spam."""
    return Status.PENDING.value if rule(status).public else status


# Per status the policy gives, what the insert script takes for its held variant: the held
# status, the author's field it stamps, "1" if it waits for the retention purge.
HELD_ARGS: dict[str, tuple[str, str, str]] = {
    s.value: (
        held_status(s.value),
        STATE_RULES[Status(held_status(s.value))].author_stamp or "",
        "1" if STATE_RULES[Status(held_status(s.value))].awaits_purge else "",
    )
    for s in Status
}


@dataclass(frozen=True)
class CampaignProbe:
    """What the insert needs to detect a campaign and record the new comment's sketch."""

    author: str  # campaigns.author_tag of the email hash
    sketch: str  # encoded (campaigns.encode); the script cuts its band fields from it
    window_ms: int
    threshold: int


@dataclass(frozen=True)
class CampaignJoined:
    """The insert found a campaign: the new comment was stored held with the campaign reason,
    and ``held`` are the earlier pending members that got the reason then."""

    campaign_id: str
    comments: int
    authors: int
    held: tuple[str, ...]
    held_buckets: tuple[int, ...] = ()  # each one's article's bucket


def campaign_arguments(
    keys: Keys, probe: CampaignProbe | None, now_ms: int
) -> tuple[list[str], list[str | int]]:
    """The insert script's campaign keys (the current and the previous time bucket's hash of
    bands and sketches) and its nine campaign arguments."""
    if probe is None:
        return [], list(CAMPAIGN_OFF)
    window = probe.window_ms
    current = bucket(now_ms, window)
    found = list(_buckets(keys, window, current))
    args: list[str | int] = [
        "1",
        probe.author,
        probe.sketch,
        since_id(now_ms - window),
        probe.threshold,
        # A bucket's hash lives until its end plus a window (its last reader).
        (current + 2) * window,
        *_prefixes(keys),
    ]
    return found, args


@lru_cache(maxsize=8)
def _buckets(keys: Keys, window_ms: int, current: int) -> tuple[str, str]:
    """The current time bucket's hash and the one before's (the same for a whole window)."""
    return keys.campaign_bucket(window_ms, current), keys.campaign_bucket(window_ms, current - 1)


@lru_cache(maxsize=8)
def _prefixes(keys: Keys) -> tuple[str, str, str]:
    """What the script builds an earlier member's keys from: the comment key's prefix, the
    campaign set's, and the pending campaign reason index's name without its article bucket
    (which the script appends)."""
    return (
        keys.comment(""),
        keys.campaign(""),
        keys.reason_status_index(CAMPAIGN_CODE, Status.PENDING.value, ""),
    )


def campaign_joined(reply: list[Any]) -> CampaignJoined | None:
    """The campaign part of a stored insert's reply (None: no campaign)."""
    if len(reply) <= 3:
        return None
    held = tuple(str(i) for i in reply[6::2])
    buckets = tuple(int(b) for b in reply[7::2])
    return CampaignJoined(str(reply[3]), int(reply[4]), int(reply[5]), held, buckets)


class Campaigns(StoreCore):
    def campaign_members(self, campaign_id: str) -> list[str]:
        return sorted(
            str(m) for m in cast(set[Any], self.redis.smembers(self.keys.campaign(campaign_id)))
        )
