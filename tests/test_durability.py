"""Nothing acknowledged is lost on failover: each acknowledging write waits for a replica (WAIT
in the same round trip, service/store/durability.py); a write no replica confirmed in time is
answered 503 with Retry-After, and its retry with the same Idempotency-Key replays the answer.

Quick tests use the embedded Redis, which has no replica: ``WAIT 1`` there always times out,
the way a master cut off from its replica does. The slow ones run real failovers: a Sentinel
failover with the old master alive, and a cluster primary killed with kill -9.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest
from flask import Flask
from redis import Redis
from redis.cluster import RedisCluster
from redis.exceptions import ResponseError

from devtools.processes import wait_until
from devtools.topologies import LocalCluster, LocalSentinel, command
from service.api.context import EXTENSION_KEY
from service.config import Config, ConfigError
from service.crypto import Cipher
from service.store import CommentStore, Keys, make_redis
from service.store.client import ReplicasBehind, is_unavailable
from service.store.durability import ReplicaWait
from tests.conftest import AUTH, RELAXED_POLICY, MakeApp, submit

RETRY_AFTER = 3


def with_redis(config: Config, url: str | None = None, **changes: object) -> Config:
    values = {"unavailable_retry_after": RETRY_AFTER, **changes}
    if url is not None:
        values["redis_url"] = url
    return Config(**{**config.__dict__, **values})


def relaxed(app: Flask) -> Flask:
    response = app.test_client().put("/api/v1/moderation/policy", json=RELAXED_POLICY, headers=AUTH)
    assert response.status_code in (200, 503), response.get_data(as_text=True)
    return app


def store_of(app: Flask) -> CommentStore:
    return cast(CommentStore, app.extensions[EXTENSION_KEY].store)


# -- configuration (quick) --------------------------------------------------------------------


def test_wait_settings_are_read_once_from_the_environment() -> None:
    assert Config.from_env({}).redis_wait_replicas is None  # auto
    assert Config.from_env({"REDIS_WAIT_REPLICAS": "auto"}).redis_wait_replicas is None
    read = Config.from_env({"REDIS_WAIT_REPLICAS": "2", "REDIS_WAIT_TIMEOUT_MS": "250"})
    assert (read.redis_wait_replicas, read.redis_wait_timeout_ms) == (2, 250)
    with pytest.raises(ConfigError, match="REDIS_WAIT_REPLICAS"):
        Config.from_env({"REDIS_WAIT_REPLICAS": "some"})
    with pytest.raises(ConfigError, match="REDIS_WAIT_TIMEOUT_MS"):
        Config.from_env({"REDIS_WAIT_TIMEOUT_MS": "0"})


def test_auto_waits_on_no_replica_of_a_single_server(redis_client: Redis) -> None:
    assert ReplicaWait(redis_client).wanted() == 0
    assert ReplicaWait(redis_client, 2).wanted() == 2


def test_a_write_no_replica_confirms_is_answered_503_and_kept(
    config: Config, make_app: MakeApp, redis_client: Redis
) -> None:
    # The embedded server has no replica: WAIT 1 times out, as on a master cut off from it.
    app = relaxed(make_app(with_redis(config, redis_wait_replicas=1, redis_wait_timeout_ms=50)))
    refused = submit(app.test_client())
    assert refused.status_code == 503, refused.get_json()
    assert refused.headers["Retry-After"] == str(RETRY_AFTER)
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["type"] == "/problems/store-unavailable"
    # The primary has it (the answer says only that no replica confirmed it).
    assert len(list(redis_client.scan_iter(match=Keys().comment("*")))) == 1


def test_a_retry_with_the_same_idempotency_key_replays_the_first_answer(
    config: Config, make_app: MakeApp, redis_client: Redis
) -> None:
    app = relaxed(make_app(with_redis(config, redis_wait_replicas=1, redis_wait_timeout_ms=50)))
    client = app.test_client()
    body = {"name": "Ann", "email": "ann@example.com", "comment": "Sent twice, kept once."}
    headers = {"Idempotency-Key": "k-123"}
    first = client.post("/api/v1/articles/a1/comments", json=body, headers=headers)
    assert first.status_code == 503
    again = client.post("/api/v1/articles/a1/comments", json=body, headers=headers)
    assert again.status_code == 202, again.get_json()
    comments = list(redis_client.scan_iter(match=Keys().comment("*")))
    assert [Keys().comment(again.get_json()["id"])] == comments


def test_decisions_and_erasures_wait_too(
    config: Config, make_app: MakeApp, redis_client: Redis
) -> None:
    app = relaxed(make_app(config))
    first, second = (submit(app.test_client()).get_json()["id"] for _ in range(2))
    waiting = relaxed(
        make_app(with_redis(config, redis_wait_replicas=1, redis_wait_timeout_ms=50))
    ).test_client()
    path = f"/api/v1/moderation/comments/{first}"
    assert waiting.post(f"{path}/approve", headers=AUTH).status_code == 503
    bulk = waiting.post(
        "/api/v1/moderation/decisions",
        json={"decisions": [{"comment_id": second, "action": "reject"}]},
        headers=AUTH,
    )
    assert bulk.status_code == 503, bulk.get_json()
    erased = waiting.post(
        "/api/v1/moderation/data-requests/erase",
        json={"email": "ann@example.com", "mode": "delete"},
        headers=AUTH,
    )
    assert erased.status_code == 503, erased.get_json()
    # Applied on the primary all the same (no replica said it has them).
    assert list(redis_client.scan_iter(match=Keys().comment("*"))) == []
    # Reads write nothing and never wait.
    assert waiting.get("/api/v1/articles/a1/comments").status_code == 200


def test_transactions_wait_too_webhook_changes_answer_503_and_stay_applied(
    config: Config, make_app: MakeApp, redis_client: Redis
) -> None:
    # The webhook changes are MULTI/WATCH transactions, not scripts: confirmed by a mark
    # written and WAITed for on the primary after EXEC (ReplicaWait.confirm).
    hooks = "/api/v1/moderation/webhooks"
    setting = with_redis(config, webhook_allow_private=True)
    plain = make_app(setting).test_client()
    created = plain.post(hooks, json={"url": "https://cms.example.org/a"}, headers=AUTH)
    assert created.status_code == 201, created.get_json()
    path = f"{hooks}/{created.get_json()['id']}"
    waiting = make_app(
        with_redis(setting, redis_wait_replicas=1, redis_wait_timeout_ms=50)
    ).test_client()
    refused = waiting.post(hooks, json={"url": "https://cms.example.org/b"}, headers=AUTH)
    assert refused.status_code == 503, refused.get_json()
    assert refused.headers["Retry-After"] == str(RETRY_AFTER)
    patched = waiting.patch(path, json={"enabled": False}, headers=AUTH)
    assert patched.status_code == 503, patched.get_json()
    assert plain.get(path, headers=AUTH).get_json()["enabled"] is False  # applied on the primary
    deleted = waiting.delete(path, headers=AUTH)
    assert deleted.status_code == 503, deleted.get_json()
    assert plain.get(path, headers=AUTH).status_code == 404
    assert len(plain.get(hooks, headers=AUTH).get_json()["webhooks"]) == 1  # "b" was kept


def test_a_transaction_batch_loads_its_scripts_inside_it(
    config: Config, redis_client: Redis
) -> None:
    """An import's batch: one MULTI/EXEC whose scripts are loaded inside it, so a server
    that lost them (SCRIPT FLUSH, a restart) runs it whole; each command's reply in order,
    a script's runtime error in its place."""
    store = CommentStore(redis_client, Keys(), _cipher(config))
    script = redis_client.register_script(
        "if ARGV[1] == 'fail' then return redis.error_reply('ERR no') end "
        "return redis.call('SET', KEYS[1], ARGV[1])"
    )
    redis_client.script_flush()
    key = Keys().replication_mark(Keys().tag)
    commands = [
        ("EVALSHA", script.sha, 1, key + ":a", "1"),
        ("EVALSHA", script.sha, 1, key + ":b", "fail"),
        ("SET", key + ":c", "3"),
    ]
    try:
        replies = store.replica_wait.batch(commands, [script], what="t", transaction=True)
        assert replies[0] == "OK" and replies[2] in ("OK", True)  # a cluster pipeline's SET
        assert isinstance(replies[1], ResponseError) and "no" in str(replies[1])
        assert [redis_client.get(key + f":{part}") for part in "abc"] == ["1", None, "3"]
        if isinstance(redis_client, RedisCluster):
            return  # no MULTI across a cluster's nodes: a plain pipeline (ReplicaWait.batch)
        # A command refused before EXEC (its arity) aborts the whole transaction.
        refused = [("SET", key + ":d", "4"), ("SET", key + ":e")]
        with pytest.raises(ResponseError, match="wrong number"):
            store.replica_wait.batch(refused, [script], what="t", transaction=True)
        assert redis_client.exists(key + ":d") == 0
    finally:
        for part in "abcde":
            redis_client.delete(key + f":{part}")


def test_outside_a_request_a_transaction_no_replica_confirms_raises(
    config: Config, redis_client: Redis
) -> None:
    store = CommentStore(redis_client, Keys(), _cipher(config), wait_replicas=1, wait_timeout_ms=20)
    with pytest.raises(ReplicasBehind, match="revocation"):
        store.revoke_commenters("0" * 64)
    mark = Keys().replication_mark(Keys().tag)
    assert 0 < int(redis_client.pttl(mark)) <= 60_000  # a mark that does not stay


def test_outside_a_request_an_unconfirmed_write_raises(config: Config, redis_client: Redis) -> None:
    store = CommentStore(redis_client, Keys(), _cipher(config), wait_replicas=1, wait_timeout_ms=20)
    with pytest.raises(ReplicasBehind) as raised:
        store.set_article_open("a1", False)
    assert is_unavailable(raised.value)


def _cipher(config: Config) -> Cipher:
    assert config.encryption_keys is not None
    return Cipher(config.encryption_keys)


# -- real failovers (slow) --------------------------------------------------------------------


@dataclass
class Stream:
    """Submissions sent one after another from a thread, every answer counted."""

    app: Flask
    acknowledged: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged_at: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        client = self.app.test_client()
        n = 0
        while not self.stop.is_set():
            n += 1
            response = submit(client, f"a{n % 7}", comment=f"Remark number {n}.")
            self.statuses[response.status_code] += 1
            if response.status_code in (201, 202):
                self.acknowledged.append(response.get_json()["id"])
                self.acknowledged_at.append(time.monotonic())
            elif response.status_code == 503:
                assert response.headers["Retry-After"] == str(RETRY_AFTER)
                time.sleep(0.02)

    def __enter__(self) -> Stream:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)

    def acknowledged_since(self, moment: float) -> int:
        return sum(1 for at in self.acknowledged_at if at > moment)


def missing(redis: Redis | RedisCluster, ids: list[str]) -> list[str]:
    keys = Keys()
    pipe = redis.pipeline(transaction=False)
    for comment_id in ids:
        pipe.exists(keys.comment(comment_id))
    return [i for i, found in zip(ids, pipe.execute(), strict=True) if not found]


@pytest.mark.slow
def test_a_sentinel_failover_with_the_old_master_alive_loses_nothing_acknowledged(
    tmp_path: Path, config: Config, make_app: MakeApp
) -> None:
    with LocalSentinel(tmp_path, "cm") as setup:
        app = relaxed(
            make_app(with_redis(config, setup.url, redis_timeout=1.0, redis_wait_timeout_ms=200))
        )
        assert store_of(app).replica_wait.wanted() == 1  # auto: Sentinel has a replica
        old_master = setup.master
        with Stream(app) as stream:
            assert wait_until(lambda: len(stream.acknowledged) >= 50, 30)
            before = len(stream.acknowledged)
            setup.failover()  # the old master stays up, taking writes until it is demoted
            failed_over = time.monotonic()
            # Demoted and synced to the new master: it can no longer take a write.
            assert wait_until(
                lambda: old_master.client().info("replication").get("master_link_status") == "up",
                40,
                0.2,
            )
            assert wait_until(lambda: stream.acknowledged_since(failed_over) >= 50, 30)
        assert stream.statuses.keys() <= {202, 503}, stream.statuses
        assert len(stream.acknowledged) > before
        new_master = next(s for s in setup.data_servers if s.port == setup.master_port())
        assert new_master is not old_master
        assert missing(new_master.client(), stream.acknowledged) == []


@pytest.mark.slow
def test_a_killed_cluster_primary_answers_503_then_recovers_and_loses_nothing(
    tmp_path: Path, config: Config, make_app: MakeApp
) -> None:
    # Two replicas a primary: WAIT 1 still finds one once a replica has taken over. With one
    # replica each, the promoted primary has none and refuses (503) until one joins it.
    with LocalCluster(tmp_path, primaries=3, replicas=2) as cluster:
        app = relaxed(
            make_app(
                with_redis(
                    config,
                    cluster.url,
                    redis_timeout=0.5,
                    redis_retries=1,
                    redis_wait_timeout_ms=200,
                )
            )
        )
        probe = make_redis(cluster.url)
        assert isinstance(probe, RedisCluster)
        assert store_of(app).replica_wait.wanted() == 1  # auto: the cluster has replicas
        owner = probe.get_node_from_key(Keys().policy())  # type: ignore[no-untyped-call]
        victim = next(s for s in cluster.servers if s.port == owner.port)
        with Stream(app) as stream:
            assert wait_until(lambda: len(stream.acknowledged) >= 50, 30)
            victim.kill()
            killed = time.monotonic()
            refused_before = stream.statuses[503]
            # Recovery by itself: the replica is promoted and the service finds it.
            assert wait_until(lambda: stream.acknowledged_since(killed) >= 30, 60, 0.2)
        assert stream.statuses[503] > refused_before  # the gap was answered 503
        assert stream.statuses.keys() <= {202, 503}, stream.statuses
        promoted = [s for s in cluster.primary_servers() if s is not victim]
        assert len(promoted) == 3
        survivor = make_redis(cluster.url.replace(str(victim.port), str(promoted[0].port)))
        assert missing(survivor, stream.acknowledged) == []
        slots = command(promoted[0].client(), "CLUSTER", "INFO")
        assert "cluster_state:ok" in str(slots)


@pytest.mark.slow
def test_a_slot_migration_under_a_submission_stream_loses_nothing_and_answers_no_500(
    tmp_path: Path, config: Config, make_app: MakeApp
) -> None:
    # The waiting writes go to the slot's owner themselves (durability.py): ASK, TRYAGAIN
    # and MOVED during the move are theirs to follow, each with its WAIT on the right node.
    with LocalCluster(tmp_path, primaries=3, replicas=1) as cluster:
        app = relaxed(make_app(with_redis(config, cluster.url, redis_wait_timeout_ms=500)))
        assert store_of(app).replica_wait.wanted() == 1
        probe = make_redis(cluster.url)
        assert isinstance(probe, RedisCluster)
        slot = int(probe.keyslot(Keys().policy()))  # type: ignore[no-untyped-call]
        target = next(s for s in cluster.primary_servers() if s is not cluster.owner_of(slot))
        with Stream(app) as stream:
            assert wait_until(lambda: len(stream.acknowledged) >= 100, 30)
            moved = cluster.migrate_slot(slot, target, batch=5)  # slowly: many ASKs
            done = time.monotonic()
            assert wait_until(lambda: stream.acknowledged_since(done) >= 30, 30)
        assert moved > 0
        assert stream.statuses.keys() <= {202, 503}, stream.statuses
        assert cluster.owner_of(slot) is target
        assert missing(probe, stream.acknowledged) == []
        # And through the service, on the slot's new owner.
        client = app.test_client()
        last = stream.acknowledged[-1]
        assert client.get(f"/api/v1/moderation/comments/{last}", headers=AUTH).status_code == 200
