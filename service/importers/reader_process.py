"""An XML export read in a process of its own, beside the import: the machine's other core
parses the file, turns HTML into text and runs a live submission's field checks
(run.FieldCheck), while the importing process gives ids, renders and writes to Redis.

The child writes frames to its stdout, a batch of items at a time, each with how far into the
file it has read (the progress bar's position): ``("items", position, [...])``, then
``("end", position)``, or ``("error", message)`` when the file is not the named format or is
hostile (raised here as the same :class:`FormatError`). A frame is plain tuples, marshalled,
after its length: unpickling 500 dataclasses a frame cost the importing process about twice
what marshal and building them here does, and marshal reads no code (nothing in a frame is
called). The pipe holds a few frames: the reader waits when the import is behind, so memory
stays flat whatever the file's size.

A file smaller than :data:`IN_PROCESS_BELOW` is read in the importing process: starting a
Python process (~0.4 s) costs more than the second core saves on it.

    python -m service.importers.reader_process wordpress|disqus FILE [--include-pingbacks]
"""

from __future__ import annotations

import fcntl
import marshal
import operator
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO, cast

from . import disqus, wordpress
from .run import FieldCheck
from .source import BoundedReader, Checked, FormatError, Skipped, SourceComment, Thread, Verdict

KINDS = ("wordpress", "disqus")
IN_PROCESS_BELOW = 4 * 1024 * 1024  # ~5,000 comments of a WordPress export
FRAME = 500  # items a frame (the importer's batch), ~210 KB marshalled
PIPE_BYTES = 1024 * 1024  # the pipe holds ~4 frames (Linux's default limit for a pipe)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_LENGTH = struct.Struct("<I")
# What an XML reader leaves at their defaults (only our own JSONL format sets them): a row
# carries the other fields.
_DEFAULTS = SourceComment("", Thread(), None, "", "", None, "", 0, "")
_UNSENT = (
    *("comment_id", "parent_id", "reasons", "history", "commenter_id", "anonymised"),
    *("version", "edits", "edit_token_hash"),
)
_unsent = operator.attrgetter(*_UNSENT)
_UNSENT_DEFAULTS = _unsent(_DEFAULTS)
# Threads met recently, by their fields: a comment's row names its thread's fields, and the
# importer keeps one Thread for them (a post has many comments).
_THREADS = 10_000


def xml_items(
    kind: str, handle: IO[bytes], *, include_pingbacks: bool = False
) -> tuple[Iterator[SourceComment | Skipped], BoundedReader]:
    """The reader of ``kind`` over ``handle``, and the counter of the bytes it has read."""
    counting = BoundedReader(handle, limit=2**62)
    raw = cast(IO[bytes], counting)
    if kind == "wordpress":
        return wordpress.read(raw, include_pingbacks=include_pingbacks), counting
    if kind == "disqus":
        return disqus.read(raw), counting
    raise ValueError(f"not an XML export kind: {kind!r}")


class ProcessReader:
    """The items of an XML export, read and checked by a child process; iterate once, inside
    ``with`` (leaving stops the child if it is still reading)."""

    def __init__(self, kind: str, path: Path, *, include_pingbacks: bool = False) -> None:
        if kind not in KINDS:
            raise ValueError(f"not an XML export kind: {kind!r}")
        self.kind, self.path, self.include_pingbacks = kind, path, include_pingbacks
        self.position = 0
        self._child: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ProcessReader:
        command = [sys.executable, "-m", __name__, self.kind, str(self.path.resolve())]
        if self.include_pingbacks:
            command.append("--include-pingbacks")
        # Started in the directory this package was imported from: ``-m`` finds the same
        # code there first (an installed package, or a checkout run in place).
        self._child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, cwd=_PACKAGE_ROOT
        )
        _widen(self._child.stdout)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        child = self._child
        if child is None:
            return
        if child.poll() is None:
            child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()

    def __iter__(self) -> Iterator[Checked | Skipped]:
        if self._child is None or self._child.stdout is None:
            raise RuntimeError("read a ProcessReader inside `with`")
        frames = self._child.stdout
        threads: dict[tuple[Any, ...], Thread] = {}
        while True:
            frame = _read_frame(frames)
            if frame is None:
                status = self._child.wait()
                raise RuntimeError(
                    f"the import's reader process stopped before the end (exit status {status})"
                )
            if frame[0] == "error":
                raise FormatError(frame[1])
            self.position = frame[1]
            if frame[0] == "end":
                return
            if len(threads) > _THREADS:
                threads.clear()
            for row in frame[2]:
                if len(row) == 3:
                    yield Skipped(*row)
                    continue
                thread = threads.get(row[1])
                if thread is None:
                    thread = threads[row[1]] = Thread(*row[1])
                yield Checked(
                    SourceComment(
                        row[0],
                        thread,
                        row[2],
                        row[3],
                        row[4],
                        row[5],
                        row[6],
                        row[7],
                        row[8],
                        row[9],
                    ),
                    row[10],
                )


def _widen(pipe: IO[bytes] | None) -> None:
    """A pipe of PIPE_BYTES where the system allows it (Linux): with the default 64 KB the
    reader waits as soon as the importer stops reading for a batch's decisions, and the
    importer then waits for the reader to fill the rest of the next frame; a few frames of
    room keep each of them busy."""
    if pipe is None or not hasattr(fcntl, "F_SETPIPE_SZ"):
        return
    try:
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size: the default stays


def _read_frame(frames: IO[bytes]) -> tuple[Any, ...] | None:
    """The next frame, or None at the end of the pipe (the child stopped)."""
    head = frames.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head)
    body = frames.read(length)
    if len(body) < length:
        return None
    frame: tuple[Any, ...] = marshal.loads(body)
    return frame


def _write_frame(out: BinaryIO, frame: tuple[Any, ...]) -> None:
    body = marshal.dumps(frame)
    out.write(_LENGTH.pack(len(body)))
    out.write(body)


def _row(item: SourceComment, verdict: Verdict) -> tuple[Any, ...]:
    """A checked comment as a frame carries it (rebuilt by ProcessReader.__iter__)."""
    if _unsent(item) != _UNSENT_DEFAULTS:
        raise ValueError("an XML reader set a field a frame does not carry")
    thread = item.thread
    return (
        item.source,
        (thread.url, thread.post_id, thread.thread_id, thread.article_id, thread.closed),
        item.parent_source,
        item.name,
        item.email,
        item.website,
        item.text,
        item.created_ms,
        item.status,
        item.client_ip,
        verdict,
    )


def serve(kind: str, path: Path, include_pingbacks: bool, out: BinaryIO) -> None:
    """The child's side: every item of the file, checked, a frame at a time."""
    check = FieldCheck()
    try:
        with path.open("rb") as handle:
            items, counting = xml_items(kind, handle, include_pingbacks=include_pingbacks)
            frame: list[tuple[Any, ...]] = []
            for item in items:
                frame.append(
                    (item.source, item.reason, item.detail)
                    if isinstance(item, Skipped)
                    else _row(item, check(item))
                )
                if len(frame) >= FRAME:
                    _write_frame(out, ("items", counting.position, frame))
                    out.flush()
                    frame = []
            _write_frame(out, ("items", counting.position, frame))
            _write_frame(out, ("end", counting.position))
    except FormatError as error:
        _write_frame(out, ("error", str(error)))
    out.flush()


def main(argv: list[str]) -> int:
    kind, file, *options = argv
    # The frames own stdout: anything else printed goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        serve(kind, Path(file), "--include-pingbacks" in options, out)
    except BrokenPipeError:
        return 1  # the importing process stopped reading (it failed, or was interrupted)
    except KeyboardInterrupt:
        return 130  # Ctrl-C reaches the whole process group: the importer reports it
    finally:
        try:
            out.close()
        except BrokenPipeError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
