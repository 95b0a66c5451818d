"""Records campaign sketches off the request path, in batches, on a thread of the worker.

A submission looks its sketch up (a read, costing Redis no fsync) before its insert; recording
it is a write, and one more write per submission costs one more fsync (under ``appendfsync
always``, as the embedded Redis runs): measured, it made a submission 1.5-2x slower
(bench/campaign_bench.py). So sketches are recorded after the answer, gathered for up to
:data:`GATHER_SECONDS` and written in one pipeline, one fsync per batch. A sketch is visible to
later lookups that much later, which a campaign (texts over minutes and hours) does not notice;
one lost to a crash only makes detection miss one text: nothing acknowledged depends on it.
``flush`` waits for what is queued (tests; shutdown).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
QUEUE_BOUND = 10_000  # beyond this, sketches are dropped rather than memory grown
GATHER_SECONDS = 0.05
BATCH = 500


class SketchRecorder(Generic[T]):
    def __init__(self, write: Callable[[list[T]], None]) -> None:
        self._write = write
        self._queue: queue.Queue[T] = queue.Queue(QUEUE_BOUND)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, item: T) -> None:
        self._ensure_thread()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            log.warning("campaign sketch dropped: the recorder's queue is full")

    def flush(self) -> None:
        if self._thread is not None:
            self._queue.join()

    def _ensure_thread(self) -> None:
        # Started on first use, so that it lives in the process that serves (after a fork).
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="campaign-sketches", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            until = time.monotonic() + GATHER_SECONDS
            while len(batch) < BATCH:
                left = until - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=left))
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except Exception as error:  # Redis away: these sketches are lost, later ones land
                log.warning(
                    "%d campaign sketches not recorded: %s", len(batch), type(error).__name__
                )
            finally:
                for _ in batch:
                    self._queue.task_done()
