"""CommentStore: the one object callers use, assembled from the store's rooms.

Each room is a module of its own concern (inserts, decisions, reads, personal data,
moderators, settings, commenter keys, claims, imports and exports, the event log and
webhooks) over a shared core (client, key schema, cipher, caches, scripts); the record codec
sits beneath the rooms that read records.
"""

from __future__ import annotations

from .campaigns import Campaigns
from .claims import Claims
from .commenters import Commenters
from .decisions import Decisions
from .edits import Edits
from .eventlog import EventLog
from .feeds import Feeds
from .idempotency import IdempotencyRecords
from .imports import Imports
from .inserts import Inserts
from .layout import Layouts
from .moderators import Moderators
from .personal import PersonalData
from .reads import Reads
from .reports import Reports
from .settings import Settings
from .spamchecks import SpamChecks
from .sweep import Sweeps
from .webhooks import Webhooks


class CommentStore(
    Sweeps,
    Imports,
    Inserts,
    Decisions,
    Reads,
    PersonalData,
    Moderators,
    Settings,
    Commenters,
    Feeds,
    EventLog,
    Webhooks,
    Claims,
    IdempotencyRecords,
    Reports,
    Edits,
    SpamChecks,
    Campaigns,
    Layouts,
):
    """The only code that speaks Redis for comments, policy, articles and moderators (the rate
    limiter's counters are the store's too, beside it: see ratelimits.py)."""
