"""The record codec: a comment as stored (one JSON string, its email encrypted; a published
one's content in its article's public document) to and from :class:`StoredComment`."""

from __future__ import annotations

import json
from typing import Any, cast

from ..models import StoredComment
from ._core import StoreCore

# A record read as published whose public document was gone by the time it was read.
_MOVED = object()


def compact(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


class RecordLoader(StoreCore):
    def _load_many(self, ids: list[str], attempts: int = 3) -> list[StoredComment]:
        """Records by id, in order (missing ones dropped): one round trip, and a second for
        the public documents of published ones (their content lives there). A comment
        unpublished between the two reads has moved its content back into its record: it is
        read again rather than taken for deleted."""
        loaded = self._read_many(ids)
        moved = [i for i in ids if loaded.get(i) is _MOVED]
        if moved and attempts > 1:
            loaded.update({c.id: c for c in self._load_many(moved, attempts - 1)})
        return [c for i in ids if isinstance(c := loaded.get(i), StoredComment)]

    def _read_many(self, ids: list[str]) -> dict[str, StoredComment | object]:
        if not ids:
            return {}
        raws = cast(list[Any], self.redis.mget([self.keys.comment(i) for i in ids]))
        found = [(i, json.loads(raw)) for i, raw in zip(ids, raws, strict=True) if raw]
        published = [(i, r["article_id"]) for i, r in found if "content" not in r]
        docs: dict[str, str] = {}
        if published:
            pipe = self.redis.pipeline(transaction=False)
            for comment_id, article_id in published:
                pipe.hget(self.keys.article_public(article_id), comment_id)
            docs = {i: d for (i, _), d in zip(published, pipe.execute(), strict=True) if d}
        comments: dict[str, StoredComment | object] = {}
        for comment_id, record in found:
            if "content" not in record and comment_id not in docs:
                comments[comment_id] = _MOVED  # unpublished (or deleted) in between
                continue
            if record.get("email"):
                record["email"] = self.cipher.decrypt(record["email"], "email")
            doc = docs.get(comment_id)
            comments[comment_id] = StoredComment.from_record(
                comment_id, record, json.loads(doc) if doc else None)
        return comments

    def get(self, comment_id: str) -> StoredComment | None:
        found = self._load_many([comment_id])
        return found[0] if found else None
