"""gunicorn's logger, made to keep client addresses and emails out of every line it writes.

- The access log's ``h`` is the keyed hash of the client address (the one the rate limits
  count under, after ``TRUSTED_PROXIES``), never the address; without SECRET_KEY, ``-``.
- Paths and query strings are decoded and redacted (``/articles/x%40y`` logs no address).
- Request-header and environ atoms are dropped: they carry addresses (X-Forwarded-For,
  REMOTE_ADDR) and cookies, and no format of ours uses them.
- gunicorn's own "Invalid request from ip=..." warnings get the hash too.
- Every other logger of the process (the service's, libraries') gets a root handler and the
  email redaction of :mod:`service.logs`, in the master and, inherited, in each worker.
- With ``LOG_FORMAT=json`` (the default) every handler writes JSON lines
  (:class:`service.logs.JsonLines`), and an access line is an object of its own fields:
  ``client`` (the hash), ``method``, ``path`` (redacted), ``status``, ``bytes``,
  ``duration_ms`` and the ``request_id`` the app answered with.
"""

from __future__ import annotations

import logging
import re
import traceback
from datetime import timedelta
from typing import Any

from gunicorn import glogging

from .config import Config
from .hashing import Hasher
from .logs import ENVIRON_REQUEST_ID, REQUEST_ID, formatter, install_redaction, redact_path

# gunicorn's own wording (workers/base.py); an IPv6 address has no ": " in it.
_INVALID_REQUEST_IP = re.compile(r"(Invalid request from ip=)(\S+)(: )")


class ClientAddressHasher(logging.Filter):
    def __init__(self, hasher: Hasher | None) -> None:
        super().__init__()
        self.hasher = hasher

    def hashed(self, address: str | None) -> str:
        return self.hasher.ip(address) if self.hasher is not None and address else "-"

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "ip=" in message:
            record.msg = _INVALID_REQUEST_IP.sub(
                lambda m: m.group(1) + self.hashed(m.group(2)) + m.group(3), message
            )
            record.args = ()
        return True


class ServiceLogger(glogging.Logger):  # type: ignore[misc]  # gunicorn has no type hints
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        config = Config.from_env()
        install_redaction(self.loglevel, config.log_format)
        self.json_lines = config.log_format == "json"
        if self.json_lines:
            for handler in (*self.error_log.handlers, *self.access_log.handlers):
                handler.setFormatter(formatter("json"))
        secret = config.secret_key
        self.addresses = ClientAddressHasher(Hasher(secret) if secret else None)
        for old in [f for f in self.error_log.filters if isinstance(f, ClientAddressHasher)]:
            self.error_log.removeFilter(old)  # setup runs again on a configuration reload
        self.error_log.addFilter(self.addresses)

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta
    ) -> dict[str, Any]:
        atoms: dict[str, Any] = {
            name: value
            for name, value in super().atoms(resp, req, environ, request_time).items()
            if not (name.endswith("}i") or name.endswith("}e"))
        }
        atoms["h"] = self.addresses.hashed(environ.get("REMOTE_ADDR"))
        atoms["U"] = redact_path(environ.get("PATH_INFO") or "")
        atoms["q"] = redact_path(environ.get("QUERY_STRING") or "")
        atoms["r"] = " ".join(
            (
                str(environ.get("REQUEST_METHOD")),
                redact_path(str(environ.get("RAW_URI", ""))),
                str(environ.get("SERVER_PROTOCOL")),
            )
        )
        atoms["f"] = redact_path(str(atoms.get("f", "-")))
        return atoms

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.json_lines:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        sent = atoms.get("B")
        fields = {
            "client": atoms["h"],
            "method": atoms.get("m"),
            "path": atoms["U"],
            "status": getattr(resp, "status_code", None),
            "bytes": sent if isinstance(sent, int) else 0,
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
        }
        # The line carries the id the app answered with, as the app's own lines did.
        token = REQUEST_ID.set(environ.get(ENVIRON_REQUEST_ID))
        try:
            self.access_log.info(
                "%s %s %s", fields["method"], fields["path"], fields["status"], extra=fields
            )
        except Exception:
            self.error(traceback.format_exc())
        finally:
            REQUEST_ID.reset(token)
