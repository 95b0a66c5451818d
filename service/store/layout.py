"""Layouts 1 and 2 of the key names, and the migration to the current layout
(``comments-service migrate-layout``).

Layout 1 named a key ``{<prefix>}:<kind>:<parts>``; layout 2 put the kind first,
``<prefix>:<kind>:{<prefix>}:<parts>``, so that a prefix names a kind whatever hash tag the key
carries. Layout 3 (service/store/keys.py) keeps layout 2's names and splits the indexes across
articles (status, reason, retention, Reported) into one per article bucket. Every layout
carries the tag ``{<prefix>}``, so old and new names share a Cluster slot: a renamed key moves
by one RENAME, which keeps its value and its TTL, and an index is split by scripts that move a
batch of its entries into their buckets' indexes at a time.

The migration scans the old names (every primary), recognises each by the old builders, and
renames it to the name the current :class:`Keys` gives, or queues it for the split when it is
an index across articles (of layout 1 or 2). An entry goes to the bucket of its comment's
article (read from the comment's record: an id made before ids carried their bucket does not
tell). At the end it writes the layout marker. It is idempotent and resumable: a renamed key no
longer matches the old names, and a split entry is moved (added to its bucket's index and
removed from the old one) in one script, so a second run (or one after an interrupted run)
moves only what is left. Run it with the service stopped: a running service of the new version
refuses to start on an unmigrated store (:func:`require_current_layout`), and one of an old
version would go on writing old names.

LegacyKeys and Layout2Keys are those layouts frozen: they must not follow later changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

from ..ids import id_bucket
from ._core import StoreCore
from .client import RedisClient, RedisError, is_unavailable, mget, primaries
from .durability import WriteScript
from .keys import Keys, KeyShape, glob_escape

CURRENT_LAYOUT = "3"

# The kinds of key that layout 3 splits by article bucket: in layouts 1 and 2, one index for
# all articles.
SPLIT_KINDS = ("status_index", "reason_status_index", "retention", "reported")

# For each old name (KEYS[2i-1]) its new name (KEYS[2i]), ARGV[1] keys of them, in one slot:
# rename it unless the new name exists already (then leave both and count a conflict; the
# operator decides); the keys after them are of retired kinds: deleted. Returns {moved,
# already gone, conflicts, dropped}.
_RENAME_BATCH = """
local moved, gone, conflicts = 0, 0, {}
local renames = tonumber(ARGV[1])
local dropped = 0
for i = renames + 1, #KEYS do dropped = dropped + redis.call('DEL', KEYS[i]) end
for i = 1, renames, 2 do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    gone = gone + 1
  elseif redis.call('EXISTS', KEYS[i + 1]) == 1 then
    conflicts[#conflicts + 1] = KEYS[i]
  else
    redis.call('RENAME', KEYS[i], KEYS[i + 1])
    moved = moved + 1
  end
end
return {moved, gone, conflicts, dropped}
"""


# KEYS[1] an index across articles, KEYS[2..] its buckets' indexes; ARGV in threes, one per
# entry: the position of its bucket's index in KEYS, its score, its member. Each entry moves
# (added there, removed from KEYS[1]) with the others of the batch, at once. Returns how many.
_SPLIT_BATCH = """
for i = 1, #ARGV, 3 do
  redis.call('ZADD', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
  redis.call('ZREM', KEYS[1], ARGV[i + 2])
end
return #ARGV / 3
"""

# The layout marker, written at the end of a migration (a script: waited on like the rest).
_MARK = "return redis.call('SET', KEYS[1], ARGV[1])"


class LayoutError(RuntimeError):
    """The store holds key names of an older layout: it must be migrated first."""


@dataclass(frozen=True)
class LegacyKeys(Keys):
    """Layout 1's names, for recognising them (builders only; the rest is :class:`Keys`')."""

    def scan_pattern(self) -> str:
        return glob_escape(self.tag) + ":*"

    def layout(self) -> str:
        return f"{self.tag}:layout"  # layout 1 had no marker: a name it never wrote

    def comment(self, comment_id: str) -> str:
        return f"{self.tag}:comment:{comment_id}"

    def status_index(self, status: str, bucket: int | str = "") -> str:
        return f"{self.tag}:status:{status}"  # one for all articles (no bucket)

    def article_status_index(self, article_id: str, status: str) -> str:
        return f"{self.tag}:idx:{status}:{article_id}"

    def reason_status_index(self, code: str, status: str, bucket: int | str = "") -> str:
        return f"{self.tag}:reason:{code}:status:{status}"

    def article_public(self, article_id: str) -> str:
        return f"{self.tag}:public:{article_id}"

    def article_settings(self, article_id: str) -> str:
        return f"{self.tag}:article:{article_id}:settings"

    def author(self, email_hash: str) -> str:
        return f"{self.tag}:author:{email_hash}"

    def author_comments(self, email_hash: str) -> str:
        return f"{self.tag}:author:{email_hash}:comments"

    def author_commenters(self, email_hash: str) -> str:
        return f"{self.tag}:author:{email_hash}:commenters"

    def commenter(self, email_hash: str, commenter_id: str) -> str:
        return f"{self.tag}:commenter:{commenter_id}"

    def retention(self, bucket: int = 0) -> str:
        return f"{self.tag}:retention"

    def moderators(self) -> str:
        return f"{self.tag}:moderators"

    def auth_failures(self, ip_hash: str) -> str:
        return f"{self.tag}:authfail:{ip_hash}"

    def lock(self, name: str) -> str:
        return f"{self.tag}:lock:{name}"

    def rate_limits(self) -> str:
        return f"{self.tag}:limits"

    def policy(self) -> str:
        return f"{self.tag}:policy"

    def imported(self, article_id: str) -> str:
        return f"{self.tag}:imported:{article_id}"

    def duplicate(self, article_id: str, fingerprint: str) -> str:
        return f"{self.tag}:dup:{fingerprint}"

    def flood_ip(self, ip_hash: str) -> str:
        return f"{self.tag}:flood:ip:{ip_hash}"

    def hourly(self, ip_hash: str, hour: int) -> str:
        return f"{self.tag}:hourly:{ip_hash}:{hour}"

    def events(self, article_id: str | None = None) -> str:
        return f"{self.tag}:events"

    def event_content(self, article_id: str, comment_id: str) -> str:
        return f"{self.tag}:evtext:{comment_id}"

    def webhooks(self) -> str:
        return f"{self.tag}:webhooks"

    def webhook_state(self, webhook_id: str) -> str:
        return f"{self.tag}:webhook:{webhook_id}:state"

    def webhook_deliveries(self, webhook_id: str) -> str:
        return f"{self.tag}:webhook:{webhook_id}:deliveries"

    def webhook_dead(self, webhook_id: str) -> str:
        return f"{self.tag}:webhook:{webhook_id}:dead"

    def webhook_replay(self, webhook_id: str) -> str:
        return f"{self.tag}:webhook:{webhook_id}:replay"

    def notify_digest(self) -> str:
        return f"{self.tag}:notify:digest"

    def claim(self, comment_id: str) -> str:
        return f"{self.tag}:claim:{comment_id}"

    def reports(self, comment_id: str) -> str:
        return f"{self.tag}:reports:{comment_id}"

    def reported(self, bucket: int = 0) -> str:
        return f"{self.tag}:reported"

    def spam_checks(self, article_id: str | None = None) -> str:
        return f"{self.tag}:spamcheck"

    def campaign_bands(self, window_ms: int, bucket: int) -> str:
        return f"{self.tag}:campaign:bands:{window_ms}:{bucket}"

    def campaign_sketches(self, window_ms: int, bucket: int) -> str:
        return f"{self.tag}:campaign:sketches:{window_ms}:{bucket}"

    def campaign_bucket(self, window_ms: int, bucket: int) -> str:
        return f"{self.tag}:campaign:bucket:{window_ms}:{bucket}"  # never written in layout 1

    def is_retired(self, name: str) -> bool:
        """A key of a kind the current layout no longer has: campaign detection's band sets
        and sketches (now one hash per time bucket). They are its memory of the last window
        (TTL'd); dropping them means only that a campaign begun before the migration is
        matched against the comments after it."""
        return self._retired.fullmatch(name) is not None

    @cached_property
    def _retired(self) -> re.Pattern[str]:
        return re.compile(re.escape(self.tag) + r":campaign:(?:bands|sketches):[^:]+:[^:]+")

    def campaign(self, campaign_id: str) -> str:
        return f"{self.tag}:campaign:{campaign_id}"

    def replication_mark(self, tag: str) -> str:
        return f"{tag}:replmark"  # the tag first: layout 1's "{<prefix>}:replmark" for its own

    def idempotency(self, ip_hash: str, key_hash: str) -> str:
        return f"{self.tag}:idem:{ip_hash}:{key_hash}"


@dataclass(frozen=True)
class Layout2Keys(Keys):
    """Layout 2's names of the kinds layout 3 splits (its other names are layout 3's)."""

    def status_index(self, status: str, bucket: int | str = "") -> str:
        return self._key(self.tag, f"status:{status}")

    def reason_status_index(self, code: str, status: str, bucket: int | str = "") -> str:
        return self._key(self.tag, f"reason:{code}:status:{status}")

    def retention(self, bucket: int = 0) -> str:
        return self._key(self.tag, "retention")

    def reported(self, bucket: int = 0) -> str:
        return self._key(self.tag, "reported")

    def split_patterns(self) -> tuple[str, ...]:
        """SCAN patterns that find every key of the split kinds (of layout 2 and 3)."""
        start = glob_escape(self.prefix)
        return tuple(f"{start}:{kind}:*" for kind in ("status", "reason", "retention", "reported"))

    def split_source(self, name: str) -> tuple[KeyShape, dict[str, str]] | None:
        """The shape and parts of a layout 2 index across articles (None for other names)."""
        found = self.classify(name)
        if found is None or found[0].kind not in SPLIT_KINDS or "bucket" in found[1]:
            return None
        return found


@dataclass
class MigrationReport:
    moved: int = 0  # keys renamed by this run
    split: int = 0  # entries moved from indexes across articles into their buckets' indexes
    gone: int = 0  # old names that expired (or were moved by another run) meanwhile
    dropped: int = 0  # keys of retired kinds deleted (LegacyKeys.is_retired)
    conflicts: list[str] = field(default_factory=list)  # old names whose new name exists
    unknown: list[str] = field(default_factory=list)  # old-looking names of no known kind
    already_current: bool = False  # the marker said so: nothing was scanned

    def summary(self) -> str:
        if self.already_current:
            return f"the store is already in layout {CURRENT_LAYOUT}: nothing to do"
        text = f"{self.moved} keys renamed to layout {CURRENT_LAYOUT}"
        if self.split:
            text += f", {self.split} index entries moved into their buckets' indexes"
        if self.gone:
            text += f", {self.gone} expired meanwhile"
        if self.dropped:
            text += f", {self.dropped} of retired kinds dropped"
        if self.unknown:
            text += f"; {len(self.unknown)} keys of no known kind left as they are"
        if self.conflicts:
            text += (
                f"; {len(self.conflicts)} left unmoved because their new name exists "
                "(first: " + self.conflicts[0] + ")"
            )
        return text


def require_current_layout(redis: RedisClient, keys: Keys) -> None:
    """Start-up's check: the store is in the current layout. A store with the marker is; an
    empty (or new) store gets the marker; one holding old names raises LayoutError, telling
    the operator to migrate (a service writing new names beside old ones would split the data
    in two). The marker is not waited on: lost in a failover, the next start writes it again
    (the store then holds no old names)."""
    marker = _text(redis.get(keys.layout()))
    if marker == CURRENT_LAYOUT:
        return
    if marker is None and not _has_legacy_keys(redis, keys):
        # NX: two workers starting together both find the store empty; neither overwrites.
        redis.set(keys.layout(), CURRENT_LAYOUT, nx=True)
        return
    found = f"layout {marker}" if marker else "key names of an older layout"
    raise LayoutError(
        f"the store under prefix {keys.prefix!r} holds {found}; this version uses layout "
        f"{CURRENT_LAYOUT}: stop the service and run `comments-service migrate-layout`"
    )


class Layouts(StoreCore):
    """The store's room for its own key layout: the start-up check and the migration."""

    def require_current_layout(self) -> None:
        require_current_layout(self.redis, self.keys)

    def check_layout_if_reachable(self) -> bool:
        """A worker's start: the check when the store answers (whether it did). A store that
        is down must not stop the service from starting (its readiness probe says 503 until
        the store is back); the launcher checked before starting any worker."""
        try:
            require_current_layout(self.redis, self.keys)
        except RedisError as error:
            if is_unavailable(error):  # down, or refusing writes (NOREPLICAS) for now
                return False
            raise
        return True

    def migrate_layout(
        self, *, batch: int = 500, progress: Callable[[int], None] | None = None
    ) -> MigrationReport:
        """Rename every key of layout 1 under the prefix to the current layout, split the
        indexes across articles of layouts 1 and 2 by bucket, then write the layout marker
        (unless some key could not be moved: a rerun finishes the job). Each batch is one
        script (one slot: see the module's docstring), waited on by the replicas as every
        acknowledging write is. ``progress`` hears the keys renamed and entries moved so far."""
        report = MigrationReport()
        current = _text(self.redis.get(self.keys.layout())) == CURRENT_LAYOUT
        if current and not _has_legacy_keys(self.redis, self.keys):
            report.already_current = True
            return report
        legacy = LegacyKeys(self.keys.prefix)
        sources: list[tuple[str, KeyShape, dict[str, str]]] = []
        for names in _scan(self.redis, legacy.scan_pattern(), batch):
            pairs: list[str] = []
            retired: list[str] = []
            for name in names:
                if legacy.is_retired(name):
                    retired.append(name)
                    continue
                found = legacy.classify(name)
                if found is None:
                    report.unknown.append(name)
                elif found[0].kind in SPLIT_KINDS:
                    sources.append((name, *found))
                else:
                    pairs += [name, rebuilt(self.keys, *found)]
            if pairs or retired:
                moved, gone, conflicts, dropped = cast(
                    list[Any], self._write(_RENAME_BATCH, pairs + retired, [str(len(pairs))])
                )
                report.moved += int(moved)
                report.gone += int(gone)
                report.dropped += int(dropped)
                report.conflicts += [_text(c) or "" for c in conflicts]
            if progress is not None:
                progress(report.moved + report.split)
        sources += _layout_2_sources(self.redis, self.keys)
        for name, shape, parts in sources:
            self._split(name, shape, parts, batch, report, progress)
        if not report.conflicts:
            self._write(_MARK, [self.keys.layout()], [CURRENT_LAYOUT])
        return report

    def _split(
        self,
        name: str,
        shape: KeyShape,
        parts: dict[str, str],
        batch: int,
        report: MigrationReport,
        progress: Callable[[int], None] | None,
    ) -> None:
        """Move the entries of one index across articles into its buckets' indexes, a batch
        at a time, each to the bucket of its comment's article (an entry without a comment,
        which the consistency check reports, to the bucket its id carries)."""
        while True:
            entries = cast(
                list[tuple[str, float]], self.redis.zrange(name, 0, batch - 1, withscores=True)
            )
            if not entries:
                return
            raws = mget(self.redis, [self.keys.comment(str(m)) for m, _ in entries])
            targets: dict[str, int] = {}
            args: list[str] = []
            for (member, score), raw in zip(entries, raws, strict=True):
                article = _article_of(raw)
                bucket = self.keys.bucket(article) if article is not None else _id_bucket(member)
                target = rebuilt(self.keys, shape, {**parts, "bucket": str(bucket)})
                position = targets.setdefault(target, len(targets) + 2)
                args += [str(position), repr(score), str(member)]
            report.split += int(self._write(_SPLIT_BATCH, [name, *targets], args))
            if progress is not None:
                progress(report.moved + report.split)

    def _write(self, source: str, keys: list[str], args: list[str]) -> Any:
        script = WriteScript(self.redis.register_script(source), self.replica_wait, "layout")
        return script(keys=keys, args=args)


def _has_legacy_keys(redis: RedisClient, keys: Keys) -> bool:
    """Whether the store holds names of layout 1, or layout 2's indexes across articles."""
    pattern = LegacyKeys(keys.prefix).scan_pattern()
    return any(True for _ in _scan(redis, pattern, 1000)) or bool(
        _layout_2_sources(redis, keys, first_only=True)
    )


def _layout_2_sources(
    redis: RedisClient, keys: Keys, *, first_only: bool = False
) -> list[tuple[str, KeyShape, dict[str, str]]]:
    """Layout 2's indexes across articles still in the store (the first one found only)."""
    layout_2 = Layout2Keys(keys.prefix)
    found = []
    for pattern in layout_2.split_patterns():
        for names in _scan(redis, pattern, 1000):
            for name in names:
                source = layout_2.split_source(name)
                if source is not None:
                    found.append((name, *source))
                    if first_only:
                        return found
    return found


def _id_bucket(member: str) -> int:
    """The bucket an index entry's id carries (0 for an entry that is no id at all)."""
    try:
        return id_bucket(member)
    except (ValueError, IndexError):
        return 0


def _article_of(raw: Any) -> str | None:
    """The article of a stored comment's record (None: no readable record)."""
    if raw is None:
        return None
    try:
        article = json.loads(raw).get("article_id")
    except (ValueError, AttributeError):
        return None
    return article if isinstance(article, str) else None


def rebuilt(keys: Keys, shape: KeyShape, parts: dict[str, str]) -> str:
    """The name ``keys`` gives the key of ``shape`` with ``parts`` (a part that a layout's
    name does not carry, such as an event text's article today, is given empty)."""
    return str(getattr(keys, shape.kind)(*(parts.get(p, "") for p in shape.parts)))


def _scan(redis: RedisClient, pattern: str, count: int) -> Iterator[list[str]]:
    """The names matching ``pattern``, a SCAN batch at a time, on every primary."""
    for server in primaries(redis):
        cursor = 0
        while True:
            cursor, found = cast(
                tuple[int, list[Any]], server.scan(cursor, match=pattern, count=count)
            )
            if found:
                yield [_text(k) or "" for k in found]
            if int(cursor) == 0:
                break


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
