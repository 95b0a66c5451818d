from .client import make_redis
from .comments import (
    CommentStore,
    Guards,
    InsertResult,
    Judgement,
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
    "SubmissionSettings", "TransitionResult", "WindowCounter", "Judgement", "make_redis",
]
