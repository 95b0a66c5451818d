"""The record codec: a comment as stored (one JSON string, its email encrypted; a published
one's content in its article's public document) to and from :class:`StoredComment`."""

from __future__ import annotations

import json
from typing import Any, cast

from .. import json_text
from ..models import StoredComment
from ..states import STATE_RULES, STATUSES
from ._core import StoreCore
from .client import mget, slot_groups


def status_rule_args(*, stamps: bool) -> tuple[str, ...]:
    """What each status implies, as the scripts that move comments take it, in the index
    groups' order: its name, "1" if public, "1" if it waits for the retention purge, and
    with ``stamps`` the author's field it stamps ("" = none)."""
    return tuple(
        arg
        for status in STATUSES
        for arg in (
            status.value,
            "1" if STATE_RULES[status].public else "",
            "1" if STATE_RULES[status].awaits_purge else "",
            *((STATE_RULES[status].author_stamp or "",) if stamps else ()),
        )
    )


# A submission encodes six documents here (bench/submission_cpu.py), an import four a comment.
compact = json_text.compact


class RecordLoader(StoreCore):
    def _load_many(self, ids: list[str], *, article_id: str | None = None) -> list[StoredComment]:
        """Records by id, in order (missing ones dropped), each read in one atomic step with
        its public document (a published comment's content lives there).

        Given the article the comments belong to, that is one round trip. Otherwise the
        records come first (one MGET: an unpublished one is whole in its record), then the
        published ones again with their documents (one script call), where the article is
        known."""
        if not ids:
            return []
        if article_id is not None:
            public = self.keys.article_public(article_id)
            return self._read_with_documents([(i, public) for i in ids])
        raws = mget(self.redis, [self.keys.comment(i) for i in ids])
        found: dict[str, StoredComment] = {}
        published: list[tuple[str, str]] = []
        parsed: dict[str, Any] = {}  # raw -> record, so an unchanged one is parsed once
        for comment_id, raw in zip(ids, raws, strict=True):
            if not raw:
                continue
            record = json.loads(raw)
            if "content" in record:
                found[comment_id] = self._decode(comment_id, record, None)
            else:
                published.append((comment_id, self.keys.article_public(record["article_id"])))
                parsed[raw] = record
        found.update((c.id, c) for c in self._read_with_documents(published, parsed))
        return [c for i in ids if (c := found.get(i)) is not None]

    def _read_with_documents(
        self, wanted: list[tuple[str, str]], parsed: dict[str, Any] | None = None
    ) -> list[StoredComment]:
        """Comments (id, their article's public hash) with their documents, atomically."""
        if not wanted:
            return []
        ids = [comment_id for comment_id, _ in wanted]
        comment_keys = [self.keys.comment(i) for i in ids]
        # One call per slot (a comment and its article's public hash share their bucket's):
        # one plain call on a single server, as before sharding; a pipeline on a cluster.
        groups = slot_groups(self.redis, comment_keys)
        calls = [
            (
                [*(comment_keys[p] for p in group), *(wanted[p][1] for p in group)],
                [ids[p] for p in group],
            )
            for group in groups
        ]
        replies = cast(list[list[Any]], self._read_comments.each(self.redis, calls))
        pairs: dict[str, tuple[Any, Any]] = {}
        for (_, group_ids), reply in zip(calls, replies, strict=True):
            pairs.update(zip(group_ids, zip(reply[::2], reply[1::2], strict=True), strict=True))
        known = parsed or {}
        return [
            self._decode(comment_id, known.pop(raw, None) or json.loads(raw), doc)
            for comment_id in ids
            for raw, doc in (pairs[comment_id],)
            if raw
        ]

    def _decode(self, comment_id: str, record: dict[str, Any], doc: str | None) -> StoredComment:
        if record.get("email"):
            record["email"] = self.cipher.decrypt(record["email"], "email")
        return StoredComment.from_record(comment_id, record, json.loads(doc) if doc else None)

    def get(self, comment_id: str) -> StoredComment | None:
        found = self._load_many([comment_id])
        return found[0] if found else None

    def get_many(self, comment_ids: list[str]) -> dict[str, StoredComment]:
        """The comments that exist among these ids, by id, in two round trips at most (see
        :meth:`_load_many`)."""
        return {c.id: c for c in self._load_many(comment_ids)}
