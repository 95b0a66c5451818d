"""REDIS_URL's cluster and sentinel forms, and how the service answers when a cluster or a
replicated Redis cannot take a request: 503 with Retry-After, never a 500.

The servers are real (devtools/topologies.py: the machine's redis-server on loopback); the
URL parsing and the error classification are pure and run in the quick loop.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flask import Flask
from redis.cluster import RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from devtools.processes import wait_until
from devtools.topologies import LocalCluster, LocalSentinel, RedisServer, command
from service.config import Config, ConfigError
from service.store import Keys, RateLimitCounters
from service.store.client import is_unavailable, make_redis, parse_redis_url
from tests.conftest import AUTH, RELAXED_POLICY, MakeApp, submit

RETRY_AFTER = 7


# -- configuration (quick) --------------------------------------------------------------------


def test_each_url_form_names_its_topology() -> None:
    cluster = parse_redis_url("redis+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2:7001")
    assert cluster.kind == "cluster" and cluster.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert (cluster.username, cluster.password) == ("u", "p@ss")
    sentinel = parse_redis_url("redis+sentinel://s1:26379,s2,s3:26380/comments/2")
    assert sentinel.kind == "sentinel" and sentinel.service == "comments" and sentinel.db == 2
    assert sentinel.nodes == (("s1", 26379), ("s2", 26379), ("s3", 26380))
    for single in ("redis://h:6379/3", "rediss://h:6380/0", "unix:///tmp/r.sock?db=1"):
        assert parse_redis_url(single).kind == "single"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+cluster://h1:7000,h2:7001/3", "only db 0"),
        ("redis+cluster://h1:7000?db=1", "only db 0"),
        ("redis+sentinel://s1:26379", "service-name"),
        ("memcached://h:11211", "must start with"),
        ("redis+cluster://", "names no host"),
    ],
)
def test_an_unusable_url_stops_the_start_with_its_reason(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        Config.from_env({"REDIS_URL": url})


def test_the_sentinel_password_is_read_and_never_shown() -> None:
    config = Config.from_env(
        {"REDIS_URL": "redis+sentinel://s1:26379/cm", "SENTINEL_PASSWORD": "hunter2-secret"}
    )
    assert config.sentinel_password == "hunter2-secret"
    assert "hunter2" not in repr(config)


def test_what_counts_as_the_store_being_unavailable() -> None:
    unavailable = [
        RedisConnectionError("refused"),
        MovedError("3999 127.0.0.1:6381"),
        AskError("3999 127.0.0.1:6381"),
        TryAgainError("Multiple keys request during rehashing of slot"),
        ClusterDownError("The cluster is down"),
        ReadOnlyError("You can't write against a read only replica."),
        ResponseError("NOREPLICAS Not enough good replicas to write."),
        ResponseError("Error running script (call to f_x): @user_script:5: NOREPLICAS ..."),
    ]
    assert [e for e in unavailable if not is_unavailable(e)] == []
    bugs = [
        ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        RedisClusterException("EVALSHA - all keys must map to the same key slot"),
        ValueError("not redis at all"),
    ]
    assert [e for e in bugs if is_unavailable(e)] == []


# -- real servers (slow) ------------------------------------------------------------------------


def cluster_config(config: Config, url: str, **changes: object) -> Config:
    values = {"redis_url": url, "unavailable_retry_after": RETRY_AFTER, **changes}
    return Config(**{**config.__dict__, **values})


def relaxed(app: Flask) -> Flask:
    response = app.test_client().put("/api/v1/moderation/policy", json=RELAXED_POLICY, headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    return app


def assert_unavailable(response: object) -> None:
    status = getattr(response, "status_code")  # noqa: B009
    body = getattr(response, "get_json")()  # noqa: B009
    assert status == 503, body
    assert getattr(response, "headers")["Retry-After"] == str(RETRY_AFTER)  # noqa: B009
    assert getattr(response, "mimetype") == "application/problem+json"  # noqa: B009
    assert body["type"] == "/problems/store-unavailable"


@pytest.mark.slow
def test_the_service_runs_on_a_cluster_through_a_node_that_owns_none_of_its_keys(
    cluster: LocalCluster, config: Config, make_app: MakeApp
) -> None:
    probe = make_redis(cluster.url)
    assert isinstance(probe, RedisCluster)
    owner = probe.get_node_from_key(Keys().policy())  # type: ignore[no-untyped-call]
    elsewhere = next(s for s in cluster.servers if s.port != owner.port)
    app = relaxed(make_app(cluster_config(config, f"redis+cluster://127.0.0.1:{elsewhere.port}")))
    client = app.test_client()
    created = submit(client)
    assert created.status_code == 202, created.get_json()
    queue = client.get("/api/v1/moderation/comments?status=pending", headers=AUTH)
    assert [c["id"] for c in queue.get_json()["comments"]] == [created.get_json()["id"]]
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json() == {"status": "ready"}


def test_a_campaign_is_detected_on_a_cluster(
    cluster: LocalCluster, config: Config, make_app: MakeApp
) -> None:
    """The insert script builds an earlier member's comment key and the campaign's set from
    prefixes (their ids come from the band sets): under the one hash tag, a cluster runs it."""
    app = relaxed(make_app(cluster_config(config, cluster.url)))
    client = app.test_client()
    text = "Vote NO on measure 12: it will raise your taxes and destroy local jobs. Act now!"
    ids = [
        submit(client, comment=text, email=f"sock{n}@example.com").get_json()["id"]
        for n in range(3)
    ]
    for comment_id in ids:
        record = client.get(f"/api/v1/moderation/comments/{comment_id}", headers=AUTH)
        assert "campaign" in [r["code"] for r in record.get_json()["reasons"]], record.get_json()
    listed = client.get(f"/api/v1/moderation/campaigns/{ids[0]}", headers=AUTH).get_json()
    assert {c["id"] for c in listed["comments"]} == set(ids)


@pytest.mark.slow
def test_a_cluster_missing_a_primary_answers_503_and_readyz_says_so(
    tmp_path: Path, config: Config, make_app: MakeApp
) -> None:
    with LocalCluster(tmp_path, primaries=3) as own:
        app = relaxed(make_app(cluster_config(config, own.url, redis_timeout=0.5, redis_retries=1)))
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        probe = make_redis(own.url)
        assert isinstance(probe, RedisCluster)
        owner = probe.get_node_from_key(Keys().policy())  # type: ignore[no-untyped-call]
        next(s for s in own.servers if s.port == owner.port).kill()
        assert_unavailable(client.get("/readyz"))
        assert_unavailable(submit(client))
        # Once the others mark it failed (cluster-node-timeout 2 s), the state itself is
        # "fail": every primary still answering says so, and readiness still refuses.
        survivor = next(s for s in own.servers if s.alive).client()
        assert wait_until(
            lambda: "cluster_state:fail" in str(command(survivor, "CLUSTER", "INFO")), 10
        )
        assert_unavailable(client.get("/readyz"))
        assert_unavailable(client.get("/api/v1/moderation/comments?status=pending", headers=AUTH))


@pytest.mark.slow
def test_a_write_no_replica_has_seen_is_refused_with_503(
    tmp_path: Path, config: Config, make_app: MakeApp
) -> None:
    # min-replicas-to-write with no replica: every write is NOREPLICAS, the way a master cut
    # off from its replica refuses writes it could lose in a failover.
    server = RedisServer(tmp_path, "min-replicas-to-write 1", "min-replicas-max-lag 1").start()
    try:
        url = f"redis://127.0.0.1:{server.port}/0"
        app = make_app(cluster_config(config, url))
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        assert_unavailable(
            client.put("/api/v1/moderation/policy", json=RELAXED_POLICY, headers=AUTH)
        )
        assert_unavailable(submit(client))
    finally:
        server.stop()


@pytest.mark.slow
def test_a_replica_taken_for_the_master_answers_503(
    tmp_path: Path, config: Config, make_app: MakeApp
) -> None:
    master = RedisServer(tmp_path / "m").start()
    replica = RedisServer(tmp_path / "r", f"replicaof 127.0.0.1 {master.port}").start()
    try:
        app = make_app(cluster_config(config, f"redis://127.0.0.1:{replica.port}/0"))
        assert_unavailable(submit(app.test_client()))
    finally:
        replica.stop()
        master.stop()


@pytest.mark.slow
def test_the_service_runs_through_sentinels_with_their_own_password(
    tmp_path: Path, config: Config, make_app: MakeApp
) -> None:
    with LocalSentinel(tmp_path, "comments", sentinel_password="sentinel-only-pw") as setup:
        app = relaxed(
            make_app(cluster_config(config, setup.url, sentinel_password="sentinel-only-pw"))
        )
        client = app.test_client()
        created = submit(client)
        assert created.status_code == 202, created.get_json()
        assert setup.master.client().exists(Keys().comment(created.get_json()["id"])) == 1


@pytest.mark.slow
def test_rate_limits_count_on_a_cluster(
    cluster: LocalCluster, config: Config, make_app: MakeApp
) -> None:
    app = make_app(
        cluster_config(config, cluster.url, rate_limits_enabled=True, rate_limit_read="2/minute")
    )
    client = app.test_client()
    statuses = [client.get("/api/v1/articles/a1/comments").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.slow
def test_rate_limits_count_through_sentinel_on_the_master(
    tmp_path: Path, config: Config, make_app: MakeApp
) -> None:
    with LocalSentinel(tmp_path, "comments") as setup:
        app = make_app(
            cluster_config(config, setup.url, rate_limits_enabled=True, rate_limit_read="2/minute")
        )
        client = app.test_client()
        statuses = [client.get("/api/v1/articles/a1/comments").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        counted = list(setup.master.client().scan_iter(match=f"{Keys().rate_limits()}*"))
        assert counted, "the counter is on the master"


@pytest.mark.slow
def test_a_rate_limit_that_cannot_be_counted_lets_through_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from limits import parse

    server = RedisServer(tmp_path).start()
    counters = RateLimitCounters(
        make_redis(f"redis://127.0.0.1:{server.port}/0", retries=0), Keys()
    )
    server.stop()
    with caplog.at_level(logging.WARNING, logger="service.store.ratelimits"):
        assert counters.first_exhausted([parse("1/minute")], "read", "client-hash") is None
    assert counters.not_counted == 1
    assert "fail open" in caplog.text
