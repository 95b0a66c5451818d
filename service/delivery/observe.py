"""What the delivery worker and the notifier count: deliveries by result, the oldest
undelivered event's age, SMTP sends by result. Kept in one place so the metrics
(service/metrics.py, the observe branch's prometheus-client registry) are wired once."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def delivery(result: str) -> None:
    log.debug("webhook delivery: %s", result)


def oldest_undelivered(seconds: float) -> None:
    log.debug("oldest undelivered event: %.1f s", seconds)


def smtp_send(result: str) -> None:
    log.debug("smtp send: %s", result)
