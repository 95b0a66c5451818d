"""Every setting the service reads, parsed from the environment in this one place.

Nothing else in the package looks at ``os.environ``: the service, the launcher (serve.py) and
the CLI get their settings as a :class:`Config`, and the launcher and the CLI get the raw
environment they pass on or complete from :func:`environment`. Tests build a :class:`Config`
directly.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .crypto import KeyRing, KeyRingError
from .events import EventRetention
from .store.client import parse_redis_url

MIN_TOKEN_LENGTH = 24


class ConfigError(ValueError):
    """A setting is present but unusable; the service refuses to start."""


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8000
    # None means "start the embedded Redis under data_dir" (make run); the app itself always
    # receives a concrete URL.
    redis_url: str | None = None
    # The sentinels' own password, when REDIS_URL is redis+sentinel:// and they have one (the
    # URL's password is the data servers').
    sentinel_password: str | None = field(default=None, repr=False)
    data_dir: Path = Path("data")
    # name -> token. Tokens are secrets: never logged, compared in constant time.
    moderator_tokens: Mapping[str, str] = field(default_factory=dict)
    key_prefix: str = "cm"
    # Socket timeout for every Redis command: a request never waits on Redis longer than this
    # (plus the bounded retries below) before answering 503.
    redis_timeout: float = 2.0
    redis_retries: int = 2
    # Replicas that must confirm each acknowledging write (WAIT, service/store/durability.py);
    # None ("auto"): 1 on Sentinel and on a cluster with replicas, none on a single server.
    redis_wait_replicas: int | None = None
    # How long a write waits for them before its request is answered 503 (below redis_timeout).
    redis_wait_timeout_ms: int = 500
    # Whole request bodies above this are answered 413 (a 5,000-character comment in 4-byte
    # UTF-8 is 20 KB, so 64 KiB leaves room for the other fields and form encoding).
    max_body_bytes: int = 64 * 1024
    # Origins (scheme://host[:port]) whose pages may receive a form post's 303 redirect.
    allowed_origins: tuple[str, ...] = ()
    # DNS deliverability checks for emails cost a lookup per request; off unless asked for.
    email_check_deliverability: bool = False
    # Seconds a client is told to wait (Retry-After) when Redis is unavailable.
    unavailable_retry_after: int = 5
    # Seconds a client has to send a whole request (headers and body) before it is answered
    # 408; also bounds each read and write of a request being served (buffering_worker.py).
    request_read_timeout: float = 10.0
    # The HTTP server (service/server.py): "granian" (measured fastest, bench/README-bench.md)
    # or "gunicorn" (gthread with service/buffering_worker.py).
    server: str = "granian"
    workers: int = 4
    # Threads per worker: requests waiting on Redis (an fsync per write) overlap.
    threads: int = 4
    log_level: str = "INFO"
    # Key for the keyed hashes of emails and client IPs (lookups without storing them raw).
    # make run keeps one under DATA_DIR when none is given.
    secret_key: bytes | None = None
    # How many proxies in front append to X-Forwarded-For; 0 ignores the header entirely, so
    # a client cannot pick the IP its rate limits are counted under.
    trusted_proxies: int = 0
    # Keys that encrypt stored emails; the first encrypts, all decrypt (rotation).
    encryption_keys: KeyRing | None = None
    # Personal data of rejected and spam comments is purged this many days after the decision.
    retention_days: int = 30
    # Failed moderator logins from one client IP within the window before it gets 429s.
    auth_failure_limit: int = 10
    auth_failure_window_seconds: int = 900
    # Per client IP rate limits ("20/minute;200/hour", the limits library's syntax); ""
    # switches a limit off.
    rate_limit_submit: str = "20/minute;200/hour"
    rate_limit_read: str = "600/minute"
    # Reader reports of published comments, per client IP (issue 16).
    rate_limit_report: str = "10/minute;50/day"
    # How long a moderator's claim on a comment lasts unless renewed.
    claim_seconds: int = 300
    # Outside spam services (service/spam_services.py), checked by the `comments-service
    # spamcheck` worker after comments are stored, never in the request path. An
    # Akismet-protocol service: its base URL, the API key (None: off), the site it is for,
    # what is sent (of "ip", "name", "email", "website", "text") and whether a "discard" hint
    # deletes the comment.
    spam_check_url: str = "https://rest.akismet.com/1.1"
    spam_check_key: str | None = None
    spam_check_site: str = ""
    spam_check_send: tuple[str, ...] = ("ip", "name", "website", "text")
    spam_check_discard: bool = False
    # A generic external moderation hook: URL (None: off), HMAC secret, timeout (s), what a
    # failure means (open: the policy's verdict stands; closed: hold) and bounded retries.
    moderation_hook_url: str | None = None
    moderation_hook_secret: bytes | None = None
    moderation_hook_timeout: float = 3.0
    moderation_hook_fail: str = "open"
    moderation_hook_retries: int = 2

    @property
    def spam_services_enabled(self) -> bool:
        return bool(self.spam_check_key or self.moderation_hook_url)

    rate_limits_enabled: bool = True
    # Serve article pages, counts and token checks from each worker's memory, kept current by
    # Redis's invalidation messages (CLIENT TRACKING).
    read_cache: bool = True
    # Under granian, answer a cached page or counts read again on the worker's event loop,
    # without Flask (service/replayed_reads.py); off only to measure what it saves.
    replay_reads: bool = True
    # Answer plain JSON submissions without Flask's dispatch, with Flask's own headers
    # (service/api/fast_submissions.py); off only to measure what it saves.
    fast_submissions: bool = True
    # Seconds without a moderator request after which a worker stops tracking (and caching)
    # the moderation listings: every submission changes them.
    moderation_cache_idle_seconds: float = 60.0
    # Origins allowed to call the moderation API from a browser; none by default.
    moderation_allowed_origins: tuple[str, ...] = ()
    # Record Prometheus metrics (service/metrics.py); off only to measure what they cost.
    metrics_enabled: bool = True
    # /metrics on the main port, for a scraper presenting this bearer token; None: not there.
    metrics_token: str | None = None
    # The separate metrics listener (README, Metrics): on by default, on loopback; None: off.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 9464
    # "json": one JSON object a line (service/logs.py); "text": the bracketed lines of old.
    log_format: str = "json"
    # The event log's retention: about this many entries per stream, none older than this.
    events_max_length: int = 100_000
    events_retention_days: int = 7

    # Webhook deliveries (service/delivery/): see the README's "Webhooks" section.
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = 5.0
    webhook_max_attempts: int = 8
    webhook_retry_base_seconds: float = 1.0
    webhook_retry_cap_seconds: float = 60.0
    webhook_max_response_bytes: int = 64 * 1024
    webhook_secret_grace_seconds: int = 86_400
    webhook_failing_after: int = 3
    webhook_lease_seconds: float = 10.0
    webhook_log_length: int = 1000
    # Moderator notifications (service/delivery/notify.py).
    smtp_url: str | None = None
    smtp_from: str = "comments@localhost"
    notify_emails: tuple[str, ...] = ()
    notify_digest_minutes: int = 0
    notify_include_author_email: bool = False
    console_url: str = "http://127.0.0.1:8000/moderate"

    @property
    def event_retention(self) -> EventRetention:
        return EventRetention(self.events_max_length, self.events_retention_days)

    @property
    def resolved_redis_url(self) -> str:
        if self.redis_url is None:
            raise ConfigError("REDIS_URL is not set and no embedded Redis was started")
        return self.redis_url

    def exposure_warning(self) -> str | None:
        """Why clients may choose the address they are counted under, if this setup lets them.

        With TRUSTED_PROXIES, X-Forwarded-For is believed from whoever connects; that is right
        only if nobody but the proxy can connect, which a loopback HOST makes sure of.
        """
        if not self.trusted_proxies:
            return None
        try:
            loopback = ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            loopback = self.host == "localhost"
        if loopback:
            return None
        return (
            f"TRUSTED_PROXIES={self.trusted_proxies} with HOST={self.host}: anyone who can "
            f"connect to port {self.port} directly picks the client address that rate "
            f"limits, login throttling and flood checks count under (X-Forwarded-For). "
            f"Make sure only your proxy can reach it, or bind HOST=127.0.0.1 "
            f"(README, Deployment)."
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            host=env.get("HOST", defaults.host),
            port=_int(env, "PORT", defaults.port, minimum=0),
            redis_url=_redis_url(env.get("REDIS_URL") or None),
            sentinel_password=env.get("SENTINEL_PASSWORD") or None,
            data_dir=Path(env.get("DATA_DIR") or defaults.data_dir),
            moderator_tokens=parse_moderator_tokens(env.get("MODERATOR_TOKENS", "")),
            key_prefix=_key_prefix(env.get("KEY_PREFIX", defaults.key_prefix)),
            redis_timeout=_float(env, "REDIS_TIMEOUT", defaults.redis_timeout),
            redis_retries=_int(env, "REDIS_RETRIES", defaults.redis_retries, minimum=0),
            redis_wait_replicas=_wait_replicas(env.get("REDIS_WAIT_REPLICAS", "auto")),
            redis_wait_timeout_ms=_int(
                env, "REDIS_WAIT_TIMEOUT_MS", defaults.redis_wait_timeout_ms, minimum=1
            ),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", defaults.max_body_bytes, minimum=1024),
            allowed_origins=_origins(env.get("ALLOWED_ORIGINS", "")),
            email_check_deliverability=_bool(env, "EMAIL_CHECK_DELIVERABILITY", False),
            unavailable_retry_after=_int(env, "RETRY_AFTER_UNAVAILABLE", 5, minimum=1),
            request_read_timeout=_float(env, "REQUEST_READ_TIMEOUT", defaults.request_read_timeout),
            server=_server(env.get("SERVER", defaults.server)),
            workers=_int(env, "WORKERS", defaults.workers, minimum=1),
            threads=_int(env, "THREADS", defaults.threads, minimum=1),
            log_level=env.get("LOG_LEVEL", defaults.log_level).upper(),
            secret_key=_secret(env.get("SECRET_KEY", "")),
            trusted_proxies=_int(env, "TRUSTED_PROXIES", 0, minimum=0),
            encryption_keys=_key_ring(env.get("ENCRYPTION_KEYS", "")),
            retention_days=_int(env, "RETENTION_DAYS", defaults.retention_days, minimum=1),
            auth_failure_limit=_int(
                env, "AUTH_FAILURE_LIMIT", defaults.auth_failure_limit, minimum=1
            ),
            auth_failure_window_seconds=_int(
                env, "AUTH_FAILURE_WINDOW_SECONDS", defaults.auth_failure_window_seconds, minimum=1
            ),
            rate_limit_submit=env.get("RATE_LIMIT_SUBMIT", defaults.rate_limit_submit).strip(),
            rate_limit_read=env.get("RATE_LIMIT_READ", defaults.rate_limit_read).strip(),
            rate_limit_report=env.get("RATE_LIMIT_REPORT", defaults.rate_limit_report).strip(),
            claim_seconds=_int(env, "CLAIM_SECONDS", defaults.claim_seconds, minimum=10),
            spam_check_url=env.get("SPAM_CHECK_URL", defaults.spam_check_url).strip().rstrip("/"),
            spam_check_key=env.get("SPAM_CHECK_KEY", "").strip() or None,
            spam_check_site=env.get("SPAM_CHECK_SITE", "").strip(),
            spam_check_send=_spam_fields(env.get("SPAM_CHECK_SEND")),
            spam_check_discard=_bool(env, "SPAM_CHECK_DISCARD", False),
            moderation_hook_url=env.get("MODERATION_HOOK_URL", "").strip() or None,
            moderation_hook_secret=(env.get("MODERATION_HOOK_SECRET", "").strip().encode() or None),
            moderation_hook_timeout=_float(env, "MODERATION_HOOK_TIMEOUT", 3.0),
            moderation_hook_fail=_choice(env, "MODERATION_HOOK_FAIL", "open", ("open", "closed")),
            moderation_hook_retries=_int(env, "MODERATION_HOOK_RETRIES", 2, minimum=0),
            rate_limits_enabled=_bool(env, "RATE_LIMITS_ENABLED", True),
            moderation_allowed_origins=_origins(env.get("MODERATION_ALLOWED_ORIGINS", "")),
            read_cache=_bool(env, "READ_CACHE", True),
            replay_reads=_bool(env, "REPLAY_READS", True),
            fast_submissions=_bool(env, "FAST_SUBMISSIONS", True),
            moderation_cache_idle_seconds=_float(
                env, "MODERATION_CACHE_IDLE_SECONDS", defaults.moderation_cache_idle_seconds
            ),
            metrics_enabled=_bool(env, "METRICS_ENABLED", True),
            metrics_token=_metrics_token(env.get("METRICS_TOKEN", "")),
            metrics_host=env.get("METRICS_HOST") or defaults.metrics_host,
            metrics_port=_optional_port(env, "METRICS_PORT", defaults.metrics_port),
            log_format=_choice(env, "LOG_FORMAT", defaults.log_format, ("json", "text")),
            events_max_length=_int(
                env, "EVENTS_MAX_LENGTH", defaults.events_max_length, minimum=100
            ),
            events_retention_days=_int(
                env, "EVENTS_RETENTION_DAYS", defaults.events_retention_days, minimum=1
            ),
            webhook_allow_private=_bool(env, "WEBHOOK_ALLOW_PRIVATE", False),
            webhook_timeout_seconds=_float(
                env, "WEBHOOK_TIMEOUT_SECONDS", defaults.webhook_timeout_seconds
            ),
            webhook_max_attempts=_int(
                env, "WEBHOOK_MAX_ATTEMPTS", defaults.webhook_max_attempts, minimum=1
            ),
            webhook_retry_base_seconds=_float(
                env, "WEBHOOK_RETRY_BASE_SECONDS", defaults.webhook_retry_base_seconds
            ),
            webhook_retry_cap_seconds=_float(
                env, "WEBHOOK_RETRY_CAP_SECONDS", defaults.webhook_retry_cap_seconds
            ),
            webhook_max_response_bytes=_int(
                env, "WEBHOOK_MAX_RESPONSE_BYTES", defaults.webhook_max_response_bytes, minimum=0
            ),
            webhook_secret_grace_seconds=_int(
                env,
                "WEBHOOK_SECRET_GRACE_SECONDS",
                defaults.webhook_secret_grace_seconds,
                minimum=0,
            ),
            webhook_failing_after=_int(
                env, "WEBHOOK_FAILING_AFTER", defaults.webhook_failing_after, minimum=1
            ),
            webhook_lease_seconds=_float(
                env, "WEBHOOK_LEASE_SECONDS", defaults.webhook_lease_seconds
            ),
            webhook_log_length=_int(
                env, "WEBHOOK_LOG_LENGTH", defaults.webhook_log_length, minimum=10
            ),
            smtp_url=env.get("SMTP_URL") or None,
            smtp_from=env.get("SMTP_FROM") or defaults.smtp_from,
            notify_emails=tuple(
                e.strip() for e in env.get("NOTIFY_EMAILS", "").split(",") if e.strip()
            ),
            notify_digest_minutes=_int(env, "NOTIFY_DIGEST_MINUTES", 0, minimum=0),
            notify_include_author_email=_bool(env, "NOTIFY_INCLUDE_AUTHOR_EMAIL", False),
            console_url=env.get("CONSOLE_URL")
            or f"http://{env.get('HOST', defaults.host)}:{env.get('PORT', defaults.port)}/moderate",
        )


def environment() -> dict[str, str]:
    """A copy of the process's environment: what the launcher hands to gunicorn (with the
    embedded Redis's URL and DATA_DIR's secrets added), and what the CLI completes the same way
    before parsing it with :meth:`Config.from_env`."""
    return dict(os.environ)


METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def metrics_directory(launcher_dir: Path | None = None) -> Path:
    """The directory prometheus-client's multiprocess mode shares between the processes of one
    service (gunicorn's master and workers, the workers started beside it), named in the
    environment, where prometheus-client looks for it and children inherit it.

    ``launcher_dir``: the launcher's own (``make run``: DATA_DIR/metrics), emptied here, since
    files left by an earlier run would be added to this one's counters. Without it, the
    environment's directory if set (the operator's, or the launcher's for its children), else
    a fresh temporary one (gunicorn started directly, tests, the CLI); see service/metrics.py.
    """
    if launcher_dir is not None:
        launcher_dir.mkdir(parents=True, exist_ok=True)
        for stale in launcher_dir.glob("*.db"):
            stale.unlink()
        os.environ[METRICS_DIR_VARIABLE] = str(launcher_dir.resolve())
        return launcher_dir.resolve()
    named = os.environ.get(METRICS_DIR_VARIABLE)
    if named:
        path = Path(named)
        path.mkdir(parents=True, exist_ok=True)
        return path
    path = Path(tempfile.mkdtemp(prefix="comments-metrics-"))
    os.environ[METRICS_DIR_VARIABLE] = str(path)
    atexit.register(_remove_temporary, path, os.getpid())
    return path


def _remove_temporary(path: Path, creator: int) -> None:
    # Forked children (gunicorn's workers) run atexit handlers too; only the creator removes.
    if os.getpid() == creator:
        shutil.rmtree(path, ignore_errors=True)


def parse_moderator_tokens(raw: str) -> dict[str, str]:
    """Parse ``name:token,name2:token2``; a short, duplicate or malformed entry is fatal."""
    tokens: dict[str, str] = {}
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        name, sep, token = entry.partition(":")
        name, token = name.strip(), token.strip()
        if not sep or not name or not token:
            raise ConfigError("MODERATOR_TOKENS entries must look like name:token")
        if len(token) < MIN_TOKEN_LENGTH:
            # The token itself is never echoed, only whose it is.
            raise ConfigError(
                f"MODERATOR_TOKENS: the token of {name!r} is shorter than "
                f"{MIN_TOKEN_LENGTH} characters"
            )
        if name in tokens:
            raise ConfigError(f"MODERATOR_TOKENS: {name!r} is listed twice")
        if token in tokens.values():
            raise ConfigError("MODERATOR_TOKENS: two moderators share one token")
        tokens[name] = token
    return tokens


SPAM_CHECK_FIELDS = ("ip", "name", "email", "website", "text")


def _spam_fields(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return Config.spam_check_send
    chosen = tuple(f.strip() for f in raw.split(",") if f.strip())
    unknown = [f for f in chosen if f not in SPAM_CHECK_FIELDS]
    if unknown:
        raise ConfigError(f"SPAM_CHECK_SEND: unknown fields {unknown} (of {SPAM_CHECK_FIELDS})")
    return chosen


SERVERS = ("granian", "gunicorn")


def _server(value: str) -> str:
    name = value.strip().lower()
    if name not in SERVERS:
        raise ConfigError(f"SERVER must be one of {', '.join(SERVERS)}, not {value!r}")
    return name


def _wait_replicas(raw: str) -> int | None:
    text = raw.strip().lower()
    if text in ("", "auto"):
        return None
    if not text.isdigit():
        raise ConfigError(f"REDIS_WAIT_REPLICAS must be auto or a number >= 0, got {raw!r}")
    return int(text)


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _origins(raw: str) -> tuple[str, ...]:
    origins = []
    for origin in (part.strip().rstrip("/") for part in raw.split(",")):
        if not origin:
            continue
        if not origin.startswith(("http://", "https://")) or "/" in origin.split("://", 1)[1]:
            raise ConfigError(
                f"ALLOWED_ORIGINS entries must be scheme://host[:port], got {origin!r}"
            )
        origins.append(origin.lower())
    return tuple(origins)


def _metrics_token(raw: str) -> str | None:
    token = raw.strip()
    if not token:
        return None
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"METRICS_TOKEN must be at least {MIN_TOKEN_LENGTH} characters")
    return token


def _optional_port(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    """A TCP port, or None for "off" (``off``, ``false``, ``none`` or ``0``)."""
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"off", "false", "none", "0"}:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a port number or off, got {raw!r}") from None
    if not 0 < value < 65536:
        raise ConfigError(f"{name} must be between 1 and 65535, or off")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _key_ring(raw: str) -> KeyRing | None:
    if not raw.strip():
        return None
    try:
        return KeyRing.parse(raw)
    except KeyRingError as error:
        raise ConfigError(f"ENCRYPTION_KEYS: {error}") from None


def _secret(raw: str) -> bytes | None:
    if not raw:
        return None
    if len(raw) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters")
    return raw.encode()


def _redis_url(raw: str | None) -> str | None:
    # Parsed once here so a cluster URL with a db, or a scheme nobody speaks, stops the start
    # with the reason instead of failing at the first request.
    if raw is not None:
        try:
            parse_redis_url(raw)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    return raw


def _key_prefix(raw: str) -> str:
    # The prefix becomes a Redis Cluster hash tag, so braces would break slot routing.
    if not raw or any(c in raw for c in "{}: \t\n"):
        raise ConfigError("KEY_PREFIX must be non-empty without braces, colons or spaces")
    return raw
