"""Personal data: one author's comments, anonymising and forgetting them, retention, and the
stored email ciphertexts (key rotation)."""

from __future__ import annotations

import json
from typing import Any, cast

from redis.exceptions import WatchError

from ..clock import iso_from_ms, now_ms
from ..events import comment_subject, comment_text
from ..models import StoredComment
from .keys import STATUSES
from .records import RecordLoader, compact


class PersonalData(RecordLoader):
    def anonymise(
        self, comment: StoredComment, name: str, public_json: str, *, actor: str = "operator"
    ) -> bool:
        """Cut the comment's ties to its author; its retained events show it anonymised."""
        k = self.keys
        touched = [
            k.comment(comment.id),
            k.article_public(comment.article_id),
            k.author_comments(comment.email_hash),
            k.events(comment.article_id),
            k.event_content(comment.article_id, comment.id),
        ]
        moment = now_ms()
        maxlen, minid, _ = self.event_retention.script_args(moment, per_bucket=True)
        public = json.loads(public_json)
        text = comment_text(public["name"], public["comment"], public.get("website"))
        done = bool(
            self._anonymise(
                keys=touched,
                args=[comment.id, name, public_json, iso_from_ms(moment), actor]
                + [comment_subject(comment), maxlen, minid, text],
            )
        )
        self._changed(*touched)
        return done

    def forget_author(self, email_hash: str, seen_ids: list[str]) -> list[str]:
        """Drop the author's trust record and comment set, unless a comment is still listed
        there (one stored since ``seen_ids``, the ids last read from it, were erased): then
        nothing is dropped and the ids still listed come back, to be erased in turn. One
        atomic step (FORGET_AUTHOR), so an erasure leaves no comment of theirs unlisted."""
        k = self.keys
        listed = self._forget_author(
            keys=[
                k.author(email_hash),
                k.author_comments(email_hash),
                *(k.comment(i) for i in seen_ids),
            ],
            args=seen_ids,
        )
        return sorted(str(i) for i in cast(list[Any], listed))

    def author_comment_ids(self, email_hash: str) -> list[str]:
        return sorted(str(i) for i in self.redis.smembers(self.keys.author_comments(email_hash)))

    def comments(self, ids: list[str]) -> list[StoredComment]:
        """The comments of these ids that exist, in order."""
        return self._load_many(ids)

    def comments_of(self, email_hash: str) -> list[StoredComment]:
        return self._load_many(self.author_comment_ids(email_hash))

    def due_for_purge(self, cutoff_ms: int, batch: int = 100) -> list[tuple[str, int]]:
        """Comments (id, bucket) decided before ``cutoff_ms`` that wait for the purge: up to
        ``batch`` of each bucket, in one pipelined round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for index in self.keys.retention_indexes():
            pipe.zrangebyscore(index, "-inf", cutoff_ms, start=0, num=batch)
        return [
            (str(i), bucket)
            for bucket, ids in enumerate(cast(list[Any], pipe.execute()))
            for i in ids
        ]

    def forget_purged(self, comment_id: str, bucket: int) -> None:
        """A retention entry (of ``bucket``'s index) whose comment is already gone."""
        self.redis.zrem(self.keys.retention(bucket), comment_id)

    def all_comment_ids(self) -> list[str]:
        """Every comment id, from the status indexes (for maintenance commands)."""
        pipe = self.redis.pipeline(transaction=False)
        for status in STATUSES:
            for index in self.keys.status_indexes(status):
                pipe.zrange(index, 0, -1)
        return sorted({str(i) for ids in cast(list[Any], pipe.execute()) for i in ids})

    def rewrite_email(self, comment_id: str, expected: str, replacement: str) -> bool:
        """Swap one stored email ciphertext for another, only if it is still ``expected``."""
        key = self.keys.comment(comment_id)
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)
                raw = pipe.get(key)
                if raw is None:
                    return False
                record = json.loads(raw)
                if record.get("email") != expected:
                    return False
                record["email"] = replacement
                pipe.multi()
                pipe.set(key, compact(record))
                pipe.execute()
                self._changed(key)
                mark = self.keys.replication_mark(self.keys.tag_for_comment(comment_id))
                self.replica_wait.confirm(mark, what="re-encryption")
                return True
            except WatchError:
                return False

    def raw_email(self, comment_id: str) -> str | None:
        """The email exactly as stored (ciphertext), for maintenance and tests."""
        raw = self.redis.get(self.keys.comment(comment_id))
        return None if raw is None else str(json.loads(raw).get("email") or "")
