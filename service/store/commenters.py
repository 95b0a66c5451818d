"""Commenter keys at rest: what a submission's key exchange hands the insert script, and the
revocation of every key bound to one email (an erasure).

A commenter record (keys.py: ``commenter:<id>``) holds only keyed hashes: of the email it is
bound to, and of its current secret and the one that secret replaced. The insert script
checks a presented key, rotates it or creates a new record (store/scripts.py,
INSERT_COMMENT); a decision stamps the record of the key that sent the comment
(TRANSITION_COMMENT). See service/commenter_keys.py for the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from redis.exceptions import WatchError

from ._core import StoreCore


@dataclass(frozen=True)
class KeyExchange:
    """One submission's commenter key: the one it presented (if any) and the one its answer
    hands out. Secrets arrive as keyed hashes only."""

    email_hash: str
    presented_id: str  # "" when no well-formed key was presented
    presented_secret: str  # keyed hash; "" when none
    fresh_id: str  # the record created when the presented key is absent or not valid
    fresh_secret: str  # keyed hash of the secret the answer hands out ("" = hand out none)
    ttl_ms: int  # how long an unused record lives (the policy's trusted_days)
    grace_ms: int  # how long a replaced secret still works

    @property
    def recorded_id(self) -> str:
        """The commenter id a new comment records, unless the presented key proves invalid
        (the script then records ``fresh_id``)."""
        if not self.fresh_secret:
            return ""  # no key involved: the comment records none
        return self.presented_id or self.fresh_id

    @classmethod
    def none(cls, email_hash: str) -> KeyExchange:
        """No key presented, none handed out (maintenance and tests)."""
        return cls(email_hash, "", "", "0" * 24, "", 0, 0)


class Commenters(StoreCore):
    def revoke_commenters(self, email_hash: str) -> int:
        """Delete every commenter record bound to this email (its keys stop working at once);
        returns how many there were. A key created while this runs is caught by the WATCH."""
        index = self.keys.author_commenters(email_hash)
        while True:
            with self.redis.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(index)
                    ids = [str(i) for i in cast(set[Any], pipe.smembers(index))]
                    pipe.multi()
                    pipe.delete(index, *(self.keys.commenter(email_hash, i) for i in ids))
                    pipe.execute()
                    mark = self.keys.replication_mark(self.keys.tag_for_author(email_hash))
                    self.replica_wait.confirm(mark, what="revocation")
                    return len(ids)
                except WatchError:
                    continue
