"""The Redis a benchmark runs on: REDIS_URL when set, else an embedded one for the run."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask import Flask  # noqa: E402

from service.api.context import EXTENSION_KEY  # noqa: E402
from service.app import create_app  # noqa: E402
from service.config import Config  # noqa: E402
from service.crypto import KeyRing  # noqa: E402
from service.embedded import EmbeddedRedis  # noqa: E402
from service.store import make_redis  # noqa: E402

# The moderator token of the in-process benches (bench_app).
TOKEN = "bench-moderator-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def bench_config(url: str, **settings: Any) -> Config:
    """The benches' settings for an app in their own process: the bench moderator token, fixed
    keys, rate limits off; ``settings`` override or add to them."""
    return Config(
        redis_url=url,
        moderator_tokens={"bench": TOKEN},
        secret_key=b"bench-secret-key-0123456789abcdef",
        encryption_keys=KeyRing.parse(KeyRing.generate_entry("b1")),
        rate_limits_enabled=False,
        **settings,
    )


@contextmanager
def bench_redis() -> Iterator[tuple[str, bool]]:
    """(url, embedded): the embedded server is started here and stopped on the way out."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url, False
        return
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp)) as server:
        yield server.url, True


@contextmanager
def bench_app(name: str) -> Iterator[Flask]:
    """The service's app in this process on the bench's Redis, under a key prefix of its own
    (``name`` and the pid: nothing else is touched), rate limits off; its keys are deleted on
    the way out."""
    prefix = f"{name}{os.getpid()}"
    with bench_redis() as (url, _):
        app = create_app(bench_config(url, key_prefix=prefix))
        try:
            yield app
        finally:
            app.extensions[EXTENSION_KEY].store.cache.close()
            redis = make_redis(url)
            for key in redis.scan_iter(f"{{{prefix}}}*", count=10_000):
                redis.delete(key)
