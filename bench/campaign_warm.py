"""A store as a day of ordinary comments leaves it, for the campaign detection benches.

A bench that starts on an empty store flatters detection: every band a new sketch reads is a
miss in an empty (or missing) key, the bucket before is always missing, and every write goes
into a small set. In production the current time bucket and the one before hold every
comment of the last window. :func:`warm` stores ``comments`` ordinary comments (pending, as a
first-time commenter's are, on an article of their own) with their sketches, spread evenly
over the window before ``now``, through the real insert script (CommentStore.insert_submission
with its time set to each comment's), so that the buckets, the pending indexes and the comment
keys are what a day of submissions makes them. The texts are made the way the HTTP bench's
wrk script makes its submissions (bench/http_scenarios.lua: half common words, half made-up
ones, ~300 characters), so a bench's sketches meet the seeded ones as often as each other.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.clock import iso_from_ms  # noqa: E402
from service.crypto import Cipher, KeyRing  # noqa: E402
from service.documents import render_public  # noqa: E402
from service.ids import new_id  # noqa: E402
from service.models import HistoryEntry, StoredComment  # noqa: E402
from service.moderation import campaigns  # noqa: E402
from service.store import CampaignProbe, CommentStore, Guards, Judgement, Keys  # noqa: E402
from service.store.client import RedisClient  # noqa: E402
from service.store.commenters import KeyExchange  # noqa: E402

# As bench/http_scenarios.lua.
WORDS = (
    "the council said that budget plans for new library would be reviewed next week while "
    "residents asked whether parking and bus routes near station could change soon given long "
    "delays many of them reported after meeting on tuesday evening about schools roads park "
    "summer market river bridge repairs"
).split()
SYLLABLES = "ka lo mi ren tu sa ve dor pi nal bo ste gri fu mon ta le wen ko ris".split()
WARM_ARTICLE = "bench-warm"
DEFAULT_COMMENTS = 20_000
BATCH = 200


def ordinary_text(rng: random.Random, reference: str, words: Sequence[str] = WORDS) -> str:
    """One comment as the wrk script writes them: ~270 characters of words, half of them
    common (``words``), half made-up, and a unique reference."""
    parts: list[str] = []
    length = 0
    while length < 270:
        if rng.random() < 0.5:
            word = rng.choice(words)
        else:
            word = rng.choice(SYLLABLES) + rng.choice(SYLLABLES)
        parts.append(word)
        length += len(word) + 1
    return " ".join(parts) + f" (ref {reference})"


def _judgement(status: str, at: str, reasons: tuple[dict[str, str], ...]) -> Judgement:
    note = ", ".join(r["code"] for r in reasons)
    return Judgement(status, reasons, HistoryEntry(at=at, actor="policy", to=status, note=note))


def warm(
    redis: RedisClient,
    key_prefix: str,
    *,
    comments: int = DEFAULT_COMMENTS,
    window_ms: int = 86_400_000,
    threshold: int = 3,
    now_ms: int | None = None,
    seed: int = 1,
) -> float:
    """Store ``comments`` ordinary comments made evenly over the ``window_ms`` before now
    (oldest first), each with its sketch in its time's bucket; returns the seconds it took.

    The insert script's own arguments (as a submission makes them) in MULTI/EXEC batches, as
    the importer stores comments (store/imports.py): one fsync per batch, where one insert at
    a time would wait for an fsync each (about 1 ms, under ``appendfsync always``)."""
    started = time.monotonic()
    # Its own encryption key: nothing here reads the seeded comments' emails back.
    cipher = Cipher(KeyRing.parse(KeyRing.generate_entry("w")))
    store = CommentStore(redis, Keys(key_prefix), cipher)
    rng = random.Random(seed)
    end = int(time.time() * 1000) if now_ms is None else now_ms
    pipe = redis.pipeline(transaction=True)
    for n in range(comments):
        created = end - window_ms + (n * window_ms) // max(comments, 1)
        at = iso_from_ms(created)
        text = ordinary_text(rng, f"warm-{seed}-{n}")
        email_hash = f"{rng.getrandbits(64):016x}"
        comment = StoredComment(
            id=new_id(created),
            article_id=WARM_ARTICLE,
            name=f"Reader {n}",
            email=f"warm-{seed}-{n}@example.com",
            comment=text,
            status="pending",
            created_at=at,
            updated_at=at,
            email_hash=email_hash,
        )
        signature = campaigns.sketch(text)
        probe = None
        if signature is not None:
            encoded = campaigns.encode(signature)
            probe = CampaignProbe(
                campaigns.author_tag(email_hash),
                encoded,
                window_ms,
                threshold,
            )
        judgements = [_judgement("pending", at, ())]
        # The arguments insert_submission would send (private: no public call batches them).
        keys, args, _ = store._insert_arguments(
            comment,
            render_public(comment.public()),
            judgements,
            Guards.off(),
            created,
            None,
            (),
            KeyExchange.none(email_hash),
            campaign=probe,
        )
        store._insert.plain(keys=keys, args=args, client=pipe)
        if n % BATCH == BATCH - 1:
            pipe.execute()
    pipe.execute()
    return time.monotonic() - started
