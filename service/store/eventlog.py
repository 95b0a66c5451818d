"""The event log as readers see it: pages of every stream merged by stream id, each entry
with its comment's current text (service/events.py explains why the text is apart)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .. import clock
from ..events import SETTLE_MS, event_id, stream_id_key
from ._core import StoreCore
from .client import mget


@dataclass(frozen=True)
class StoredEvent:
    """One entry of the log: its stream, entry id, fields, its comment's text (JSON or None)
    and its event id (events.event_id: unique over every stream)."""

    stream: str
    id: str
    fields: dict[str, str]
    text: str | None
    event_id: str


class EventLog(StoreCore):
    def events_after(
        self, after: str | None, limit: int, *, now_ms: int | None = None
    ) -> list[StoredEvent]:
        """The first ``limit`` events after the event id ``after`` (None: from the start),
        over every stream (Keys.event_streams), oldest first, of those at least SETTLE_MS old
        by ``now_ms`` (default: now; service/events.py says why): one pipeline, so one round
        trip (on a cluster one per node), and one more for the texts. Events of streams after
        ``after``'s own may share its entry id, so those are read from it inclusively."""
        streams = self.keys.event_streams()
        # Complete to the last sequence of that millisecond by XRANGE: the whole ms is in.
        settled = str(max((clock.now_ms() if now_ms is None else now_ms) - SETTLE_MS, 0))
        pipe = self.redis.pipeline(transaction=False)
        if after is None:
            for stream in streams:
                pipe.xrange(stream, min="-", max=settled, count=limit)
        else:
            ms, seq, index = stream_id_key(after)
            for i, stream in enumerate(streams):
                start = f"({ms}-{seq}" if i <= index else f"{ms}-{seq}"
                pipe.xrange(stream, min=start, max=settled, count=limit)
        pages = pipe.execute()
        found = [
            (event_id(entry_id, i), stream, entry_id, fields)
            for i, (stream, page) in enumerate(zip(streams, pages, strict=True))
            for entry_id, fields in page
        ]
        found.sort(key=lambda e: stream_id_key(e[0]))
        return self.with_texts([(stream, i, f) for _, stream, i, f in found[:limit]])

    def with_texts(self, entries: list[tuple[str, str, dict[str, str]]]) -> list[StoredEvent]:
        """Entries (stream, id, fields) with their comments' texts, in one MGET (on a cluster
        one a slot, pipelined)."""
        text_keys = [
            self.keys.event_content(*_comment_of(f)) for _, _, f in entries if "comment" in f
        ]
        texts = iter(mget(self.redis, text_keys))
        index = {stream: i for i, stream in enumerate(self.keys.event_streams())}
        return [
            StoredEvent(
                stream,
                entry_id,
                fields,
                next(texts) if "comment" in fields else None,
                event_id(entry_id, index.get(stream, 0)),
            )
            for stream, entry_id, fields in entries
        ]


def _comment_of(fields: dict[str, str]) -> tuple[str, str]:
    """The article and comment ids of an entry's subject (events.comment_subject)."""
    subject: dict[str, str] = json.loads(fields["comment"])
    return subject["article_id"], subject["id"]
