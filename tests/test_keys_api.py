"""The key builders take what each key will be placed by once keys are sharded by tag
(docs/sharding-plan.md §6, commit 3), and no name changes: every kind built through the new
arguments is today's name, and with layout 4's tags (tests/sharded_keys.py, PlanTagKeys) each
lands under the tag the plan gives it (§0, §3) and only its tag differs. The scans' shapes
(Keys.classify) still recognise every name, and the writes confirmed by a replication mark
write it in the slot of the keys they wrote."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis import Redis
from redis.crc import key_slot

from service.crypto import Cipher, KeyRing
from service.ids import id_bucket, new_id
from service.store import CommentStore, Keys
from service.store.keys import BUCKETS, SHAPES, hash_tag
from service.store.layout import LegacyKeys, rebuilt
from tests.sharded_keys import PlanTagKeys, bucket_tag

ARTICLE = "article-7"
BUCKET = Keys.bucket(ARTICLE)
COMMENT = new_id(1_764_633_600_000, BUCKET)
EMAIL = "e1a2"
IP = "f3b4"

# Every kind: the arguments its builder is given, and the name it has had since layout 3 (a
# bucket's event and spam-check streams: since they were split from the site's, §6 commit 5).
TODAY: dict[str, tuple[tuple[Any, ...], str]] = {
    "comment": ((COMMENT,), f"cm:comment:{{cm}}:{COMMENT}"),
    "status_index": (("pending", BUCKET), f"cm:status:pending:{{cm}}:{BUCKET}"),
    "article_status_index": ((ARTICLE, "approved"), f"cm:idx:approved:{{cm}}:{ARTICLE}"),
    "reason_status_index": (
        ("link", "pending", BUCKET),
        f"cm:reason:link:status:pending:{{cm}}:{BUCKET}",
    ),
    "article_public": ((ARTICLE,), f"cm:public:{{cm}}:{ARTICLE}"),
    "article_settings": ((ARTICLE,), f"cm:article:settings:{{cm}}:{ARTICLE}"),
    "author": ((EMAIL,), f"cm:author:{{cm}}:{EMAIL}"),
    "author_comments": ((EMAIL,), f"cm:author:comments:{{cm}}:{EMAIL}"),
    "author_commenters": ((EMAIL,), f"cm:author:commenters:{{cm}}:{EMAIL}"),
    "commenter": ((EMAIL, "c0ffee"), "cm:commenter:{cm}:c0ffee"),
    "retention": ((BUCKET,), f"cm:retention:{{cm}}:{BUCKET}"),
    "moderators": ((), "cm:moderators:{cm}"),
    "auth_failures": ((IP,), f"cm:authfail:{{cm}}:{IP}"),
    "lock": (("purge",), "cm:lock:{cm}:purge"),
    "rate_limit_counter": (
        (f"LIMITER/submit/{IP}/1/60",),
        f"cm:limits:{{cm}}:LIMITER/submit/{IP}/1/60",
    ),
    "policy": ((), "cm:policy:{cm}"),
    "imported": ((ARTICLE,), f"cm:imported:{{cm}}:{ARTICLE}"),
    "duplicate": ((ARTICLE, "fp9"), "cm:dup:{cm}:fp9"),
    "flood_ip": ((IP,), f"cm:flood:ip:{{cm}}:{IP}"),
    "hourly": ((IP, 490_000), f"cm:hourly:{{cm}}:{IP}:490000"),
    "events": ((), "cm:events:{cm}"),
    "bucket_events": ((BUCKET,), f"cm:events:{{cm}}:{BUCKET}"),
    "event_content": ((ARTICLE, COMMENT), f"cm:evtext:{{cm}}:{COMMENT}"),
    "webhooks": ((), "cm:webhooks:{cm}"),
    "webhook_state": (("w1",), "cm:webhook:state:{cm}:w1"),
    "webhook_deliveries": (("w1",), "cm:webhook:deliveries:{cm}:w1"),
    "webhook_dead": (("w1",), "cm:webhook:dead:{cm}:w1"),
    "webhook_replay": (("w1",), "cm:webhook:replay:{cm}:w1"),
    "notify_digest": ((), "cm:notify:digest:{cm}"),
    "claim": ((COMMENT,), f"cm:claim:{{cm}}:{COMMENT}"),
    "idempotency": ((IP, "k5"), f"cm:idem:{{cm}}:{IP}:k5"),
    "reports": ((COMMENT,), f"cm:reports:{{cm}}:{COMMENT}"),
    "reported": ((BUCKET,), f"cm:reported:{{cm}}:{BUCKET}"),
    "spam_checks": ((), "cm:spamcheck:{cm}"),
    "bucket_spam_checks": ((BUCKET,), f"cm:spamcheck:{{cm}}:{BUCKET}"),
    "campaign_bucket": ((600_000, 2_941_056), "cm:campaign:bucket:{cm}:600000:2941056"),
    "campaign": ((COMMENT,), f"cm:campaign:{{cm}}:{COMMENT}"),
    "replication_mark": (("{cm}",), "cm:replmark:{cm}"),
    "layout": ((), "cm:layout:{cm}"),
    "outbox": ((BUCKET,), f"cm:outbox:{{cm}}:{BUCKET}"),
    "step_memo": (
        ("{cm}", "5d41402abc4b2a76b9719d911017c592"),
        "cm:step:{cm}:5d41402abc4b2a76b9719d911017c592",
    ),
}

# The tag layout 4 places each kind by (sharding plan §0's table and §3's).
B, U, IPT, CMC, SITE = (
    bucket_tag("cm", BUCKET),
    f"{{cm:u:{EMAIL}}}",
    f"{{cm:ip:{IP}}}",
    "{cm:cmc}",
    "{cm}",
)
PLAN_TAGS = {
    **dict.fromkeys(("comment", "claim", "reports", "event_content"), B),
    **dict.fromkeys(("status_index", "reason_status_index", "retention", "reported"), B),
    **dict.fromkeys(("article_status_index", "article_public", "article_settings"), B),
    **dict.fromkeys(("imported", "duplicate", "bucket_events", "bucket_spam_checks"), B),
    **dict.fromkeys(("author", "author_comments", "author_commenters", "commenter"), U),
    **dict.fromkeys(("auth_failures", "flood_ip", "hourly", "idempotency"), IPT),
    **dict.fromkeys(("campaign_bucket", "campaign"), CMC),
    # The limiter's counters are named by the `limits` library under rate_limits(): they take
    # the client's tag when the client it is given is one (plan §2.5), not through Keys.
    **dict.fromkeys(("moderators", "lock", "rate_limit_counter", "policy"), SITE),
    **dict.fromkeys(("webhooks", "webhook_state", "webhook_deliveries"), SITE),
    **dict.fromkeys(("webhook_dead", "webhook_replay", "notify_digest", "layout"), SITE),
    **dict.fromkeys(("events", "spam_checks"), SITE),  # stream index 0
    "replication_mark": SITE,  # the tag it is given
    "outbox": B,
    "step_memo": SITE,  # the tag it is given (its step's)
}


def built(keys: Keys, kind: str) -> str:
    args, _ = TODAY[kind]
    return str(getattr(keys, kind)(*args))


def test_the_tables_cover_every_kind_of_key() -> None:
    kinds = {shape.kind for shape in SHAPES}
    assert set(TODAY) == kinds
    assert set(PLAN_TAGS) == kinds


@pytest.mark.parametrize("kind", sorted(TODAY))
def test_every_kind_keeps_today_s_name(kind: str) -> None:
    assert built(Keys(), kind) == TODAY[kind][1]


def test_the_lists_of_keys_keep_today_s_names() -> None:
    keys = Keys()
    assert keys.event_streams() == (
        "cm:events:{cm}",
        *(f"cm:events:{{cm}}:{b}" for b in range(BUCKETS)),
    )
    assert keys.spam_check_streams() == (
        "cm:spamcheck:{cm}",
        *(f"cm:spamcheck:{{cm}}:{b}" for b in range(BUCKETS)),
    )
    assert keys.events(None) == "cm:events:{cm}" and keys.spam_checks() == "cm:spamcheck:{cm}"
    assert keys.events(ARTICLE) == f"cm:events:{{cm}}:{BUCKET}" == keys.event_streams()[1 + BUCKET]
    assert keys.spam_checks(ARTICLE) == f"cm:spamcheck:{{cm}}:{BUCKET}"
    assert keys.status_indexes("approved")[BUCKET] == f"cm:status:approved:{{cm}}:{BUCKET}"
    assert keys.retention_indexes()[-1] == f"cm:retention:{{cm}}:{BUCKETS - 1}"
    assert keys.comment("") == "cm:comment:{cm}:"  # the insert script's prefixes
    assert keys.reason_status_index("campaign", "pending", "") == (
        "cm:reason:campaign:status:pending:{cm}:"
    )
    for tag in (
        keys.tag,
        keys.tag_for_bucket(BUCKET),
        keys.tag_for_article(ARTICLE),
        keys.tag_for_comment(COMMENT),
        keys.tag_for_author(EMAIL),
        keys.tag_for_client(IP),
        keys.tag_for_campaign(),
    ):
        assert tag == "{cm}"
    assert Keys("xy").tag_for_author(EMAIL) == "{xy}"


@pytest.mark.parametrize("kind", sorted(TODAY))
def test_with_layout_4_s_tags_each_kind_lands_under_its_tag_and_only_the_tag_differs(
    kind: str,
) -> None:
    name = built(PlanTagKeys(), kind)
    assert hash_tag(name) == PLAN_TAGS[kind]
    assert key_slot(name.encode()) == key_slot(PLAN_TAGS[kind].encode())
    assert name.replace(PLAN_TAGS[kind], "{cm}", 1) == TODAY[kind][1]


def test_with_layout_4_s_tags_the_streams_are_the_site_s_then_each_bucket_s() -> None:
    keys = PlanTagKeys()
    streams = keys.event_streams()
    assert streams[0] == "cm:events:{cm}" and len(streams) == BUCKETS + 1
    assert keys.events(ARTICLE) == streams[1 + BUCKET]
    assert keys.spam_check_streams()[1 + BUCKET] == keys.spam_checks(ARTICLE)
    assert keys.status_indexes("pending")[BUCKET] == keys.status_index("pending", BUCKET)
    assert hash_tag(keys.reported_indexes()[3]) == bucket_tag("cm", 3)
    # An article's keys and its comments' are in one slot: the id carries the bucket.
    assert keys.tag_for_comment(COMMENT) == keys.tag_for_article(ARTICLE)
    assert id_bucket(COMMENT) == BUCKET


@pytest.mark.parametrize("kind", sorted(TODAY))
def test_every_name_is_classified_as_its_kind_and_rebuilt_from_its_parts(kind: str) -> None:
    keys, name = Keys(), TODAY[kind][1]
    found = keys.classify(name)
    assert found is not None
    shape, parts = found
    assert shape.kind == kind
    # The parts a name carries (a duplicate marker's article, a commenter record's email
    # hash only place it: not in today's names).
    given = TODAY[kind][0] if shape.parts else ()
    args = dict(zip(shape.parts, given, strict=True))
    assert parts == {p: str(v) for p, v in args.items() if p in parts}
    assert set(args) - set(parts) <= {"article_id", "email_hash"}
    assert rebuilt(keys, shape, parts) == name


def test_a_replication_mark_is_recognised_under_a_tag_of_its_prefix_only() -> None:
    keys = Keys()
    assert keys.classify("cm:replmark:{cm:u:e1}") is not None  # layout 4's, one per tag
    assert keys.classify("cm:replmark:{xy}") is None
    assert keys.classify("cm:replmark:cm") is None
    legacy = LegacyKeys()
    found = legacy.classify("{cm}:replmark")
    assert found is not None
    assert rebuilt(keys, *found) == "cm:replmark:{cm}"
    assert rebuilt(legacy, *keys.classify("cm:replmark:{cm}")) == "{cm}:replmark"  # type: ignore[misc]


def test_hash_tag_is_the_first_braces_as_redis_reads_them() -> None:
    assert hash_tag("cm:idx:approved:{cm:7}:a{b}") == "{cm:7}"
    for untagged in ("cm:policy", "cm:{}:x", "cm:{open"):
        with pytest.raises(ValueError, match="no hash tag"):
            hash_tag(untagged)


CIPHER = Cipher(KeyRing.parse(KeyRing.generate_entry("k1")))


@pytest.fixture
def marks(redis_client: Redis, monkeypatch: pytest.MonkeyPatch) -> tuple[CommentStore, list[str]]:
    """A store of layout 4's tags whose confirmations are recorded (each write below touches
    one tag's keys: valid on the cluster pass too)."""
    store = CommentStore(redis_client, PlanTagKeys(), CIPHER)
    written: list[str] = []

    def confirm(*mark_keys: str, what: str) -> None:
        written.extend(mark_keys)

    monkeypatch.setattr(store.replica_wait, "confirm", confirm)
    return store, written


def test_a_revocation_is_confirmed_in_its_author_s_slot(
    redis_client: Redis, marks: tuple[CommentStore, list[str]]
) -> None:
    store, written = marks
    keys = store.keys
    redis_client.sadd(keys.author_commenters(EMAIL), "c1", "c2")
    for commenter_id in ("c1", "c2"):
        redis_client.hset(keys.commenter(EMAIL, commenter_id), "email", EMAIL)
    assert store.revoke_commenters(EMAIL) == 2
    assert not redis_client.exists(keys.commenter(EMAIL, "c1"), keys.commenter(EMAIL, "c2"))
    assert written == [f"cm:replmark:{{cm:u:{EMAIL}}}"]


def test_a_re_encryption_is_confirmed_in_its_comment_s_slot(
    redis_client: Redis, marks: tuple[CommentStore, list[str]]
) -> None:
    store, written = marks
    redis_client.set(store.keys.comment(COMMENT), json.dumps({"email": "old"}))
    assert store.rewrite_email(COMMENT, "old", "new")
    assert written == [f"cm:replmark:{B}"]
    assert key_slot(written[0].encode()) == key_slot(store.keys.comment(COMMENT).encode())


def test_a_restored_commenter_record_goes_to_its_email_s_tag_and_is_confirmed_there(
    redis_client: Redis, marks: tuple[CommentStore, list[str]]
) -> None:
    store, written = marks
    # A backup names a commenter record by its id only (today's name carries no more).
    record = {"email": EMAIL, "secret": "s", "ttl": "1000"}
    store.restore_key("commenter", {"commenter_id": "c9"}, record, 60_000)
    assert redis_client.hgetall(store.keys.commenter(EMAIL, "c9")) == record
    store.restore_key("moderators", {}, {"alice": "h"}, 0)
    assert written == [f"cm:replmark:{{cm:u:{EMAIL}}}", "cm:replmark:{cm}"]
