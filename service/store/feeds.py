"""What the feeds read: an article's newest published comments, the site's newest ones.

Both are the public documents of approved comments (never a record: nothing in a feed can
come from personal data), newest first by id (ids are time-ordered: the order comments were
written in, as on the article pages), and both come from the worker's cache when they can,
kept current by Redis like the pages:

- an article's feed: one round trip on a miss (one script over the article's approved index
  and public hash), none from memory;
- the site's feed: three on a miss (the newest ids of the global approved index; their
  records, to learn each one's article; the documents, one HMGET per article in a pipeline),
  none from memory. No new key: the global index is the moderators' own, so the feed follows
  it wherever the key schema puts it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

from ..states import Status
from ._core import StoreCore
from .client import mget
from .reads import merged_page


@dataclass
class FeedEntries:
    """Published documents (JSON), newest first; ``memo`` holds what callers render from them,
    so a feed served from memory is rendered once per version."""

    docs: list[str]
    memo: dict[str, Any] = field(default_factory=dict)


class Feeds(StoreCore):
    def cached_article_feed(self, article_id: str, limit: int) -> FeedEntries | None:
        if self.cache is None:
            return None
        found: FeedEntries | None = self.cache.get(("article-feed", article_id, limit))
        return found

    def article_feed(self, article_id: str, limit: int) -> FeedEntries:
        name = ("article-feed", article_id, limit)
        cached = self.cache.get(name, count=False) if self.cache else None
        if cached is not None:
            return cast(FeedEntries, cached)
        epoch = self.cache.begin() if self.cache else None
        index = self.keys.article_status_index(article_id, Status.APPROVED)
        docs_key = self.keys.article_public(article_id)
        reply = cast(list[Any], self._latest_public(keys=[index, docs_key], args=[limit]))
        entries = FeedEntries(docs=list(reply[2::2]))
        if self.cache:
            self.cache.put(name, entries, (index, docs_key), epoch)
        return entries

    def cached_recent_feed(self, limit: int) -> FeedEntries | None:
        if self.cache is None:
            return None
        found: FeedEntries | None = self.cache.get(("recent-feed", limit))
        return found

    def recent_feed(self, limit: int) -> FeedEntries:
        name = ("recent-feed", limit)
        cached = self.cache.get(name, count=False) if self.cache else None
        if cached is not None:
            return cast(FeedEntries, cached)
        epoch = self.cache.begin() if self.cache else None
        indexes = self.keys.status_indexes(Status.APPROVED)
        page = merged_page(
            self.redis,
            indexes,
            limit,
            None,
            newest_first=True,
            with_total=False,
            script=self._merged_page,
        )
        ids = [comment_id for comment_id, _ in page.items]
        articles: dict[str, str] = {}  # id -> its article
        if ids:
            raws = mget(self.redis, [self.keys.comment(i) for i in ids])
            for comment_id, raw in zip(ids, raws, strict=True):
                if raw:
                    articles[comment_id] = json.loads(raw)["article_id"]
        by_article: dict[str, list[str]] = {}
        for comment_id, article_id in articles.items():
            by_article.setdefault(article_id, []).append(comment_id)
        docs: dict[str, str] = {}
        if by_article:
            pipe = self.redis.pipeline(transaction=False)
            for article_id, wanted in by_article.items():
                pipe.hmget(self.keys.article_public(article_id), wanted)
            for wanted, found in zip(by_article.values(), pipe.execute(), strict=True):
                docs.update((i, doc) for i, doc in zip(wanted, found, strict=True) if doc)
        entries = FeedEntries(docs=[docs[i] for i in ids if i in docs])
        if self.cache:
            depends = (*indexes, *(self.keys.article_public(a) for a in by_article))
            self.cache.put(name, entries, depends, epoch)
        return entries
