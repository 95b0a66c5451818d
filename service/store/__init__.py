from .client import make_redis
from .comments import (
    CommentStore,
    Guards,
    InsertResult,
    Listing,
    Outcome,
    Page,
    SubmissionFacts,
    TransitionResult,
)
from .keys import STATUSES, Keys

__all__ = [
    "STATUSES", "CommentStore", "Guards", "InsertResult", "Keys", "Listing", "Outcome", "Page",
    "SubmissionFacts", "TransitionResult", "make_redis",
]
