"""``make run``: the embedded Redis (unless REDIS_URL is set), then the HTTP server, then cleanup.

The server is granian unless ``SERVER=gunicorn`` (service/server.py says why and what each
does). Redis is started here, once, before the server starts its workers; the workers only
receive its URL. If it dies, a supervisor thread starts it again on the same socket and data
(AOF), with back-off; the workers reconnect by themselves. When the server exits (Ctrl-C,
SIGTERM), Redis is stopped after it, so every acknowledged comment is on disk.
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
from .server import server_argv


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
    print(f"serving on {base} with {config.server}  (contract: {base}/openapi.yaml)", flush=True)
    warning = config.exposure_warning()
    if warning and config.server != "gunicorn":  # gunicorn_conf.py's on_starting says it
        print(f"[WARNING] {warning}", file=sys.stderr, flush=True)

    server = subprocess.Popen(
        server_argv(config),
        env=env,
        # If this launcher is killed outright, the server still stops (and frees the port).
        preexec_fn=die_with_parent,
    )

    def forward(signum: int, _frame: FrameType | None) -> None:
        server.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        return server.wait()
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait()
        if supervisor is not None:
            supervisor.stop()
        if embedded is not None:
            embedded.stop()
            (config.data_dir / REDIS_URL_FILE).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
