"""Campaign detection: near-duplicate texts from different authors within the window are held
with the reason "campaign" (the new one and the earlier pending ones), listed and decided in
bulk; one author repeating themself is no campaign. Precision and recall on a generated set."""

from __future__ import annotations

import itertools
import json
import time
import zlib
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis

from devtools.campaign_texts import generated, replay
from service.api.context import EXTENSION_KEY
from service.clock import iso_from_ms
from service.crypto import Cipher, KeyRing
from service.documents import render_public
from service.ids import id_at
from service.models import StoredComment
from service.moderation import campaigns
from service.moderation.policy import Action, Reason, Verdict, campaign_reason, with_reason
from service.store import CampaignProbe, CommentStore, Guards, Keys, Outcome
from service.submissions import _judgement
from tests.conftest import AUTH, RELAXED_POLICY, Browser, approve, submit

MODERATION = "/api/v1/moderation"
CIPHER = Cipher(KeyRing.parse(KeyRing.generate_entry("t1")))
TEXTS = [
    "Vote NO on measure 12: it will raise your taxes and destroy local jobs. Tell the council!",
    "Vote no on Measure 12, it would raise your taxes and wipe out local jobs. Tell the "
    "council now",
    "VOTE NO ON MEASURE 12 it will raise your taxes and destroy our local jobs tell the council",
    "Honestly, vote NO on measure 12: it will increase your taxes and destroy local jobs. Tell "
    "the council today!",
]


def reasons(client: FlaskClient, comment_id: str) -> list[str]:
    record = client.get(f"{MODERATION}/comments/{comment_id}", headers=AUTH).get_json()
    return [r["code"] for r in record["reasons"]]


def post(client: FlaskClient, n: int, **fields: Any) -> Any:
    fields.setdefault("email", f"sock{n}@example.com")
    return submit(client, comment=TEXTS[n], **fields)


def test_the_third_author_makes_a_campaign(client: FlaskClient) -> None:
    client.put(f"{MODERATION}/policy", json={**RELAXED_POLICY, "auto_approve": "all"}, headers=AUTH)
    first = post(client, 0).get_json()["id"]  # published at once (auto_approve all)
    second = post(client, 1)
    assert second.status_code == 201
    assert "campaign" not in reasons(client, first)
    # An unrelated comment in between changes nothing.
    other = submit(client, comment="I enjoyed the piece on the library budget, thank you.")
    assert other.status_code == 201
    held = client.put(
        f"{MODERATION}/policy", json={**RELAXED_POLICY, "auto_approve": "none"}, headers=AUTH
    )
    assert held.status_code == 200
    pending = post(client, 2).get_json()["id"]  # held by pre-moderation; a third author
    assert "campaign" in reasons(client, pending)
    third = post(client, 3).get_json()["id"]
    record = client.get(f"{MODERATION}/comments/{third}", headers=AUTH).get_json()
    [reason] = [r for r in record["reasons"] if r["code"] == "campaign"]
    campaign_id = reason["detail"].split()[1].rstrip(":")
    assert campaign_id == first
    # The earlier pending one was already in; the published ones stay published.
    public = client.get("/api/v1/articles/a1/comments").get_json()["comments"]
    assert first in [c["id"] for c in public]
    listed = client.get(f"{MODERATION}/campaigns/{campaign_id}", headers=AUTH)
    assert listed.status_code == 200
    members = [c["id"] for c in listed.get_json()["comments"]]
    assert third in members and pending in members and first in members
    queue = client.get(f"{MODERATION}/queue?reason=campaign", headers=AUTH).get_json()
    assert {c["id"] for c in queue["comments"]} >= {third, pending}
    decided = client.post(f"{MODERATION}/campaigns/{campaign_id}/spam", json={}, headers=AUTH)
    assert decided.status_code == 200 and set(decided.get_json()["decided"]) == set(members)
    assert client.get("/api/v1/articles/a1/comments").get_json()["comments"] == [
        c for c in public if c["id"] not in members
    ]


def test_earlier_pending_members_are_held_with_the_reason(client: FlaskClient) -> None:
    ids = [post(client, n).get_json()["id"] for n in range(3)]
    assert all("campaign" in reasons(client, i) for i in ids)


def test_one_author_repeating_themself_is_no_campaign(client: FlaskClient) -> None:
    ids = [post(client, n, email="same@example.com").get_json()["id"] for n in range(4)]
    assert all("campaign" not in reasons(client, i) for i in ids)


def test_short_texts_and_a_threshold_of_zero_are_never_campaigns(client: FlaskClient) -> None:
    ids = [submit(client, comment="Great article!", email=f"s{n}@example.com") for n in range(4)]
    assert all("campaign" not in reasons(client, r.get_json()["id"]) for r in ids)
    client.put(
        f"{MODERATION}/policy", json={**RELAXED_POLICY, "campaign_threshold": 0}, headers=AUTH
    )
    more = [post(client, n).get_json()["id"] for n in range(4)]
    assert all("campaign" not in reasons(client, i) for i in more)


def test_an_unknown_campaign_is_404(client: FlaskClient) -> None:
    assert client.get(f"{MODERATION}/campaigns/{'0' * 26}", headers=AUTH).status_code == 404


def test_precision_and_recall_on_a_generated_set() -> None:
    """Four paraphrased campaigns of 25 texts among 600 ordinary comments (measured: precision
    1.00, recall 0.96 with seed 7, 0.95 with seed 11; the misses are mostly the third text of a
    campaign whose two earlier ones happened to be far paraphrases)."""
    scores = replay(generated(seed=7))
    assert scores.precision >= 0.95, scores
    assert scores.recall >= 0.9, scores
    other = replay(generated(seed=11))
    assert other.precision >= 0.95 and other.recall >= 0.9, other


def test_a_trusted_author_completing_a_campaign_is_held_too(client: FlaskClient) -> None:
    """With two standings (untrusted, trusted) the insert carries four variants; the trusted
    one's held variant is chosen when a trusted author completes a campaign."""
    browser = Browser(client, email="trusted@example.com")
    first = browser.submit(comment="My first comment here.").get_json()["id"]
    assert approve(client, first).status_code == 200
    ordinary = browser.submit(comment="A long enough ordinary comment about the river bridge.")
    assert ordinary.get_json()["status"] == "approved"  # trusted: published at once
    post(client, 0)
    post(client, 1)
    answer = browser.submit(comment=TEXTS[2]).get_json()
    assert answer["status"] == "pending"
    record = client.get(f"{MODERATION}/comments/{answer['id']}", headers=AUTH).get_json()
    assert record["status"] == "pending" and "campaign" in reasons(client, answer["id"])
    assert record["history"][0]["note"].split(", ")[-1] == "campaign"


def test_an_empty_slot_borrows_from_the_next_filled_one() -> None:
    # Few shingles leave slots empty: each holds the next filled slot's value (wrapping round)
    # marked by the distance it was borrowed from, so it is the definition, slot by slot.
    text = "alpha beta gamma delta epsilon zeta eta theta"
    flat = campaigns.canonical(text).split()
    values = {zlib.crc32(w.encode()) for w in flat}
    values |= {zlib.crc32(f"{a} {b}".encode()) for a, b in itertools.pairwise(flat)}
    smallest: dict[int, int] = {}
    for v in values:
        smallest[v % campaigns.SLOTS] = min(v, smallest.get(v % campaigns.SLOTS, v))
    assert 0 < len(smallest) < campaigns.SLOTS
    expected = []
    for i in range(campaigns.SLOTS):
        j = next(
            (i + d) % campaigns.SLOTS
            for d in range(campaigns.SLOTS)
            if (i + d) % campaigns.SLOTS in smallest
        )
        expected.append(smallest[j] + ((j - i) % campaigns.SLOTS) * (1 << 32))
    assert campaigns.sketch(text) == tuple(expected)


@pytest.mark.parametrize(
    "verdict",
    [
        Verdict(Action.APPROVE, ()),  # published at once: held, with its content back
        Verdict(Action.APPROVE, (Reason("links", "1 links in the comment", Action.APPROVE),)),
        Verdict(Action.HOLD, (Reason("first_comment", "no approved comment", Action.HOLD),)),
        Verdict(Action.SPAM, (Reason("honeypot", "the hidden field", Action.SPAM),)),
    ],
    ids=["approved", "approved-with-reason", "pending", "spam"],
)
@pytest.mark.parametrize("standings", [1, 2])
def test_the_script_holds_a_campaign_member_as_the_policy_would(
    redis_client: Redis, verdict: Verdict, standings: int
) -> None:
    """The insert script makes the held record from the chosen standing's (no second record
    is sent): what policy.with_reason gives (status, reasons, history), the content, and the
    indexes of the held status and every reason."""
    keys = Keys(f"held{standings}")
    store = CommentStore(redis_client, keys, CIPHER)
    now = int(time.time() * 1000)
    window = 86_400_000
    sketch = campaigns.encode(campaigns.sketch(TEXTS[0]) or ())
    bucket = keys.campaign_bucket(window, campaigns.bucket(now, window))
    earlier = [id_at(now - 1000 + n, f"{n:020x}") for n in range(2)]
    for n, member in enumerate(earlier):
        redis_client.hset(bucket, member, campaigns.sketch_entry(f"other{n}", sketch))
    for field in campaigns.band_fields(sketch):
        redis_client.hset(bucket, field, "".join(earlier))
    at = iso_from_ms(now)
    comment = StoredComment(
        id=id_at(now, "f" * 20),
        article_id="held-article",
        name="N",
        email="n@example.com",
        comment=TEXTS[0],
        website="https://example.org/",
        status="pending",
        created_at=at,
        updated_at=at,
        email_hash="mine",
    )
    judgement = _judgement(verdict, at)
    result = store.insert_submission(
        comment,
        render_public(comment.public()),
        [judgement] * standings,
        Guards.off(),
        now,
        trusted_since_ms=None if standings == 1 else now - window,
        campaign=CampaignProbe("mine", sketch, window, 3),
    )
    assert result.outcome is Outcome.STORED and result.campaign is not None
    assert result.chosen == 0
    held = with_reason(verdict, campaign_reason(earlier[0], 3, 3))
    stored = json.loads(str(redis_client.get(keys.comment(comment.id))))
    assert stored["status"] == held.status
    assert stored["reasons"] == [r.as_dict() for r in held.reasons]
    assert stored["history"] == [_judgement(held, at).entry.as_dict()]
    assert stored["content"] == comment.content()
    assert redis_client.hget(keys.article_public("held-article"), comment.id) is None
    article_bucket = keys.bucket("held-article")
    indexes = [
        keys.status_index(held.status, article_bucket),
        keys.article_status_index("held-article", held.status),
        *(keys.reason_status_index(r.code, held.status, article_bucket) for r in held.reasons),
    ]
    assert all(redis_client.zscore(index, comment.id) == 0 for index in indexes)
    if verdict.status != held.status:  # not in the indexes of the standing's own status
        own = keys.status_index(verdict.status, article_bucket)
        assert redis_client.zscore(own, comment.id) is None
    purge = redis_client.zscore(keys.retention(article_bucket), comment.id)
    assert (purge is not None) == (held.status == "spam")


def test_a_bucket_gets_its_ttl_on_its_first_write_only(client: FlaskClient) -> None:
    """The first comment in a time bucket marks it and gives it its TTL (a window after the
    bucket's end); later ones leave the TTL alone (no expiry written per submission)."""
    client.put(f"{MODERATION}/policy", json=RELAXED_POLICY, headers=AUTH)
    store = client.application.extensions[EXTENSION_KEY].store
    window = RELAXED_POLICY.get("campaign_window_seconds", 86_400) * 1000
    now = int(time.time() * 1000)
    bucket_key = store.keys.campaign_bucket(window, campaigns.bucket(now, window))
    assert post(client, 0).status_code in (201, 202)
    assert store.redis.hget(bucket_key, campaigns.BUCKET_MARK) == "1"
    expected = (campaigns.bucket(now, window) + 2) * window - now
    assert abs(store.redis.pttl(bucket_key) - expected) < 60_000
    store.redis.pexpire(bucket_key, 3_600_000)
    second = post(client, 1)
    assert second.status_code in (201, 202)
    assert store.redis.hexists(bucket_key, second.get_json()["id"])  # its sketch is in
    assert 0 < store.redis.pttl(bucket_key) <= 3_600_000
