"""CommentStore: the only code that speaks Redis for comments, policy and articles."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, cast

from redis import Redis
from redis.exceptions import WatchError

from ..crypto import Cipher
from ..models import HistoryEntry, StoredComment
from . import scripts
from .keys import STATUSES, Keys
from .tracking import TrackedCache

HOUR_MS = 3_600_000
# The author's record field a new comment stamps, by its initial status.
_AUTHOR_STAMP = {"approved": "last_approved", "spam": "last_negative"}


@dataclass
class Page:
    """One page of ids (and their documents) from an index, oldest first.

    ``memo`` holds what callers derive from the page (a rendered body, its ETag): a page served
    from the worker's cache is then rendered once, not per request.
    """

    items: list[tuple[str, str]]
    next_cursor: str | None
    total: int
    memo: dict[str, Any] = field(default_factory=dict)


@dataclass
class Listing:
    """A page of full comment records (the moderator view), oldest first; ``memo`` as in Page."""

    comments: list[StoredComment]
    next_cursor: str | None
    total: int
    memo: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TransitionResult:
    previous: str
    changed: bool


@dataclass(frozen=True)
class SubmissionSettings:
    """What a submission needs to know before the policy runs: the policy itself and whether
    the article takes comments."""

    policy_json: str | None
    closed: bool


@dataclass(frozen=True)
class Judgement:
    """How the policy judged a new comment for one standing of its author."""

    status: str
    reasons: tuple[dict[str, str], ...]
    entry: HistoryEntry

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r["code"] for r in self.reasons))


@dataclass(frozen=True)
class WindowCounter:
    """A fixed-window rate limit counted inside the insert: at most ``amount`` attempts per
    ``window_seconds`` under ``key``; ``description`` names it in a refusal."""

    key: str
    amount: int
    window_seconds: int
    description: str


@dataclass(frozen=True)
class Guards:
    """The duplicate and flood markers a submission must pass, and their limits."""

    duplicate_key: str
    ip_hash: str
    email_hash: str
    duplicate_window_ms: int
    flood_interval_ms: int
    hourly_cap: int


class Outcome(Enum):
    STORED = 1
    ALREADY_STORED = 0
    DUPLICATE = -1
    TOO_SOON = -2
    HOURLY_CAP = -3
    RATE_LIMITED = -4
    PARENT_NOT_PUBLISHED = -5


@dataclass(frozen=True)
class InsertResult:
    outcome: Outcome
    retry_after_ms: int = 0
    chosen: int = 0  # which of the judgements was stored
    limit: WindowCounter | None = None  # the exhausted one, when RATE_LIMITED


class CommentStore:
    def __init__(self, redis: Redis, keys: Keys, cipher: Cipher,
                 cache: TrackedCache | None = None, *,
                 moderation_cache: TrackedCache | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.cipher = cipher
        # Without caches every read goes to Redis (tests, the CLI). ``cache`` holds what
        # public reads, submissions and token checks use; ``moderation_cache`` the moderator
        # listings, whose keys every submission changes (see Keys.*_tracked_prefixes).
        self.cache = cache
        self.moderation_cache = moderation_cache
        self._anonymise = redis.register_script(scripts.ANONYMISE_COMMENT)
        self._insert = redis.register_script(scripts.INSERT_COMMENT)
        self._transition = redis.register_script(scripts.TRANSITION_COMMENT)
        self._delete = redis.register_script(scripts.DELETE_COMMENT)
        self._public_page = redis.register_script(scripts.PUBLIC_PAGE)

    def ping(self) -> bool:
        return bool(self.redis.ping())

    # -- submissions ----------------------------------------------------------------------

    def submission_settings(self, article_id: str) -> SubmissionSettings:
        """The policy and the article's state: from the worker's cache (they change rarely,
        and Redis tells every worker when they do), else in one round trip."""
        k = self.keys
        name = ("settings", article_id)
        cached: SubmissionSettings | None = self.cache.get(name) if self.cache else None
        if cached is not None:
            return cached
        epoch = self.cache.begin() if self.cache else None
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(k.policy())
        pipe.hget(k.article_settings(article_id), "closed")
        policy_json, closed = pipe.execute()
        settings = SubmissionSettings(policy_json=policy_json, closed=closed == "1")
        if self.cache:
            self.cache.put(name, settings, (k.policy(), k.article_settings(article_id)), epoch)
        return settings

    def insert(
        self, comment: StoredComment, public_json: str, entry: HistoryEntry, guards: Guards,
        now_ms: int,
    ) -> InsertResult:
        """Store one comment as it is (no standing to consult), unless a guard refuses."""
        return self.insert_submission(comment, public_json,
                                      [Judgement(comment.status, comment.reasons, entry)],
                                      guards, now_ms)

    def insert_submission(
        self, comment: StoredComment, public_json: str, judgements: list[Judgement],
        guards: Guards, now_ms: int, *, trusted_since_ms: int | None = None,
        limits: tuple[WindowCounter, ...] = (),
    ) -> InsertResult:
        """Store a new comment with its indexes in one round trip, unless a rate limit, a
        duplicate or flood guard, or an unpublished parent refuses it.

        ``judgements`` are the policy's for an author without standing and, when
        ``trusted_since_ms`` is given, for a trusted one; the script reads the author's record
        and stores the comment as judged for the standing that applies (``chosen``). The
        comment's own status and reasons are ignored.
        """
        if len(judgements) != (1 if trusted_since_ms is None else 2):
            raise ValueError("one judgement, or two with trusted_since_ms")
        k = self.keys
        hour = now_ms // HOUR_MS
        keys = [k.comment(comment.id), k.article_public(comment.article_id),
                k.author(comment.email_hash), k.duplicate(guards.duplicate_key),
                k.flood_ip(guards.ip_hash), k.flood_email(guards.email_hash),
                k.hourly(guards.ip_hash, hour), k.author_comments(comment.email_hash),
                k.retention(), k.article_status_index(comment.article_id, "approved"),
                *(counter.key for counter in limits)]
        args: list[str | int] = [
            comment.id, now_ms, guards.duplicate_window_ms, guards.flood_interval_ms,
            guards.hourly_cap, (hour + 1) * HOUR_MS - now_ms, comment.parent_id or "",
            "" if trusted_since_ms is None else trusted_since_ms, len(limits)]
        for counter in limits:
            args += [counter.amount, counter.window_seconds]
        # One record to vary, with the email encrypted once: every variant carries the same
        # ciphertext.
        base = comment.to_record()
        if base["email"]:
            base["email"] = self.cipher.encrypt(base["email"], "email")
        content = base.pop("content", None) or comment.content()
        variant_indexes = []
        for judgement in judgements:
            indexes = self._initial_indexes(comment.article_id, judgement)
            variant_indexes.append(indexes)
            record = {**base, "status": judgement.status, "reasons": list(judgement.reasons),
                      "history": [judgement.entry.as_dict()]}
            if judgement.status != "approved":
                record["content"] = content
            keys += indexes
            args += [len(indexes), _compact(record),
                     public_json if judgement.status == "approved" else "",
                     _AUTHOR_STAMP.get(judgement.status, "")]
        reply = cast(list[Any], self._insert(keys=keys, args=args))
        outcome = Outcome(int(reply[0]))
        if outcome is Outcome.STORED:
            variant = int(reply[1]) - 1
            # Only what the script wrote: evicting the article's page for a held comment
            # would make this worker rebuild an unchanged page after every submission.
            written = [k.comment(comment.id), k.author_comments(comment.email_hash),
                       *variant_indexes[variant]]
            if judgements[variant].status == "approved":
                written.append(k.article_public(comment.article_id))
            self._changed(*written)
            return InsertResult(outcome, chosen=variant)
        if outcome is Outcome.RATE_LIMITED:
            return InsertResult(outcome, int(reply[1]), limit=limits[int(reply[2]) - 1])
        return InsertResult(outcome, int(reply[1]) if len(reply) > 1 else 0)

    def _initial_indexes(self, article_id: str, judgement: Judgement) -> list[str]:
        k, status = self.keys, judgement.status
        return [k.status_index(status), k.article_status_index(article_id, status),
                *(k.reason_status_index(code, status) for code in judgement.reason_codes)]

    # -- moderation -----------------------------------------------------------------------

    def transition(
        self,
        comment: StoredComment,
        target: str,
        entry: HistoryEntry,
        public_json: str,
        now_ms: int,
    ) -> TransitionResult | None:
        """Atomically move a comment to ``target``; None if it no longer exists. Who decided
        is the history entry's actor."""
        k = self.keys
        touched = [k.comment(comment.id), k.article_public(comment.article_id),
                   k.author(comment.email_hash), k.retention(),
                   *k.index_groups(comment.article_id, comment.reason_codes)]
        reply = self._transition(
            keys=touched,
            args=[comment.id, target, len(STATUSES), *STATUSES, entry.to_json(), public_json,
                  _compact(comment.content()), now_ms, "1" if comment.email_hash else ""],
        )
        if reply is None:
            return None
        previous, changed = cast(list[Any], reply)
        self._changed(*touched)
        return TransitionResult(previous=str(previous), changed=bool(int(changed)))

    def delete(self, comment: StoredComment) -> bool:
        k = self.keys
        touched = [k.comment(comment.id), k.article_public(comment.article_id),
                   k.author_comments(comment.email_hash), k.retention(),
                   *k.index_groups(comment.article_id, comment.reason_codes)]
        existed = self._delete(keys=touched, args=[comment.id])
        self._changed(*touched)
        return bool(existed)

    def anonymise(self, comment: StoredComment, name: str, public_json: str) -> bool:
        k = self.keys
        touched = [k.comment(comment.id), k.article_public(comment.article_id),
                   k.author_comments(comment.email_hash)]
        done = bool(self._anonymise(keys=touched, args=[comment.id, name, public_json]))
        self._changed(*touched)
        return done

    def forget_author(self, email_hash: str) -> None:
        """Drop the author's trust record (an erasure leaves nothing keyed to them)."""
        self.redis.delete(self.keys.author(email_hash), self.keys.author_comments(email_hash))

    def comments_of(self, email_hash: str) -> list[StoredComment]:
        ids = sorted(str(i) for i in self.redis.smembers(self.keys.author_comments(email_hash)))
        return self._load_many(ids)

    def due_for_purge(self, cutoff_ms: int, batch: int = 100) -> list[str]:
        ids = self.redis.zrangebyscore(self.keys.retention(), "-inf", cutoff_ms, start=0,
                                       num=batch)
        return [str(i) for i in cast(list[Any], ids)]

    def forget_purged(self, comment_id: str) -> None:
        """A retention entry whose comment is already gone."""
        self.redis.zrem(self.keys.retention(), comment_id)

    def all_comment_ids(self) -> list[str]:
        """Every comment id, from the status indexes (for maintenance commands)."""
        ids: set[str] = set()
        for status in STATUSES:
            ids.update(str(i) for i in cast(list[Any], self.redis.zrange(
                self.keys.status_index(status), 0, -1)))
        return sorted(ids)

    def rewrite_email(self, comment_id: str, expected: str, replacement: str) -> bool:
        """Swap one stored email ciphertext for another, only if it is still ``expected``."""
        key = self.keys.comment(comment_id)
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                raw = pipe.get(key)
                if raw is None:
                    return False
                record = json.loads(raw)
                if record.get("email") != expected:
                    return False
                record["email"] = replacement
                pipe.multi()
                pipe.set(key, _compact(record))
                pipe.execute()
                self._changed(key)
                return True
            except WatchError:
                return False

    def raw_email(self, comment_id: str) -> str | None:
        """The email exactly as stored (ciphertext), for maintenance and tests."""
        raw = self.redis.get(self.keys.comment(comment_id))
        return None if raw is None else str(json.loads(raw).get("email") or "")

    def try_lock(self, name: str, seconds: int) -> bool:
        return bool(self.redis.set(self.keys.lock(name), "1", nx=True, ex=seconds))

    # -- moderator tokens -----------------------------------------------------------------

    def moderator_token_hashes(self, ip_hash: str) -> tuple[dict[str, str], int]:
        """Stored token hashes by moderator, and the client's recent failed logins."""
        moderators, failures_key = self.keys.moderators(), self.keys.auth_failures(ip_hash)
        name = ("auth", ip_hash)
        cached: tuple[dict[str, str], int] | None = self.cache.get(name) if self.cache else None
        if cached is not None:
            return cached
        epoch = self.cache.begin() if self.cache else None
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(moderators)
        pipe.get(failures_key)
        hashes, failures = pipe.execute()
        found = (dict(hashes), int(failures or 0))
        if self.cache:
            self.cache.put(name, found, (moderators, failures_key), epoch)
        return found

    def record_auth_failure(self, ip_hash: str, window_seconds: int) -> tuple[int, int]:
        """Count a failed login; the new count and seconds until the count resets."""
        key = self.keys.auth_failures(ip_hash)
        pipe = self.redis.pipeline(transaction=True)
        # SET NX starts the window on the first failure; INCR keeps its TTL. (EXPIRE NX would
        # say the same, but Redis 6.2 lacks it.)
        pipe.set(key, 0, ex=window_seconds, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = pipe.execute()
        self._changed(key)
        return int(count), max(int(ttl), 1)

    def auth_failure_ttl(self, ip_hash: str) -> int:
        return max(int(self.redis.ttl(self.keys.auth_failures(ip_hash))), 1)

    def save_moderator_token_hash(self, name: str, token_hash: str) -> None:
        self.redis.hset(self.keys.moderators(), name, token_hash)
        self._changed(self.keys.moderators())

    def revoke_moderator(self, name: str) -> bool:
        revoked = bool(self.redis.hdel(self.keys.moderators(), name))
        self._changed(self.keys.moderators())
        return revoked

    def moderator_names(self) -> list[str]:
        return sorted(str(n) for n in self.redis.hkeys(self.keys.moderators()))

    # -- encoding -------------------------------------------------------------------------

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

    def policy_json(self) -> str | None:
        value = self.redis.get(self.keys.policy())
        return None if value is None else str(value)

    def save_policy_json(self, document: str) -> None:
        self.redis.set(self.keys.policy(), document)

    def set_article_open(self, article_id: str, is_open: bool) -> None:
        key = self.keys.article_settings(article_id)
        if is_open:
            self.redis.hdel(key, "closed")
        else:
            self.redis.hset(key, "closed", "1")

    # -- reads ----------------------------------------------------------------------------

    def get(self, comment_id: str) -> StoredComment | None:
        found = self._load_many([comment_id])
        return found[0] if found else None

    def cached_public_page(self, article_id: str, limit: int, cursor: str | None) -> Page | None:
        """The page if this worker has it in memory (no Redis involved)."""
        if self.cache is None:
            return None
        page: Page | None = self.cache.get(("page", article_id, limit, cursor))
        return page

    def cached_counts(self, article_ids: Sequence[str]) -> tuple[int, ...] | None:
        """The counts, in the order asked, if this worker has every one of them in memory."""
        if self.cache is None:
            return None
        found = self.cache.get_many([("count", article_id) for article_id in article_ids])
        return None if None in found else cast(tuple[int, ...], tuple(found))

    def public_page(self, article_id: str, limit: int, cursor: str | None) -> Page:
        """Published comments as pre-rendered JSON documents: from the worker's cache, else
        in one round trip."""
        name = ("page", article_id, limit, cursor)
        cached = self.cached_public_page(article_id, limit, cursor)
        if cached is not None:
            return cached
        epoch = self.cache.begin() if self.cache else None
        index, docs = (self.keys.article_status_index(article_id, "approved"),
                       self.keys.article_public(article_id))
        reply = cast(list[Any], self._public_page(
            keys=[index, docs], args=[_lex_start(cursor), limit + 1]))
        total = int(reply[0])
        items = list(zip(reply[1::2], reply[2::2], strict=True))
        page = _page(items, limit, total)
        if self.cache:
            self.cache.put(name, page, (index, docs), epoch)
        return page

    def approved_counts(self, article_ids: list[str]) -> dict[str, int]:
        """Published comments per article: cached ones from memory, the rest in one trip."""
        counts: dict[str, int] = {}
        missing = []
        cached_counts = (self.cache.get_many([("count", a) for a in article_ids]) if self.cache
                         else [None] * len(article_ids))
        for article_id, cached in zip(article_ids, cached_counts, strict=True):
            if cached is None:
                missing.append(article_id)
            else:
                counts[article_id] = cached
        if missing:
            epoch = self.cache.begin() if self.cache else None
            pipe = self.redis.pipeline(transaction=False)
            for article_id in missing:
                pipe.zcard(self.keys.article_status_index(article_id, "approved"))
            for article_id, count in zip(missing, pipe.execute(), strict=True):
                counts[article_id] = int(count)
                if self.cache:
                    self.cache.put(("count", article_id), int(count),
                                   (self.keys.article_status_index(article_id, "approved"),),
                                   epoch)
        return {article_id: counts[article_id] for article_id in article_ids}

    def _changed(self, *keys: str) -> None:
        """Our own writes: forget what they touched now, not when Redis's message arrives."""
        for cache in (self.cache, self.moderation_cache):
            if cache:
                cache.invalidate(list(keys))

    def list_by_status(
        self, status: str, limit: int, cursor: str | None, *, article_id: str | None = None,
        reason: str | None = None,
    ) -> Listing:
        """Full records in one status, oldest first: from the worker's cache, else in two
        round trips (the page's ids, then their hashes)."""
        if article_id is not None:
            index = self.keys.article_status_index(article_id, status)
        elif reason is not None:
            index = self.keys.reason_status_index(reason, status)
        else:
            index = self.keys.status_index(status)
        name = ("listing", index, limit, cursor)
        cache = self.moderation_cache
        cached: Listing | None = cache.get(name) if cache else None
        if cached is not None:
            return cached
        epoch = cache.begin() if cache else None
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrangebylex(index, _lex_start(cursor), "+", start=0, num=limit + 1)
        pipe.zcard(index)
        ids, total = pipe.execute()
        page = _page([(i, "") for i in ids], limit, int(total))
        ids = [comment_id for comment_id, _ in page.items]
        comment_keys = [self.keys.comment(comment_id) for comment_id in ids]
        listing = Listing(self._load_many(ids), page.next_cursor, page.total)
        if cache:
            cache.put(name, listing, (index, *comment_keys), epoch)
        return listing


def _lex_start(cursor: str | None) -> str:
    return "-" if cursor is None else "(" + cursor


def _page(items: list[tuple[str, str]], limit: int, total: int) -> Page:
    more = len(items) > limit
    items = items[:limit]
    return Page(items=items, next_cursor=items[-1][0] if more and items else None, total=total)


_MOVED = object()


def _compact(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
