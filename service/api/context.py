"""What the blueprints share: the app's store, settings and schemas, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from marshmallow import Schema

from ..author_edits import AuthorEdits
from ..config import Config
from ..hashing import Hasher
from ..idempotency import IdempotentRequests
from ..moderation.policy import ProfanityFinder
from ..reader_reports import ReaderReports
from ..store import CommentStore
from ..submissions import Submissions
from .ratelimit import RateLimits

EXTENSION_KEY = "comment_service"


@dataclass(frozen=True)
class Services:
    config: Config
    store: CommentStore
    submission_schema: Schema
    form_submission_schema: Schema
    hasher: Hasher
    profanity: ProfanityFinder
    bootstrap_token_hashes: dict[str, str]
    rate_limits: RateLimits
    submissions: Submissions
    idempotency: IdempotentRequests
    reports: ReaderReports
    author_edits: AuthorEdits


def services() -> Services:
    found: Services = current_app.extensions[EXTENSION_KEY]
    return found
