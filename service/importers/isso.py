"""An Isso SQLite database: ``threads`` (id, uri, title) and ``comments`` (tid, id, parent,
created as Unix seconds, mode 1 approved / 2 pending / 4 deleted, remote_addr, text as the
commenter's Markdown, author, email, website). Opened read-only."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ..states import Status
from .source import FormatError, Skipped, SourceComment, Thread

_MODES = {1: Status.APPROVED, 2: Status.PENDING, 4: Status.REJECTED}
_NEEDED = {
    "threads": {"id", "uri"},
    "comments": {"tid", "id", "parent", "created", "mode", "text", "author", "email", "website"},
}


def count(path: Path) -> int:
    with _open(path) as db:
        return int(db.execute("SELECT count(*) FROM comments").fetchone()[0])


def _open(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = {
            name: {row[1] for row in db.execute(f"PRAGMA table_info({name})")} for name in _NEEDED
        }
    except sqlite3.DatabaseError as error:
        raise FormatError(f"not an Isso database ({error})") from None
    for name, columns in _NEEDED.items():
        missing = columns - tables[name]
        if missing:
            db.close()
            raise FormatError(
                f"not an Isso database: table {name} lacks {', '.join(sorted(missing))}"
            )
    return db


def read(path: Path) -> Iterator[SourceComment | Skipped]:
    db = _open(path)
    try:
        rows = db.execute(
            "SELECT c.id, c.parent, c.created, c.mode, c.remote_addr, c.text, c.author, "
            "c.email, c.website, t.id, t.uri FROM comments c LEFT JOIN threads t "
            "ON t.id = c.tid ORDER BY c.id"
        )
        for cid, parent, created, mode, ip, body, author, email, website, tid, uri in rows:
            source = f"isso:{cid}"
            if tid is None:
                yield Skipped(source, "unknown_thread")
                continue
            status = _MODES.get(int(mode or 0))
            if status is None:
                yield Skipped(source, "unknown_status", str(mode))
                continue
            yield SourceComment(
                source=source,
                thread=Thread(url=uri, post_id=str(tid), thread_id=str(tid)),
                parent_source=f"isso:{parent}" if parent else None,
                name=author or "",
                email=email or "",
                website=website or None,
                text=body or "",
                created_ms=int(float(created) * 1000),
                status=status.value,
                client_ip=ip or None,
            )
    except sqlite3.DatabaseError as error:
        raise FormatError(f"the Isso database cannot be read ({error})") from None
    finally:
        db.close()
