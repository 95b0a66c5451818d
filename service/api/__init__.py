from . import data_requests  # noqa: F401  (registers its routes on the moderation blueprint)
from .moderation import bp as moderation_bp
from .ops import bp as ops_bp
from .public import bp as public_bp

__all__ = ["moderation_bp", "ops_bp", "public_bp"]
