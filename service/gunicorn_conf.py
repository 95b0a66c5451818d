"""gunicorn settings, read from the same Config as the app."""

from __future__ import annotations

from typing import Any

from service.config import Config

_config = Config.from_env()

bind = f"{_config.host}:{_config.port}"
workers = _config.workers
# gthread: each worker serves several connections at once while one waits on Redis; requests
# are read whole in its event loop before a thread takes them (slow clients hold no thread),
# and gunicorn's own errors (400, 414, 431) are answered as problem+json, like the app's.
worker_class = "service.buffering_worker.BufferingThreadWorker"
threads = _config.threads
# Requests are bounded by REDIS_TIMEOUT; anything near this is a stuck worker, not slow work.
timeout = 30
# What one request's head may hold; openapi.yaml states the same limits. The request line may
# be 8,190 bytes, gunicorn's maximum (4,094 by default) and within the 8 KB that proxies and
# CDNs commonly allow for a URL: a counts GET of 100 article ids of up to 69 characters fits
# (100 of 40 take 5,235 bytes), longer lists go by POST. Headers: gunicorn's own defaults.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
graceful_timeout = 10
keepalive = 5
# Load the app in the master, so config errors stop the service before any worker forks and
# large read-only tables (the profanity matcher) are shared copy-on-write.
preload_app = True
# No control socket (gunicorn 25+): nothing here uses gunicornc, and its default path
# ($HOME/.gunicorn/gunicorn.ctl) is one for every instance on the machine, so two services (or
# the bench's service and its ceiling) would take it from each other.
control_socket_disable = True
accesslog = "-"
# No query strings in the access log: nothing personal travels in them today, and a log line
# must never be where that changes by accident.
# h is the keyed hash of the client address, never the address; the path is redacted of emails
# (service/gunicorn_logging.py), which also gives every other logger a redacted handler.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
logger_class = "service.gunicorn_logging.ServiceLogger"
errorlog = "-"
loglevel = _config.log_level.lower()


def on_starting(server: Any) -> None:
    # Warned, not refused: behind a proxy on another host, a public HOST is the setup.
    warning = _config.exposure_warning()
    if warning:
        server.log.warning(warning)
