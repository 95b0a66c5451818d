"""The spam checker's work queue: one Redis stream with a consumer group, so several workers
share it, an entry is acknowledged only once handled, and a crashed worker's entries are
claimed by another after a while."""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from ._core import StoreCore

GROUP = "spamcheck"
# Entries beyond this are trimmed (approximately): a queue no worker reads stays bounded.
MAX_ENTRIES = 100_000


class SpamChecks(StoreCore):
    def enqueue_spam_work(self, article_id: str, fields: dict[str, str]) -> None:
        entry: dict[Any, Any] = dict(fields)
        self.redis.xadd(
            self.keys.spam_checks(article_id), entry, maxlen=MAX_ENTRIES, approximate=True
        )

    def spam_work(
        self, consumer: str, count: int, block_ms: int, idle_ms: int
    ) -> list[tuple[str, str, dict[str, str]]]:
        """(stream, entry id, fields): first entries another consumer left unacknowledged
        for ``idle_ms``, then new ones (waiting up to ``block_ms``)."""
        found: list[tuple[str, str, dict[str, str]]] = []
        for stream in self.keys.spam_check_streams():
            self._ensure_group(stream)
            claimed: Any = self.redis.xautoclaim(
                stream, GROUP, consumer, idle_ms, "0-0", count=count
            )
            found += [(stream, i, f) for i, f in claimed[1] if f]
        if found:
            return found
        streams: dict[Any, Any] = dict.fromkeys(self.keys.spam_check_streams(), ">")
        # BLOCK 0 would wait for ever: no wait is no BLOCK at all.
        block = block_ms or None
        reply: Any = self.redis.xreadgroup(GROUP, consumer, streams, count=count, block=block)
        # RESP2 (the store's protocol): [[stream, [(id, fields), ...]], ...]
        for stream, entries in reply or []:
            found += [(str(stream), str(i), dict(f)) for i, f in entries if f]
        return found

    def spam_work_done(self, stream: str, entry_id: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(stream, GROUP, entry_id)
        pipe.xdel(stream, entry_id)  # it may carry an encrypted client address
        pipe.execute()

    def _ensure_group(self, stream: str) -> None:
        try:
            self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
