"""Webhook endpoints, their delivery state, log and dead letters, and the consumer groups the
delivery worker reads the event streams through (one group per endpoint on each stream)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, cast

from redis.exceptions import ResponseError, WatchError

from ..events import event_id, stream_id_key
from ..webhooks import Endpoint
from ._core import StoreCore
from .client import is_cluster, queue_xreadgroup
from .keys import hash_tag


def group_name(webhook_id: str) -> str:
    return f"webhook:{webhook_id}"


NOTIFY_GROUP = "notify"


class Webhooks(StoreCore):
    # -- endpoints --------------------------------------------------------------------------

    def save_webhook(self, endpoint: Endpoint) -> None:
        """Store a new endpoint and create its consumer groups, starting at its creation:
        it receives the events from then on."""
        self.redis.hset(self.keys.webhooks(), endpoint.id, endpoint.to_json())
        self.replica_wait.confirm(self.keys.replication_mark(self.keys.tag), what="webhook")
        self.ensure_groups(group_name(endpoint.id), f"{endpoint.created_ms}-0")

    def webhook(self, webhook_id: str) -> Endpoint | None:
        raw = self.redis.hget(self.keys.webhooks(), webhook_id)
        return None if raw is None else Endpoint.from_json(str(raw))

    def webhook_list(self) -> list[Endpoint]:
        raw = cast(dict[str, str], self.redis.hgetall(self.keys.webhooks()))
        return sorted((Endpoint.from_json(v) for v in raw.values()), key=lambda e: e.id)

    def update_webhook(
        self, webhook_id: str, change: Callable[[Endpoint], Endpoint]
    ) -> Endpoint | None:
        """Apply ``change`` to the stored endpoint atomically (optimistic: retried if another
        writer changed it meanwhile); None if there is no such endpoint."""
        key = self.keys.webhooks()
        while True:
            with self.redis.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call,unused-ignore]
                    raw = pipe.hget(key, webhook_id)
                    if raw is None:
                        return None
                    changed = change(Endpoint.from_json(str(raw)))
                    pipe.multi()
                    pipe.hset(key, webhook_id, changed.to_json())
                    pipe.execute()
                    self.replica_wait.confirm(
                        self.keys.replication_mark(self.keys.tag), what="webhook"
                    )
                    return changed
                except WatchError:
                    continue

    def delete_webhook(self, webhook_id: str) -> bool:
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(k.webhooks(), webhook_id)
        pipe.delete(
            k.webhook_state(webhook_id),
            k.webhook_deliveries(webhook_id),
            k.webhook_dead(webhook_id),
            k.webhook_replay(webhook_id),
        )
        existed = bool(pipe.execute()[0])
        # Confirmed even when nothing was left to remove: a retry after a 503 confirms again.
        self.replica_wait.confirm(k.replication_mark(k.tag), what="webhook deletion")
        # Its group on every stream: one pipeline (on a cluster one round trip per node).
        groups = self.redis.pipeline(transaction=False)
        for stream in k.event_streams():
            groups.xgroup_destroy(stream, group_name(webhook_id))
        for reply in groups.execute(raise_on_error=False):
            if isinstance(reply, Exception) and not isinstance(reply, ResponseError):
                raise reply  # a ResponseError: no such stream
        return existed

    # -- consumer groups --------------------------------------------------------------------

    def ensure_groups(self, group: str, start_id: str) -> None:
        """The group on every event stream (created empty if need be), reading from
        ``start_id``; an existing group keeps its position. One pipeline (on a cluster, one
        round trip per node)."""
        pipe = self.redis.pipeline(transaction=False)
        for stream in self.keys.event_streams():
            pipe.xgroup_create(stream, group, id=start_id, mkstream=True)
        _raise_unless_busy(pipe.execute(raise_on_error=False))

    def claim_pending(self, group: str, consumer: str, min_idle_ms: int) -> int:
        """Take over every entry of the group pending with other consumers for at least
        ``min_idle_ms`` (a dead worker's): XAUTOCLAIM, a page at a time, every stream's
        page in one pipeline (a stream whose pages are done drops out)."""
        claimed = 0
        cursors = dict.fromkeys(self.keys.event_streams(), "0-0")
        while cursors:
            pipe = self.redis.pipeline(transaction=False)
            for stream, start in cursors.items():
                # Whole entries, not JUSTID: redis-py drops the cursor from a JUSTID reply.
                pipe.xautoclaim(stream, group, consumer, min_idle_ms, start, count=500)
            following: dict[str, str] = {}
            for stream, reply in zip(cursors, pipe.execute(), strict=True):
                claimed += len(reply[1])
                if str(reply[0]) != "0-0":
                    following[stream] = str(reply[0])
            cursors = following
        return claimed

    def read_group(
        self, group: str, consumer: str, *, pending: bool, count: int, block_ms: int | None
    ) -> list[tuple[str, str, dict[str, str]]]:
        """Entries (stream, id, fields) for this consumer, oldest first over every stream:
        its own pending ones (``pending``) or new ones. One stream blocks up to ``block_ms``;
        several are read without blocking, a read per stream in one pipeline (with sharding
        they live in different slots: on a cluster one round trip per node)."""
        streams = self.keys.event_streams()
        found: list[tuple[str, str, dict[str, str]]] = []
        start = "0" if pending else ">"
        if len(streams) == 1:
            replies = [
                self.redis.xreadgroup(
                    group, consumer, {streams[0]: start}, count=count, block=block_ms
                )
            ]
        else:
            pipe = self.redis.pipeline(transaction=False)
            for stream in streams:
                queue_xreadgroup(self.redis, pipe, group, consumer, stream, start, count)
            replies = pipe.execute()
        for stream, reply in zip(streams, replies, strict=True):
            for _, entries in cast(list[Any], reply or []):
                found += [(stream, i, f) for i, f in entries if f is not None]
        index = {stream: i for i, stream in enumerate(streams)}
        found.sort(key=lambda e: stream_id_key(event_id(e[1], index[e[0]])))
        if not found and len(streams) > 1 and block_ms:
            # Several streams cannot block together: wait here instead of polling at once.
            time.sleep(min(block_ms, 250) / 1000)
        return found

    def ack(self, stream: str, group: str, entry_id: str) -> None:
        self.redis.xack(stream, group, entry_id)

    def oldest_pending_ms(self, group: str) -> int | None:
        """The stream time (ms) of the oldest entry the group has not acknowledged or not
        read yet, over every stream; None when it is up to date. Two pipelines (each one
        round trip per node on a cluster): every stream's pending summary and groups, then
        the first unread entry of each stream that has the group."""
        streams = self.keys.event_streams()
        pipe = self.redis.pipeline(transaction=False)
        for stream in streams:
            pipe.xpending(stream, group)
            pipe.xinfo_groups(stream)
        replies = pipe.execute()
        candidates: list[str] = []
        unread = self.redis.pipeline(transaction=False)
        for stream, summary, groups in zip(streams, replies[::2], replies[1::2], strict=True):
            if summary and summary.get("pending"):
                candidates.append(str(summary["min"]))
            info = [g for g in groups if g["name"] == group]
            if info:
                unread.xrange(stream, min=f"({info[0]['last-delivered-id']}", count=1)
        if len(unread):
            for entries in unread.execute():
                candidates += [str(i) for i, _ in cast(list[Any], entries)]
        ms = [int(c.split("-")[0]) for c in candidates]
        return min(ms) if ms else None

    # -- leases -----------------------------------------------------------------------------

    def hold_lease(self, name: str, holder: str, ms: int) -> bool:
        """Take or extend the lease ``name`` for ``holder``; False if another holds it."""
        return bool(self._hold_lease(keys=[self.keys.lock(name)], args=[holder, ms]))

    def release_lease(self, name: str, holder: str) -> None:
        key = self.keys.lock(name)
        if self.redis.get(key) == holder:
            self.redis.delete(key)

    # -- delivery state, log and dead letters -----------------------------------------------

    def record_attempt(self, webhook_id: str, entry: dict[str, Any], log_length: int) -> None:
        pipe = self.redis.pipeline(transaction=True)
        self._log_attempt(pipe, webhook_id, entry, log_length)
        pipe.execute()

    def _log_attempt(
        self, pipe: Any, webhook_id: str, entry: dict[str, Any], log_length: int
    ) -> None:
        k = self.keys
        pipe.lpush(k.webhook_deliveries(webhook_id), json.dumps(entry, separators=(",", ":")))
        pipe.ltrim(k.webhook_deliveries(webhook_id), 0, log_length - 1)
        pipe.hset(
            k.webhook_state(webhook_id),
            mapping={"last_attempt_at": entry["at"], "last_status": str(entry["status"] or "")},
        )

    def delivered(
        self,
        webhook_id: str,
        done: list[tuple[str | None, str, dict[str, Any] | None]],
        log_length: int,
    ) -> None:
        """Log deliveries (stream or None for a replay, event id, log entry or None for an
        event the endpoint does not want), acknowledge their events and clear the failing
        mark: one step, or on a cluster, where the buckets' streams are in other slots than
        the endpoint's keys, two: the log, then the acknowledgements (one pipeline: a round
        trip per node). Lost between the two, the events are delivered again (at least once,
        as for a worker killed before it flushes)."""
        acks = [(stream, entry_id) for stream, entry_id, _ in done if stream is not None]
        apart = is_cluster(self.redis) and any(hash_tag(s) != self.keys.tag for s, _ in acks)
        pipe = self.redis.pipeline(transaction=True)
        for _, _, entry in done:
            if entry is not None:
                self._log_attempt(pipe, webhook_id, entry, log_length)
        acked = self.redis.pipeline(transaction=False) if apart else pipe
        for stream, entry_id in acks:
            acked.xack(stream, group_name(webhook_id), entry_id)
        pipe.hset(self.keys.webhook_state(webhook_id), mapping={"failing": "", "dead_in_row": 0})
        pipe.execute()
        if apart:
            acked.execute()

    def dead_letter(
        self, webhook_id: str, stream: str | None, entry_id: str, event: dict[str, str], limit: int
    ) -> bool:
        """Keep an event that exhausted its retries, acknowledge it, and count it; True when
        the endpoint is now failing (``limit`` dead letters in a row)."""
        k = self.keys
        letter = json.dumps({"stream": stream, "id": entry_id, "fields": event})
        # The acknowledgement after the letter when the stream is in another slot (a cluster
        # refuses the transaction): lost in between, the event is dead-lettered again.
        apart = stream is not None and is_cluster(self.redis) and hash_tag(stream) != k.tag
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(k.webhook_dead(webhook_id), letter)
        if stream is not None and not apart:
            pipe.xack(stream, group_name(webhook_id), entry_id)
        pipe.hincrby(k.webhook_state(webhook_id), "dead_in_row", 1)
        in_row = int(pipe.execute()[-1])
        if stream is not None and apart:
            self.redis.xack(stream, group_name(webhook_id), entry_id)
        if in_row >= limit:
            self.redis.hset(k.webhook_state(webhook_id), "failing", "1")
            return True
        return False

    def webhook_status(self, webhook_id: str) -> dict[str, Any]:
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(k.webhook_state(webhook_id))
        pipe.llen(k.webhook_dead(webhook_id))
        pipe.llen(k.webhook_replay(webhook_id))
        state, dead, replaying = pipe.execute()
        return {
            "failing": state.get("failing") == "1",
            "last_attempt_at": state.get("last_attempt_at"),
            "last_status": int(state["last_status"]) if state.get("last_status") else None,
            "dead_letters": int(dead),
            "replaying": int(replaying),
        }

    def webhook_deliveries(self, webhook_id: str, limit: int) -> list[dict[str, Any]]:
        raw = self.redis.lrange(self.keys.webhook_deliveries(webhook_id), 0, limit - 1)
        return [json.loads(r) for r in cast(list[str], raw)]

    def replay_dead(self, webhook_id: str) -> int:
        """Move every dead letter to the replay list (each move atomic: LMOVE)."""
        k, moved = self.keys, 0
        while self.redis.lmove(k.webhook_dead(webhook_id), k.webhook_replay(webhook_id)):
            moved += 1
        return moved

    def next_replay(self, webhook_id: str) -> dict[str, Any] | None:
        raw = self.redis.lindex(self.keys.webhook_replay(webhook_id), 0)
        return None if raw is None else cast(dict[str, Any], json.loads(str(raw)))

    def replay_finished(self, webhook_id: str, *, failed: bool) -> None:
        """The head of the replay list is done: dropped, or back among the dead letters."""
        k = self.keys
        if failed:
            self.redis.lmove(k.webhook_replay(webhook_id), k.webhook_dead(webhook_id))
        else:
            self.redis.lpop(k.webhook_replay(webhook_id))

    # -- the notifier's digest --------------------------------------------------------------

    def queue_for_digest(self, summary: str) -> None:
        self.redis.rpush(self.keys.notify_digest(), summary)

    def digest_waiting(self, limit: int) -> list[str]:
        return [str(r) for r in self.redis.lrange(self.keys.notify_digest(), 0, limit - 1)]

    def digest_sent(self, count: int) -> None:
        if count:
            self.redis.ltrim(self.keys.notify_digest(), count, -1)


def _raise_unless_busy(replies: list[Any]) -> None:
    """Group creations' replies: one that exists already (BUSYGROUP) is no error."""
    for reply in replies:
        if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
            raise reply
