"""Log hygiene: no line the service writes may carry an email address.

The code never logs request bodies or stored fields; this filter is the second line of
defence, for messages built by libraries or by mistake.
"""

from __future__ import annotations

import logging
import re

EMAIL_LIKE = re.compile(r"[^\s@<>()\[\]\"',;:]+@[^\s@<>()\[\]\"',;:]+\.[^\s@<>()\[\]\"',;:]+")
REDACTED = "[email redacted]"


class RedactEmails(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message:
            record.msg = EMAIL_LIKE.sub(REDACTED, message)
            record.args = ()
        return True


def install_redaction() -> None:
    """Attach the filter to every handler of the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactEmails) for f in handler.filters):
            handler.addFilter(RedactEmails())
