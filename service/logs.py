"""Log lines: one JSON object a line, each with the request id, and none with an email address.

The code never logs request bodies or stored fields; this is the second line of defence, for
messages built by libraries (a URL path gunicorn reports, an exception's text) or by mistake.

The redaction sits in the log record factory, not in a handler's filter: a filter only sees
records that reach the handler it is attached to, and under gunicorn the root logger had no
handler at all (records went out through ``logging.lastResort``, unfiltered). Every record any
logger of the process creates is redacted as it is made, whatever handler writes it later.

The same factory stamps each record with the id of the request being served
(:data:`REQUEST_ID`, set by service/observability.py), and :class:`JsonLines` writes it:
``{"time", "level", "logger", "pid", "message", "request_id"?, ...extra fields}``, every string
value redacted again as it is written (extra fields do not pass through the message). With
``LOG_FORMAT=text`` the handlers keep the bracketed lines of old, without the extras.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from pythonjsonlogger.json import JsonFormatter

# Anything around an ``@`` (or its percent-encoding), up to the characters that end a word, a
# path segment or a query field: an address need not look like a valid one to be personal.
_WORD = r"[^\s@<>()\[\]\"',;:/?#&=]"
EMAIL_LIKE = re.compile(rf"{_WORD}+(?:@|%40){_WORD}+")
REDACTED = "[email redacted]"
ROOT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
ROOT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"
# The id of the request this thread is serving, None outside requests (service/observability.py).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# Where the request's id is kept in the WSGI environ, for the server's access line.
ENVIRON_REQUEST_ID = "service.request_id"


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
        request_id = REQUEST_ID.get()
        if request_id is not None:
            record.request_id = request_id
        return record

    make.redacts = True  # type: ignore[attr-defined]
    return make


def _redact_values(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_values(item) for item in value]
    return value


class JsonLines(JsonFormatter):
    """One JSON object a line: time (ISO 8601, UTC, milliseconds), level, logger, pid, message,
    then the record's extra fields (request_id, an access line's fields), all redacted."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            rename_fields={
                "asctime": "time",
                "levelname": "level",
                "name": "logger",
                "process": "pid",
            },
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        line: str = super().jsonify_log_record(log_data)
        if "@" not in line and "%40" not in line:
            return line  # nothing to redact: the common case costs one scan of the line
        # Redacted value by value, then written again: a line stays valid JSON.
        redacted: str = super().jsonify_log_record(_redact_values(log_data))
        return redacted


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of every handler of the process: ``json`` or ``text``."""
    if log_format == "json":
        return JsonLines()
    return logging.Formatter(ROOT_FORMAT, ROOT_DATE_FORMAT)


def install_redaction(level: str | int | None = None, log_format: str | None = None) -> None:
    """Redact every record this process logs, and give the root logger a handler (idempotent);
    with ``log_format``, every root handler writes that format (JSON when the root has none).

    Without a root handler, the service's own warnings would fall to ``logging.lastResort``:
    no timestamp, no level below WARNING, and no way to filter it.
    """
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "redacts", False):
        logging.setLogRecordFactory(_redacting(factory))
    root = logging.getLogger()
    if not root.handlers:
        ours = logging.StreamHandler(sys.stderr)
        ours.setFormatter(formatter(log_format or "json"))
        ours.service_handler = True  # type: ignore[attr-defined]
        root.addHandler(ours)
    elif log_format is not None:
        for handler in root.handlers:
            if getattr(handler, "service_handler", False):
                handler.setFormatter(formatter(log_format))
    if level is not None:
        root.setLevel(level)
