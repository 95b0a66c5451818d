"""The application factory: wiring only, no routes or Redis commands of its own."""

from __future__ import annotations

import logging
from re import Pattern
from typing import Any

from flask import Flask, Response, request
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from . import metrics
from .api import (
    campaigns_bp,
    data_requests_bp,
    events_bp,
    feeds_bp,
    moderation_bp,
    observe_bp,
    ops_bp,
    public_bp,
    webhooks_bp,
)
from .api.auth import bootstrap_hashes
from .api.context import EXTENSION_KEY, Services
from .api.fast_submissions import FastSubmissions
from .api.ratelimit import RateLimits
from .api.requests import reject_oversized
from .author_edits import AuthorEdits
from .chores import start_purger
from .config import Config, ConfigError
from .crypto import Cipher
from .errors import register_error_handlers
from .hashing import Hasher
from .idempotency import IdempotentRequests
from .logs import install_redaction
from .moderation.profanity import default_matcher
from .observability import install_observability
from .pages import pages_bp
from .pages.console import bp as console_bp
from .reader_reports import ReaderReports
from .schemas import ARTICLE_ID_PATTERN, make_submission_schemas
from .store import CommentStore, Keys, RateLimitCounters, make_redis
from .store.client import RedisClient
from .submissions import Submissions
from .tracked_cache import TrackedCache

log = logging.getLogger(__name__)


class SlugConverter(BaseConverter):
    """Article ids: letters, digits and ``._~-``, up to 200 characters; anything else is 404."""

    regex = ARTICLE_ID_PATTERN.pattern


def create_app(config: Config | None = None, redis: RedisClient | None = None) -> Flask:
    config = config or Config.from_env()
    if redis is None:
        if config.redis_url is None:
            raise ConfigError("REDIS_URL must be set (make run starts an embedded Redis)")
        redis = make_redis(
            config.redis_url,
            timeout=config.redis_timeout,
            retries=config.redis_retries,
            sentinel_password=config.sentinel_password,
        )
    if config.secret_key is None:
        raise ConfigError("SECRET_KEY must be set (make run keeps one under DATA_DIR)")
    if config.encryption_keys is None:
        raise ConfigError("ENCRYPTION_KEYS must be set (make run keeps one under DATA_DIR)")
    install_redaction(log_format=config.log_format)
    metrics.set_enabled(config.metrics_enabled)
    if not config.moderator_tokens:
        log.warning("no MODERATOR_TOKENS configured: every moderation request will get 401")

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.converters["slug"] = SlugConverter
    app.url_map.strict_slashes = False

    json_schema, form_schema = make_submission_schemas(config.email_check_deliverability)
    keys = Keys(config.key_prefix)
    connect_timeout = min(config.redis_timeout, 1.0)
    # On a cluster or Sentinel the cache tracks every primary (service/tracked_cache/topology.py).
    read_cache = config.read_cache
    cache = TrackedCache(
        config.resolved_redis_url,
        keys.public_tracked_prefixes,
        connect_timeout=connect_timeout,
        enabled=read_cache,
        counters=metrics.CacheCounters("public"),
        sentinel_password=config.sentinel_password,
    )
    moderation_cache = TrackedCache(
        config.resolved_redis_url,
        keys.moderation_tracked_prefixes,
        connect_timeout=connect_timeout,
        enabled=read_cache,
        idle_seconds=config.moderation_cache_idle_seconds,
        counters=metrics.CacheCounters("moderation"),
        sentinel_password=config.sentinel_password,
    )
    store = CommentStore(
        redis,
        keys,
        Cipher(config.encryption_keys),
        cache,
        moderation_cache=moderation_cache,
        event_retention=config.event_retention,
        wait_replicas=config.redis_wait_replicas,
        wait_timeout_ms=config.redis_wait_timeout_ms,
    )
    # LayoutError: the operator must migrate first (serve.py checked before the workers).
    if not store.check_layout_if_reachable():
        log.warning("the store did not answer: its key layout is not checked by this worker")
    hasher = Hasher(config.secret_key)
    profanity = default_matcher()
    app.extensions[EXTENSION_KEY] = Services(
        config=config,
        store=store,
        submission_schema=json_schema,
        form_submission_schema=form_schema,
        hasher=hasher,
        profanity=profanity,
        bootstrap_token_hashes=bootstrap_hashes(config.moderator_tokens),
        rate_limits=rate_limits(redis, keys, config),
        submissions=Submissions(
            store,
            hasher,
            profanity,
            spam_checks=config.spam_services_enabled,
            send_client_ip="ip" in config.spam_check_send,
        ),
        idempotency=IdempotentRequests(store, hasher),
        reports=ReaderReports(store),
        author_edits=AuthorEdits(store, hasher, profanity),
    )
    # Plain JSON submissions without Flask's dispatch (service/api/fast_submissions.py),
    # inside ProxyFix: the client's address is the one the view would see.
    if config.fast_submissions:
        app.wsgi_app = FastSubmissions(  # type: ignore[method-assign]
            app, app.wsgi_app, app.extensions[EXTENSION_KEY]
        )
    if config.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=config.trusted_proxies
        )

    install_observability(app, config)  # first: its clock starts before the other hooks

    @app.before_request
    def before_each_request() -> None:
        # One hook, not two: Flask checks every hook for coroutines on every request.
        start_purger(store, config.retention_days)
        reject_oversized(request, config.max_body_bytes)

    @app.after_request
    def security_headers(response: Response) -> Response:
        # Appended, not setdefault: no API route sets these, and werkzeug's setdefault raises
        # and catches a KeyError per missing header (measured: 3% of a worker's time under
        # load). Pages set a policy of their own (service/pages/security.py) and keep it: two
        # policies would both be enforced, and this one forbids everything.
        if "Content-Security-Policy" not in response.headers:
            response.headers.extend(SECURITY_HEADERS)
        return response

    register_error_handlers(app, retry_after=config.unavailable_retry_after)
    app.register_blueprint(public_bp)
    app.register_blueprint(moderation_bp)
    app.register_blueprint(data_requests_bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(observe_bp)
    app.register_blueprint(feeds_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(events_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(campaigns_bp)
    app.register_blueprint(console_bp)
    install_cors(app, config)
    return app


# Every answer is data, never a page to render: nothing may run or be framed.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
)


def rate_limits(redis: RedisClient, keys: Keys, config: Config) -> RateLimits:
    specs = {
        "submit": config.rate_limit_submit,
        "read": config.rate_limit_read,
        "report": config.rate_limit_report,
    }
    try:
        return RateLimits(RateLimitCounters(redis, keys), specs, enabled=config.rate_limits_enabled)
    except ValueError:
        raise ConfigError(f"not a rate limit: {specs}") from None


def install_cors(app: Flask, config: Config) -> None:
    """Browsers may call the public routes from the configured sites only; the moderation
    API answers no cross-origin request unless its own origins are configured."""
    resources: dict[str | Pattern[str], dict[str, Any]] = {}
    varying: list[str] = []
    if config.allowed_origins:
        public = {
            "origins": list(config.allowed_origins),
            "methods": ["GET", "POST"],
            "expose_headers": ["ETag", "Retry-After", "Location"],
            "max_age": 600,
            "vary_header": False,
        }
        resources[r"/api/v1/articles/*"] = public
        resources[r"/api/v1/comment-counts"] = public
        # A reader's reports, and an author's edits and deletion (issue 16).
        resources[r"/api/v1/comments/*"] = {
            **public,
            "methods": ["POST", "PATCH", "DELETE"],
            "expose_headers": ["ETag", "Retry-After"],
        }
        varying += ["/api/v1/articles/", "/api/v1/comment-counts", "/api/v1/comments/"]
    if config.moderation_allowed_origins:
        resources[r"/api/v1/moderation/*"] = {
            "origins": list(config.moderation_allowed_origins),
            "allow_headers": ["Authorization", "Content-Type", "If-Match"],
            "expose_headers": ["ETag", "Retry-After"],
            "methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
            "max_age": 600,
            "vary_header": False,
        }
        varying.append("/api/v1/moderation/")
    if not resources:
        return
    prefixes = tuple(varying)

    @app.after_request
    def vary_by_origin(response: Response) -> Response:
        # These answers carry Access-Control-Allow-Origin for allowed origins only, and the
        # public ones are cacheable: every answer says it varies by Origin, whoever asked
        # (flask-cors says so only when it sends the header, and not with a single origin),
        # so a shared cache never serves one origin's variant to another.
        if request.path.startswith(prefixes):
            response.vary.add("Origin")
        return response

    CORS(app, resources=resources)
