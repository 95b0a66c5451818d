"""Background chores: the retention purge.

Each worker process runs a small daemon thread; a short Redis lease makes sure only one of
them purges at a time. The same purge runs on demand from the CLI (`comments-service purge`).
"""

from __future__ import annotations

import logging
import os
import threading

from redis.exceptions import RedisError

from . import metrics
from .clock import now_ms
from .moderation.policy import DAY_MS
from .states import PURGEABLE
from .store import CommentStore

log = logging.getLogger(__name__)
PURGE_EVERY_SECONDS = 600
_started_in: set[int] = set()
_guard = threading.Lock()


def purge_expired(store: CommentStore, retention_days: int, *, at_ms: int | None = None) -> int:
    """Delete rejected and spam comments decided more than ``retention_days`` ago."""
    cutoff = (now_ms() if at_ms is None else at_ms) - retention_days * DAY_MS
    purged = 0
    while True:
        due = store.due_for_purge(cutoff)
        if not due:
            return purged
        for comment_id, bucket in due:
            comment = store.get(comment_id)
            if comment is None or comment.status not in PURGEABLE:
                store.forget_purged(comment_id, bucket)
                continue
            if store.delete(comment, actor="retention"):
                metrics.count_decision("purge", "retention")
                purged += 1


def start_purger(store: CommentStore, retention_days: int) -> None:
    """Start this process's purge thread once (gunicorn forks after the app is built)."""
    pid = os.getpid()
    if pid in _started_in:
        return  # every request after the first: no lock to take (a set lookup is atomic)
    with _guard:
        if pid in _started_in:
            return
        _started_in.add(pid)
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(PURGE_EVERY_SECONDS):
            try:
                if store.try_lock("purge", PURGE_EVERY_SECONDS // 2):
                    purged = purge_expired(store, retention_days)
                    if purged:
                        log.info("retention: purged %d rejected or spam comments", purged)
            except RedisError as error:  # Redis away: try again next round
                log.warning("retention purge skipped: %s", type(error).__name__)

    threading.Thread(target=run, name="retention-purge", daemon=True).start()
