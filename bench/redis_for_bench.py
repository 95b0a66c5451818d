"""The Redis a benchmark runs on: REDIS_URL when set, else an embedded one for the run."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.embedded import EmbeddedRedis  # noqa: E402


@contextmanager
def bench_redis() -> Iterator[tuple[str, bool]]:
    """(url, embedded): the embedded server is started here and stopped on the way out."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url, False
        return
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp)) as server:
        yield server.url, True
