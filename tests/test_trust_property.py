"""Property: the insert script decides trust exactly as :func:`policy.is_trusted`, the oracle.

Trust is decided in production by INSERT_COMMENT (store/scripts.py), from the record of the
commenter key the submission presents, as it is at write time; the pure Python rule is the
definition the script is held to. Each example gives a commenter record (bound to the
submission's email, its key presented) a ``last_approved`` and a ``last_negative`` stamp (each
absent, or just before, at or just after the ``trusted_since`` boundary, or anywhere around it),
runs the real script on a real Redis through ``CommentStore.insert_submission`` with the two
judgements a submission carries (held as untrusted, published as trusted), and compares the
variant the script stored with what ``is_trusted`` answers for the same stamps.
"""

from __future__ import annotations

import itertools
import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from redis import Redis

from service.clock import iso_from_ms
from service.crypto import Cipher, KeyRing
from service.documents import render_public
from service.models import HistoryEntry, StoredComment
from service.moderation.policy import DAY_MS, Facts, Policy, is_trusted, trusted_since
from service.store import CommentStore, Guards, Judgement, KeyExchange, Keys, Outcome

KEYS = Keys("trust")
CIPHER = Cipher(KeyRing.parse(KeyRing.generate_entry("t1")))
_serial = itertools.count()

days = st.integers(min_value=1, max_value=3650)  # the policy's range (schemas.PolicySchema)
nows = st.integers(min_value=1_000_000_000_000, max_value=4_000_000_000_000)
# A stamp as an offset from the boundary: absent, on it or one ms either side, or anywhere
# within a few windows of it.
offsets = st.one_of(
    st.none(),
    st.sampled_from([-1, 0, 1]),
    st.integers(min_value=-4000 * DAY_MS, max_value=4000 * DAY_MS),
)


def judgement(status: str, at: str, codes: tuple[str, ...]) -> Judgement:
    reasons = tuple({"code": c, "detail": c, "action": "hold"} for c in codes)
    return Judgement(
        status=status,
        reasons=reasons,
        entry=HistoryEntry(at=at, actor="policy", to=status, note=",".join(codes)),
    )


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(trusted_days=days, now=nows, approved=offsets, negative=offsets)
@example(trusted_days=90, now=2_000_000_000_000, approved=0, negative=None)  # on the boundary
@example(trusted_days=90, now=2_000_000_000_000, approved=-1, negative=None)  # just outside
@example(trusted_days=90, now=2_000_000_000_000, approved=1, negative=0)  # negative counts
@example(trusted_days=90, now=2_000_000_000_000, approved=1, negative=-1)  # an old negative
@example(trusted_days=90, now=2_000_000_000_000, approved=None, negative=None)
def test_the_insert_script_chooses_the_variant_is_trusted_names(
    redis_client: Redis,
    trusted_days: int,
    now: int,
    approved: int | None,
    negative: int | None,
) -> None:
    store = CommentStore(redis_client, KEYS, CIPHER)
    policy = Policy(trusted_days=trusted_days)
    since = trusted_since(now, policy)
    stamps = {
        field: since + offset
        for field, offset in (("last_approved", approved), ("last_negative", negative))
        if offset is not None
    }
    serial = next(_serial)
    email_hash = f"author{serial}"
    commenter_id = f"{serial:024x}"
    redis_client.hset(KEYS.commenter(email_hash, commenter_id), "email", email_hash)
    redis_client.hset(KEYS.commenter(email_hash, commenter_id), "secret", "presented-secret-hash")
    for stamp, value in stamps.items():
        redis_client.hset(KEYS.commenter(email_hash, commenter_id), stamp, value)
    key = KeyExchange(
        email_hash=email_hash,
        presented_id=commenter_id,
        presented_secret="presented-secret-hash",
        fresh_id=f"{serial + 1:024x}",
        fresh_secret="fresh-secret-hash",
        ttl_ms=DAY_MS,
        grace_ms=0,
    )
    at = iso_from_ms(now)
    comment = StoredComment(
        id=f"c{serial:024d}",
        article_id="trust",
        name="N",
        email="n@example.com",
        comment="text",
        status="pending",
        created_at=at,
        updated_at=at,
        email_hash=email_hash,
    )
    guards = Guards(
        duplicate_key=f"d{serial}",
        ip_hash=f"i{serial}",
        email_hash=email_hash,
        duplicate_window_ms=0,
        flood_interval_ms=0,
        hourly_cap=0,
    )

    result = store.insert_submission(
        comment,
        render_public(comment.public()),
        [judgement("pending", at, ("first_comment",)), judgement("approved", at, ())],
        guards,
        now,
        trusted_since_ms=since,
        key=key,
    )

    expected = is_trusted(
        Facts(
            now_ms=now,
            last_approved_ms=stamps.get("last_approved"),
            last_negative_ms=stamps.get("last_negative"),
        ),
        trusted_days,
    )
    assert result.outcome is Outcome.STORED
    assert result.chosen == (1 if expected else 0), (stamps, since)
    stored = json.loads(str(redis_client.get(KEYS.comment(comment.id))))
    assert stored["status"] == ("approved" if expected else "pending")
