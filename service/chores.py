"""Background chores: the retention purge, and on a cluster the sweep of split changes' owed
steps (service/store/sweep.py).

Each worker process runs a small daemon thread per chore; a short Redis lease makes sure only
one of them runs it at a time. Both run on demand from the CLI (`comments-service purge`,
`comments-service sweep`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from redis.exceptions import RedisError

from . import metrics
from .clock import now_ms
from .moderation.policy import DAY_MS
from .states import PURGEABLE
from .store import CommentStore
from .store.steps import STEP_TIMEOUT_MS
from .store.sweep import SweepReport

log = logging.getLogger(__name__)
PURGE_EVERY_SECONDS = 600
# An abandoned step is one older than STEP_TIMEOUT_MS: looking as often finds it at most twice
# that late. The lease outlives a pass (one round trip per node, then the few owed steps).
SWEEP_EVERY_SECONDS = STEP_TIMEOUT_MS / 1000
SWEEP_LEASE_MS = 60_000
SWEEP_LEASE = "sweep"
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


def sweep_owed(
    store: CommentStore, *, at_ms: int | None = None, holder: str | None = None
) -> SweepReport | None:
    """One sweep of the owed steps under the sweep's lease (as the delivery worker's lease:
    held by one process at a time, released after); None when another process holds it."""
    holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if not store.hold_lease(SWEEP_LEASE, holder, SWEEP_LEASE_MS):
        return None
    try:
        return store.sweep_owed(at_ms=at_ms)
    finally:
        store.release_lease(SWEEP_LEASE, holder)


def start_sweeper(store: CommentStore) -> None:
    """This process's sweep thread (start_purger starts it once, on a stepped store only: a
    single server's changes are one script each and owe nothing)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(SWEEP_EVERY_SECONDS):
            try:
                report = sweep_owed(store)
                if report and (report.completed or report.dropped):
                    log.info(
                        "sweep: completed %d changes, dropped %d stale entries",
                        report.completed,
                        report.dropped,
                    )
            except RedisError as error:  # Redis away: try again next round
                log.warning("sweep skipped: %s", type(error).__name__)

    threading.Thread(target=run, name="step-sweep", daemon=True).start()


def start_purger(store: CommentStore, retention_days: int) -> None:
    """Start this process's purge thread once (gunicorn forks after the app is built), and its
    sweep thread when the store runs split changes stepped."""
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
    if store.stepped:
        start_sweeper(store)
