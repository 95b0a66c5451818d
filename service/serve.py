"""``make run``: the embedded Redis (unless REDIS_URL is set), then gunicorn, then cleanup.

Redis is started here, once, before gunicorn forks its workers; the workers only receive its
URL. If it dies, a supervisor thread starts it again on the same socket and data (AOF), with
back-off; the workers reconnect by themselves. When gunicorn exits (Ctrl-C, SIGTERM), Redis is
stopped after it, so every acknowledged comment is on disk.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from types import FrameType

from .bootstrap import REDIS_URL_FILE, TOKEN_FILE, fill_defaults
from .config import Config, ConfigError, environment
from .embedded import EmbeddedRedis, RedisSupervisor, die_with_parent
from .logs import install_redaction


def main() -> int:
    try:
        config = Config.from_env()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    install_redaction(config.log_level)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    env = environment()
    embedded: EmbeddedRedis | None = None
    supervisor: RedisSupervisor | None = None
    if config.redis_url is None:
        embedded = EmbeddedRedis(config.data_dir)
        env["REDIS_URL"] = embedded.start()
        supervisor = RedisSupervisor(embedded)
        supervisor.start()
        # The CLI (tokens, reencrypt, purge) finds the running embedded Redis through this.
        (config.data_dir / REDIS_URL_FILE).write_text(embedded.url + "\n")
        print(f"embedded Redis {embedded.url} (data in {embedded.data_dir})", flush=True)
    base = f"http://{config.host}:{config.port}"
    for note in fill_defaults(config, env, create=True):
        print(note, flush=True)
    if not config.moderator_tokens:
        token_path = config.data_dir / TOKEN_FILE
        print(
            f'  moderate with: curl -H "Authorization: Bearer $(cat {token_path})" '
            f"{base}/api/v1/moderation/queue",
            flush=True,
        )
    print(f"serving on {base}  (contract: {base}/openapi.yaml)", flush=True)
    print(f"  demo article with the comment widget: {base}/", flush=True)
    print(f"  moderator console: {base}/moderate", flush=True)
    if not config.moderator_tokens:
        # Only the development token make run created under DATA_DIR is shown; a configured
        # MODERATOR_TOKENS is a deployment's secret and never printed.
        token = env["MODERATOR_TOKENS"].split(":", 1)[1]
        print(f"  sign in to the console with the moderator token: {token}", flush=True)

    gunicorn = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:service.gunicorn_conf",
            "service.wsgi:app",
        ],
        env=env,
        # If this launcher is killed outright, gunicorn still stops (and frees the port).
        preexec_fn=die_with_parent,
    )

    def forward(signum: int, _frame: FrameType | None) -> None:
        gunicorn.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        return gunicorn.wait()
    finally:
        if gunicorn.poll() is None:
            gunicorn.terminate()
            gunicorn.wait()
        if supervisor is not None:
            supervisor.stop()
        if embedded is not None:
            embedded.stop()
            (config.data_dir / REDIS_URL_FILE).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
