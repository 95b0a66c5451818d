"""The spam checker's work queue: one Redis stream per article bucket (Keys.spam_checks; the
site's stream, which holds what was queued before, is read with them), each with a consumer
group, so several workers share it, an entry is acknowledged only once handled, and a crashed
worker's entries are claimed by another after a while."""

from __future__ import annotations

import time
from typing import Any, cast

from ..events import BUCKET_SKEW, BUCKET_STREAMS
from ._core import StoreCore
from .client import queue_xreadgroup

GROUP = "spamcheck"
# Entries beyond this are trimmed (approximately): a queue no worker reads stays bounded.
MAX_ENTRIES = 100_000
# ... of one bucket's stream: its share, with room for a busy bucket (as the event log's).
BUCKET_MAX_ENTRIES = -(-MAX_ENTRIES * BUCKET_SKEW // BUCKET_STREAMS)


class SpamChecks(StoreCore):
    def enqueue_spam_work(self, article_id: str, fields: dict[str, str]) -> None:
        entry: dict[Any, Any] = dict(fields)
        self.redis.xadd(
            self.keys.spam_checks(article_id), entry, maxlen=BUCKET_MAX_ENTRIES, approximate=True
        )

    def spam_work(
        self, consumer: str, count: int, block_ms: int, idle_ms: int
    ) -> list[tuple[str, str, dict[str, str]]]:
        """(stream, entry id, fields): first entries another consumer left unacknowledged
        for ``idle_ms``, then new ones (waiting up to ``block_ms``). Each step is one
        pipeline over the streams (on a cluster, one round trip per node): one XREADGROUP over
        streams of several slots would be refused, so several streams are read without BLOCK
        and the wait is a sleep here."""
        streams = self.keys.spam_check_streams()
        pipe = self.redis.pipeline(transaction=False)
        for stream in streams:
            pipe.xgroup_create(stream, GROUP, id="0", mkstream=True)
            pipe.xautoclaim(stream, GROUP, consumer, idle_ms, "0-0", count=count)
        replies = pipe.execute(raise_on_error=False)
        found: list[tuple[str, str, dict[str, str]]] = []
        for stream, created, claimed in zip(streams, replies[::2], replies[1::2], strict=True):
            for reply in (created, claimed):
                if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
                    raise reply
            found += [(stream, i, f) for i, f in claimed[1] if f]
        if found:
            return found
        if len(streams) == 1:
            # BLOCK 0 would wait for ever: no wait is no BLOCK at all.
            read = [
                self.redis.xreadgroup(
                    GROUP, consumer, {streams[0]: ">"}, count=count, block=block_ms or None
                )
            ]
        else:
            pipe = self.redis.pipeline(transaction=False)
            for stream in streams:
                queue_xreadgroup(self.redis, pipe, GROUP, consumer, stream, ">", count)
            read = pipe.execute()
        # RESP2 (the store's protocol): [[stream, [(id, fields), ...]], ...]
        for reply in read:
            for stream_name, entries in cast(list[Any], reply or []):
                found += [(str(stream_name), str(i), dict(f)) for i, f in entries if f]
        if not found and len(streams) > 1 and block_ms:
            time.sleep(min(block_ms, 250) / 1000)
        return found

    def spam_work_done(self, stream: str, entry_id: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(stream, GROUP, entry_id)
        pipe.xdel(stream, entry_id)  # it may carry an encrypted client address
        pipe.execute()
