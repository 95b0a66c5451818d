"""Moderators' claims on comments: who is reviewing what, for a short, renewable time.

A claim is advisory: it tells other moderators (the queue shows it, ``?unclaimed=true`` hides
it) that someone is on the comment; a decision still applies whoever holds it, and releases it.
Two moderators who both decide with If-Match cannot overwrite each other either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from ._core import StoreCore
from .client import RedisClient, mget
from .keys import Keys


@dataclass(frozen=True)
class Claim:
    moderator: str
    since_ms: int
    until_ms: int  # when it lapses unless renewed


@dataclass(frozen=True)
class ClaimAnswer:
    granted: bool  # False: another moderator holds it (``claim`` is theirs)
    claim: Claim


class ClaimRefused(Exception):
    """A release by someone who does not hold the claim; ``claim`` is the holder's."""

    def __init__(self, claim: Claim) -> None:
        super().__init__(claim.moderator)
        self.claim = claim


def parse_claim(raw: str) -> Claim:
    doc = json.loads(raw)
    return Claim(str(doc["moderator"]), int(doc["since"]), int(doc["until"]))


def claims_of(redis: RedisClient, keys: Keys, comment_ids: list[str]) -> dict[str, Claim]:
    """The claims held on these comments, in one round trip (one MGET; on a cluster one a
    slot, pipelined)."""
    if not comment_ids:
        return {}
    raws = mget(redis, [keys.claim(i) for i in comment_ids])
    return {i: parse_claim(raw) for i, raw in zip(comment_ids, raws, strict=True) if raw}


class Claims(StoreCore):
    def claim(
        self, comment_id: str, moderator: str, now_ms: int, ttl_ms: int
    ) -> ClaimAnswer | None:
        """Claim (or renew one's claim on) a comment; None when it does not exist."""
        reply = cast(
            list[Any],
            self._claim_script(
                keys=[self.keys.claim(comment_id), self.keys.comment(comment_id)],
                args=[moderator, now_ms, ttl_ms],
            ),
        )
        if int(reply[0]) == -1:
            return None
        granted = bool(int(reply[0]))
        if granted:
            self._changed(self.keys.claim(comment_id))
        return ClaimAnswer(granted, parse_claim(reply[1]))

    def release_claim(self, comment_id: str, moderator: str | None = None) -> bool:
        """Release the claim (only ``moderator``'s, when given: else :class:`ClaimRefused`);
        False when there was none."""
        if moderator is None:  # a decision: one DEL, whoever held it
            released = bool(self.redis.delete(self.keys.claim(comment_id)))
            if released:
                self._changed(self.keys.claim(comment_id))
            return released
        reply = self._release_claim(keys=[self.keys.claim(comment_id)], args=[moderator])
        if isinstance(reply, list):
            raise ClaimRefused(parse_claim(reply[0]))
        if reply:
            self._changed(self.keys.claim(comment_id))
        return bool(reply)

    def claim_on(self, comment_id: str) -> Claim | None:
        return claims_of(self.redis, self.keys, [comment_id]).get(comment_id)
