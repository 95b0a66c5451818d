"""Prometheus metrics: every metric the service exposes, defined here, recorded by the code that
knows what happened, exposed by ``GET /metrics`` (service/api/observe.py, service/wsgi.py).

prometheus-client runs in **multiprocess mode**: each process (gunicorn's workers, the delivery
worker, the CLI) writes its values to memory-mapped files in one shared directory, and a scrape
adds them up, so a counter counts every worker's requests whichever process answers the scrape.
The mode is chosen when prometheus_client is imported, from ``PROMETHEUS_MULTIPROC_DIR``, so
this module makes sure the variable is set before it imports the library
(:func:`service.config.metrics_directory`: the launcher's DATA_DIR/metrics under ``make run``,
the operator's directory if named, else a fresh temporary one), and refuses to load if
something imported prometheus_client first (its values would then be per process, and wrong).

A dead process's counters stay in its files (a counter must not go down when a worker is
replaced); its live gauges are removed at the next scrape (:func:`sweep_dead_processes`).

For other modules: record through the functions below (``count_*``, ``observe_*``), which
cost nothing when ``METRICS_ENABLED=false``, or use the metric objects directly in a worker
process. Label values are always from a closed set (a route's rule, never its path; an outcome
name; an exception class), never from what a client sent.

Metric                                          type       labels
http_request_duration_seconds                   histogram  route, method, status (its _count
                                                           is the request count)
comment_submissions_total                       counter    outcome: approved, held, spam,
                                                           conflict (409), rate_limited (429),
                                                           invalid (422), refused (other 4xx),
                                                           error (5xx)
moderation_decisions_total                      counter    action, actor (moderator, policy,
                                                           retention)
moderation_queue_pending                        gauge      - (read from Redis at scrape time)
moderation_queue_oldest_pending_seconds         gauge      - (the same, 0 for an empty queue)
read_cache_hits_total / read_cache_misses_total counter    cache: public, moderation
redis_errors_total                              counter    kind: the redis-py exception class
webhook_deliveries_total                        counter    result (the delivery worker's)
webhook_oldest_undelivered_event_age_seconds    gauge      - (set by delivery workers; max)
smtp_sends_total                                counter    result (the notifier's)
rate_limits_not_counted_total                   counter    scope: submit, read, report (a limit
                                                           Redis could not count: let through)
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .config import metrics_directory

if "prometheus_client" in sys.modules and not getattr(
    sys.modules["prometheus_client"].values.ValueClass, "_multiprocess", False
):
    raise RuntimeError(
        "prometheus_client was imported before service.metrics, outside multiprocess mode; "
        "import service.metrics first"
    )
METRICS_DIR: Path = metrics_directory()

from prometheus_client import (  # noqa: E402  (the directory must be named first)
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric  # noqa: E402
from prometheus_client.multiprocess import (  # noqa: E402
    MultiProcessCollector,
    mark_process_dead,
)

log = logging.getLogger(__name__)
EXPOSITION_CONTENT_TYPE = CONTENT_TYPE_LATEST
# Re-exported: every other module reaches prometheus_client through this one (imported first).
serve_http = start_http_server

# From half a millisecond (a page from a worker's memory) to REDIS_TIMEOUT and beyond.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Methods a route can have; anything else a client sends is counted as "other".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"  # 404s and 405s no route took: never the path itself

# registry=None: nothing is registered in the default registry, which in multiprocess mode
# would expose one process's values; a scrape reads the files (render below).
REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the app receiving a request to its response, by route rule, method and status.",
    ("route", "method", "status"),
    buckets=LATENCY_BUCKETS,
    registry=None,
)
SUBMISSIONS = Counter(
    "comment_submissions",
    "Comment submissions by outcome.",
    ("outcome",),
    registry=None,
)
DECISIONS = Counter(
    "moderation_decisions",
    "State changes of comments by action (approve, reject, spam, hold, delete, purge) and "
    "actor type (moderator, policy, retention).",
    ("action", "actor"),
    registry=None,
)
READ_CACHE_HITS = Counter(
    "read_cache_hits",
    "Reads answered from a worker's memory (service/tracked_cache).",
    ("cache",),
    registry=None,
)
READ_CACHE_MISSES = Counter(
    "read_cache_misses",
    "Reads the worker's memory could not answer (not cached, or not trustworthy right now).",
    ("cache",),
    registry=None,
)
REDIS_ERRORS = Counter(
    "redis_errors",
    "Redis errors that reached a request, by redis-py exception class.",
    ("kind",),
    registry=None,
)
WEBHOOK_DELIVERIES = Counter(
    "webhook_deliveries",
    "Webhook delivery attempts by result (recorded by the delivery worker).",
    ("result",),
    registry=None,
)
WEBHOOK_OLDEST_UNDELIVERED = Gauge(
    "webhook_oldest_undelivered_event_age_seconds",
    "Age of the oldest event not yet delivered to every endpoint that wants it (the largest "
    "any live delivery worker reports).",
    registry=None,
    multiprocess_mode="livemax",
)
RATE_LIMITS_NOT_COUNTED = Counter(
    "rate_limits_not_counted",
    "Requests let through because Redis could not count their rate limit (fail open).",
    ("scope",),
    registry=None,
)
SMTP_SENDS = Counter(
    "smtp_sends",
    "Moderator notification mails by result (recorded by the notifier).",
    ("result",),
    registry=None,
)

SUBMISSION_OUTCOMES = (
    "approved",
    "held",
    "spam",
    "conflict",
    "rate_limited",
    "invalid",
    "refused",
    "error",
)


class _Switch:
    """Whether this process records anything (METRICS_ENABLED; the bench measures both)."""

    enabled = True


switch = _Switch()
_request_series: dict[tuple[str, str, int], Any] = {}
# labels() takes a lock and builds a key each call: each series is looked up once.
_series: dict[tuple[Any, tuple[str, ...]], Any] = {}


def _series_of(metric: Any, *values: str) -> Any:
    key = (metric, values)
    series = _series.get(key)
    if series is None:
        series = _series[key] = metric.labels(*values)
    return series


def set_enabled(enabled: bool) -> None:
    """Metrics are the process's (one app per process under any server): the app factory
    sets this from its config, so the last app built in a process decides."""
    switch.enabled = enabled


def observe_request(route: str | None, method: str, status: int, seconds: float) -> None:
    if not switch.enabled:
        return
    series_key = (route or UNMATCHED_ROUTE, method, status)
    series = _request_series.get(series_key)
    if series is None:  # labels() takes a lock and builds a tuple: once per series
        label_method = method if method in KNOWN_METHODS else "other"
        series = REQUEST_DURATION.labels(series_key[0], label_method, str(status))
        _request_series[series_key] = series
    series.observe(seconds)


def submission_outcome(status: int, verdict: str | None) -> str:
    """The outcome label of a submission answered ``status`` (``verdict``: the stored status
    when it was accepted)."""
    if status in (200, 201, 202, 303):
        if verdict == "approved":
            return "approved"
        return "spam" if verdict == "spam" else "held"
    if status == 409:
        return "conflict"
    if status == 429:
        return "rate_limited"
    if status == 422:
        return "invalid"
    return "error" if status >= 500 else "refused"


def count_submission(outcome: str) -> None:
    if switch.enabled:
        _series_of(SUBMISSIONS, outcome).inc()


def count_decision(action: str, actor: str) -> None:
    if switch.enabled:
        _series_of(DECISIONS, action, actor).inc()


def count_redis_error(error: BaseException) -> None:
    if switch.enabled:
        _series_of(REDIS_ERRORS, type(error).__name__).inc()


def count_webhook_delivery(result: str) -> None:
    if switch.enabled:
        _series_of(WEBHOOK_DELIVERIES, result).inc()


def set_oldest_undelivered_age(seconds: float) -> None:
    if switch.enabled:
        WEBHOOK_OLDEST_UNDELIVERED.set(seconds)


def count_rate_limit_not_counted(scope: str) -> None:
    if switch.enabled:
        _series_of(RATE_LIMITS_NOT_COUNTED, scope).inc()


def count_smtp_send(result: str) -> None:
    if switch.enabled:
        _series_of(SMTP_SENDS, result).inc()


class CacheCounters:
    """Hit and miss counters of one named cache, for :class:`~service.tracked_cache.TrackedCache`
    (which knows nothing of Prometheus: it calls ``hit`` and ``miss``)."""

    def __init__(self, cache: str) -> None:
        self._hits = READ_CACHE_HITS.labels(cache)
        self._misses = READ_CACHE_MISSES.labels(cache)

    def hit(self, count: int = 1) -> None:
        if switch.enabled:
            self._hits.inc(count)

    def miss(self, count: int = 1) -> None:
        if switch.enabled:
            self._misses.inc(count)


# -- scraping ---------------------------------------------------------------------------------

QueueSummary = Callable[[], tuple[int, float]]


class QueueCollector:
    """``moderation_queue_pending`` and ``..._oldest_pending_seconds``, read when scraped (one
    Redis round trip per scrape, nothing per request): ``summary`` returns the count of
    pending comments and the oldest one's age in seconds."""

    def __init__(self, summary: QueueSummary, *, count_errors: bool = True) -> None:
        self.summary = summary
        # Off in a process that forks (gunicorn's master): a fork while this thread held
        # prometheus-client's value lock would leave the child's copy locked for good.
        self.count_errors = count_errors

    def collect(self) -> Iterator[Metric]:
        from redis.exceptions import RedisError

        try:
            pending, oldest_seconds = self.summary()
        except RedisError as error:
            if self.count_errors:
                count_redis_error(error)
            log.warning("metrics: moderation queue unreadable: %s", type(error).__name__)
            return
        yield GaugeMetricFamily(
            "moderation_queue_pending", "Comments waiting for a moderator.", value=pending
        )
        yield GaugeMetricFamily(
            "moderation_queue_oldest_pending_seconds",
            "How long the oldest pending comment has waited (0 when none waits).",
            value=oldest_seconds,
        )


def sweep_dead_processes(directory: Path = METRICS_DIR) -> list[int]:
    """Remove the live gauges of processes that are gone (their counters stay); the pids."""
    dead = []
    for path in directory.glob("gauge_live*_*.db"):
        try:
            pid = int(path.stem.rsplit("_", 1)[1])
        except ValueError:
            continue
        if pid not in dead and not _alive(pid):
            dead.append(pid)
    for pid in dead:
        mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ScrapeRegistry(CollectorRegistry):
    """What a scrape reads: every process's files, then the ``extra`` collectors (the queue),
    each time it is collected (also what the separate metrics port serves)."""

    def __init__(self, extra: Iterable[Any] = (), directory: Path = METRICS_DIR) -> None:
        super().__init__(auto_describe=False)
        self.extra = list(extra)
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        sweep_dead_processes(self.directory)
        files = MultiProcessCollector(None, path=str(self.directory))  # type: ignore[no-untyped-call]
        yield from files.collect()  # type: ignore[no-untyped-call]
        for collector in self.extra:
            yield from collector.collect()


def render(extra: Iterable[Any] = (), directory: Path = METRICS_DIR) -> bytes:
    """The exposition of every process's metrics plus ``extra`` collectors (scrape time)."""
    return generate_latest(ScrapeRegistry(extra, directory))
