"""The store: the only code that speaks Redis for the comment domain (see facade.py)."""

from .client import make_redis
from .commenters import KeyExchange
from .decisions import TransitionResult
from .facade import CommentStore
from .inserts import Guards, InsertResult, Judgement, Outcome, WindowCounter
from .keys import STATUSES, Keys
from .reads import Listing, Page
from .settings import SubmissionSettings

__all__ = [
    "STATUSES", "CommentStore", "Guards", "InsertResult", "Keys", "Listing", "Outcome", "Page",
    "SubmissionSettings", "TransitionResult", "WindowCounter", "Judgement", "KeyExchange",
    "make_redis",
]
