"""``make run``: the embedded Redis (unless REDIS_URL is set), then the HTTP server, then cleanup.

The server is granian unless ``SERVER=gunicorn`` (service/server.py says why and what each
does). Redis is started here, once, before the server starts its workers; the workers only
receive its URL. If it dies, a supervisor thread starts it again on the same socket and data
(AOF), with back-off; the workers reconnect by themselves. When the server exits (Ctrl-C,
SIGTERM), Redis is stopped after it, so every acknowledged comment is on disk.

The metrics files of every process it starts go to DATA_DIR/metrics, emptied first (see
service/metrics.py). What it has to say goes through logging, so it is a JSON line like
everything else the service writes (``LOG_FORMAT=text`` for the bracketed lines).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from .bootstrap import REDIS_URL_FILE, TOKEN_FILE, fill_defaults
from .config import METRICS_DIR_VARIABLE, Config, ConfigError, environment, metrics_directory
from .embedded import EmbeddedRedis, RedisSupervisor, die_with_parent
from .logs import install_redaction
from .server import server_argv
from .store import Keys, make_redis
from .store.client import RedisError, is_unavailable
from .store.layout import LayoutError, require_current_layout

log = logging.getLogger("service.serve")
METRICS_SUBDIR = "metrics"


def check_layout(config: Config, redis_url: str) -> str | None:
    """Why the store cannot be served as it is (its key names are of an older layout), once
    before any worker starts: else each worker would fail the same way, over and over."""
    redis = make_redis(
        redis_url, timeout=config.redis_timeout, sentinel_password=config.sentinel_password
    )
    try:
        require_current_layout(redis, Keys(config.key_prefix))
    except LayoutError as error:
        return str(error)
    except RedisError as error:
        if not is_unavailable(error):
            raise
        # The service starts without its store (readiness says 503 until it is back); each
        # worker checks the layout again as it starts.
        log.warning("the store did not answer: its key layout is not checked yet")
    finally:
        redis.close()
    return None


def main() -> int:
    try:
        config = Config.from_env()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    install_redaction(config.log_level, config.log_format)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    env = environment()
    # Every process of this service shares it, and this run's counters start from zero.
    env[METRICS_DIR_VARIABLE] = str(metrics_directory(config.data_dir / METRICS_SUBDIR))
    embedded: EmbeddedRedis | None = None
    supervisor: RedisSupervisor | None = None
    if config.redis_url is None:
        embedded = EmbeddedRedis(config.data_dir)
        env["REDIS_URL"] = embedded.start()
        supervisor = RedisSupervisor(embedded)
        supervisor.start()
        # The CLI (tokens, reencrypt, purge) finds the running embedded Redis through this.
        (config.data_dir / REDIS_URL_FILE).write_text(embedded.url + "\n")
        log.info("embedded Redis %s (data in %s)", embedded.url, embedded.data_dir)
    base = f"http://{config.host}:{config.port}"
    for note in fill_defaults(config, env, create=True):
        log.info("%s", note)
    if not config.moderator_tokens:
        token_path = config.data_dir / TOKEN_FILE
        log.info(
            'moderate with: curl -H "Authorization: Bearer $(cat %s)" %s/api/v1/moderation/queue',
            token_path,
            base,
        )
    log.info("serving on %s with %s  (contract: %s/openapi.yaml)", base, config.server, base)
    log.info("demo article with the comment widget: %s/", base)
    log.info("moderator console: %s/moderate", base)
    if not config.moderator_tokens:
        # Only the development token make run created under DATA_DIR is shown; a configured
        # MODERATOR_TOKENS is a deployment's secret and never printed.
        token = env["MODERATOR_TOKENS"].split(":", 1)[1]
        log.info("sign in to the console with the moderator token: %s", token)
    warning = config.exposure_warning()
    if warning and config.server != "gunicorn":  # gunicorn_conf.py's on_starting says it
        log.warning("%s", warning)

    layout_problem = check_layout(config, env["REDIS_URL"])
    if layout_problem:
        print(f"comments-service: {layout_problem}", file=sys.stderr)
        if supervisor is not None:
            supervisor.stop()
        if embedded is not None:
            embedded.stop()
            (config.data_dir / REDIS_URL_FILE).unlink(missing_ok=True)
        return 2

    if config.server != "gunicorn" and config.metrics_port is not None:
        serve_metrics_from_here(env)

    server = subprocess.Popen(
        server_argv(config),
        env=env,
        # If this launcher is killed outright, the server still stops (and frees the port).
        preexec_fn=die_with_parent,
    )

    # The delivery worker (webhooks, moderator mail) beside the web server: one process,
    # restarted by hand if it stops (its work waits in Redis meanwhile).
    deliverer = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "deliver"], env=env, preexec_fn=die_with_parent
    )
    # The outside spam services' worker, beside the web server, when one is configured.
    spamcheck = (
        subprocess.Popen(
            [sys.executable, "-m", "service.cli", "spamcheck"],
            env=env,
            preexec_fn=die_with_parent,
        )
        if config.spam_services_enabled
        else None
    )

    def forward(signum: int, _frame: FrameType | None) -> None:
        server.send_signal(signum)
        # SIGHUP reloads the web server's workers; the side workers keep running.
        if signum != signal.SIGHUP:
            deliverer.send_signal(signal.SIGTERM)
            if spamcheck is not None:
                spamcheck.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        return server.wait()
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait()
        if deliverer.poll() is None:
            deliverer.terminate()
        deliverer.wait()
        if spamcheck is not None:
            if spamcheck.poll() is None:
                spamcheck.terminate()
            spamcheck.wait(timeout=10)
        if supervisor is not None:
            supervisor.stop()
        if embedded is not None:
            embedded.stop()
            (config.data_dir / REDIS_URL_FILE).unlink(missing_ok=True)


def serve_metrics_from_here(env: dict[str, str]) -> None:
    """The separate metrics port from this launcher, as gunicorn's master serves it: granian's
    workers each load the app and its master is not Python, so the one long-lived Python
    process beside them that never serves a request is this one. It sees the same settings
    and metrics directory as the workers (metrics_directory named it in this process's
    environment before prometheus-client is first imported)."""
    from .app import create_app
    from .observability import serve_metrics_port

    serve_metrics_port(create_app(Config.from_env(env)), Path(env[METRICS_DIR_VARIABLE]))


if __name__ == "__main__":
    sys.exit(main())
