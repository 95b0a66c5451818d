"""What readers and moderators list: article pages and counts (from the workers' cache when
they can), moderator listings by status."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from ..models import StoredComment
from ..states import Status
from .claims import Claim, claims_of
from .client import RedisClient, slot_groups
from .durability import WriteScript
from .records import RecordLoader
from .scripts import MERGED_PAGE


@dataclass
class Page:
    """One page of ids (and their documents) from an index, oldest first.

    ``memo`` holds what callers derive from the page (a rendered body, its ETag): a page served
    from the worker's cache is then rendered once, not per request.
    """

    items: list[tuple[str, str]]
    next_cursor: str | None
    total: int
    memo: dict[str, Any] = field(default_factory=dict)


@dataclass
class Listing:
    """A page of full comment records (the moderator view), oldest first; ``memo`` as in Page."""

    comments: list[StoredComment]
    next_cursor: str | None
    total: int
    memo: dict[str, Any] = field(default_factory=dict)
    # Moderators' claims on the listed comments (store/claims.py), by comment id.
    claims: dict[str, Claim] = field(default_factory=dict)


class Reads(RecordLoader):
    def cached_public_page(self, article_id: str, limit: int, cursor: str | None) -> Page | None:
        """The page if this worker has it in memory (no Redis involved)."""
        if self.cache is None:
            return None
        page: Page | None = self.cache.get(("page", article_id, limit, cursor))
        return page

    def cached_counts(self, article_ids: Sequence[str]) -> tuple[int, ...] | None:
        """The counts, in the order asked, if this worker has every one of them in memory."""
        if self.cache is None:
            return None
        found = self.cache.get_many([("count", article_id) for article_id in article_ids])
        return None if None in found else cast(tuple[int, ...], tuple(found))

    def still_holds_page(self, article_id: str, limit: int, cursor: str | None, page: Page) -> bool:
        """Whether this worker still has this very ``page`` in memory for that query, as fresh
        as Redis (one freshness check): counted as a hit when it has, not at all otherwise
        (the caller then reads it as usual, and that counts)."""
        if self.cache is None:
            return False
        if self.cache.get(("page", article_id, limit, cursor), count=False) is not page:
            return False
        self.count_cache_hits(public=1)
        return True

    def still_holds_counts(self, article_ids: Sequence[str], counts: tuple[int, ...]) -> bool:
        """Whether this worker has every one of these counts in memory, unchanged; counted
        as :meth:`still_holds_page` is."""
        if self.cache is None:
            return False
        names: list[Hashable] = [("count", article_id) for article_id in article_ids]
        if tuple(self.cache.get_many(names, count=False)) != counts:
            return False
        self.count_cache_hits(public=len(names))
        return True

    def public_page(self, article_id: str, limit: int, cursor: str | None) -> Page:
        """Published comments as pre-rendered JSON documents: from the worker's cache, else
        in one round trip."""
        name = ("page", article_id, limit, cursor)
        # Not counted: callers looked already (cached_public_page) before coming here.
        cached = self.cache.get(name, count=False) if self.cache else None
        if cached is not None:
            return cast(Page, cached)
        epoch = self.cache.begin() if self.cache else None
        index, docs = (
            self.keys.article_status_index(article_id, Status.APPROVED),
            self.keys.article_public(article_id),
        )
        reply = cast(
            list[Any], self._public_page(keys=[index, docs], args=[_lex_start(cursor), limit + 1])
        )
        total = int(reply[0])
        items = list(zip(reply[1::2], reply[2::2], strict=True))
        page = _page(items, limit, total)
        if self.cache:
            self.cache.put(name, page, (index, docs), epoch)
        return page

    def approved_counts(self, article_ids: list[str]) -> dict[str, int]:
        """Published comments per article: cached ones from memory, the rest in one trip."""
        counts: dict[str, int] = {}
        missing = []
        cached_counts = (
            self.cache.get_many([("count", a) for a in article_ids], count=False)
            if self.cache
            else [None] * len(article_ids)
        )
        for article_id, cached in zip(article_ids, cached_counts, strict=True):
            if cached is None:
                missing.append(article_id)
            else:
                counts[article_id] = cached
        if missing:
            epoch = self.cache.begin() if self.cache else None
            pipe = self.redis.pipeline(transaction=False)
            for article_id in missing:
                pipe.zcard(self.keys.article_status_index(article_id, Status.APPROVED))
            for article_id, count in zip(missing, pipe.execute(), strict=True):
                counts[article_id] = int(count)
                if self.cache:
                    self.cache.put(
                        ("count", article_id),
                        int(count),
                        (self.keys.article_status_index(article_id, Status.APPROVED),),
                        epoch,
                    )
        return {article_id: counts[article_id] for article_id in article_ids}

    def list_by_status(
        self,
        status: str,
        limit: int,
        cursor: str | None,
        *,
        article_id: str | None = None,
        reason: str | None = None,
        reported: bool = False,
    ) -> Listing:
        """Full records in one status, oldest first, with the claims on them: from the
        worker's cache, else in three round trips (the page's ids, the comments, their claims;
        four for published comments across articles, see RecordLoader._load_many), one more
        for a listing across articles that its buckets' first ids do not settle (merged_page)."""
        indexes, name = self._listing_name(status, limit, cursor, article_id, reason, reported)
        cache = self.moderation_cache
        cached: Listing | None = cache.get(name) if cache else None
        if cached is not None:
            return cached
        epoch = cache.begin() if cache else None
        page = merged_page(self.redis, indexes, limit, cursor, script=self._merged_page)
        ids = [comment_id for comment_id, _ in page.items]
        comment_keys = [self.keys.comment(comment_id) for comment_id in ids]
        listing = Listing(self._load_many(ids, article_id=article_id), page.next_cursor, page.total)
        listing.claims = claims_of(self.redis, self.keys, ids)
        if cache:
            claim_keys = [self.keys.claim(comment_id) for comment_id in ids]
            cache.put(name, listing, (*indexes, *comment_keys, *claim_keys), epoch)
        return listing

    def still_holds_listing(
        self,
        listing: Listing,
        status: str,
        limit: int,
        cursor: str | None,
        *,
        article_id: str | None = None,
        reason: str | None = None,
        reported: bool = False,
    ) -> bool:
        """Whether this worker still has this very ``listing`` in memory for that query (one
        freshness check). Counts nothing (see :meth:`count_cache_hits`)."""
        cache = self.moderation_cache
        if cache is None:
            return False
        _, name = self._listing_name(status, limit, cursor, article_id, reason, reported)
        return cache.get(name, count=False) is listing

    def count_cache_hits(self, public: int = 0, moderation: int = 0) -> None:
        """Hits of lookups made with ``count=False``, once the answer they served is given."""
        for cache, hits in ((self.cache, public), (self.moderation_cache, moderation)):
            if hits and cache is not None and cache.counters is not None:
                cache.counters.hit(hits)

    def _listing_name(
        self,
        status: str,
        limit: int,
        cursor: str | None,
        article_id: str | None,
        reason: str | None,
        reported: bool,
    ) -> tuple[tuple[str, ...], tuple[str, str, int, str | None]]:
        """The indexes a listing merges (an article's one, or every bucket's), and its name
        in the moderation cache."""
        k = self.keys
        if reported:  # the Reported queue, whatever the status
            indexes = k.reported_indexes()
        elif article_id is not None:
            indexes = (k.article_status_index(article_id, status),)
        elif reason is not None:
            indexes = k.reason_status_indexes(reason, status)
        else:
            indexes = k.status_indexes(status)
        return indexes, ("listing", indexes[0], limit, cursor)

    def pending_summary(self) -> tuple[int, str | None]:
        """How many comments wait for a moderator and the oldest one's id, in one round trip
        over the buckets (for the metrics, at scrape time: never from a cache)."""
        pipe = self.redis.pipeline(transaction=False)
        for index in self.keys.status_indexes(Status.PENDING):
            pipe.zcard(index)
            pipe.zrange(index, 0, 0)
        replies = pipe.execute()
        firsts = [ids[0] for ids in replies[1::2] if ids]
        return sum(int(n) for n in replies[0::2]), (min(firsts) if firsts else None)


def merged_page(
    redis: RedisClient,
    indexes: Sequence[str],
    limit: int,
    cursor: str | None,
    *,
    newest_first: bool = False,
    with_total: bool = True,
    script: WriteScript | None = None,
) -> Page:
    """One page of the ids in any of ``indexes`` (sorted sets of ids, score 0, each id in at
    most one of them), oldest first (``newest_first``: newest first), after ``cursor``; the
    total is the sum of their sizes. Ids are unique and sort by time, so the cursor (the page's
    last id) stays right however the indexes change between pages.

    On a single server (and on a cluster whose indexes share one slot) one round trip: one
    read-only script (scripts.MERGED_PAGE) merges the page inside Redis, reading each index's
    first few ids, then again only the indexes that may hold more of the page. On a cluster
    with the indexes in several slots, two pipelined round trips (each one per node, in
    parallel): every slot's first few ids, then only the slots that may hold more of the page
    (none when the first settle it); the pages are merged here. ``script``: the store's
    registered one (else registered here).
    """
    want = limit + 1
    merge = script or WriteScript(redis.register_script(MERGED_PAGE))
    start = ("+" if newest_first else "-") if cursor is None else "(" + cursor
    args = [start, want, "1" if newest_first else "", "1" if with_total else ""]
    groups = [[indexes[p] for p in group] for group in slot_groups(redis, indexes)]
    if len(groups) == 1:
        replies = [cast(list[Any], merge(keys=groups[0], args=args))]
        return _merged(replies, limit, newest_first)
    # A cluster with the indexes in several slots. A slot holding one index gets a probe of
    # its share of the page (its script's first phase only); the script's second phase is
    # then done here, over every slot's ids at once: else each one-index call would read a
    # whole page (256 buckets x 51 ids for a page of 50). A slot of several indexes merges
    # them whole inside its call, as on a single server.
    probe = max(1, -(-want // len(indexes)))
    calls = [(group, [*args, probe] if len(group) == 1 else args) for group in groups]
    replies = cast(list[list[Any]], merge.each(redis, calls))
    again = _read_again(redis, groups, replies, probe, want, newest_first)
    return _merged(replies + again, limit, newest_first)


def _merged(replies: list[list[Any]], limit: int, newest_first: bool) -> Page:
    """Slots' pages ({total, ids...}, each sorted) merged into one; the totals summed."""
    total = sum(int(reply[0]) for reply in replies)
    merged = heapq.merge(*(reply[1:] for reply in replies), reverse=newest_first)
    firsts = [(str(comment_id), "") for comment_id in itertools.islice(merged, limit + 1)]
    return _page(firsts, limit, total)


def _read_again(
    redis: RedisClient,
    groups: list[list[str]],
    replies: list[list[Any]],
    probe: int,
    want: int,
    newest_first: bool,
) -> list[list[Any]]:
    """MERGED_PAGE's second phase over the slots (one pipelined round trip; none when the
    probes settle the page): every one-index slot whose probe was full and ends before the
    page's provisional end (the ``want``-th id of all read so far) is read on up to that end.
    Any id of the page is among its index's first ``want`` and no later than that end, so the
    page is then whole. Replies shaped as the script's, with a total of 0."""
    ids = sorted((str(i) for reply in replies for i in reply[1:]), reverse=newest_first)
    boundary = ids[want - 1] if len(ids) >= want else None

    def before(a: str, b: str) -> bool:
        return a > b if newest_first else a < b

    again = [
        (group[0], str(reply[-1]))
        for group, reply in zip(groups, replies, strict=True)
        if len(group) == 1
        and len(reply) - 1 == probe
        and (boundary is None or before(str(reply[-1]), boundary))
    ]
    if not again:
        return []
    end = ("-" if newest_first else "+") if boundary is None else "[" + boundary
    pipe = redis.pipeline(transaction=False)
    for index, last in again:
        if newest_first:
            pipe.zrevrangebylex(index, "(" + last, end, 0, want)
        else:
            pipe.zrangebylex(index, "(" + last, end, 0, want)
    return [[0, *more] for more in pipe.execute()]


def _lex_start(cursor: str | None) -> str:
    return "-" if cursor is None else "(" + cursor


def _page(items: list[tuple[str, str]], limit: int, total: int) -> Page:
    more = len(items) > limit
    items = items[:limit]
    return Page(items=items, next_cursor=items[-1][0] if more and items else None, total=total)
