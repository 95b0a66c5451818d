"""The event log as readers see it: pages of every stream merged by stream id, each entry
with its comment's current text (service/events.py explains why the text is apart)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from ..events import merge_pages
from ._core import StoreCore


@dataclass(frozen=True)
class StoredEvent:
    """One entry of the log: its stream, id, fields and its comment's text (JSON or None)."""

    stream: str
    id: str
    fields: dict[str, str]
    text: str | None


class EventLog(StoreCore):
    def events_after(self, after: str | None, limit: int) -> list[StoredEvent]:
        """The first ``limit`` events after ``after`` (a stream id; None: from the start),
        over every stream (Keys.event_streams), oldest first: one round trip."""
        streams = self.keys.event_streams()
        start = "-" if after is None else f"({after}"
        pipe = self.redis.pipeline(transaction=False)
        for stream in streams:
            pipe.xrange(stream, min=start, max="+", count=limit)
        pages = pipe.execute()
        tagged = [
            (entry_id, {**fields, "\0stream": stream})
            for stream, page in zip(streams, pages, strict=True)
            for entry_id, fields in page
        ]
        chosen = merge_pages([tagged], limit)
        return self.with_texts(
            [(fields.pop("\0stream"), entry_id, fields) for entry_id, fields in chosen]
        )

    def with_texts(self, entries: list[tuple[str, str, dict[str, str]]]) -> list[StoredEvent]:
        """Entries (stream, id, fields) with their comments' texts, in one MGET."""
        text_keys = [
            self.keys.event_content(*_comment_of(f)) for _, _, f in entries if "comment" in f
        ]
        texts = iter(cast(list[Any], self.redis.mget(text_keys)) if text_keys else [])
        return [
            StoredEvent(stream, entry_id, fields, next(texts) if "comment" in fields else None)
            for stream, entry_id, fields in entries
        ]


def _comment_of(fields: dict[str, str]) -> tuple[str, str]:
    """The article and comment ids of an entry's subject (events.comment_subject)."""
    subject: dict[str, str] = json.loads(fields["comment"])
    return subject["article_id"], subject["id"]
