"""The event log: what each change of state appends, and how an entry reads back.

Every change (a comment submitted, decided, edited by its author, unpublished, deleted or
erased; an article closed or reopened; the policy changed; a moderator token created or
revoked) appends one entry to a Redis Stream from inside the script that makes the change, so
a change that happened has its event and an event describes a change that happened. The
stream id is the event's id.

An entry holds no email, no email hash and no IP hash. Nor does it hold the comment's text:
that is one key per comment beside the stream (``Keys.event_content``), joined in when an
event is read, so an erasure that deletes or anonymises the comment removes its text from
every retained event at once (a stream entry cannot be rewritten).

Retention is bounded by length (``XADD ... MAXLEN ~``) and by age (``XTRIM MINID ~``), both
inside the same scripts. An event trimmed before every webhook endpoint got it is lost to
them: keep ``EVENTS_RETENTION_DAYS`` above the longest outage a receiver may have.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import json_text
from .ids import BUCKET_BITS
from .models import StoredComment

DAY_MS = 86_400_000

# Every type an event can have (openapi.yaml lists them as the EventType enum).
COMMENT_SUBMITTED = "comment.submitted"
# An author edited their comment's words (service/author_edits.py): its status after the edit,
# the one before, the reasons the policy gave the new words. An author's deletion is
# ``comment.deleted`` with the actor ``author``.
COMMENT_EDITED = "comment.edited"
COMMENT_UNPUBLISHED = "comment.unpublished"
COMMENT_DELETED = "comment.deleted"
COMMENT_ERASED = "comment.erased"
ARTICLE_CLOSED = "article.closed"
ARTICLE_REOPENED = "article.reopened"
POLICY_CHANGED = "policy.changed"
TOKEN_CREATED = "token.created"
TOKEN_REVOKED = "token.revoked"
# A decision's event is named after its target status (the transition script spells it
# "comment." .. status), unless it takes a published comment off the page: unpublished.
DECISION_TYPES = ("comment.approved", "comment.rejected", "comment.spam", "comment.pending")
EVENT_TYPES: tuple[str, ...] = (
    COMMENT_SUBMITTED,
    *DECISION_TYPES,
    COMMENT_EDITED,
    COMMENT_UNPUBLISHED,
    COMMENT_DELETED,
    COMMENT_ERASED,
    ARTICLE_CLOSED,
    ARTICLE_REOPENED,
    POLICY_CHANGED,
    TOKEN_CREATED,
    TOKEN_REVOKED,
)


# The event streams: the site's (index 0) and one per article bucket (Keys.event_streams).
BUCKET_STREAMS = 1 << BUCKET_BITS
# A bucket's stream may hold this many times its even share of the log's length before the
# length bound trims it: a busy article's bucket fills faster than the mean (the age bound,
# MINID, is the one that normally trims).
BUCKET_SKEW = 4
# Readers by cursor (the pull API) see only events at least this old: entries of different
# buckets are stamped by different primaries' clocks, so one appended just after a read may
# carry an older time than an entry that read returned; it would sort before the cursor and be
# skipped. Consumer groups (webhooks, the spam checker) track each stream and are not affected.
SETTLE_MS = 2_000


@dataclass(frozen=True)
class EventRetention:
    """How long the event log keeps entries: the site's stream at most about ``max_length``,
    each bucket's about its share of it (:meth:`bucket_max_length`), and none older than
    ``max_age_days`` (both trimmed approximately, a macro node at a time)."""

    max_length: int = 100_000
    max_age_days: int = 7

    @property
    def bucket_max_length(self) -> int:
        """One bucket's stream's length bound: its share of ``max_length``, BUCKET_SKEW times
        over (at least 1)."""
        return max(1, -(-self.max_length * BUCKET_SKEW // BUCKET_STREAMS))

    def script_args(self, now_ms: int, *, per_bucket: bool) -> list[str | int]:
        """MAXLEN (of a bucket's stream or of the site's), the MINID cutoff and the comment
        text's TTL (ms), as the scripts take them."""
        age_ms = self.max_age_days * DAY_MS
        length = self.bucket_max_length if per_bucket else self.max_length
        return [length, max(now_ms - age_ms, 0), age_ms]


def comment_subject(comment: StoredComment) -> str:
    """The comment's part of an entry, as the scripts store it (status added by them)."""
    return json_text.compact(
        {
            "id": comment.id,
            "article_id": comment.article_id,
            "parent_id": comment.parent_id,
            "created_at": comment.created_at,
        }
    )


def comment_text(name: str, comment: str, website: str | None) -> str:
    """The public text an event shows, kept beside the stream (``Keys.event_content``)."""
    return json_text.compact({"name": name, "comment": comment, "website": website})


def stream_id_key(event_id: str) -> tuple[int, int, int]:
    """Event ids order by (ms, sequence, stream): how readers merge several streams."""
    entry, _, stream = event_id.partition("~")
    ms, _, seq = entry.partition("-")
    return int(ms), int(seq or 0), int(stream or 0)


def event_id(entry_id: str, stream_index: int) -> str:
    """An event's id: its stream entry's id, and which of ``Keys.event_streams`` holds it
    (``~<index>``, left out for the first). Two streams can give the same entry id in the
    same millisecond; the suffix keeps event ids (and so webhook-ids) unique."""
    return entry_id if stream_index == 0 else f"{entry_id}~{stream_index}"


def is_stream_id(value: str) -> bool:
    """An event id: ``<ms>-<seq>`` (each at most 19 ASCII digits, below Redis's 64-bit
    limit), optionally ``~<stream index>`` (at most 5 digits)."""
    entry, tilde, stream = value.partition("~")
    ms, sep, seq = entry.partition("-")
    parts = [(ms, 19), (seq, 19)] + ([(stream, 5)] if tilde else [])
    return bool(sep) and all(
        part.isascii() and part.isdigit() and len(part) <= size for part, size in parts
    )


def render_event(event_id: str, fields: Mapping[str, str], text: str | None) -> dict[str, Any]:
    """The ``Event`` document of one entry; ``text`` is its comment's current public text
    (None once erased or expired: the comment then shows no name, text or website)."""
    event: dict[str, Any] = {
        "id": event_id,
        "type": fields["type"],
        "at": fields["at"],
        "actor": fields["actor"],
    }
    if "comment" in fields:
        comment = json.loads(fields["comment"])
        comment["status"] = fields.get("status")
        if fields.get("from"):
            comment["previous_status"] = fields["from"]
        shown = json.loads(text) if text else {}
        comment["name"] = shown.get("name")
        comment["comment"] = shown.get("comment")
        comment["website"] = shown.get("website")
        event["comment"] = comment
        reasons = json.loads(fields.get("reasons") or "[]")
        # Lua's cjson writes an empty array as {}.
        event["reasons"] = reasons if isinstance(reasons, list) else []
    if "article_id" in fields:
        event["article"] = {"id": fields["article_id"]}
    if "moderator" in fields:
        event["token"] = {"moderator": fields["moderator"]}
    return event
