"""The store's consistency check (``comments-service check``, and the tests after every fault).

It finds every way the keys of one prefix disagree with each other:

- every comment is in exactly the key of its status in each of its index groups (the global
  one, its article's, one per reason it carries), and in the public hash, the retention index
  and its author's records as its status implies (:data:`service.states.STATE_RULES`);
- every index entry, published document, retention entry and author's comment set entry has
  its comment, in the status (article, reason, author) that the key says; the public hash of
  an article holds exactly the ids of its index of published statuses;
- every key under the prefix is one the schema builds (:mod:`.keys`), of its type, with its
  expiry where it must have one: anything else is an orphan;
- no split change (store/steps.py) owes steps for longer than STEP_TIMEOUT_MS (its outbox
  entry: a request died between its steps, and the sweep has not completed them yet).

Key names come from :class:`Keys` only. Memory stays bounded: keys arrive by SCAN and members
by ZSCAN / HSCAN / SSCAN, a batch at a time, and nothing holds the whole store. On a live
store each batch's verdict is read in one MULTI, so a comment the service changes between two
reads is read again rather than reported as damage (one that keeps changing is counted as
left out). SCAN may return a key twice while the keyspace grows under it, which can count a
comment twice; on a quiet store the counts are exact. Records are read as JSON and only the
fields the check needs are looked at: fields it does not know are ignored.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from ..clock import now_ms
from ..states import PURGEABLE, STATE_RULES, STATUS_VALUES, rule
from .client import RedisClient, mget, primaries
from .keys import Keys, KeyShape
from .steps import STEP_TIMEOUT_MS

# The statuses whose comments are published (in their article's public hash).
PUBLIC_STATUSES = tuple(s.value for s, r in STATE_RULES.items() if r.public)
# Index kinds whose members are comment ids in the status the key names.
_INDEX_KINDS = ("status_index", "article_status_index", "reason_status_index")
# How often a comment that changes under the check is read again before it is left out.
_ATTEMPTS = 3


@dataclass(frozen=True)
class Record:
    """What the check reads of a stored comment (any other field is ignored)."""

    status: str
    article: str
    reasons: tuple[str, ...]
    email_hash: str
    has_content: bool
    history: tuple[Mapping[str, Any], ...]
    # A stepped decision's later steps are still owed (store/steps.py): the author's stamp
    # may lag until they run; the bucket's outbox entry is reported once they are late.
    steps_owed: bool = False


@dataclass
class CheckReport:
    problems: list[str]
    statuses: Counter[str]  # comments by status
    keys: int  # keys scanned
    changed: int = 0  # comments that kept changing while checked (not checked)

    @property
    def consistent(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return summary(len(self.problems), self.statuses, self.keys, self.changed)


def summary(problems: int, statuses: Counter[str], keys: int, changed: int) -> str:
    """One line: consistent or how many problems, the comments by status, the keys scanned."""
    counts = ", ".join(f"{status} {statuses[status]}" for status in STATUS_VALUES)
    text = f"{sum(statuses.values())} comments ({counts}); {keys} keys scanned"
    if changed:
        text += f"; {changed} changed while checked and were left out, run again"
    if problems:
        return f"inconsistent: {problems} problem{'' if problems == 1 else 's'}; {text}"
    return f"consistent: {text}"


def check_store(redis: RedisClient, keys: Keys, *, batch: int = 200) -> CheckReport:
    """Every problem of the store under ``keys``' prefix, and what was counted."""
    check = StoreCheck(redis, keys, batch=batch)
    problems = list(check.problems())
    return CheckReport(problems, check.statuses, check.keys_scanned, check.changed)


def parse_record(raw: str) -> Record | None:
    """A comment record as stored (one JSON object); None when it is not one."""
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    return Record(
        status=str(document.get("status", "")),
        article=str(document.get("article_id") or ""),
        reasons=tuple(
            dict.fromkeys(
                str(r.get("code")) for r in _items(document.get("reasons")) if isinstance(r, dict)
            )
        ),
        email_hash=str(document.get("email_hash") or ""),
        has_content=bool(document.get("content")),
        history=tuple(h for h in _items(document.get("history")) if isinstance(h, dict)),
        steps_owed=isinstance(undo := document.get("undo"), dict) and "owed" in undo,
    )


def history_problems(
    comment_id: str, entries: Iterable[Mapping[str, Any]], status: str
) -> list[str]:
    """A history is a chain: it starts with the policy's verdict (from nothing), each change
    starts where the previous one ended, changes something, and ends at the current status."""
    chain = [(e.get("from"), e.get("to")) for e in entries]
    if not chain:
        return [f"{comment_id}: no history"]
    problems = []
    if chain[0][0] is not None:
        problems.append(f"{comment_id}: first history entry comes from {chain[0][0]!r}")
    for n, ((_, before), (after, to)) in enumerate(zip(chain, chain[1:], strict=False), 1):
        if after != before:
            problems.append(
                f"{comment_id}: history entry {n} starts at {after!r}, "
                f"the previous one ended at {before!r}"
            )
        if after == to:
            problems.append(f"{comment_id}: history entry {n} changes nothing ({to!r})")
    if chain[-1][1] != status:
        problems.append(f"{comment_id}: history ends at {chain[-1][1]!r}, status is {status!r}")
    return problems


class StoreCheck:
    """One run of the check; :meth:`problems` yields each problem as it is found."""

    def __init__(self, redis: RedisClient, keys: Keys, *, batch: int = 200) -> None:
        self.redis = redis
        self.keys = keys
        self.batch = batch
        self.statuses: Counter[str] = Counter()
        self.keys_scanned = 0
        self.changed = 0

    def summary(self, problems: int) -> str:
        return summary(problems, self.statuses, self.keys_scanned, self.changed)

    def problems(self) -> Iterator[str]:
        # Every primary's keys on a cluster (a SCAN cursor is one server's).
        for server in primaries(self.redis):
            cursor = 0
            while True:
                cursor, found = cast(
                    tuple[int, list[Any]],
                    server.scan(cursor, match=self.keys.scan_pattern(), count=self.batch),
                )
                if found:
                    yield from self._check_keys([_text(k) for k in found])
                if int(cursor) == 0:
                    break

    # -- one batch of scanned keys ------------------------------------------------------------

    def _check_keys(self, names: list[str]) -> Iterator[str]:
        self.keys_scanned += len(names)
        shaped: list[tuple[str, KeyShape, dict[str, str]]] = []
        for name in names:
            found = self.keys.classify(name)
            if found is None:
                yield f"{name}: orphan key (not part of the key schema)"
            else:
                shaped.append((name, *found))
        pipe = self.redis.pipeline(transaction=False)
        for name, _, _ in shaped:
            pipe.type(name)
            pipe.pttl(name)
        replies = pipe.execute()
        comment_ids: list[str] = []
        for n, (name, shape, parts) in enumerate(shaped):
            kind, ttl = _text(replies[2 * n]), int(replies[2 * n + 1])
            if kind == "none":
                continue  # gone since the scan
            if kind != shape.redis_type:
                yield f"{name}: a {kind}, the schema keeps a {shape.redis_type} here"
                continue
            if shape.expires and ttl == -1:
                yield f"{name}: never expires (a {shape.kind.replace('_', ' ')} must)"
            status = parts.get("status")
            if status is not None and status not in STATUS_VALUES:
                yield f"{name}: index of an unknown status {status!r}"
                continue
            if shape.kind == "comment":
                comment_ids.append(parts["comment_id"])
            elif shape.kind in _INDEX_KINDS:
                yield from self._check_index(name, parts)
            elif shape.kind == "article_public":
                yield from self._check_published(name, parts["article_id"])
            elif shape.kind == "retention":
                yield from self._check_retention(name, parts["bucket"])
            elif shape.kind == "author_comments":
                yield from self._check_author_set(name, parts["email_hash"])
            elif shape.kind == "outbox":
                yield from self._check_outbox(name)
        for start in range(0, len(comment_ids), self.batch):
            yield from self._check_comments(comment_ids[start : start + self.batch])

    # -- each comment: in the keys its status implies -----------------------------------------

    def _check_comments(self, ids: list[str]) -> Iterator[str]:
        k = self.keys
        for _ in range(_ATTEMPTS):
            raws = mget(self.redis, [k.comment(i) for i in ids])
            read: list[tuple[str, str, Record]] = []
            for comment_id, raw in zip(ids, raws, strict=True):
                if raw is None:
                    continue  # gone since the scan (a key of another type was reported)
                record = parse_record(_text(raw))
                if record is None:
                    yield f"{k.comment(comment_id)}: not a comment record (unreadable JSON)"
                elif record.status not in STATUS_VALUES:
                    yield f"{comment_id}: unknown status {record.status!r}"
                elif not record.article:
                    yield f"{comment_id}: no article_id"
                else:
                    read.append((comment_id, _text(raw), record))
            # The record again, with everything it is compared with, in one atomic read.
            pipe = self.redis.pipeline(transaction=True)
            plans = []
            for comment_id, _, record in read:
                pipe.get(k.comment(comment_id))
                plans.append(self._queue_membership(pipe, comment_id, record))
            replies = iter(pipe.execute(raise_on_error=False))
            ids = []
            for (comment_id, raw, record), plan in zip(read, plans, strict=True):
                again = next(replies)
                answers = [next(replies) for _ in range(plan)]
                if again is None or isinstance(again, Exception) or _text(again) != raw:
                    ids.append(comment_id)  # changed (or deleted) meanwhile: read it again
                    continue
                self.statuses[record.status] += 1
                yield from self._membership_problems(comment_id, record, answers)
            if not ids:
                return
        # Still changing: a deleted one is no problem, the others were not checked.
        self.changed += sum(
            raw is not None for raw in mget(self.redis, [k.comment(i) for i in ids])
        )

    def _groups(self, comment_id: str, record: Record) -> list[tuple[str, list[str]]]:
        k = self.keys
        bucket = k.bucket(record.article)
        groups = [
            ("bucket", [k.status_index(s, bucket) for s in STATUS_VALUES]),
            ("article", [k.article_status_index(record.article, s) for s in STATUS_VALUES]),
        ]
        groups += [
            (f"reason {code}", [k.reason_status_index(code, s, bucket) for s in STATUS_VALUES])
            for code in record.reasons
        ]
        return groups

    def _queue_membership(self, pipe: Any, comment_id: str, record: Record) -> int:
        """Queue the reads :meth:`_membership_problems` needs; how many there are."""
        k = self.keys
        queued = 0
        for _, indexes in self._groups(comment_id, record):
            for index in indexes:
                pipe.zscore(index, comment_id)
                queued += 1
        pipe.hexists(k.article_public(record.article), comment_id)
        pipe.zscore(k.retention(k.bucket(record.article)), comment_id)
        queued += 2
        stamp = rule(record.status).author_stamp
        if record.email_hash:
            pipe.sismember(k.author_comments(record.email_hash), comment_id)
            queued += 1
            if stamp:
                pipe.hexists(k.author(record.email_hash), stamp)
                queued += 1
        return queued

    def _membership_problems(
        self, comment_id: str, record: Record, answers: list[Any]
    ) -> Iterator[str]:
        k, status = self.keys, record.status
        implied = rule(status)
        replies = iter(answers)
        for group, _ in self._groups(comment_id, record):
            inside = [s for s in STATUS_VALUES if _found(next(replies))]
            if inside != [status]:
                yield f"{comment_id}: status {status!r} but in {group} indexes {inside}"
        published, retained = _found(next(replies)), _found(next(replies))
        public_key = k.article_public(record.article)
        if published != implied.public:
            yield (
                f"{comment_id}: status {status!r} but "
                f"{'in' if published else 'not in'} {public_key}"
            )
        if implied.public == record.has_content:
            yield (
                f"{comment_id}: status {status!r} but its record "
                f"{'holds' if record.has_content else 'lacks'} its content"
            )
        if retained != implied.awaits_purge:
            yield (
                f"{comment_id}: status {status!r} but "
                f"{'in' if retained else 'not in'} {k.retention(k.bucket(record.article))}"
            )
        if record.email_hash:
            if not _found(next(replies)):
                yield (
                    f"{comment_id}: not in its author's comment set "
                    f"{k.author_comments(record.email_hash)}"
                )
            if implied.author_stamp and not _found(next(replies)) and not record.steps_owed:
                yield (
                    f"{comment_id}: status {status!r} but its author's record "
                    f"{k.author(record.email_hash)} has no {implied.author_stamp}"
                )
        yield from history_problems(comment_id, record.history, status)

    # -- each entry of an index: its comment exists and agrees --------------------------------

    def _members(self, name: str, read: str) -> Iterator[list[str]]:
        """The members of a zset / hash / set key, a batch at a time."""
        cursor = 0
        while True:
            if read == "zset":
                cursor, pairs = cast(
                    tuple[int, list[Any]], self.redis.zscan(name, cursor, count=self.batch)
                )
                members = [_text(m) for m, _ in pairs]
            elif read == "hash":
                # (HSCAN NOVALUES would spare the documents, but Redis 6.2 lacks it.)
                cursor, fields = cast(
                    tuple[int, dict[Any, Any]], self.redis.hscan(name, cursor, count=self.batch)
                )
                members = [_text(m) for m in fields]
            else:
                cursor, found = cast(
                    tuple[int, list[Any]], self.redis.sscan(name, cursor, count=self.batch)
                )
                members = [_text(m) for m in found]
            if members:
                yield members
            if int(cursor) == 0:
                return

    def _read_entries(
        self, name: str, members: list[str], contains: str, extra: Any = None
    ) -> list[tuple[str, Record | None, list[Any]]]:
        """Each member's record, read atomically with its still being in ``name`` (and with
        ``extra(pipe, member)``'s reads); members gone meanwhile are left out."""
        pipe = self.redis.pipeline(transaction=True)
        for member in members:
            pipe.get(self.keys.comment(member))
            getattr(pipe, contains)(name, member)
            if extra:
                extra(pipe, member)
        replies = pipe.execute(raise_on_error=False)
        width = len(replies) // len(members)
        entries = []
        for n, member in enumerate(members):
            raw, present, *more = replies[n * width : (n + 1) * width]
            if not _found(present):
                continue
            record = parse_record(_text(raw)) if isinstance(raw, str | bytes) else None
            if raw is not None and record is None:
                continue  # not a readable record: reported where the comment key is checked
            entries.append((member, record, more))
        return entries

    def _check_index(self, name: str, parts: dict[str, str]) -> Iterator[str]:
        status, article, code = parts["status"], parts.get("article_id"), parts.get("code")
        bucket = parts.get("bucket")
        public_key = self.keys.article_public(article) if article else None
        published_index = public_key is not None and status in PUBLIC_STATUSES

        def in_public(pipe: Any, member: str) -> None:
            pipe.hexists(public_key, member)

        for members in self._members(name, "zset"):
            for member, record, more in self._read_entries(
                name, members, "zscore", in_public if published_index else None
            ):
                if record is None:
                    yield f"{name}: {member} has no comment record"
                elif record.status != status:
                    yield f"{name}: {member} has status {record.status!r}"
                elif article is not None and record.article != article:
                    yield f"{name}: {member} belongs to {record.article!r}"
                elif code is not None and code not in record.reasons:
                    yield f"{name}: {member} carries no reason {code!r}"
                elif bucket is not None and str(self.keys.bucket(record.article)) != bucket:
                    yield f"{name}: {member} belongs to {record.article!r}, of another bucket"
                if published_index and not _found(more[0]):
                    yield f"{name}: {member} is not in {public_key}"

    def _check_published(self, name: str, article: str) -> Iterator[str]:
        indexes = [self.keys.article_status_index(article, s) for s in PUBLIC_STATUSES]

        def in_indexes_and_document(pipe: Any, member: str) -> None:
            for index in indexes:
                pipe.zscore(index, member)
            pipe.hget(name, member)

        for members in self._members(name, "hash"):
            for member, record, more in self._read_entries(
                name, members, "hexists", in_indexes_and_document
            ):
                *in_index, document = more
                if record is None:
                    yield f"{name}: {member} is published but has no comment record"
                elif record.status not in PUBLIC_STATUSES:
                    yield f"{name}: {member} is published but has status {record.status!r}"
                elif record.article != article:
                    yield f"{name}: {member} is published but belongs to {record.article!r}"
                if not any(_found(i) for i in in_index):
                    yield f"{name}: {member} is published but not in {' or '.join(indexes)}"
                if not _is_public_document(document, member, article):
                    yield f"{name}: {member} has no readable public document of its own"

    def _check_retention(self, name: str, bucket: str) -> Iterator[str]:
        purgeable = {s.value for s in PURGEABLE}
        for members in self._members(name, "zset"):
            for member, record, _ in self._read_entries(name, members, "zscore"):
                if record is None:
                    yield f"{name}: {member} has no comment record"
                elif record.status not in purgeable:
                    yield f"{name}: {member} has status {record.status!r}, which is not purged"
                elif str(self.keys.bucket(record.article)) != bucket:
                    yield f"{name}: {member} belongs to {record.article!r}, of another bucket"

    def _check_outbox(self, name: str) -> Iterator[str]:
        """An entry younger than STEP_TIMEOUT_MS is a change in flight; an older one is owed
        steps of a change whose request died (`comments-service sweep` completes them)."""
        abandoned = self.redis.zrangebyscore(name, "-inf", now_ms() - STEP_TIMEOUT_MS)
        for member in cast(list[Any], abandoned):
            yield f"{name}: {_text(member)} owes the steps after its first (run the sweep)"

    def _check_author_set(self, name: str, email_hash: str) -> Iterator[str]:
        for members in self._members(name, "set"):
            for member, record, _ in self._read_entries(name, members, "sismember"):
                if record is None:
                    yield f"{name}: {member} has no comment record"
                elif record.email_hash != email_hash:
                    yield f"{name}: {member} belongs to another author"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _found(reply: Any) -> bool:
    """A membership reply as a yes or no: a score (even 0.0) or a true flag is a yes; nil,
    false, 0 and an error (e.g. WRONGTYPE on a damaged key, which that key's own check
    reports) are a no."""
    if reply is None or isinstance(reply, Exception):
        return False
    if isinstance(reply, bool | int):
        return bool(reply)
    return True


def _items(value: Any) -> list[Any]:
    # Lua's cjson writes an empty array as {}: both mean "none".
    return list(value) if isinstance(value, list) else []


def _is_public_document(document: Any, comment_id: str, article: str) -> bool:
    if not isinstance(document, str | bytes):
        return False
    try:
        parsed = json.loads(document)
    except ValueError:
        return False
    return (
        isinstance(parsed, dict)
        and parsed.get("id") == comment_id
        and parsed.get("article_id") == article
    )
