"""Key schemas that spread a store over Cluster slots the way layout 4 will
(docs/sharding-plan.md §0), for testing the slot-safe reads and writes before the real
schema moves any key.

:class:`ShardedKeys` gives every key of an article bucket (comments, their claims and reports,
the bucket's indexes, an article's indexes and public hash, the bucket's event and spam-check
streams, event texts) the bucket's own tag ``{<prefix>:<bucket>}``; the rest keeps
``{<prefix>}``. Only the readers use it: the write scripts of today name a comment's bucket
keys together with its author's and client's, which a cluster refuses across slots. So the
tests write each bucket's comments through a store of :class:`OneBucketKeys`, whose every
key is in that bucket's slot; the names it gives a bucket's keys are the ones ShardedKeys
reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from service.clock import iso_from_ms
from service.ids import id_bucket, new_id
from service.models import StoredComment
from service.store import Keys


def bucket_tag(prefix: str, bucket: int) -> str:
    return "{" + f"{prefix}:{bucket}" + "}"


@dataclass(frozen=True)
class OneBucketKeys(Keys):
    """Every key in the slot of bucket ``in_bucket``: a writer of that bucket's comments."""

    in_bucket: int = 0

    @cached_property
    def tag(self) -> str:
        return bucket_tag(self.prefix, self.in_bucket)


@dataclass(frozen=True)
class ShardedKeys(Keys):
    """Each article bucket's keys in the bucket's slot, the rest in ``{<prefix>}``'s."""

    def _in(self, bucket: int | str, kind: str, *parts: str) -> str:
        tag = bucket_tag(self.prefix, int(bucket))
        return f"{self.prefix}:{kind}:{tag}" + "".join(f":{part}" for part in parts)

    def comment(self, comment_id: str) -> str:
        return self._in(id_bucket(comment_id), "comment", comment_id)

    def claim(self, comment_id: str) -> str:
        return self._in(id_bucket(comment_id), "claim", comment_id)

    def reports(self, comment_id: str) -> str:
        return self._in(id_bucket(comment_id), "reports", comment_id)

    def status_index(self, status: str, bucket: int | str) -> str:
        return self._in(bucket, f"status:{status}", str(bucket))

    def reason_status_index(self, code: str, status: str, bucket: int | str) -> str:
        return self._in(bucket, f"reason:{code}:status:{status}", str(bucket))

    def retention(self, bucket: int) -> str:
        return self._in(bucket, "retention", str(bucket))

    def reported(self, bucket: int) -> str:
        return self._in(bucket, "reported", str(bucket))

    def article_status_index(self, article_id: str, status: str) -> str:
        return self._in(self.bucket(article_id), f"idx:{status}", article_id)

    def article_public(self, article_id: str) -> str:
        return self._in(self.bucket(article_id), "public", article_id)

    def article_settings(self, article_id: str) -> str:
        return self._in(self.bucket(article_id), "article:settings", article_id)

    def imported(self, article_id: str) -> str:
        return self._in(self.bucket(article_id), "imported", article_id)

    def bucket_events(self, bucket: int | str) -> str:
        return self._in(bucket, "events", str(bucket))

    def event_content(self, article_id: str, comment_id: str) -> str:
        return self._in(self.bucket(article_id), "evtext", comment_id)

    def bucket_spam_checks(self, bucket: int | str) -> str:
        return self._in(bucket, "spamcheck", str(bucket))


@dataclass(frozen=True)
class PlanTagKeys(Keys):
    """Layout 4's hash tags (docs/sharding-plan.md §0, §3) through :class:`Keys`' own tag
    methods, today's names otherwise: what each key's builder places it by."""

    def tag_for_bucket(self, bucket: int | str) -> str:
        return bucket_tag(self.prefix, int(bucket))

    def tag_for_article(self, article_id: str) -> str:
        return self.tag_for_bucket(self.bucket(article_id))

    def tag_for_comment(self, comment_id: str) -> str:
        return self.tag_for_bucket(id_bucket(comment_id))

    def tag_for_author(self, email_hash: str) -> str:
        return "{" + f"{self.prefix}:u:{email_hash}" + "}"

    def tag_for_client(self, ip_hash: str) -> str:
        return "{" + f"{self.prefix}:ip:{ip_hash}" + "}"

    def tag_for_campaign(self) -> str:
        return "{" + f"{self.prefix}:cmc" + "}"


def pending_comment(article_id: str, n: int, at_ms: int) -> StoredComment:
    """A pending comment of ``article_id`` made at ``at_ms``, its id in the article's bucket."""
    at = iso_from_ms(at_ms)
    return StoredComment(
        id=new_id(at_ms, Keys.bucket(article_id)),
        article_id=article_id,
        name=f"Reader {n}",
        email=f"r{n}@example.com",
        comment=f"Comment {n}",
        status="pending",
        created_at=at,
        updated_at=at,
        email_hash=f"author-{n}",
    )
