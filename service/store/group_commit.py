"""Group commit: the submissions a worker has in flight share one round trip, hence one fsync.

With ``appendfsync always`` Redis fsyncs its append-only file once per turn of its event loop,
before it answers any command of that turn. A worker's threads each sending their own insert
rarely land in the same turn, so each submission waited for an fsync of its own (the write
floor, ~0.5 of the ceiling here). Here the first thread to arrive sends its insert at once;
the threads that arrive while it waits queue theirs, and when it is back one of them sends
**all** queued inserts as one pipeline (EVALSHA each, no MULTI: each script is atomic by
itself, and one failing must not undo the others). Redis runs them in one turn and fsyncs
once for all of them before it answers any; each thread then gets its own reply, so nothing
is acknowledged before it is on disk, exactly as before.

A lone submission costs what it did (one EVALSHA, sent at once, no extra thread). A reply
that is an error (a script error, NOSCRIPT after a Redis restart) belongs to its own
submission only; a connection error reaches every submission of the batch, as it would have
reached each of them alone.
"""

from __future__ import annotations

import threading
from typing import Any

from redis import Redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError


class _Pending:
    __slots__ = ("keys", "args", "reply", "error", "done")

    def __init__(self, keys: list[str], args: list[Any]) -> None:
        self.keys = keys
        self.args = args
        self.reply: Any = None
        self.error: BaseException | None = None
        self.done = False

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.reply


class GroupCommit:
    """Calls of one registered script, batched across this process's threads."""

    def __init__(self, redis: Redis, script: Script) -> None:
        self.redis = redis
        self.script = script
        self._turn = threading.Condition()
        self._pending: list[_Pending] = []
        self._busy = False
        # How many batches and calls went out (tests and the benchmark read them).
        self.batches = 0
        self.calls = 0

    def __call__(self, keys: list[str], args: list[Any]) -> Any:
        mine = _Pending(keys, args)
        with self._turn:
            self._pending.append(mine)
            # Bounded: whoever is sending is bounded by the client's socket timeout.
            while self._busy and not mine.done:
                self._turn.wait()
            if mine.done:
                return mine.outcome()
            self._busy = True
            batch, self._pending = self._pending, []
        try:
            self._send(batch)
        finally:
            with self._turn:
                self._busy = False
                self._turn.notify_all()
        return mine.outcome()

    def _send(self, batch: list[_Pending]) -> None:
        self.batches += 1
        self.calls += len(batch)
        if len(batch) == 1:
            only = batch[0]
            try:
                only.reply = self.script(keys=only.keys, args=only.args)
            except BaseException as error:  # noqa: BLE001 - handed to its own caller
                only.error = error
            only.done = True
            return
        try:
            replies = self._pipelined(batch)
            missing = [p for p, r in zip(batch, replies, strict=True) if _noscript(r)]
            if missing:  # Redis lost its scripts (a restart): load once, send those again
                self.redis.script_load(self.script.script)
                again = dict(zip(map(id, missing), self._pipelined(missing), strict=True))
                replies = [again.get(id(p), r) for p, r in zip(batch, replies, strict=True)]
        except BaseException as error:  # noqa: BLE001 - the connection's: everyone's
            for pending in batch:
                pending.error, pending.done = error, True
            return
        for pending, reply in zip(batch, replies, strict=True):
            if isinstance(reply, BaseException):
                pending.error = reply
            else:
                pending.reply = reply
            pending.done = True

    def _pipelined(self, batch: list[_Pending]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for pending in batch:
            pipe.evalsha(self.script.sha, len(pending.keys), *pending.keys, *pending.args)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        return replies


def _noscript(reply: Any) -> bool:
    return isinstance(reply, NoScriptError)
