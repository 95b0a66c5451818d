"""Our own format: one JSON object per line. A header line, then every comment with every
field the service holds (the email included: an export is the operator's full backup), each
closed article, the policy; a backup (backup.py) adds the keys that hold no comment.

    {"format": "comments-service-export", "version": 1, "exported_at": "..."}
    {"kind": "comment", "id": ..., "article_id": ..., "status": ..., "name": ..., "email": ...,
     "comment": ..., "website": ..., "parent_id": ..., "created_at": ..., "reasons": [...],
     "history": [...], "source": ..., "commenter": ..., "anonymised": false}
    {"kind": "article", "article_id": ..., "open": false}
    {"kind": "policy", "policy": {...}}
    {"kind": "key", "key": {...}}                          (backups only)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..clock import iso_from_ms, now_ms, parse_iso_ms
from ..ids import is_valid_id
from ..models import HistoryEntry, StoredComment
from ..states import STATUS_VALUES
from ..store import CommentStore
from .source import MAX_RECORD_BYTES, FormatError, Skipped, SourceComment, Thread

FORMAT = "comments-service-export"
VERSION = 1


def comment_line(comment: StoredComment) -> dict[str, Any]:
    return {
        "kind": "comment",
        "id": comment.id,
        "article_id": comment.article_id,
        "status": comment.status,
        "name": comment.name,
        "email": comment.email,
        "comment": comment.comment,
        "website": comment.website,
        "parent_id": comment.parent_id,
        "created_at": comment.created_at,
        "reasons": list(comment.reasons),
        "history": [h.as_dict() for h in comment.history],
        "source": comment.source,
        "commenter": comment.commenter_id,
        "anonymised": comment.anonymised,
        "version": comment.version,
        "edits": list(comment.edits),
        "edit_token_hash": comment.edit_token_hash,
    }


def write_export(store: CommentStore, path: Path, *, with_keys: bool = False) -> dict[str, int]:
    """Write the export (owner-only: it holds every email); the counts of what it holds."""
    counts = {"comments": 0, "articles": 0, "policy": 0, "keys": 0}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as out:

        def line(document: dict[str, Any]) -> None:
            out.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")

        line({"format": FORMAT, "version": VERSION, "exported_at": iso_from_ms(now_ms())})
        for page in store.comment_pages():
            for comment in page:
                line(comment_line(comment))
                counts["comments"] += 1
        for article_id in store.closed_articles():
            line({"kind": "article", "article_id": article_id, "open": False})
            counts["articles"] += 1
        policy = store.policy_json()
        if policy is not None:
            line({"kind": "policy", "policy": json.loads(policy)})
            counts["policy"] = 1
        if with_keys:
            for key in store.backup_keys():
                line({"kind": "key", "key": key})
                counts["keys"] += 1
    return counts


class ExportReader:
    """The lines of an export as SourceComment items (its articles, policy and keys are
    collected on the way, for the caller to apply after the comments)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.closed_articles: list[str] = []
        self.policy: dict[str, Any] | None = None
        self.keys: list[dict[str, Any]] = []
        self.position = 0
        self.line_number = 0

    def _lines(self) -> Iterator[bytes]:
        while True:
            raw = self.handle.readline(MAX_RECORD_BYTES + 1)
            if not raw:
                return
            self.line_number += 1
            self.position += len(raw)
            if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
                # Skip the rest of the line without holding it.
                while raw and not raw.endswith(b"\n"):
                    raw = self.handle.readline(1024 * 1024)
                    self.position += len(raw)
                yield b""  # reported as too long
                continue
            yield raw

    def __iter__(self) -> Iterator[SourceComment | Skipped]:
        lines = self._lines()
        first = next(lines, None)
        try:
            header = json.loads(first or b"")
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise FormatError(
                "not a comments-service export (its first line must be the export header)"
            )
        if header.get("version") != VERSION:
            raise FormatError(f"export version {header.get('version')!r}: this reads {VERSION}")
        for raw in lines:
            where = f"line {self.line_number}"
            if raw == b"":
                yield Skipped(where, "line_too_long", f"over {MAX_RECORD_BYTES} bytes")
                continue
            if not raw.strip():
                continue
            try:
                document = json.loads(raw)
                item = self._item(document)
            except (ValueError, KeyError, TypeError) as error:
                yield Skipped(where, "malformed", str(error)[:200])
                continue
            if item is not None:
                yield item

    def _item(self, document: Any) -> SourceComment | None:
        kind = document["kind"]
        if kind == "article":
            if document.get("open") is False:
                self.closed_articles.append(str(document["article_id"]))
            return None
        if kind == "policy":
            self.policy = dict(document["policy"])
            return None
        if kind == "key":
            self.keys.append(dict(document["key"]))
            return None
        if kind != "comment":
            raise ValueError(f"unknown kind {kind!r}")
        comment_id = str(document["id"])
        if not is_valid_id(comment_id):
            raise ValueError(f"not a comment id: {comment_id!r}")
        status = str(document["status"])
        if status not in STATUS_VALUES:
            raise ValueError(f"not a status: {status!r}")
        history = tuple(HistoryEntry.from_dict(h) for h in document["history"])
        if not history or history[-1].to != status:
            raise ValueError("the history does not end at the status")
        parent_id = document.get("parent_id")
        if parent_id is not None and not is_valid_id(str(parent_id)):
            raise ValueError(f"not a parent id: {parent_id!r}")
        return SourceComment(
            source=str(document.get("source") or ""),
            thread=Thread(article_id=str(document["article_id"])),
            parent_source=None,
            name=str(document["name"]),
            email=str(document.get("email") or ""),
            website=document.get("website") or None,
            text=str(document["comment"]),
            created_ms=parse_iso_ms(str(document["created_at"])),
            status=status,
            comment_id=comment_id,
            parent_id=str(parent_id) if parent_id else None,
            reasons=tuple(dict(r) for r in document.get("reasons") or ()),
            history=history,
            commenter_id=str(document.get("commenter") or ""),
            anonymised=bool(document.get("anonymised")),
            version=int(document.get("version") or 1),
            edits=tuple(dict(e) for e in document.get("edits") or ()),
            edit_token_hash=str(document.get("edit_token_hash") or ""),
        )
