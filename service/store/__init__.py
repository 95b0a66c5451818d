"""The store: the only code that speaks Redis about the service's data: comments, policy,
articles, moderators (facade.py) and the rate-limit counters (ratelimits.py). The tracked cache
(service/tracked_cache) only listens to Redis for its own invalidations."""

from .check import CheckReport, StoreCheck, check_store, history_problems
from .client import make_redis
from .commenters import KeyExchange
from .decisions import ContentChanged, Move, MoveOutcome
from .facade import CommentStore
from .inserts import Guards, InsertResult, Judgement, Outcome, WindowCounter
from .keys import STATUSES, Keys
from .ratelimits import RateLimitCounters
from .reads import Listing, Page
from .settings import SubmissionSettings

__all__ = [
    "STATUSES",
    "CommentStore",
    "Guards",
    "InsertResult",
    "Keys",
    "Listing",
    "Outcome",
    "Page",
    "RateLimitCounters",
    "SubmissionSettings",
    "ContentChanged",
    "Move",
    "MoveOutcome",
    "WindowCounter",
    "Judgement",
    "KeyExchange",
    "make_redis",
    "CheckReport",
    "StoreCheck",
    "check_store",
    "history_problems",
]
