"""The key layout: a store of layout 1 or 2 is refused at start and migrated by
``comments-service migrate-layout`` (idempotent, resumable), on a store of 10,000 comments:
renamed (layout 1), its indexes across articles split by bucket (layouts 1 and 2)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from service import cli, serve
from service.app import create_app
from service.config import Config
from service.crypto import KeyRing
from service.states import STATUSES
from service.store import CommentStore, Keys
from service.store.client import primaries
from service.store.keys import SHAPES
from service.store.layout import (
    CURRENT_LAYOUT,
    SPLIT_KINDS,
    Layout2Keys,
    LayoutError,
    LegacyKeys,
    rebuilt,
)
from tests.conftest import AUTH, approve, close_app, submit
from tests.test_imports import many_comments, no_problems, parts, public, run

KEYS = Keys()


def snapshot(redis: Redis, keys: Keys) -> dict[str, tuple[bytes, bool]]:
    """Every key of the prefix: its serialised value (DUMP) and whether it expires."""
    found: dict[str, tuple[bytes, bool]] = {}
    for server in primaries(redis):
        for name in server.scan_iter(match=keys.scan_pattern(), count=1000):
            value = server.dump(name)  # bytes: DUMP's reply is never decoded
            if value is not None:  # not expired between the scan and the read
                found[str(name)] = (bytes(value), int(server.pttl(name)) > 0)
    return found


def to_layout_1(redis: Redis, keys: Keys) -> int:
    """What a store of a version of layout 1 looked like (a test's own reverse of the
    migration): every key renamed back to its layout 1 name, the buckets' indexes merged into
    one across articles, the marker removed. How many keys were renamed."""
    return to_older(redis, keys, LegacyKeys(keys.prefix), marker=None)


def to_layout_2(redis: Redis, keys: Keys) -> int:
    """What a store of layout 2 looked like: the buckets' indexes merged into one across
    articles, under the marker of layout 2."""
    return to_older(redis, keys, Layout2Keys(keys.prefix), marker="2")


def to_older(redis: Redis, keys: Keys, older: Keys, marker: str | None) -> int:
    renamed = 0
    for name in list(snapshot(redis, keys)):
        found = keys.classify(name)
        assert found is not None, name
        shape, parts = found
        if shape.kind == "layout":
            redis.delete(name)
        elif shape.kind in SPLIT_KINDS:
            merged = rebuilt(older, shape, parts)
            redis.zunionstore(merged, [merged, name])
            redis.delete(name)
        elif rebuilt(older, *found) != name:
            redis.rename(name, rebuilt(older, *found))
            renamed += 1
    if marker is not None:
        redis.set(keys.layout(), marker)
    return renamed


def split_entries(before: dict[str, tuple[bytes, bool]], redis: Redis) -> int:
    """How many entries the buckets' indexes of ``before`` hold (what a split moves)."""
    split = [name for name in before if (KEYS.classify(name) or (None,))[0] in _SPLIT_SHAPES]
    return sum(int(redis.zcard(name)) for name in split)


_SPLIT_SHAPES = {shape for shape in SHAPES if shape.kind in SPLIT_KINDS}


def migrate(config: Config, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> tuple[int, str]:
    monkeypatch.setenv("REDIS_URL", config.resolved_redis_url)
    monkeypatch.setenv("ENCRYPTION_KEYS", KeyRing.generate_entry("layout"))
    capsys.readouterr()
    code = cli.main(["migrate-layout"])
    return code, capsys.readouterr().out


def a_lived_in_store(app: Flask, client: FlaskClient, tmp_path: Path) -> int:
    """10,000 imported comments over 100 articles, and live ones that leave the other kinds of
    key: keys with TTLs, events, a decision, a claim, a report, a closed article, a
    webhook."""
    wxr = tmp_path / "many.xml"
    total, _ = many_comments(wxr, posts=100, per_post=100)
    assert run(app, "wordpress", wxr).comments == total
    live = submit(client, article="live").get_json()["id"]
    assert approve(client, live).status_code == 200
    held = submit(client, article="live", comment="second one", email="b@example.org")
    claimed = client.post(
        f"/api/v1/moderation/comments/{held.get_json()['id']}/claim", headers=AUTH
    )
    assert claimed.status_code == 200
    reported = client.post(f"/api/v1/comments/{live}/reports", json={"reason": "spam"})
    assert reported.status_code in (201, 202), reported.get_data(as_text=True)
    closed = client.put(
        "/api/v1/moderation/articles/closed-one", json={"open": False}, headers=AUTH
    )
    assert closed.status_code == 200
    hook = client.post(
        "/api/v1/moderation/webhooks",
        json={"url": "https://cms.example.org/hooks", "event_types": ["comment.approved"]},
        headers=AUTH,
    )
    assert hook.status_code == 201, hook.get_data(as_text=True)
    return total + 2


@pytest.mark.slow  # 10,000 comments imported, renamed twice
def test_migrate_layout_renames_a_store_of_10000_comments_exactly(
    app: Flask,
    client: FlaskClient,
    config: Config,
    redis_client: Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    comments = a_lived_in_store(app, client, tmp_path)
    store = parts(app)[0]
    pages = {a: public(client, a) for a in ("p-post-0", "p-post-99", "live")}
    before = snapshot(redis_client, KEYS)
    kinds = {KEYS.classify(k)[0].kind for k in before}  # type: ignore[index]
    assert {
        "comment",
        "events",
        "event_content",
        "claim",
        "reports",
        "article_settings",
        "webhooks",
        "imported",
        "layout",
    } <= kinds
    assert sum(expires for _, expires in before.values()) >= 2  # the claim, the event text
    entries = split_entries(before, redis_client)
    assert entries >= comments  # every comment is in its status's bucket index
    moved = to_layout_1(redis_client, KEYS)
    assert moved > comments

    with pytest.raises(LayoutError, match="migrate-layout"):
        create_app(config)
    code, out = migrate(config, monkeypatch, capsys)
    assert code == 0, out
    assert (
        f"{moved} keys renamed to layout {CURRENT_LAYOUT}, "
        f"{entries} index entries moved into their buckets' indexes"
    ) in out

    assert snapshot(redis_client, KEYS) == before  # every key, value and expiry back
    no_problems(store)
    assert {a: public(client, a) for a in pages} == pages
    assert len(store.all_comment_ids()) == comments
    code, out = migrate(config, monkeypatch, capsys)
    assert code == 0 and "already in layout 3: nothing to do" in out


@pytest.mark.slow  # 10,000 comments imported, their indexes merged and split again
def test_migrate_layout_splits_the_indexes_of_a_layout_2_store_of_10000_comments(
    app: Flask,
    client: FlaskClient,
    config: Config,
    redis_client: Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    comments = a_lived_in_store(app, client, tmp_path)
    store = parts(app)[0]
    pending = client.get("/api/v1/moderation/queue?limit=500", headers=AUTH).get_json()
    before = snapshot(redis_client, KEYS)
    entries = split_entries(before, redis_client)
    assert to_layout_2(redis_client, KEYS) == 0  # layout 2 had layout 3's other names
    old = Layout2Keys(KEYS.prefix)
    in_old = sum(int(redis_client.zcard(old.status_index(s))) for s in STATUSES)
    assert in_old == comments  # every comment in one index across articles again

    with pytest.raises(LayoutError, match="holds layout 2"):
        create_app(config)
    code, out = migrate(config, monkeypatch, capsys)
    assert code == 0, out
    assert f"0 keys renamed to layout 3, {entries} index entries moved" in out
    assert snapshot(redis_client, KEYS) == before
    no_problems(store)
    assert client.get("/api/v1/moderation/queue?limit=500", headers=AUTH).get_json() == pending
    assert len(store.all_comment_ids()) == comments


def test_a_layout_2_index_stops_the_service_even_without_its_marker(
    client: FlaskClient, config: Config, redis_client: Redis
) -> None:
    """The marker is not waited on (a failover may lose it): the old indexes still tell."""
    submit(client)
    to_layout_2(redis_client, KEYS)
    redis_client.delete(KEYS.layout())
    with pytest.raises(LayoutError, match="migrate-layout"):
        create_app(config)


def test_an_interrupted_migration_resumes_where_it_stopped(
    app: Flask,
    client: FlaskClient,
    redis_client: Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for n in range(30):
        submit(client, article=f"a{n % 3}", comment=f"comment {n}", email=f"r{n}@example.org")
    store: CommentStore = parts(app)[0]
    before = snapshot(redis_client, KEYS)
    renamed = to_layout_1(redis_client, KEYS)

    class Interrupted(Exception):
        pass

    def stop_after_first_batch(moved: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        store.migrate_layout(batch=10, progress=stop_after_first_batch)
    halfway = snapshot(redis_client, KEYS)
    assert 0 < len(halfway) < len(before) - 1  # some keys moved, no marker yet
    with pytest.raises(LayoutError):
        store.require_current_layout()

    report = store.migrate_layout(batch=10)
    # The buckets' event streams are under their names throughout: layout 1 had none.
    kept = [n for n in before if rebuilt(LegacyKeys(), *KEYS.classify(n)) == n]  # type: ignore[misc]
    assert {KEYS.classify(n)[0].kind for n in kept} == {"bucket_events"}  # type: ignore[index]
    assert report.moved == renamed - (len(halfway) - len(kept)) and not report.conflicts
    assert snapshot(redis_client, KEYS) == before
    store.require_current_layout()
    no_problems(store)


def test_a_key_whose_new_name_exists_is_left_and_named(
    app: Flask, client: FlaskClient, redis_client: Redis
) -> None:
    comment_id = submit(client).get_json()["id"]
    store: CommentStore = parts(app)[0]
    to_layout_1(redis_client, KEYS)
    legacy = LegacyKeys()
    redis_client.set(KEYS.comment(comment_id), "written by a newer service meanwhile")
    report = store.migrate_layout()
    assert report.conflicts == [legacy.comment(comment_id)]
    assert "left unmoved because their new name exists" in report.summary()
    assert redis_client.get(KEYS.layout()) is None  # not marked current: a rerun is due
    assert redis_client.exists(legacy.comment(comment_id))


def test_a_new_store_is_marked_current_and_old_names_stop_the_service(
    config: Config,
    redis_client: Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert redis_client.get(KEYS.layout()) is None
    close_app(create_app(config))
    assert redis_client.get(KEYS.layout()) == CURRENT_LAYOUT
    redis_client.delete(KEYS.layout())
    redis_client.set(LegacyKeys().policy(), "{}")
    monkeypatch.setenv("REDIS_URL", config.resolved_redis_url)
    monkeypatch.setenv("ENCRYPTION_KEYS", KeyRing.generate_entry("layout"))
    capsys.readouterr()
    assert cli.main(["purge"]) == 2
    assert "run `comments-service migrate-layout`" in capsys.readouterr().err
    # Another prefix's store is its own: it starts.
    close_app(create_app(replace(config, key_prefix="other")))


def test_the_launcher_refuses_old_names_before_any_worker_starts(
    config: Config, redis_client: Redis
) -> None:
    url = config.resolved_redis_url
    assert serve.check_layout(config, url) is None  # a new store: marked, served
    assert redis_client.get(KEYS.layout()) == CURRENT_LAYOUT
    redis_client.delete(KEYS.layout())
    redis_client.set(LegacyKeys().comment("01KA0000000000000000000000"), "{}")
    problem = serve.check_layout(config, url)
    assert problem is not None and "comments-service migrate-layout" in problem
    # A store that does not answer does not stop the start (readiness says 503 meanwhile).
    assert serve.check_layout(replace(config, redis_retries=0), "redis://127.0.0.1:1/0") is None


def test_keys_of_retired_kinds_are_dropped_so_the_store_can_start(
    app: Flask, client: FlaskClient, redis_client: Redis
) -> None:
    submit(client)
    store: CommentStore = parts(app)[0]
    to_layout_1(redis_client, KEYS)
    legacy = LegacyKeys()
    bands, sketches = (
        legacy.campaign_bands(86_400_000, 20_424),
        legacy.campaign_sketches(86_400_000, 20_424),
    )
    redis_client.zadd(bands, {"0" + "01KA0000000000000000000000": 1})
    redis_client.hset(sketches, "01KA0000000000000000000000", "x|y")
    for key in (bands, sketches):
        redis_client.pexpire(key, 600_000)
    report = store.migrate_layout()
    assert report.dropped == 2 and not report.unknown and not report.conflicts
    assert "2 of retired kinds dropped" in report.summary()
    assert not redis_client.exists(bands, sketches)
    store.require_current_layout()
