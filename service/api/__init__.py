from .campaigns import bp as campaigns_bp
from .data_requests import bp as data_requests_bp
from .events import bp as events_bp
from .feeds import bp as feeds_bp
from .moderation import bp as moderation_bp
from .observe import bp as observe_bp
from .ops import bp as ops_bp
from .public import bp as public_bp
from .webhooks import bp as webhooks_bp

__all__ = [
    "campaigns_bp",
    "data_requests_bp",
    "events_bp",
    "feeds_bp",
    "moderation_bp",
    "observe_bp",
    "ops_bp",
    "public_bp",
    "webhooks_bp",
]
