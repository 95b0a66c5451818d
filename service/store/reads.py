"""What readers and moderators list: article pages and counts (from the workers' cache when
they can), moderator listings by status."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from redis.cluster import RedisCluster

from ..models import StoredComment
from ..states import Status
from .claims import Claim, claims_of
from .client import RedisClient
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

    One round trip: the indexes are grouped by Cluster slot (on a single server, one group),
    and each group's page is merged inside Redis by one read-only script
    (scripts.MERGED_PAGE), the groups' calls in one pipeline (on a cluster, one round trip per
    node), their pages merged here. A page of the queue over 256 buckets reads each bucket's
    first id, then reads again only the buckets that may hold more of the page. ``script``:
    the store's registered one (else registered here).
    """
    want = limit + 1
    merge = script or WriteScript(redis.register_script(MERGED_PAGE))
    start = ("+" if newest_first else "-") if cursor is None else "(" + cursor
    args = [start, want, "1" if newest_first else "", "1" if with_total else ""]
    groups = _slot_groups(redis, indexes)
    if len(groups) == 1:  # a plain call: a pipeline would first ask whether it is loaded
        replies = [cast(list[Any], merge(keys=groups[0], args=args))]
    else:
        pipe = redis.pipeline(transaction=False)
        for group in groups:
            merge(keys=group, args=args, client=pipe)
        replies = cast(list[list[Any]], pipe.execute())
    total = sum(int(reply[0]) for reply in replies)
    merged = heapq.merge(*(reply[1:] for reply in replies), reverse=newest_first)
    firsts = [(str(comment_id), "") for comment_id in itertools.islice(merged, want)]
    return _page(firsts, limit, total)


def _slot_groups(redis: RedisClient, indexes: Sequence[str]) -> list[list[str]]:
    """The indexes that one script may read together: all of them on a single server (it
    checks no slots), those of one slot on a cluster."""
    if not isinstance(redis, RedisCluster):
        return [list(indexes)]
    groups: dict[int, list[str]] = {}
    for index in indexes:
        groups.setdefault(redis.keyslot(index), []).append(index)  # type: ignore[no-untyped-call]
    return list(groups.values())


def _lex_start(cursor: str | None) -> str:
    return "-" if cursor is None else "(" + cursor


def _page(items: list[tuple[str, str]], limit: int, total: int) -> Page:
    more = len(items) > limit
    items = items[:limit]
    return Page(items=items, next_cursor=items[-1][0] if more and items else None, total=total)
