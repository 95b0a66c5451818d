"""The bench's watch on Redis's background forks (bench/redis_forks.py), on a real embedded
Redis with its append-only file: a rewrite is seen as it runs, waited for, and counted."""

from __future__ import annotations

from pathlib import Path

from bench.redis_forks import ForkWatch
from service.embedded import EmbeddedRedis
from service.store import make_redis


def test_a_rewrite_is_waited_for_and_counted(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        writer = make_redis(server.url)
        # Enough data that the rewrite is still running when the watch first looks.
        writer.execute_command("DEBUG", "POPULATE", "200000", "bench", "256")  # type: ignore[no-untyped-call]
        watch = ForkWatch(server.url)
        try:
            before = watch.forks()
            assert not watch.busy()
            writer.bgrewriteaof()
            assert watch.busy()  # set when the child forks, before the reply
            waited = watch.settle(limit_s=60)
            assert not watch.busy()
            assert watch.forks() == before + 1
            assert waited < 60
        finally:
            watch.close()
            writer.close()


def test_a_quiet_server_is_not_waited_for(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        watch = ForkWatch(server.url)
        try:
            assert watch.settle(limit_s=5) < 1.0
            assert watch.forks() == 0
        finally:
            watch.close()
