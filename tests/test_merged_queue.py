"""A listing merged from several indexes (the queue across buckets once keys are sharded):
pages in id order, totals summed, cursors right while the indexes change between pages. The
indexes carry their own hash tags, so on a cluster they sit on different nodes."""

from __future__ import annotations

import random

import pytest
from redis import Redis
from redis.cluster import RedisCluster

from service import ids
from service.ids import new_id
from service.store.reads import merged_page
from tests.conftest import command_calls

NOW = 1_764_633_600_000


@pytest.fixture(autouse=True)
def no_earlier_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids made earlier in this process (later in time) would have each bucket's ids count
    up from theirs, out of NOW's order."""
    monkeypatch.setattr(ids, "_last", {})


def page_through(redis: Redis, indexes: list[str], limit: int) -> tuple[list[str], list[int]]:
    seen: list[str] = []
    totals = []
    cursor = None
    while True:
        page = merged_page(redis, indexes, limit, cursor)
        seen += [comment_id for comment_id, _ in page.items]
        totals.append(page.total)
        if page.next_cursor is None:
            return seen, totals
        assert page.next_cursor == seen[-1]
        cursor = page.next_cursor


def test_pages_of_a_merge_are_the_sorted_union_with_summed_totals(redis_client: Redis) -> None:
    rng = random.Random(7)
    indexes = [f"mq:{{t{n}}}:pending" for n in range(5)]
    everything = [new_id(NOW + rng.randrange(10_000), n % 256) for n in range(203)]
    for comment_id in everything:
        redis_client.zadd(rng.choice(indexes), {comment_id: 0})
    for limit in (1, 7, 50, 500):
        seen, totals = page_through(redis_client, indexes, limit)
        assert seen == sorted(set(everything))
        assert set(totals) == {len(set(everything))}
    assert merged_page(redis_client, ["mq:{t9}:empty"], 10, None).items == []


def test_a_cursor_stays_right_while_the_indexes_change(redis_client: Redis) -> None:
    indexes = [f"mq:{{c{n}}}:pending" for n in range(3)]
    first = [new_id(NOW + n, n % 3) for n in range(30)]
    assert first == sorted(first)
    for n, comment_id in enumerate(first):
        redis_client.zadd(indexes[n % 3], {comment_id: 0})
    page = merged_page(redis_client, indexes, 10, None)
    shown = [comment_id for comment_id, _ in page.items]
    assert shown == first[:10]
    # Between two pages: one shown comment is decided (leaves), one not yet shown leaves,
    # and a newer one arrives in another index.
    redis_client.zrem(indexes[1], first[1])
    redis_client.zrem(indexes[0], first[12])
    newer = new_id(NOW + 1000, 2)
    redis_client.zadd(indexes[2], {newer: 0})
    rest, _ = page_through_from(redis_client, indexes, 10, page.next_cursor)
    assert rest == [i for i in first[10:] if i != first[12]] + [newer]


def page_through_from(
    redis: Redis, indexes: list[str], limit: int, cursor: str | None
) -> tuple[list[str], int]:
    seen: list[str] = []
    pages = 0
    while True:
        page = merged_page(redis, indexes, limit, cursor)
        pages += 1
        seen += [comment_id for comment_id, _ in page.items]
        if page.next_cursor is None:
            return seen, pages
        cursor = page.next_cursor


def script_calls(redis: Redis) -> int:
    """EVALSHA calls so far, over every primary (INFO commandstats)."""
    return command_calls(redis).get("cmdstat_evalsha", 0)


def slot_groups(redis: Redis, indexes: list[str]) -> int:
    """How many script calls a page over ``indexes`` takes: one on a single server, one per
    slot on a cluster (pipelined: one round trip per node)."""
    if not isinstance(redis, RedisCluster):
        return 1
    return len({redis.keyslot(index) for index in indexes})


@pytest.mark.parametrize("newest_first", [False, True])
def test_a_queue_over_256_skewed_buckets_pages_right_in_one_round_trip(
    redis_client: Redis, newest_first: bool
) -> None:
    """Most of the queue in three busy buckets, the rest spread thin: each bucket's first id
    does not settle a page, reading the busy ones again does, inside the one script call on a
    single server (on a cluster, whose 256 slots each get a call of their own, in a second
    pipelined round trip: reads.py, _read_again)."""
    rng = random.Random(11)
    indexes = [f"mq:{{b{n}}}:pending" for n in range(256)]
    everything = []
    pipe = redis_client.pipeline(transaction=False)
    for n in range(1500):
        bucket = rng.choice((3, 77, 200)) if n % 5 else rng.randrange(256)
        comment_id = new_id(NOW + rng.randrange(100_000), bucket)
        everything.append(comment_id)
        pipe.zadd(indexes[bucket], {comment_id: 0})
    pipe.execute()
    expected = sorted(set(everything), reverse=newest_first)
    merged_page(redis_client, indexes, 1, None)  # the script loaded
    for limit in (13, 50, 500):
        calls = script_calls(redis_client)
        seen, pages = _every_page(redis_client, indexes, limit, newest_first, len(expected))
        assert seen == expected
        assert script_calls(redis_client) - calls == pages * slot_groups(redis_client, indexes)
    # A page of one id per bucket.
    single = [new_id(NOW, n) for n in range(256)]
    fresh = [f"mq:{{s{n}}}:pending" for n in range(256)]
    for n, comment_id in enumerate(single):
        redis_client.zadd(fresh[n], {comment_id: 0})
    page = merged_page(redis_client, fresh, 300, None)
    assert [i for i, _ in page.items] == sorted(single) and page.total == 256


@pytest.mark.parametrize("newest_first", [False, True])
def test_indexes_some_sharing_a_slot_page_right(redis_client: Redis, newest_first: bool) -> None:
    """On a cluster a slot of several indexes merges them in its call while the one-index
    slots are probed and read again here: both kinds in one page."""
    rng = random.Random(5)
    indexes = [f"mq:{{m{n % 4}}}:{n}" for n in range(9)] + [f"mq:{{x{n}}}:p" for n in range(9)]
    everything = []
    for n in range(400):
        comment_id = new_id(NOW + rng.randrange(50_000), n % 256)
        everything.append(comment_id)
        redis_client.zadd(rng.choice(indexes[:3] + indexes), {comment_id: 0})
    expected = sorted(set(everything), reverse=newest_first)
    for limit in (1, 9, 60):
        seen, _ = _every_page(redis_client, indexes, limit, newest_first, len(expected))
        assert seen == expected


def _every_page(
    redis_client: Redis, indexes: list[str], limit: int, newest_first: bool, total: int
) -> tuple[list[str], int]:
    """Every id of the merged listing, page by page (each page's total checked), and how many
    pages that took."""
    seen: list[str] = []
    cursor, pages = None, 0
    while True:
        page = merged_page(redis_client, indexes, limit, cursor, newest_first=newest_first)
        pages += 1
        assert page.total == total
        seen += [comment_id for comment_id, _ in page.items]
        if page.next_cursor is None:
            return seen, pages
        cursor = page.next_cursor
