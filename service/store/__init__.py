"""The store: the only code that speaks Redis about the service's data: comments, policy,
articles, moderators (facade.py) and the rate-limit counters (ratelimits.py). The tracked cache
(service/tracked_cache) only listens to Redis for its own invalidations."""

from .campaigns import CampaignJoined, CampaignProbe
from .check import CheckReport, StoreCheck, check_store, history_problems
from .claims import Claim, ClaimAnswer, ClaimRefused
from .client import make_redis
from .commenters import KeyExchange
from .decisions import ContentChanged, Move, MoveOutcome, VersionMismatch
from .facade import CommentStore
from .imports import DecidedComment
from .inserts import Guards, InsertResult, Judgement, Outcome, WindowCounter
from .keys import STATUSES, Keys
from .ratelimits import RateLimitCounters
from .reads import Listing, Page
from .reports import Report, ReportOutcome, ReportResult
from .settings import SubmissionSettings

__all__ = [
    "STATUSES",
    "CampaignJoined",
    "CampaignProbe",
    "CommentStore",
    "DecidedComment",
    "Claim",
    "ClaimAnswer",
    "ClaimRefused",
    "Guards",
    "InsertResult",
    "Keys",
    "Listing",
    "Outcome",
    "Page",
    "Report",
    "ReportOutcome",
    "ReportResult",
    "RateLimitCounters",
    "SubmissionSettings",
    "ContentChanged",
    "VersionMismatch",
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
