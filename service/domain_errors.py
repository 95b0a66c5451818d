"""The refusals the domain decides, as plain exceptions: no statuses, no HTTP.

Each is mapped to its problem+json answer in one place, :mod:`service.errors`; what a refusal
carries here is what that answer needs (a wait, the limit that was hit), nothing more.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request the domain refuses, for a reason the client can act on."""


class ArticleClosed(DomainError):
    """A moderator closed the article for comments."""


class ParentNotPublished(DomainError):
    """The reply's parent is not a published comment of the same article."""


class CommentFlood(DomainError):
    """The policy's flood guard: comments too close together (``hourly`` False), or more than
    the hourly cap from one address (``hourly`` True)."""

    def __init__(self, retry_after_seconds: int, *, hourly: bool) -> None:
        super().__init__(retry_after_seconds, hourly)
        self.retry_after_seconds = retry_after_seconds
        self.hourly = hourly


class RateLimited(DomainError):
    """The client used up one of its rate limits; ``description`` names it ("20 per 1
    minute")."""

    def __init__(self, description: str, retry_after_seconds: int) -> None:
        super().__init__(description, retry_after_seconds)
        self.description = description
        self.retry_after_seconds = retry_after_seconds


class CommentNotFound(DomainError):
    """No comment has this id (unknown, deleted meanwhile, or not an id at all)."""


class WebhookNotFound(DomainError):
    """No webhook endpoint has this id."""


class Conflict(DomainError):
    """The comment changed under the request in a way that makes it impossible to apply;
    ``detail`` says how. (For the store's decisions: nothing raises it yet.)"""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class StaleVersion(DomainError):
    """An If-Match named a version the comment has moved on from; ``current`` is the comment
    as it is now (a StoredComment: the answer shows moderators its state)."""

    def __init__(self, current: Any) -> None:
        super().__init__(getattr(current, "id", ""))
        self.current = current


class ClaimHeld(DomainError):
    """Another moderator holds the claim on the comment: ``moderator`` since ``since`` until
    ``until`` (ISO times)."""

    def __init__(self, moderator: str, since: str, until: str) -> None:
        super().__init__(moderator, since, until)
        self.moderator = moderator
        self.since = since
        self.until = until


class InvalidIdempotencyKey(DomainError):
    """The Idempotency-Key header is not a key (1 to 255 printable ASCII characters)."""


class IdempotencyKeyReused(DomainError):
    """The client used this Idempotency-Key for a different request."""


class IdempotencyKeyInFlight(DomainError):
    """The first request with this Idempotency-Key is still being processed."""


class AlreadyReported(DomainError):
    """This client has reported this comment already (one report per client per comment)."""


class EditTokenInvalid(DomainError):
    """The edit token is missing or not this comment's."""


class EditWindowClosed(DomainError):
    """The author's edit window ended at ``ends_at`` (ISO time)."""

    def __init__(self, ends_at: str) -> None:
        super().__init__(ends_at)
        self.ends_at = ends_at


class AuthorVersionMismatch(DomainError):
    """An author's If-Match named another version than ``version``, the current one (the
    author is shown nothing else of the comment's state)."""

    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version
