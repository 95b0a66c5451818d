"""What every reader yields, and the guards every reader reads through."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import IO, Any

from ..models import HistoryEntry

# One record of a source (a WXR item with its comments, a Disqus post, a JSONL line) larger
# than this is refused: a comment is at most 5,000 characters, so a record this size is a
# broken or hostile file, and refusing it keeps memory flat.
MAX_RECORD_BYTES = 32 * 1024 * 1024


class FormatError(Exception):
    """The file is not the named format, or is malformed or hostile: the import stops."""


@dataclass(frozen=True)
class Thread:
    """A source's post or thread: what an article id can be made from (--article-id)."""

    url: str | None = None
    post_id: str | None = None
    thread_id: str | None = None
    # Given as is by our own format (no rule applies).
    article_id: str | None = None
    closed: bool = False


@dataclass(frozen=True)
class SourceComment:
    """One comment as its source holds it, its text already plain (html_text.py)."""

    source: str  # the stable source id, e.g. "wordpress:https://blog.example:42"
    thread: Thread
    parent_source: str | None  # the parent's source id (same thread), if a reply
    name: str
    email: str
    website: str | None
    text: str
    created_ms: int
    status: str  # the source's decision, as one of our statuses
    client_ip: str | None = None  # for --rejudge only: a comment keeps no IP
    # Our own format carries the rest of what the service holds:
    comment_id: str | None = None
    parent_id: str | None = None
    reasons: tuple[dict[str, str], ...] = ()
    history: tuple[HistoryEntry, ...] = field(default=())
    commenter_id: str = ""
    anonymised: bool = False
    # The record's version (what moderators' If-Match compares), the author's earlier words
    # and the keyed hash of their edit token: a backup restores them as they were.
    version: int = 1
    edits: tuple[dict[str, Any], ...] = ()
    edit_token_hash: str = ""


# A comment's fields after a live submission's checks (run.FieldCheck): the valid, normalised
# fields, or why a live submission with them would be refused.
Verdict = dict[str, Any] | str


@dataclass(frozen=True)
class Checked:
    """A comment whose fields a reader process checked already (reader_process.py)."""

    item: SourceComment
    verdict: Verdict


@dataclass(frozen=True)
class Skipped:
    """A record of the source that is not imported, and why (counted in the report)."""

    source: str
    reason: str  # a short code: "pingback", "invalid", ...
    detail: str = ""


class BoundedReader(io.RawIOBase):
    """A binary file read through: counts the bytes (for progress) and refuses a record
    larger than MAX_RECORD_BYTES since the last :meth:`record_done`."""

    def __init__(self, raw: IO[bytes], limit: int = MAX_RECORD_BYTES) -> None:
        self.raw = raw
        self.limit = limit
        self.position = 0
        self._record_start = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.position - self._record_start > self.limit:
            raise FormatError(
                f"a record larger than {self.limit // (1024 * 1024)} MiB before byte "
                f"{self.position}: refused (a broken or hostile file)"
            )
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)

    def record_done(self) -> None:
        self._record_start = self.position
