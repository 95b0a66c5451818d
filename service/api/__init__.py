from .campaigns import bp as campaigns_bp
from .data_requests import bp as data_requests_bp
from .moderation import bp as moderation_bp
from .ops import bp as ops_bp
from .public import bp as public_bp

__all__ = ["campaigns_bp", "data_requests_bp", "moderation_bp", "ops_bp", "public_bp"]
