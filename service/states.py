"""A comment's states, and everything each state implies: the one definition of both.

The store's scripts, the schemas' and the contract's enums, the retention purge and the store
consistency checker all derive what they need from :data:`STATE_RULES`; nothing else spells
out, say, that a spam comment waits for the purge or that only an approved one is public.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SPAM = "spam"


@dataclass(frozen=True)
class StateRule:
    """What being in one status means for a comment."""

    # In its article's public hash and approved index: readers see it, its content lives in
    # the public document only.
    public: bool
    # In the retention index: its personal data is purged some days after the decision.
    awaits_purge: bool
    # The field of the author's record stamped (with the time) when a comment enters this
    # status: the trusted-commenter rule reads these stamps.
    author_stamp: str | None
    # The moderation API's verb that moves a comment here (None: no decision leads here).
    decision: str | None


STATE_RULES: MappingProxyType[Status, StateRule] = MappingProxyType(
    {
        Status.PENDING: StateRule(
            public=False, awaits_purge=False, author_stamp=None, decision=None
        ),
        Status.APPROVED: StateRule(
            public=True, awaits_purge=False, author_stamp="last_approved", decision="approve"
        ),
        Status.REJECTED: StateRule(
            public=False, awaits_purge=True, author_stamp="last_negative", decision="reject"
        ),
        Status.SPAM: StateRule(
            public=False, awaits_purge=True, author_stamp="last_negative", decision="spam"
        ),
    }
)

# Index groups, script arguments and listings use this order.
STATUSES: tuple[Status, ...] = tuple(Status)
STATUS_VALUES: tuple[str, ...] = tuple(s.value for s in Status)
# The moderation API's decision verb -> the status it moves a comment to.
DECISIONS: MappingProxyType[str, Status] = MappingProxyType(
    {rule.decision: status for status, rule in STATE_RULES.items() if rule.decision}
)
PURGEABLE: frozenset[Status] = frozenset(s for s, r in STATE_RULES.items() if r.awaits_purge)


def rule(status: str) -> StateRule:
    """The rule of a status given as stored (a plain string)."""
    return STATE_RULES[Status(status)]


# The bulk decisions' actions: every decision verb, and "requeue", back to pending (the
# console's Undo of a decision taken on a pending comment sends it).
BULK_ACTIONS: MappingProxyType[str, Status] = MappingProxyType(
    {**DECISIONS, "requeue": Status.PENDING}
)
