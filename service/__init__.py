"""Comment moderation service."""

from .app import create_app

__all__ = ["create_app"]
