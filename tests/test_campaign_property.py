"""Property: the insert script detects campaigns exactly as :func:`campaigns.detect`, the oracle.

Campaign detection runs in production inside INSERT_COMMENT (store/scripts.py), on the
buckets as they are at write time; the pure Python rule is the definition the script is held
to. Each example fills the time buckets' hashes (band values and sketches) with members (their
authors, their sketches some components away from the new one's, their times in, on the edge
of or out of the window, in the current bucket, the one before or an older one, a band or
several, and a band value the new sketch does not have), some of them stored comments (pending
or published, already in the campaign or carrying a campaign reason), runs the real script on a
real Redis through ``CommentStore.insert_submission`` and compares with the oracle: whether the
comment is held, the campaign's id, comments and authors, the reason's detail; which earlier
members got the reason; the current bucket afterwards (each band's most recent ids with the new
one's, the sketch, the TTL).
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from redis import Redis

from service.clock import iso_from_ms
from service.crypto import Cipher, KeyRing
from service.documents import render_public
from service.ids import id_at
from service.models import HistoryEntry, StoredComment
from service.moderation import campaigns
from service.moderation.policy import campaign_reason
from service.store import CampaignProbe, CommentStore, Guards, Judgement, Keys, Outcome

CIPHER = Cipher(KeyRing.parse(KeyRing.generate_entry("t1")))
NOW = 2_000_000_000_000
WINDOW = 60_000
BUCKET = campaigns.bucket(NOW, WINDOW)
MINE = "mine"
BASE = [f"0{i:x}"[-2:] for i in range(campaigns.SLOTS)]  # the new comment's encoded components
# The new sketch's band fields (the script cuts them from it); OTHER: a band value of position
# 0 that no member shares with it.
FIELDS = campaigns.band_fields("".join(BASE))
OTHER = "0:" + "Z" * campaigns.BAND_WIDTH
_serial = itertools.count()


@dataclass(frozen=True)
class Member:
    author: str
    changed: int  # components of the sketch that differ from the new comment's
    age: int  # ms before now (WINDOW: exactly on the window's edge)
    bands: frozenset[int]
    stored: str | None  # its comment's status, when it is a stored comment
    has_reason: bool  # the stored comment already carries a campaign reason
    in_campaign: bool  # already in the campaign's set (if it turns out to be the campaign)


members = st.builds(
    Member,
    author=st.sampled_from([MINE, "a", "b", "c", "d"]),
    changed=st.one_of(
        st.sampled_from([0, 15, 16, 17]), st.integers(min_value=0, max_value=campaigns.SLOTS)
    ),
    age=st.one_of(
        st.sampled_from([0, WINDOW - 1, WINDOW, WINDOW + 1]),
        st.integers(min_value=0, max_value=2 * WINDOW),
    ),
    bands=st.frozensets(st.integers(min_value=0, max_value=campaigns.BANDS - 1), min_size=1),
    stored=st.sampled_from([None, "pending", "pending", "approved"]),
    has_reason=st.booleans(),
    in_campaign=st.booleans(),
)


def sketch_of(changed: int) -> str:
    return "".join(v if i >= changed else f"Z{i % 10}" for i, v in enumerate(BASE))


def judgement(status: str, at: str, reasons: tuple[dict[str, str], ...]) -> Judgement:
    codes = ", ".join(r["code"] for r in reasons)
    return Judgement(
        status=status,
        reasons=reasons,
        entry=HistoryEntry(at=at, actor="policy", to=status, note=codes),
    )


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    found=st.lists(members, max_size=60),  # past CANDIDATES_PER_BAND in a band
    threshold=st.integers(min_value=1, max_value=5),
    approved=st.booleans(),
)
@example(  # two other authors, similar by exactly half the components: a campaign of three
    found=[
        Member("a", 16, 10, frozenset({0}), "pending", False, False),
        Member("b", 0, WINDOW, frozenset({1, 2}), "approved", False, False),
    ],
    threshold=3,
    approved=True,
)
@example(  # the same author twice and one too far: no campaign
    found=[
        Member("a", 0, 10, frozenset({0}), "pending", False, False),
        Member("a", 0, 10, frozenset({3}), "pending", False, False),
        Member("b", 17, 10, frozenset({0}), "pending", False, False),
    ],
    threshold=3,
    approved=False,
)
@example(  # a band the current bucket fills only in part: the rest from the bucket before,
    # its most recent first (two of four similar ones: a campaign of three, not of five)
    found=[
        *(Member("a", 32, 10 + i, frozenset({0}), None, False, False) for i in range(18)),
        *(
            Member(author, 0, 30_000 + i, frozenset({0}), None, False, False)
            for i, author in enumerate("bcdb")
        ),
    ],
    threshold=3,
    approved=False,
)
@example(  # a band past its most recent 20 in the current bucket: the new one's joins them,
    # the oldest go
    found=[Member("a", 32, 10 + i, frozenset({0, 5}), None, False, False) for i in range(25)],
    threshold=3,
    approved=False,
)
def test_the_insert_script_detects_campaigns_as_detect_does(
    redis_client: Redis, found: list[Member], threshold: int, approved: bool
) -> None:
    serial = next(_serial)
    keys = Keys(f"cp{serial}")
    store = CommentStore(redis_client, keys, CIPHER)
    at = iso_from_ms(NOW)
    ids = [id_at(NOW - m.age, f"{i:020x}") for i, m in enumerate(found)]
    bucket_of = {i: campaigns.bucket(NOW - m.age, WINDOW) for i, m in zip(ids, found, strict=True)}
    sketches = {}
    # Each member in its own time's bucket (the current one, the one before, or one the script
    # never reads), under the values of the bands it shares and a band value it does not. All
    # of a band's ids, even past the most recent that the script keeps: it reads those only.
    band_ids: dict[tuple[int, str], list[str]] = {}
    for member_id, m in zip(ids, found, strict=True):
        bucket = bucket_of[member_id]
        for field in [*(FIELDS[b] for b in m.bands), OTHER]:
            band_ids.setdefault((bucket, field), []).append(member_id)
        sketches[member_id] = campaigns.sketch_entry(m.author, sketch_of(m.changed))
        redis_client.hset(keys.campaign_bucket(WINDOW, bucket), member_id, sketches[member_id])
    for (bucket, field), members_of_band in band_ids.items():
        redis_client.hset(
            keys.campaign_bucket(WINDOW, bucket), field, "".join(sorted(members_of_band))
        )
    for n, (member_id, m) in enumerate(zip(ids, found, strict=True)):
        if m.stored:
            reasons = [{"code": "campaign", "detail": "earlier", "action": "hold"}]
            # Each on an article of its own: a held one's reason goes to its bucket's index.
            record = {"id": member_id, "article_id": f"a{n}", "status": m.stored, "version": 1}
            record["reasons"] = reasons if m.has_reason else []
            redis_client.set(keys.comment(member_id), json.dumps(record))
            # Its indexes, as the store keeps them.
            bucket = keys.bucket(f"a{n}")
            redis_client.zadd(keys.status_index(m.stored, bucket), {member_id: 0})
            if m.has_reason:
                redis_client.zadd(
                    keys.reason_status_index("campaign", m.stored, bucket), {member_id: 0}
                )
    new_id = id_at(NOW, "f" * 20)
    sketch = "".join(BASE)
    # The oracle, on the bands as the script reads them (the current and the previous
    # bucket's).
    met = [
        campaigns.recent(
            [
                i
                for i, m in zip(ids, found, strict=True)
                if b in m.bands and BUCKET - bucket_of[i] in (0, 1)
            ],
            campaigns.since_id(NOW - WINDOW),
            campaigns.CANDIDATES_PER_BAND,
        )
        for b in range(campaigns.BANDS)
    ]
    expected = campaigns.detect(new_id, MINE, sketch, met, sketches, threshold)
    event("a campaign" if expected else "no campaign")
    if expected is not None:
        for member_id, m in zip(ids, found, strict=True):
            if m.in_campaign:
                redis_client.sadd(keys.campaign(expected.campaign_id), member_id)

    comment = StoredComment(
        id=new_id,
        article_id="camp",
        name="N",
        email="n@example.com",
        comment="text",
        status="pending",
        created_at=at,
        updated_at=at,
        email_hash=MINE,
    )
    # What the script holds it as: the verdict with the campaign reason (policy.with_reason).
    held = judgement("pending", at, (campaign_reason("", 0, 0).as_dict(),))
    result = store.insert_submission(
        comment,
        render_public(comment.public()),
        [judgement("approved" if approved else "pending", at, ())],
        Guards.off(),
        NOW,
        campaign=CampaignProbe(MINE, sketch, WINDOW, threshold),
    )

    assert result.outcome is Outcome.STORED
    stored = json.loads(str(redis_client.get(keys.comment(new_id))))
    if expected is None:
        assert result.campaign is None
        assert stored["status"] == ("approved" if approved else "pending")
        assert stored["reasons"] in ([], {})  # Lua's cjson writes an empty array as {}
    else:
        assert result.campaign is not None
        assert (result.campaign.campaign_id, result.campaign.comments) == (
            expected.campaign_id,
            expected.comments,
        )
        assert result.campaign.authors == expected.authors
        reason = campaign_reason(expected.campaign_id, expected.comments, expected.authors)
        assert stored["status"] == "pending"
        assert stored["reasons"] == [reason.as_dict()]
        # The held record is whole: the standing's, with the held verdict's history and (an
        # approved one's is published: its record had none) the content.
        assert stored["history"] == [held.entry.as_dict()]
        assert stored["content"]["comment"] == "text" and stored["article_id"] == "camp"
        assert CIPHER.decrypt(stored["email"], "email") == "n@example.com"
        held_index = keys.reason_status_index("campaign", "pending", keys.bucket("camp"))
        assert redis_client.zscore(held_index, new_id) == 0
        assert redis_client.hget(keys.article_public("camp"), new_id) is None
        # The earlier members new to the campaign that are pending without a campaign reason
        # get this one; every member is in the campaign's set.
        fresh = {i for i, m in zip(ids, found, strict=True) if not m.in_campaign}
        should_hold = {
            i
            for i, m in zip(ids, found, strict=True)
            if i in expected.members and i in fresh and m.stored == "pending" and not m.has_reason
        }
        assert set(result.campaign.held) == should_hold
        articles = {i: f"a{n}" for n, i in enumerate(ids)}
        assert result.campaign.held_buckets == tuple(
            keys.bucket(articles[i]) for i in result.campaign.held
        )
        for member_id, m in zip(ids, found, strict=True):
            if m.stored:
                record = json.loads(str(redis_client.get(keys.comment(member_id))))
                member_index = keys.reason_status_index(
                    "campaign", "pending", keys.bucket(record["article_id"])
                )
                if member_id in should_hold:
                    assert record["reasons"] == [reason.as_dict()] and record["version"] == 2
                    assert redis_client.zscore(member_index, member_id) == 0
                else:
                    assert record["version"] == 1
        members = {str(m) for m in redis_client.smembers(keys.campaign(expected.campaign_id))}
        assert members >= {new_id, *expected.members}
    # The current bucket: under each band's value its most recent ids (as many as a sketch
    # reads), the new one's included; the band value it does not share untouched; its sketch
    # under its id; the hash expires a window after the bucket's end.
    current = keys.campaign_bucket(WINDOW, BUCKET)
    for field in FIELDS:
        before = band_ids.get((BUCKET, field), [])
        after = campaigns.band_value([*before, new_id])
        assert len(after) == 26 * min(len(before) + 1, campaigns.CANDIDATES_PER_BAND)
        assert redis_client.hget(current, field) == after
    untouched = band_ids.get((BUCKET, OTHER))
    assert redis_client.hget(current, OTHER) == ("".join(sorted(untouched)) if untouched else None)
    assert redis_client.hget(current, new_id) == campaigns.sketch_entry(MINE, sketch)
    expires_in = (BUCKET + 2) * WINDOW - time.time() * 1000
    assert abs(redis_client.pttl(current) - expires_in) < 60_000
    # Marked by its first write, so that later ones leave its TTL alone.
    assert redis_client.hget(current, campaigns.BUCKET_MARK) == "1"
