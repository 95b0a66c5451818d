"""What the delivery worker and the notifier count: deliveries by result, the oldest
undelivered event's age, SMTP sends by result.

The counting itself is ``service/metrics.py``'s (prometheus-client in multiprocess mode, from
the observe branch: ``count_webhook_delivery``, ``set_oldest_undelivered_age``,
``count_smtp_send``). It is looked up once, by name, so that this branch works with and
without it; once both are merged every call below reaches it.
"""

from __future__ import annotations

import importlib
import logging
from functools import cache
from typing import Any

log = logging.getLogger(__name__)


@cache
def _metrics() -> Any:
    try:
        return importlib.import_module("service.metrics")
    except ImportError:
        return None


def delivery(result: str) -> None:
    metrics = _metrics()
    if metrics is not None:
        metrics.count_webhook_delivery(result)


def oldest_undelivered(seconds: float) -> None:
    metrics = _metrics()
    if metrics is not None:
        metrics.set_oldest_undelivered_age(seconds)


def smtp_send(result: str) -> None:
    metrics = _metrics()
    if metrics is not None:
        metrics.count_smtp_send(result)
