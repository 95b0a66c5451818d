"""Imports, exports and backups: comments a source already decided, stored through the same
insert script as a submission (so an imported comment is exactly what a live one becomes),
pipelined; and the store read back out in pages, for the export and the backup.

An imported comment keeps its source's id (``StoredComment.source``) and is listed under it in
its article's ``imported`` hash, so importing the same file again finds it and a reply finds its
parent. Every key comes from :class:`~service.store.keys.Keys`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..models import StoredComment
from ..states import STATUSES
from .commenters import KeyExchange
from .durability import evalsha
from .inserts import Guards, Inserts, Judgement, Outcome
from .keys import SHAPES, hash_tag
from .reads import merged_page
from .records import RecordLoader

# The keys a backup carries beside the export (see :meth:`Imports.backup_keys`): who may
# moderate, the commenter keys and the authors' standing. Named by their KeyShape kinds.
BACKUP_KINDS = ("moderators", "commenter", "author", "author_commenters")


@dataclass(frozen=True)
class DecidedComment:
    """A comment whose status, reasons and history are already decided (by its source, or by
    ``--rejudge``'s policy run), ready to store as it is."""

    comment: StoredComment
    public_json: str
    # When it was last decided (ms): the author's standing is stamped, and a rejected one's
    # retention counted, from then, as they would have been had it been decided here.
    decided_ms: int


class Imports(Inserts, RecordLoader):
    def imported_ids(self, wanted: Sequence[tuple[str, str]]) -> list[str | None]:
        """The comment ids stored for these (article id, source id) pairs, in one round trip."""
        if not wanted:
            return []
        by_article: dict[str, list[str]] = {}
        for article_id, source in wanted:
            by_article.setdefault(article_id, []).append(source)
        pipe = self.redis.pipeline(transaction=False)
        for article_id, sources in by_article.items():
            pipe.hmget(self.keys.imported(article_id), sources)
        found: dict[tuple[str, str], str] = {}
        for (article_id, sources), ids in zip(by_article.items(), pipe.execute(), strict=True):
            found.update(((article_id, s), str(i)) for s, i in zip(sources, ids, strict=True) if i)
        return [found.get(pair) for pair in wanted]

    def store_decided(self, batch: Sequence[DecidedComment]) -> list[Outcome]:
        """Store each comment with its indexes, source mapping and author stamp, the batch in
        one transaction (one round trip): STORED, or ALREADY_STORED for an id already there
        (which changes nothing).

        One MULTI/EXEC, not a plain pipeline, because of ``appendfsync always``: Redis fsyncs
        once per turn of its event loop that wrote, and a turn reads at most 16 KB of a
        client's pipeline (about 6 insert scripts), so a plain pipeline of 500 costs some 80
        fsyncs; queued commands write nothing until EXEC, so the batch costs one. The price:
        EXEC holds Redis for the batch's scripts (~25 ms for 500), and all of them or none
        are stored."""
        if not batch:
            return []
        k = self.keys
        commands: list[tuple[Any, ...]] = []
        # The source ids, one HSET per article after the batch's scripts (one command for
        # hundreds of comments), in the same transaction.
        sources: dict[str, list[str]] = {}
        guards = Guards.imported()
        for decided in batch:
            comment = decided.comment
            judgement = Judgement(
                comment.status, comment.reasons, comment.history[-1], history=comment.history
            )
            keys, args, _ = self._insert_arguments(
                comment,
                decided.public_json,
                [judgement],
                guards,
                decided.decided_ms,
                None,
                (),
                KeyExchange.none(comment.email_hash),
            )
            commands.append(evalsha(self._insert.plain, keys, args))
            if comment.source:
                sources.setdefault(comment.article_id, []).extend((comment.source, comment.id))
            if not comment.email_hash:
                # An anonymised comment has no author: what the script keeps per author went
                # under the empty hash, which no live comment has (ANONYMISE_COMMENT).
                commands.append(("SREM", k.author_comments(""), comment.id))
                commands.append(("DEL", k.author("")))
        for article_id, pairs in sources.items():
            commands.append(("HSET", k.imported(article_id), *pairs))
        # One round trip, one transaction, with the replicas' confirmation when they are
        # waited for.
        replies = self.replica_wait.batch(
            commands, [self._insert.plain], what="import", transaction=True
        )
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        outcomes = [Outcome(int(r[0])) for r in replies if isinstance(r, list)]
        written = {k.comment(d.comment.id) for d in batch}
        written.update(k.article_public(d.comment.article_id) for d in batch)
        self._changed(*written)
        return outcomes

    def comment_pages(self, page_size: int = 500) -> Iterator[list[StoredComment]]:
        """Every comment, a page at a time (each status index in id order): memory stays flat
        however many there are. Not a point-in-time snapshot: a comment decided while this
        runs may be listed under both statuses or neither (see backup in README)."""
        for status in STATUSES:
            indexes, cursor = self.keys.status_indexes(status), None
            while True:
                page = merged_page(
                    self.redis,
                    indexes,
                    page_size,
                    cursor,
                    with_total=False,
                    script=self._merged_page,
                )
                ids = [comment_id for comment_id, _ in page.items]
                if ids:
                    yield [c for c in self._load_many(ids) if c.status == status]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor

    def _scan(self, kinds: Sequence[str]) -> Iterator[tuple[str, str, dict[str, str]]]:
        """(key, kind, its variable parts) of every key of these kinds."""
        for key in self.redis.scan_iter(match=self.keys.scan_pattern(), count=1000):
            found = self.keys.classify(str(key))
            if found and found[0].kind in kinds:
                yield str(key), found[0].kind, found[1]

    def closed_articles(self) -> list[str]:
        closed = []
        for key, _, parts in self._scan(("article_settings",)):
            if self.redis.hget(key, "closed") == "1":
                closed.append(parts["article_id"])
        return sorted(closed)

    def backup_keys(self) -> Iterator[dict[str, Any]]:
        """The keys of BACKUP_KINDS, each as {kind, parts, value, ttl_ms} (ttl_ms 0: none)."""
        for key, kind, parts in self._scan(BACKUP_KINDS):
            pipe = self.redis.pipeline(transaction=False)
            if _is_set(kind):
                pipe.smembers(key)
            else:
                pipe.hgetall(key)
            pipe.pttl(key)
            value, ttl = pipe.execute()
            if int(ttl) == -2:
                continue  # expired between the scan and the read
            yield {
                "kind": kind,
                "parts": parts,
                "value": sorted(value) if _is_set(kind) else dict(value),
                "ttl_ms": max(int(ttl), 0),
            }

    def restore_key(self, kind: str, parts: dict[str, str], value: Any, ttl_ms: int) -> None:
        """One key of :meth:`backup_keys` written back (replacing what is there)."""
        if kind not in BACKUP_KINDS:
            raise ValueError(f"not a backed-up kind of key: {kind!r}")
        key = self._restored_name(kind, parts, value)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        if value:
            if _is_set(kind):
                pipe.sadd(key, *value)
            else:
                pipe.hset(key, mapping=value)
            if ttl_ms > 0:
                pipe.pexpire(key, ttl_ms)
        pipe.execute()
        # One WAIT per key when replicas are wanted: a restore is rare, and stops (exit 3) at
        # the first key no replica confirmed; run again, it writes the same keys again.
        self.replica_wait.confirm(self.keys.replication_mark(hash_tag(key)), what="restore")
        self._changed(key)

    def _restored_name(self, kind: str, parts: dict[str, str], value: Any) -> str:
        """The name of a backed-up key of ``kind``: from its parts, and a commenter record's
        email hash from the record (its name does not carry it; its tag will: the author's)."""
        shape = next(s for s in SHAPES if s.kind == kind)
        if kind == "commenter" and "email_hash" not in parts:
            parts = {**parts, "email_hash": str(dict(value or {}).get("email", ""))}
        return str(getattr(self.keys, kind)(*(parts[p] for p in shape.parts)))

    def is_empty(self) -> bool:
        """No comment, policy, article setting or moderator token is stored."""
        for _ in self._scan(("comment", "policy", "article_settings", "moderators")):
            return False
        return True


def _is_set(kind: str) -> bool:
    return kind == "author_commenters"
