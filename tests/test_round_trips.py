"""What each request costs in Redis commands, read from Redis's own counters (INFO
commandstats) around the request; never a timing.

commandstats counts every command Redis executes, including those a script runs inside one
EVALSHA; the client's round trips follow from what it sends: a read miss is one EVALSHA (one
round trip); a submission is one EVALSHA (rate limits, parent check, guards, the author's
standing, campaign detection, the insert and its spam check's queue entry, all inside), plus
one pipeline for the policy and the article's state when they are not in the worker's cache; a
moderator page is three round trips (ids, comments, claims). None of it may grow with the
amount of data.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import psutil
import pytest
from flask.testing import FlaskClient
from redis import Redis

from service.app import create_app
from service.config import Config
from service.store.client import primaries
from service.store.keys import BUCKETS, Keys
from tests.conftest import AUTH, STEPPED, approve, close_app, command_calls, submit

KEYS = Keys()

pytestmark = pytest.mark.usefixtures("redis_client")


def other_processes_clients(redis: Redis) -> list[str]:
    """Clients of the server(s) connected over TCP from another process than this test's.

    INFO commandstats counts the whole server: another process's commands (a service that a
    session-wide fixture keeps running, polling its webhook list every second) would land in
    a request's count now and then. Over a unix socket every client has the same address, so
    only TCP clients can be told apart; replicas and masters are Redis's own links."""
    ours = {
        connection.laddr.port
        for connection in psutil.Process().net_connections(kind="tcp")
        if connection.laddr
    }
    others = []
    for server in primaries(redis):
        for client in server.client_list():
            host, _, port = str(client["addr"]).rpartition(":")
            if not host or host.startswith("/") or set(client["flags"]) & {"S", "M"}:
                continue
            if int(port) not in ours:
                others.append(f"{client['addr']} (last command {client['cmd']})")
    return others


@pytest.fixture(autouse=True)
def alone_on_redis(redis_client: Redis) -> None:
    assert not other_processes_clients(redis_client), "another process uses this Redis"


# Connection set-up (a new pooled connection, the cache listener's), the listener's heartbeat
# and our own measuring are not the request's cost. Redis 7 names subcommands "client|id".
NOT_THE_REQUEST = (
    "cmdstat_info",
    "cmdstat_ping",
    "cmdstat_client",
    "cmdstat_subscribe",
    "cmdstat_select",
    "cmdstat_hello",
    # A cluster client's slot map, and the cache's check of it (the cluster pass).
    "cmdstat_cluster",
)


# What Redis runs inside the submission's script besides rate-limit counting.
INSIDE_SUBMISSION = (
    *("exists", "hmget", "set", "sadd", "zadd", "zscore", "hset", "pexpire", "pttl"),
    *("xadd", "xtrim"),  # its event
)


def commands_during(redis: Redis, action: Callable[[], object]) -> Counter[str]:
    before = command_calls(redis)
    action()
    after = command_calls(redis)
    counts: Counter[str] = Counter()
    for name, calls in after.items():
        if name.startswith(NOT_THE_REQUEST):
            continue
        delta = calls - before.get(name, 0)
        if delta:
            counts[name.removeprefix("cmdstat_")] = delta
    return counts


def until_cached(redis: Redis, request: Callable[[], object]) -> Counter[str]:
    """Repeat a request until one costs nothing: a value read while an invalidation was in
    flight is not cached, by design, so the first repeats may still go to Redis."""
    for _ in range(50):
        cost = commands_during(redis, request)
        if not cost:
            return cost
        time.sleep(0.02)
    return cost


def fill(client: FlaskClient, article: str, n: int) -> str:
    last = ""
    for i in range(n):
        last = submit(
            client, article=article, comment=f"comment {i}", email=f"u{i}@example.com"
        ).get_json()["id"]
        approve(client, last)
    return last


@pytest.mark.parametrize("existing", [1, pytest.param(300, marks=pytest.mark.slow)])
def test_public_read_is_one_round_trip_then_none(
    client: FlaskClient, redis_client: Redis, existing: int
) -> None:
    fill(client, "big", existing)
    path = "/api/v1/articles/big/comments?limit=50"
    client.get("/api/v1/articles/warm/comments")  # the cache listener is up
    miss = commands_during(redis_client, lambda: client.get(path))
    # The client sends one EVALSHA; inside it the script ranges the index, counts it and
    # fetches the page's documents.
    assert miss == Counter({"evalsha": 1, "zrangebylex": 1, "zcard": 1, "hmget": 1})
    assert until_cached(redis_client, lambda: client.get(path)) == Counter()


def test_a_held_submission_leaves_the_articles_cached_page_alone(
    client: FlaskClient, redis_client: Redis
) -> None:
    fill(client, "busy", 3)
    path = "/api/v1/articles/busy/comments?limit=50"
    assert until_cached(redis_client, lambda: client.get(path)) == Counter()
    held = submit(client, article="busy", comment="waits for a moderator", email="new@example.com")
    assert held.status_code == 202
    # Nothing published changed, so the page still costs nothing; an approval does change it.
    assert commands_during(redis_client, lambda: client.get(path)) == Counter()
    approve(client, held.get_json()["id"])
    assert commands_during(redis_client, lambda: client.get(path))["evalsha"] == 1


@pytest.mark.parametrize("existing", [0, pytest.param(300, marks=pytest.mark.slow)])
def test_counts_are_one_pipeline_then_none(
    client: FlaskClient, redis_client: Redis, existing: int
) -> None:
    fill(client, "big", existing)
    ids = "&".join(f"article_id=a{i}" for i in range(19)) + "&article_id=big"
    client.get("/api/v1/articles/warm/comments")
    miss = commands_during(redis_client, lambda: client.get(f"/api/v1/comment-counts?{ids}"))
    assert miss == Counter({"zcard": 20})  # one pipeline: one round trip
    assert (
        until_cached(redis_client, lambda: client.get(f"/api/v1/comment-counts?{ids}")) == Counter()
    )


@pytest.mark.parametrize("existing", [0, pytest.param(300, marks=pytest.mark.slow)])
def test_submission_is_one_round_trip_whatever_the_data(
    client: FlaskClient, redis_client: Redis, existing: int
) -> None:
    parent = fill(client, "big", existing) if existing else fill(client, "big", 1)

    def settled(**fields: object) -> Counter[str]:
        warm_settings_cache(client, redis_client, "big")
        return commands_during(redis_client, lambda: submit(client, article="big", **fields))

    # Sent: one evalsha. Inside the script: the existence check, the comment itself, the
    # author's comment set and three index entries (global, article, the first_comment
    # reason); a newcomer's commenter key: its record (hset), the email's set of records
    # (sadd), a TTL on each (the set's checked first: pttl); its event (xadd, the log trimmed
    # by age: xtrim) and the event's text apart (set).
    inside_script = {
        "exists": 1,
        "set": 2,
        "xadd": 1,
        "xtrim": 1,
        "sadd": 2,
        "zadd": 3,
        "hset": 1,
        "pexpire": 2,
        "pttl": 1,
    }
    assert settled(comment="fresh words", email="new@example.com") == Counter(
        {"evalsha": 1, **inside_script}
    )
    # A reply adds the parent's check (zscore), inside the same script.
    assert settled(comment="a reply", email="other@example.com", parent_id=parent) == Counter(
        {"evalsha": 1, "zscore": 1, **inside_script}
    )
    # A returning commenter's key is read (hmget) and rotated in the same script.
    key = submit(client, article="big", comment="keyed", email="k@example.com").get_json()[
        "commenter_key"
    ]
    with_key = settled(comment="keyed again", email="k@example.com", commenter_key=key)
    assert with_key["evalsha"] == 1 and with_key["hmget"] == 1
    assert set(with_key) <= {"evalsha", *INSIDE_SUBMISSION}


def test_a_submission_long_enough_for_campaign_detection_is_still_one_round_trip(
    client: FlaskClient, redis_client: Redis
) -> None:
    """A text of 40 characters or more is sketched for campaign detection (issue 16): inside
    the same insert script, its 8 bands are read in the current and the previous time bucket's
    hash (one hmget each), the current bucket gets its 8 band values and its sketch in one
    hset; the bucket already has its TTL (its mark, read with the bands, says so: no pttl and
    no pexpireat, the first comment set it). The
    first comment shares a band with it (both short, alike in "long enough" and "comment"), so
    its sketch is read to compare (one hmget)."""
    fill(client, "big", 1)
    submit(client, article="big", comment="An unrelated first comment, long enough to count.")
    warm_settings_cache(client, redis_client, "big")
    text = "A long enough comment about the library budget and the buses."
    cost = commands_during(redis_client, lambda: submit(client, article="big", comment=text))
    assert cost == Counter(
        {
            "evalsha": 1,
            "exists": 1,
            "set": 2,
            "xadd": 1,
            "xtrim": 1,
            "sadd": 2,
            "zadd": 3,
            "hset": 1 + 1,
            "pexpire": 2,
            "pttl": 1,
            "hmget": 2 + 1,
        }
    ), cost


def test_a_submission_completing_a_campaign_is_still_one_round_trip(
    client: FlaskClient, redis_client: Redis
) -> None:
    """The third author's near-duplicate completes a campaign: the earlier members new to it
    are read (get: their status, reasons and article) and, pending without the reason, given
    it (set, zadd into their own bucket's index), the campaign's set learns who is in it
    (smismember, sadd, expire): all inside the one script."""
    text = "Vote NO on measure 12: it will raise your taxes and destroy local jobs. Act now!"
    submit(client, article="big", comment=text, email="sock0@example.com")
    submit(client, article="big", comment=text + " Please", email="sock1@example.com")
    warm_settings_cache(client, redis_client, "big")
    cost = commands_during(
        redis_client,
        lambda: submit(client, article="big", comment=text + " Now", email="sock2@example.com"),
    )
    assert cost["evalsha"] == 1, cost
    assert (cost["smismember"], cost["get"], cost["expire"]) == (1, 2, 1)
    inside = {"get", "smismember", "expire", *INSIDE_SUBMISSION}
    assert set(cost) <= {"evalsha", *inside}, cost


def warm_settings_cache(client: FlaskClient, redis: Redis, article: str) -> None:
    """Once the cache listener is up, a submission leaves the policy and the article's state
    in the worker's cache."""
    until_cached(redis, lambda: client.get(f"/api/v1/articles/{article}/comments"))
    submit(client, article=article, comment="warms the cache", email="warm@example.com")


def test_submission_rate_limits_are_counted_inside_the_same_round_trip(
    config: Config, client: FlaskClient, redis_client: Redis
) -> None:
    # (``client``: its app has stored the relaxed test policy, so no flood guard runs.)
    app = create_app(
        replace(config, rate_limits_enabled=True, rate_limit_submit="20/minute;200/hour")
    )
    try:
        limited = app.test_client()
        warm_settings_cache(limited, redis_client, "a1")
        cost = commands_during(
            redis_client, lambda: submit(limited, comment="counted", email="c@example.com")
        )
    finally:
        close_app(app)
    # Two windows counted (incr each), and still one evalsha.
    assert cost["evalsha"] == 1 and cost["incr"] == 2
    assert set(cost) <= {"evalsha", "incr", "expire", *INSIDE_SUBMISSION}


def test_without_the_worker_cache_a_submission_is_two_round_trips(
    config: Config, client: FlaskClient, redis_client: Redis
) -> None:
    # (``client``: its app has stored the relaxed test policy, so no flood guard runs.)
    app = create_app(replace(config, read_cache=False))
    try:
        uncached = app.test_client()
        cost = commands_during(
            redis_client, lambda: submit(uncached, comment="uncached", email="u@example.com")
        )
    finally:
        close_app(app)
    # The settings pipeline (get policy, hget the article's state), then the one evalsha.
    assert cost == Counter(
        {
            "get": 1,
            "hget": 1,
            "evalsha": 1,
            "exists": 1,
            "set": 2,  # the comment, its event's text
            "xadd": 1,
            "xtrim": 1,
            "sadd": 2,
            "zadd": 3,
            "hset": 1,
            "pexpire": 2,
            "pttl": 1,
        }
    )


@pytest.mark.parametrize("pending", [5, pytest.param(300, marks=pytest.mark.slow)])
def test_moderator_queue_page_is_two_round_trips_then_none(
    client: FlaskClient, redis_client: Redis, pending: int
) -> None:
    for i in range(pending):
        submit(client, comment=f"held {i}", email=f"p{i}@example.com")

    def queue_page() -> object:
        return client.get("/api/v1/moderation/queue?limit=50", headers=AUTH)

    assert until_cached(redis_client, queue_page) == Counter()
    submit(client, comment="one more", email="late@example.com")  # changes the queue
    # Three round trips: the page's ids and the total (one script over the 256 buckets'
    # indexes: each one's first id, the size of the one that has any, and that one read
    # again up to the page's end: merged_page); then the comments (MGET), then the
    # moderators' claims on them (MGET).
    assert commands_during(redis_client, queue_page) == Counter(
        {"evalsha": 1, "zrangebylex": BUCKETS + 1, "zcard": 1, "mget": 2}
    )


def test_a_decision_is_one_read_and_one_script(client: FlaskClient, redis_client: Redis) -> None:
    held = [
        submit(client, comment=f"to decide {i}", email=f"d{i}@example.com").get_json()["id"]
        for i in range(2)
    ]
    # Once a listing costs nothing, the moderator's token check is in the worker's cache too;
    # a first approval and rejection have loaded the scripts (a first call is refused NOSCRIPT).
    for decision in ("approve", "reject"):
        client.post(f"/api/v1/moderation/comments/{held[1]}/{decision}", json={}, headers=AUTH)
    until_cached(redis_client, lambda: client.get("/api/v1/moderation/queue", headers=AUTH))

    # The comment (one MGET), then the transition script, whose reply is the comment as the
    # decision left it: the answer needs no second read. (The HGET, HMGET and HINCRBY are the
    # script's own: the TTL of the commenter key's record it stamps, the stamps it replaces
    # and its count of decisions, kept for an undo.) Then the review is finished: one script
    # dismisses its reports, takes it out of the Reported queue and releases its claim.
    # Stepped (a cluster: service/store/steps.py) the transition is three scripts: the
    # comment's change, the author's and commenter key's stamps, the undo kept in the comment.
    steps = 3 if STEPPED else 1
    approval = commands_during(redis_client, lambda: approve(client, held[0]))
    assert (approval["mget"], approval["evalsha"], approval["hget"]) == (1, 1 + steps, 1), approval
    assert (approval["hmget"], approval["hincrby"]) == (1, 1), approval
    assert (approval["hgetall"], approval["del"]) == (1, 1), approval
    # A published comment's content is in its public document: the read is then the records
    # (MGET) and the script that reads the published ones with their documents.
    rejection = commands_during(
        redis_client,
        lambda: client.post(f"/api/v1/moderation/comments/{held[0]}/reject", json={}, headers=AUTH),
    )
    assert rejection["mget"] == 1 and rejection["evalsha"] == 2 + steps


@pytest.mark.parametrize("by_article", [False, True])
def test_a_listing_of_published_comments_reads_each_in_one_step(
    client: FlaskClient, redis_client: Redis, by_article: bool
) -> None:
    fill(client, "a1", 5)
    path = "/api/v1/moderation/comments?status=approved" + ("&article_id=a1" if by_article else "")
    until_cached(redis_client, lambda: client.get(path, headers=AUTH))
    approve(client, submit(client, comment="one more", email="late@example.com").get_json()["id"])
    cost = commands_during(redis_client, lambda: client.get(path, headers=AUTH))
    # The page's ids and total (one script; across articles, over the 256 buckets' indexes,
    # as for the queue: merged_page); then, by article, one
    # script reads every comment with its public document (6 GETs and HGETs inside it). Across
    # articles the records come first (MGET) to learn each one's article, then the same
    # script. Then the claims (MGET).
    inside = {"get": 6, "hget": 6}
    expected = {"zrangebylex": 1, "zcard": 1, "evalsha": 2, "mget": 1, **inside}
    across = {**expected, "zrangebylex": BUCKETS + 1, "mget": 2}
    assert cost == Counter(expected if by_article else across)


@pytest.mark.parametrize("existing", [3, pytest.param(300, marks=pytest.mark.slow)])
def test_an_article_feed_is_one_round_trip_then_none(
    client: FlaskClient, redis_client: Redis, existing: int
) -> None:
    fill(client, "fed", existing)
    path = "/feeds/articles/fed.atom"
    client.get("/feeds/articles/warm.atom")  # the listener is up, the script loaded
    miss = commands_during(redis_client, lambda: client.get(path))
    # One EVALSHA: the newest ids of the article's approved index, its total, their documents.
    assert miss == Counter({"evalsha": 1, "zrevrangebylex": 1, "zcard": 1, "hmget": 1})
    assert until_cached(redis_client, lambda: client.get(path)) == Counter()


@pytest.mark.parametrize("existing", [3, pytest.param(300, marks=pytest.mark.slow)])
def test_the_site_feed_is_three_round_trips_then_none(
    client: FlaskClient, redis_client: Redis, existing: int
) -> None:
    fill(client, "site-a", existing)
    fill(client, "site-b", 2)
    client.get("/feeds/articles/warm.atom")  # the listener is up
    miss = commands_during(redis_client, lambda: client.get("/feeds/recent.atom"))
    # The newest ids of the buckets' approved indexes (one script: the newest of each, then
    # more of the two buckets holding these articles: merged_page); their records (to learn
    # each one's article); the documents, one HMGET per article in one pipeline.
    assert KEYS.bucket("site-a") != KEYS.bucket("site-b")
    expected = {"evalsha": 1, "zrevrangebylex": BUCKETS + 2, "mget": 1, "hmget": 2}
    assert miss == Counter(expected)
    assert until_cached(redis_client, lambda: client.get("/feeds/recent.atom")) == Counter()
    # A held submission leaves it cached; an approval does not.
    held = submit(client, article="site-a", comment="held for now", email="h@example.com")
    assert commands_during(redis_client, lambda: client.get("/feeds/recent.atom")) == Counter()
    approve(client, held.get_json()["id"])
    assert commands_during(redis_client, lambda: client.get("/feeds/recent.atom"))["mget"] == 1
