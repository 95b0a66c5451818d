"""The shared tooling (devtools/) that the fault tests and the benchmarks clean up and run with."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
from redis import Redis

from devtools.processes import GroupProcess, ProcessError, free_port, http_status, wait_until
from devtools.rediskeys import delete_prefix, glob_escape
from service.app import create_app
from service.config import Config
from service.store import Keys
from tests.conftest import (
    LISTENER_GRACE_SECONDS,
    RELAXED_POLICY,
    close_app,
    running_listeners,
    submit,
)


def keys_under(redis: Redis, prefix: str) -> set[str]:
    # SCAN, not KEYS: on a cluster KEYS asks one node, scan_iter every primary.
    mine = Keys(prefix).prefix + ":"
    return {str(k) for k in redis.scan_iter() if str(k).startswith(mine)}  # decoded: str


def test_delete_prefix_removes_the_comment_keys_and_the_rate_limit_counters(
    config: Config, redis_client: Redis
) -> None:
    mine, other = "dp1", "dp10"  # "dp1*" would also match the other's keys
    apps = [
        create_app(replace(config, key_prefix=prefix, rate_limits_enabled=True))
        for prefix in (mine, other)
    ]
    try:
        for app in apps:
            client = app.test_client()
            assert (
                client.put(
                    "/api/v1/moderation/policy",
                    json=RELAXED_POLICY,
                    headers={"Authorization": "Bearer " + config.moderator_tokens["alice"]},
                ).status_code
                == 200
            )
            assert submit(client).status_code == 202
            assert client.get("/api/v1/articles/a1/comments").status_code == 200
    finally:
        for app in apps:
            close_app(app)
    counters = {
        k for k in keys_under(redis_client, mine) if k.startswith(Keys(mine).rate_limits() + ":")
    }
    assert counters, "the rate-limited requests left no counters to clean up"
    before = keys_under(redis_client, mine)
    assert len(before) > len(counters)  # comment keys too
    left_of_other = keys_under(redis_client, other)

    assert delete_prefix(redis_client, mine) == len(before)
    assert keys_under(redis_client, mine) == set()
    assert keys_under(redis_client, other) == left_of_other


@pytest.mark.parametrize("text", ["{a*b}", "x?y", "[ab]", "back\\slash"])
def test_glob_escape_matches_only_the_text_itself(redis_client: Redis, text: str) -> None:
    redis_client.set(text, 1)
    for near in ("{aXb}", "xzy", "a", "backslash"):
        redis_client.set(near, 1)
    assert list(redis_client.scan_iter(match=glob_escape(text))) == [text]


def test_a_group_process_is_ready_stopped_and_reports_an_early_exit(tmp_path: Path) -> None:
    port = free_port()
    server = GroupProcess(
        "http.server",
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        {},
        tmp_path / "server.log",
        cwd=tmp_path,
    )
    server.start()
    try:
        server.wait_ready(port, "/", timeout=20)
        assert http_status(port, "/") == 200
    finally:
        code = server.terminate(timeout=10)
    assert code is not None and code != 0  # stopped by SIGTERM, not killed
    assert http_status(port, "/", timeout=0.5) is None

    failing = GroupProcess(
        "exits",
        [sys.executable, "-c", "print('bye'); raise SystemExit(3)"],
        {},
        tmp_path / "exits.log",
    )
    failing.start()
    with pytest.raises(ProcessError, match="exited with 3") as error:
        failing.wait_ready(port, "/", timeout=20)
    assert "bye" in str(error.value)


def test_delete_prefix_takes_a_prefix_with_glob_characters_literally(redis_client: Redis) -> None:
    # KEY_PREFIX may hold * ? [ ] (config.py refuses only braces, colons and spaces).
    redis_client.set(Keys("t*").comment("1"), 1)
    redis_client.set(Keys("tx").comment("1"), 1)
    assert delete_prefix(redis_client, "t*") == 1
    assert list(redis_client.scan_iter()) == [Keys("tx").comment("1")]


def test_the_leak_check_sees_a_cache_listener(config: Config) -> None:
    """conftest's check finds listener threads by name: if the name changed, it would see
    nothing and pass for ever. An app in use runs one under that name; close_app ends it."""
    app = create_app(config)
    try:
        assert app.test_client().get("/api/v1/articles/a1/comments").status_code == 200
        assert wait_until(lambda: bool(running_listeners()), 5)
    finally:
        close_app(app)
    assert wait_until(lambda: not running_listeners(), LISTENER_GRACE_SECONDS)
