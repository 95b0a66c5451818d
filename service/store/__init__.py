from .client import make_redis
from .comments import (
    Candidate,
    CommentStore,
    Guards,
    InsertResult,
    Listing,
    Outcome,
    Page,
    SubmissionSettings,
    TransitionResult,
    WindowCounter,
)
from .keys import STATUSES, Keys

__all__ = [
    "STATUSES", "CommentStore", "Guards", "InsertResult", "Keys", "Listing", "Outcome", "Page",
    "SubmissionSettings", "TransitionResult", "WindowCounter", "Candidate", "make_redis",
]
