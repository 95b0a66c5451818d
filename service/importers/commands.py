"""The import, export, backup and restore commands (service/cli.py parses their arguments)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from ..hashing import Hasher
from ..moderation.profanity import default_matcher
from ..store import CommentStore
from . import isso
from .jsonl import ExportReader, write_export
from .reader_process import IN_PROCESS_BELOW, ProcessReader, xml_items
from .run import ArticleRule, Importer, Progress, Report
from .source import FormatError, Skipped, SourceComment

SOURCES = ("wordpress", "disqus", "isso", "json")
BACKUP_FILE = "comments-backup.jsonl"


def run_import(
    store: CommentStore,
    hasher: Hasher,
    kind: str,
    path: Path,
    *,
    rule: ArticleRule,
    dry_run: bool = False,
    rejudge: bool = False,
    include_pingbacks: bool = False,
    out: TextIO = sys.stdout,
    reader_process: bool | None = None,
) -> Report:
    """Import one file; FormatError when it is not the named format or is hostile.

    ``reader_process``: read an XML export in a process of its own (reader_process.py);
    None: when the file is large enough to gain from it."""
    importer = Importer(
        store,
        hasher,
        kind=kind,
        rule=rule,
        dry_run=dry_run,
        rejudge=default_matcher() if rejudge else None,
    )
    if kind == "isso":
        progress = Progress(isso.count(path), out, "comments")
        done = 0

        def counted() -> Iterable[SourceComment | Skipped]:
            nonlocal done
            for item in isso.read(path):
                done += 1
                yield item

        try:
            return importer.run(counted(), lambda: done, progress.update)
        finally:
            progress.close()
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    size = path.stat().st_size
    progress = Progress(size, out, "B")
    if kind != "json" and (size >= IN_PROCESS_BELOW if reader_process is None else reader_process):
        try:
            with ProcessReader(kind, path, include_pingbacks=include_pingbacks) as read:
                report = importer.run(read, lambda: read.position, progress.update)
        finally:
            progress.close()
    else:
        with path.open("rb") as handle:
            if kind == "json":
                reader = ExportReader(handle)
                try:
                    report = importer.run(reader, lambda: reader.position, progress.update)
                finally:
                    progress.close()
                if not dry_run:
                    apply_settings(store, reader)
                return report
            items, counting = xml_items(kind, handle, include_pingbacks=include_pingbacks)
            try:
                report = importer.run(items, lambda: counting.position, progress.update)
            finally:
                progress.close()
    if not dry_run:
        for article_id in sorted(report.closed_articles):
            store.set_article_open(article_id, False)
    return report


def apply_settings(store: CommentStore, reader: ExportReader) -> None:
    """What an export holds beside the comments: closed articles, the policy, backed-up keys."""
    for article_id in reader.closed_articles:
        store.set_article_open(article_id, False)
    if reader.policy is not None:
        store.save_policy_json(json.dumps(reader.policy))
    for key in reader.keys:
        store.restore_key(str(key["kind"]), dict(key["parts"]), key["value"], int(key["ttl_ms"]))


def export(store: CommentStore, path: Path, out: TextIO = sys.stdout) -> int:
    counts = write_export(store, path)
    print(
        f"exported {counts['comments']} comments, {counts['articles']} closed articles and "
        f"{'the' if counts['policy'] else 'no'} policy to {path}",
        file=out,
    )
    print(
        f"{path} holds every commenter's email address: it is readable by its owner only "
        "(mode 600); keep it as you keep the database.",
        file=out,
    )
    return 0


def backup(store: CommentStore, directory: Path, out: TextIO = sys.stdout) -> int:
    """The export plus the keys that hold no comment (moderator tokens, commenter keys,
    authors' standing): restorable into an empty store of any Redis (6.2, 7, Cluster)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    path = directory / BACKUP_FILE
    counts = write_export(store, path, with_keys=True)
    print(
        f"backed up {counts['comments']} comments, {counts['articles']} closed articles, "
        f"{'the' if counts['policy'] else 'no'} policy and {counts['keys']} other keys to "
        f"{path} (owner-only: it holds every email address)",
        file=out,
    )
    return 0


def restore(store: CommentStore, hasher: Hasher, directory: Path, out: TextIO = sys.stdout) -> int:
    path = directory / BACKUP_FILE
    if not path.is_file():
        raise FormatError(f"no backup in {directory} ({BACKUP_FILE} is missing)")
    if not store.is_empty():
        raise FormatError("the store is not empty: restore only into an empty store")
    report = run_import(store, hasher, "json", path, rule=ArticleRule(), out=out)
    for line in report.lines():
        print(line, file=out)
    return 1 if report.skipped else 0
