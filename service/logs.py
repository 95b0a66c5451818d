"""Log hygiene: no line the service writes may carry an email address.

The code never logs request bodies or stored fields; this is the second line of defence, for
messages built by libraries (a URL path gunicorn reports, an exception's text) or by mistake.

The redaction sits in the log record factory, not in a handler's filter: a filter only sees
records that reach the handler it is attached to, and under gunicorn the root logger had no
handler at all (records went out through ``logging.lastResort``, unfiltered). Every record any
logger of the process creates is redacted as it is made, whatever handler writes it later.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

# Anything around an ``@`` (or its percent-encoding), up to the characters that end a word, a
# path segment or a query field: an address need not look like a valid one to be personal.
_WORD = r"[^\s@<>()\[\]\"',;:/?#&=]"
EMAIL_LIKE = re.compile(rf"{_WORD}+(?:@|%40){_WORD}+")
REDACTED = "[email redacted]"
ROOT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
ROOT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


def redact(text: str) -> str:
    if "@" not in text and "%40" not in text:
        return text
    return EMAIL_LIKE.sub(REDACTED, text)


def redact_path(path: str) -> str:
    """A URL path for a log line: decoded once (``%40`` is ``@``), every address removed."""
    return redact(unquote(path))


def redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed call is logging's to report, at emit time
        return
    # Kept formatted: the handler then does not format the message a second time.
    record.msg, record.args = redact(message), ()
    if record.exc_info:
        # Rendered and redacted now, and the exception itself dropped: formatters print
        # exc_text, and no handler can reach the exception's own (unredacted) text.
        text = record.exc_text or "".join(traceback.format_exception(*record.exc_info))
        record.exc_text, record.exc_info = redact(text.rstrip()), None
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _redacting(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        redact_record(record)
        return record

    make.redacts = True  # type: ignore[attr-defined]
    return make


def install_redaction(level: str | int | None = None) -> None:
    """Redact every record this process logs, and give the root logger a handler (idempotent).

    Without a root handler, the service's own warnings would fall to ``logging.lastResort``:
    no timestamp, no level below WARNING, and no way to filter it.
    """
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "redacts", False):
        logging.setLogRecordFactory(_redacting(factory))
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(ROOT_FORMAT, ROOT_DATE_FORMAT))
        root.addHandler(handler)
    if level is not None:
        root.setLevel(level)
