"""The delivery worker: every event of the log to every webhook endpoint that wants it, at
least once, in order.

Each endpoint reads the event streams through a consumer group of its own (``webhook:<id>``,
one per stream), so its progress, and every event it has read but not yet delivered (the
group's pending entries), live in Redis, not in a worker. Any number of workers may run: one
at a time serves an endpoint, under a short lease (``deliver-<id>``), and deliveries are shared
out endpoint by endpoint. A worker that takes an endpoint over first claims (XAUTOCLAIM) every
entry still pending with the group (a dead worker's), and delivers those, oldest first, before
reading new ones. An endpoint gets its events one after another in stream order, each retried
until it is delivered or has used its attempts, so the order per comment is kept (and per
article: an article's events are in its bucket's stream). Across buckets, each read takes up to
a batch of every stream and delivers them in stream id order, so a busy bucket's later events
may go before another bucket's older ones.

An attempt is a POST with a short timeout (sender.py); a 2xx delivers. Otherwise the next
attempt waits an exponential back-off with jitter (base × 2^(n-1), capped, half of it random),
or the receiver's Retry-After if longer. An event that used all its attempts goes to the
endpoint's dead-letter list (a moderator can replay it) and the next one is tried;
``WEBHOOK_FAILING_AFTER`` dead letters in a row mark the endpoint failing until a delivery
succeeds. Every attempt is in the endpoint's delivery log. ``webhook-id`` is the event's id,
the same on every attempt and replay, so a receiver can deduplicate.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from standardwebhooks.webhooks import Webhook

from ..clock import iso_from_ms, now_ms
from ..config import Config
from ..events import render_event
from ..store import CommentStore
from ..store.eventlog import StoredEvent
from ..store.webhooks import group_name
from ..webhook_documents import chat_body, standard_body
from ..webhooks import Endpoint
from . import observe
from .sender import Outcome, Sender

log = logging.getLogger(__name__)
SECRET_PURPOSE = "webhook-secret"
BATCH = 100
FLUSH_EVERY = 50
# How often the oldest undelivered event's age is measured (a few commands per stream and
# endpoint: with one stream per article bucket, not every second).
LAG_EVERY_SECONDS = 5.0
RETRY_AFTER_CAP_SECONDS = 3600.0
USER_AGENT = "comments-service-webhooks/1"


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Schedule:
    max_attempts: int
    base_seconds: float
    cap_seconds: float

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        wait: float = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, RETRY_AFTER_CAP_SECONDS))
        return wait


class DeliveryWorker:
    def __init__(
        self,
        store: CommentStore,
        config: Config,
        *,
        name: str | None = None,
        sender: Sender | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.name = name or worker_name()
        self.sender = sender or Sender(
            timeout=config.webhook_timeout_seconds,
            max_response_bytes=config.webhook_max_response_bytes,
            allow_private=config.webhook_allow_private,
        )
        self.schedule = Schedule(
            config.webhook_max_attempts,
            config.webhook_retry_base_seconds,
            config.webhook_retry_cap_seconds,
        )
        # The lease outlives the longest single step (one attempt) with room to renew it.
        self.lease_ms = int(
            max(config.webhook_lease_seconds, 3 * config.webhook_timeout_seconds) * 1000
        )
        self.stop = threading.Event()
        self._runners: dict[str, EndpointRunner] = {}
        self._lag_reported = 0.0

    def run(self) -> None:
        log.info("delivery worker %s started", self.name)
        try:
            while not self.stop.is_set():
                try:
                    endpoints = {e.id: e for e in self.store.webhook_list()}
                except RedisError as error:
                    log.warning("delivery worker: Redis unavailable (%s)", type(error).__name__)
                    self.stop.wait(1.0)
                    continue
                for webhook_id in endpoints.keys() - self._runners.keys():
                    runner = EndpointRunner(self, webhook_id)
                    self._runners[webhook_id] = runner
                    runner.start()
                for webhook_id in [i for i, r in self._runners.items() if not r.is_alive()]:
                    del self._runners[webhook_id]
                if time.monotonic() - self._lag_reported >= LAG_EVERY_SECONDS:
                    self._report_lag(list(endpoints.values()))
                    self._lag_reported = time.monotonic()
                self.stop.wait(1.0)
        finally:
            self.stop.set()
            for runner in self._runners.values():
                runner.join(timeout=self.config.webhook_timeout_seconds + 2)
            self.sender.close()
            log.info("delivery worker %s stopped", self.name)

    def _report_lag(self, endpoints: list[Endpoint]) -> None:
        oldest: int | None = None
        for endpoint in endpoints:
            if not endpoint.enabled:
                continue
            try:
                ms = self.store.oldest_pending_ms(group_name(endpoint.id))
            except RedisError:
                return
            if ms is not None:
                oldest = ms if oldest is None else min(oldest, ms)
        observe.oldest_undelivered((now_ms() - oldest) / 1000 if oldest is not None else 0.0)

    def signed_headers(self, endpoint: Endpoint, message_id: str, body: str) -> dict[str, str]:
        """Standard Webhooks headers, signed with every secret still valid (two during a
        rotation's grace period), by the standardwebhooks library."""
        moment = datetime.now(tz=UTC)
        signatures = [
            Webhook(self.store.cipher.decrypt(s.value, SECRET_PURPOSE)).sign(
                message_id, moment, body
            )
            for s in endpoint.valid_secrets(now_ms())
        ]
        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": " ".join(signatures),
        }


class EndpointRunner(threading.Thread):
    """One endpoint's deliveries, while this worker holds its lease."""

    def __init__(self, worker: DeliveryWorker, webhook_id: str) -> None:
        super().__init__(name=f"deliver-{webhook_id}", daemon=True)
        self.worker = worker
        self.store = worker.store
        self.webhook_id = webhook_id
        self.group = group_name(webhook_id)
        self.lease = f"deliver-{webhook_id}"
        self.rng = random.Random()
        self.holding = False
        self.pending_first = False
        self.renewed_at = 0.0
        # Deliveries made but not yet logged and acknowledged (one round trip for many).
        self.done: list[tuple[str | None, str, dict[str, Any] | None]] = []

    @property
    def stopping(self) -> bool:
        return self.worker.stop.is_set()

    def run(self) -> None:
        while not self.stopping:
            try:
                if not self.step():
                    return
            except RedisError as error:
                log.warning(
                    "deliveries to %s paused: Redis %s (%s)",
                    self.webhook_id,
                    type(error).__name__,
                    error,
                )
                self.holding = False
                self.worker.stop.wait(1.0)
            except Exception:  # a bug: logged, and the endpoint tried again (nothing is acked)
                log.exception("deliveries to %s failed", self.webhook_id)
                self.holding = False
                self.worker.stop.wait(1.0)
        if self.holding:
            try:
                self.flush()
                self.store.release_lease(self.lease, self.worker.name)
            except RedisError:
                pass

    def hold(self) -> bool:
        """Keep the lease: renewed in Redis once a third of it has passed, not per attempt."""
        moment = time.monotonic()
        if self.holding and moment - self.renewed_at < self.worker.lease_ms / 3000:
            return True
        held = self.store.hold_lease(self.lease, self.worker.name, self.worker.lease_ms)
        if held:
            self.renewed_at = moment
        else:
            self.holding = False
        return held

    def step(self) -> bool:
        """One round; False once the endpoint is gone."""
        endpoint = self.store.webhook(self.webhook_id)
        if endpoint is None:
            return False
        if not endpoint.enabled or not self.hold():
            self.worker.stop.wait(min(self.worker.lease_ms / 3000, 1.0))
            return True
        if not self.holding:
            self.holding = True
            self.store.ensure_groups(self.group, f"{endpoint.created_ms}-0")
            claimed = self.store.claim_pending(self.group, self.worker.name, 0)
            if claimed:
                log.info("deliveries to %s: took over %d pending events", endpoint.id, claimed)
            self.pending_first = True
        letter = self.store.next_replay(endpoint.id)
        if letter is not None:
            texts = self.store.with_texts([(letter["stream"], letter["id"], letter["fields"])])
            result = self.deliver(endpoint, texts[0], replay=True)
            self.flush()
            if result is not None:
                self.store.replay_finished(endpoint.id, failed=not result)
            return True
        entries = self.store.read_group(
            self.group,
            self.worker.name,
            pending=self.pending_first,
            count=BATCH,
            block_ms=None if self.pending_first else 500,
        )
        if self.pending_first and not entries:
            self.pending_first = False
            return True
        read_at = time.monotonic()
        for event in self.store.with_texts(entries):
            if self.stopping or not self.holding:
                break
            if time.monotonic() - read_at > 1.0:  # a change of URL or secrets applies soon
                endpoint = self.store.webhook(self.webhook_id) or endpoint
                read_at = time.monotonic()
            result = self.deliver(endpoint, event)
            if result is None:
                break
            if result:
                continue
            self.flush()
            if self.store.dead_letter(
                endpoint.id,
                event.stream,
                event.id,
                event.fields,
                self.worker.config.webhook_failing_after,
            ):
                log.warning("webhook %s is failing (events dead-lettered in a row)", endpoint.id)
        self.flush()
        return True

    def deliver(
        self, endpoint: Endpoint, event: StoredEvent, *, replay: bool = False
    ) -> bool | None:
        """Attempt one event until delivered (True), out of attempts (False) or interrupted
        (None: stopping or lease lost; it stays pending for whoever serves the endpoint)."""
        document = render_event(event.event_id, event.fields, event.text)
        if not endpoint.wants(document["type"]):  # acknowledged with the next flush
            self.done.append((None if replay else event.stream, event.id, None))
            return True
        if endpoint.format == "slack":
            body = chat_body(document, self.worker.config.console_url)
        else:
            body = standard_body(document)
        message_id = f"evt_{event.event_id}"
        schedule = self.worker.schedule
        for attempt in range(1, schedule.max_attempts + 1):
            if self.stopping or not self.hold():
                return None
            headers = self.worker.signed_headers(endpoint, message_id, body)
            outcome = self.worker.sender.post(endpoint.url, body.encode(), headers)
            entry = self.log_entry(document, attempt, outcome, replay)
            if outcome.ok:
                self.done.append((None if replay else event.stream, event.id, entry))
                if len(self.done) >= FLUSH_EVERY:
                    self.flush()
                return True
            self.flush()
            self.store.record_attempt(endpoint.id, entry, self.worker.config.webhook_log_length)
            if attempt < schedule.max_attempts:
                wait = schedule.delay(attempt, outcome.retry_after, self.rng)
                if not self.wait_holding(wait):
                    return None
        return False

    def flush(self) -> None:
        """Log and acknowledge the deliveries made since the last flush, in one round trip.
        A worker killed before it flushes has them delivered again by the next: at least
        once, at most FLUSH_EVERY repeats."""
        if self.done:
            done, self.done = self.done, []
            self.store.delivered(self.webhook_id, done, self.worker.config.webhook_log_length)

    def wait_holding(self, seconds: float) -> bool:
        """Wait, keeping the lease; False if stopping or the lease was lost."""
        remaining = seconds
        step = self.worker.lease_ms / 3000
        while remaining > 0:
            if self.worker.stop.wait(min(step, remaining)):
                return False
            remaining -= step
            if not self.hold():
                return False
        return True

    def log_entry(
        self, document: dict[str, Any], attempt: int, outcome: Outcome, replay: bool
    ) -> dict[str, Any]:
        result = "delivered" if outcome.ok else ("error" if outcome.status is None else "failed")
        observe.delivery(result)
        entry: dict[str, Any] = {
            "at": iso_from_ms(now_ms()),
            "event_id": document["id"],
            "event_type": document["type"],
            "attempt": attempt,
            "status": outcome.status,
            "duration_ms": outcome.duration_ms,
            "result": result,
            "replay": replay,
        }
        if outcome.error:
            entry["error"] = outcome.error
        return entry
