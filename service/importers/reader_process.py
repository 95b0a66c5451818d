"""An XML export read in a process of its own, beside the import: the machine's other core
parses the file, turns HTML into text and runs a live submission's field checks
(run.FieldCheck), while the importing process gives ids, renders and writes to Redis.

The child writes pickled frames to its stdout, a batch of items at a time, each with how far
into the file it has read (the progress bar's position): ``("items", position, [...])``, then
``("end", position)``, or ``("error", message)`` when the file is not the named format or is
hostile (raised here as the same :class:`FormatError`). The pipe holds a frame or two: the
reader waits when the import is behind, so memory stays flat whatever the file's size.

A file smaller than :data:`IN_PROCESS_BELOW` is read in the importing process: starting a
Python process (~0.4 s) costs more than the second core saves on it.

    python -m service.importers.reader_process wordpress|disqus FILE [--include-pingbacks]
"""

from __future__ import annotations

import fcntl
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO, cast

from . import disqus, wordpress
from .run import FieldCheck
from .source import BoundedReader, Checked, FormatError, Skipped, SourceComment

KINDS = ("wordpress", "disqus")
IN_PROCESS_BELOW = 4 * 1024 * 1024  # ~5,000 comments of a WordPress export
FRAME = 500  # items a frame (the importer's batch), ~250 KB pickled
PIPE_BYTES = 1024 * 1024  # the pipe holds ~4 frames (Linux's default limit for a pipe)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


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
        while True:
            try:
                frame = pickle.load(frames)
            except EOFError:
                status = self._child.wait()
                raise RuntimeError(
                    f"the import's reader process stopped before the end (exit status {status})"
                ) from None
            if frame[0] == "error":
                raise FormatError(frame[1])
            self.position = frame[1]
            if frame[0] == "end":
                return
            yield from frame[2]


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


def serve(kind: str, path: Path, include_pingbacks: bool, out: BinaryIO) -> None:
    """The child's side: every item of the file, checked, a frame at a time."""
    check = FieldCheck()
    try:
        with path.open("rb") as handle:
            items, counting = xml_items(kind, handle, include_pingbacks=include_pingbacks)
            frame: list[Checked | Skipped] = []
            for item in items:
                frame.append(item if isinstance(item, Skipped) else Checked(item, check(item)))
                if len(frame) >= FRAME:
                    pickle.dump(("items", counting.position, frame), out, pickle.HIGHEST_PROTOCOL)
                    out.flush()
                    frame = []
            pickle.dump(("items", counting.position, frame), out, pickle.HIGHEST_PROTOCOL)
            pickle.dump(("end", counting.position), out, pickle.HIGHEST_PROTOCOL)
    except FormatError as error:
        pickle.dump(("error", str(error)), out, pickle.HIGHEST_PROTOCOL)
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
