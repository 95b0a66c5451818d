"""The whole Redis key schema. No other module builds a key name.

Every key of the comment domain carries the same hash tag, ``{<prefix>}``. A submission checks
its duplicate and flood markers and inserts the comment with its indexes in one script, and a
state change touches a comment, the global moderation queue, the article's indexes and the
author's record in one script; the queue spans all articles, so these keys must share one
Cluster slot. A site's comment volume is small next to what one Redis shard serves; what would
need more than a shard is read traffic, which the pre-rendered pages absorb.

Sorted sets hold ids with score 0: ids sort by creation time, so lexicographic ranges are pages.
Hashed identifiers (<email-hash>, <ip-hash>, <fingerprint>) are keyed HMACs (service/hashing.py),
never the raw address.

Key                                      type    holds
{p}:comment:<id>                         string  one comment as JSON: status, encrypted email,
                                                 its hash, reasons, history (who or what, when,
                                                 from, to, note), while unpublished, content,
                                                 and while decided, undo (what its first
                                                 decision replaced in its commenter record)
{p}:status:<status>                      zset    ids in that status, all articles
{p}:idx:<status>:<article>               zset    ids of one article in that status
{p}:reason:<code>:status:<status>        zset    ids in that status that a rule flagged with code
{p}:public:<article>                     hash    id -> public JSON of each approved comment
                                                 (the only copy of a published one's content)
{p}:article:<article>:settings           hash    closed=1 while comments are closed
{p}:author:<email-hash>                  hash    last_approved / last_negative (ms); grants
                                                 no trust (a commenter key does)
{p}:author:<email-hash>:comments         set     ids of the author's comments (data requests)
{p}:author:<email-hash>:commenters       set     ids of the commenter records bound to the email
                                                 (so an erasure revokes them; TTL: trusted_days)
{p}:commenter:<commenter-id>             hash    one commenter key (service/commenter_keys.py):
                                                 email (its keyed hash), secret and previous
                                                 (keyed hashes of the current secret and of the
                                                 one it replaced), previous_until (ms),
                                                 last_approved / last_negative (ms): trust;
                                                 decisions (a count, for undo); ttl (ms).
                                                 TTL: trusted_days from its last use
{p}:retention                            zset    rejected/spam ids, score = decision time (ms)
{p}:moderators                           hash    moderator name -> SHA-256 of their token
{p}:authfail:<ip-hash>                   string  failed moderator logins from one client IP
{p}:lock:<name>                          string  a short lease so one worker runs a chore
{p}:limits:LIMITER/<scope>/<ip-hash>/..  string  rate-limit counters (fixed windows, TTL)
{p}:policy                               string  the moderation policy as JSON
{p}:imported:<article>                   hash    source id -> comment id of each comment an
                                                 import stored (service/importers): a second
                                                 import of the same file finds them
{p}:dup:<fingerprint>                    string  marker of a recent comment (TTL: the window)
{p}:flood:ip:<ip-hash>                   string  marker of a recent comment (TTL: the interval)
{p}:hourly:<ip-hash>:<hour>              string  comments from one client IP in one clock hour
{p}:events                               stream  the event log (service/events.py): one entry per
                                                 change, appended by the change's own script;
                                                 no email, email hash, IP hash or comment text
{p}:evtext:<id>                          string  the comment's public text for its events (name,
                                                 comment, website): removed or anonymised by an
                                                 erasure, so retained events lose it too
                                                 (TTL: the event log's retention age)
{p}:webhooks                             hash    webhook id -> endpoint JSON (secrets encrypted)
{p}:webhook:<id>:state                   hash    the delivery worker's view: failing, errors in a
                                                 row, last status and attempt
{p}:webhook:<id>:deliveries              list    the endpoint's delivery log (newest first, capped)
{p}:webhook:<id>:dead                    list    events that exhausted their retries (JSON)
{p}:webhook:<id>:replay                  list    dead events a moderator asked to send again
{p}:notify:digest                        list    held comments waiting for the next digest mail
{p}:claim:<id>                           string  a moderator's claim on one comment: JSON
                                                 {moderator, since, until (ms)}; TTL:
                                                 CLAIM_SECONDS
{p}:reports:<id>                         hash    readers' reports of one comment: reporter's
                                                 ip-hash -> JSON {reason, note, at, dismissed}
{p}:reported                             zset    ids reported past the policy's threshold and
                                                 not yet reviewed (the Reported queue)
{p}:spamcheck                            stream  comments to check with the outside spam
                                                 services, and moderators' verdicts to report
                                                 back (consumer group "spamcheck")
{p}:campaign:bucket:<window>:<bucket>    hash    the LSH bands and sketches of the comments of
                                                 one time bucket (now // window ms): band
                                                 value (position * 2^32 + the band's CRC-32,
                                                 decimal) -> the ids of its at most 20 most
                                                 recent comments, concatenated oldest first;
                                                 id -> "<email-hash tag>|<sketch>"; TTL: the
                                                 bucket's end plus a window
{p}:campaign:<campaign-id>               set     the ids of one campaign (its id: its first
                                                 comment's); TTL: a week. It and an earlier
                                                 member's comment key are built inside the
                                                 insert script from comment("") and
                                                 campaign("") (ids read from the bands)
{p}:replmark                             string  "1", written after a MULTI/WATCH transaction
                                                 for WAIT to confirm it (durability.py); TTL:
                                                 60 s
{p}:idem:<ip-hash>:<key-hash>            string  one client's Idempotency-Key: JSON {fp (keyed
                                                 hash of the request), state in_flight (TTL:
                                                 the lease) or done with the answer (encrypted;
                                                 TTL: 24 h)}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

# Re-exported: the index groups' order, which callers and scripts share.
from ..states import STATUSES as STATUSES
from ..states import Status


@dataclass(frozen=True)
class KeyShape:
    """One kind of key of the schema, for the consistency check (store/check.py) to recognise
    every key it scans: which :class:`Keys` method builds it, what its variable parts are."""

    kind: str  # the name of the Keys method that builds it
    parts: tuple[str, ...]  # its arguments, in order: the parts of the name that vary
    redis_type: str  # what TYPE answers for it
    expires: bool  # it always carries a TTL (a marker, a counter, a lease)


# Every key of the table above. A key under the prefix that none of these builds is an orphan.
SHAPES: tuple[KeyShape, ...] = (
    KeyShape("comment", ("comment_id",), "string", False),
    KeyShape("status_index", ("status",), "zset", False),
    KeyShape("article_status_index", ("article_id", "status"), "zset", False),
    KeyShape("reason_status_index", ("code", "status"), "zset", False),
    KeyShape("article_public", ("article_id",), "hash", False),
    KeyShape("article_settings", ("article_id",), "hash", False),
    KeyShape("author", ("email_hash",), "hash", False),
    KeyShape("author_comments", ("email_hash",), "set", False),
    KeyShape("author_commenters", ("email_hash",), "set", True),
    KeyShape("commenter", ("commenter_id",), "hash", True),
    KeyShape("retention", (), "zset", False),
    KeyShape("moderators", (), "hash", False),
    KeyShape("auth_failures", ("ip_hash",), "string", True),
    KeyShape("lock", ("name",), "string", True),
    KeyShape("rate_limit_counter", ("counter",), "string", True),
    KeyShape("policy", (), "string", False),
    KeyShape("imported", ("article_id",), "hash", False),
    KeyShape("duplicate", ("fingerprint",), "string", True),
    KeyShape("flood_ip", ("ip_hash",), "string", True),
    KeyShape("hourly", ("ip_hash", "hour"), "string", True),
    KeyShape("events", (), "stream", False),
    KeyShape("event_content", ("article_id", "comment_id"), "string", True),
    KeyShape("webhooks", (), "hash", False),
    KeyShape("webhook_state", ("webhook_id",), "hash", False),
    KeyShape("webhook_deliveries", ("webhook_id",), "list", False),
    KeyShape("webhook_dead", ("webhook_id",), "list", False),
    KeyShape("webhook_replay", ("webhook_id",), "list", False),
    KeyShape("notify_digest", (), "list", False),
    KeyShape("claim", ("comment_id",), "string", True),
    KeyShape("idempotency", ("ip_hash", "key_hash"), "string", True),
    KeyShape("reports", ("comment_id",), "hash", False),
    KeyShape("reported", (), "zset", False),
    KeyShape("spam_checks", (), "stream", False),
    KeyShape("campaign_bucket", ("window_ms", "bucket"), "hash", True),
    KeyShape("campaign", ("campaign_id",), "set", True),
    KeyShape("replication_mark", (), "string", True),
)
# What a variable part may hold: no ":" (ids, article ids, hashes, codes, statuses), except a
# rate-limit counter's name, which the `limits` library spells.
_PART = "[^:]+"
_TAIL_PARTS = {"counter": ".+"}


@dataclass(frozen=True)
class Keys:
    prefix: str = "cm"

    @property
    def tag(self) -> str:
        return "{" + self.prefix + "}"

    def comment(self, comment_id: str) -> str:
        return f"{self.tag}:comment:{comment_id}"

    def status_index(self, status: str) -> str:
        return f"{self.tag}:status:{status}"

    def article_status_index(self, article_id: str, status: str) -> str:
        return f"{self.tag}:idx:{status}:{article_id}"

    def reason_status_index(self, code: str, status: str) -> str:
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

    def commenter(self, commenter_id: str) -> str:
        return f"{self.tag}:commenter:{commenter_id}"

    def retention(self) -> str:
        return f"{self.tag}:retention"

    def moderators(self) -> str:
        return f"{self.tag}:moderators"

    def auth_failures(self, ip_hash: str) -> str:
        return f"{self.tag}:authfail:{ip_hash}"

    def lock(self, name: str) -> str:
        return f"{self.tag}:lock:{name}"

    def rate_limits(self) -> str:
        """Prefix of the rate-limit counters (the ``limits`` library names the rest)."""
        return f"{self.tag}:limits"

    def rate_limit_counter(self, counter: str) -> str:
        """One counter, as ``limits`` names it under :meth:`rate_limits` (for recognising
        them; the library builds them itself)."""
        return f"{self.rate_limits()}:{counter}"

    def policy(self) -> str:
        return f"{self.tag}:policy"

    def imported(self, article_id: str) -> str:
        """The article's imported comments by source id (a source's thread is one article,
        so a reply finds its parent here; the key lives where the article's comments do)."""
        return f"{self.tag}:imported:{article_id}"

    def duplicate(self, fingerprint: str) -> str:
        return f"{self.tag}:dup:{fingerprint}"

    def flood_ip(self, ip_hash: str) -> str:
        return f"{self.tag}:flood:ip:{ip_hash}"

    def hourly(self, ip_hash: str, hour: int) -> str:
        return f"{self.tag}:hourly:{ip_hash}:{hour}"

    def events(self, article_id: str | None = None) -> str:
        """The event stream of an article's comments (``None``: site-wide events: policy,
        tokens). Today one stream for all; readers go through :meth:`event_streams`."""
        return f"{self.tag}:events"

    def event_streams(self) -> tuple[str, ...]:
        """Every event stream, for readers that merge them by stream id."""
        return (self.events(None),)

    def event_content(self, article_id: str, comment_id: str) -> str:
        """The public text a comment's events show (name, comment, website), apart from
        the stream so that an erasure can remove it from retained events."""
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
        """A moderator's claim: it changes with its comment, so it is built from the comment's
        id (and moves with it when keys are sharded)."""
        return f"{self.tag}:claim:{comment_id}"

    def reports(self, comment_id: str) -> str:
        """Readers' reports of one comment (they change with it: built from its id)."""
        return f"{self.tag}:reports:{comment_id}"

    def reported(self) -> str:
        """The Reported queue, all articles (like the status indexes)."""
        return f"{self.tag}:reported"

    def spam_checks(self, article_id: str | None = None) -> str:
        """The spam checker's work for a comment of ``article_id`` (today one stream for all;
        built from the article so that it can follow the comment's keys when sharded)."""
        return f"{self.tag}:spamcheck"

    def spam_check_streams(self) -> tuple[str, ...]:
        """Every stream the spam checker reads."""
        return (self.spam_checks(),)

    def campaign_bucket(self, window_ms: int, bucket: int) -> str:
        """One time bucket's LSH bands (across articles and authors: that is what a campaign
        is), each band value a field listing its recent comments, and their sketches by id."""
        return f"{self.tag}:campaign:bucket:{window_ms}:{bucket}"

    def campaign(self, campaign_id: str) -> str:
        return f"{self.tag}:campaign:{campaign_id}"

    def replication_mark(self) -> str:
        """Written (with a TTL) after a MULTI/WATCH transaction, with WAIT after it on the
        same connection: replication is one ordered stream, so a replica that has the mark
        has the transaction (store/durability.py, ReplicaWait.confirm)."""
        return f"{self.tag}:replmark"

    def idempotency(self, ip_hash: str, key_hash: str) -> str:
        """One client's Idempotency-Key record (per client: the key's scope is the client)."""
        return f"{self.tag}:idem:{ip_hash}:{key_hash}"

    @property
    def public_tracked_prefixes(self) -> tuple[str, ...]:
        """What the workers' always-on cache depends on (CLIENT TRACKING BCAST): article pages
        and counts, the site's feed of recent comments (the global approved index), the policy
        and article settings, moderator tokens and failed logins.
        A held submission writes none of these keys, so it sends no worker any message; an
        approval sends each one message per prefix it touches (public hash, approved indexes)."""
        return (
            f"{self.tag}:public:",
            f"{self.tag}:idx:{Status.APPROVED}:",
            self.status_index(Status.APPROVED),
            f"{self.tag}:article:",
            f"{self.tag}:policy",
            f"{self.tag}:moderators",
            f"{self.tag}:authfail:",
        )

    @property
    def moderation_tracked_prefixes(self) -> tuple[str, ...]:
        """What cached moderator listings depend on: the status indexes and the comments.
        Every submission changes them, so a worker tracks them only while it serves
        moderators (see TrackedCache's idle_seconds)."""
        return (
            f"{self.tag}:status:",
            f"{self.tag}:idx:",
            f"{self.tag}:reason:",
            f"{self.tag}:comment:",
            f"{self.tag}:claim:",
            f"{self.tag}:reported",
        )

    def scan_pattern(self) -> str:
        """A SCAN MATCH pattern for every key of the prefix (glob characters escaped)."""
        return re.sub(r"([*?\[\]\\])", r"\\\1", self.tag) + ":*"

    def classify(self, key: str) -> tuple[KeyShape, dict[str, str]] | None:
        """The shape of a key of the prefix and its variable parts; None for an orphan."""
        for shape, pattern in self._patterns:
            match = pattern.fullmatch(key)
            if match:
                return shape, match.groupdict()
        return None

    @cached_property
    def _patterns(self) -> tuple[tuple[KeyShape, re.Pattern[str]], ...]:
        # Each builder run on placeholders, so the patterns follow the builders by
        # construction rather than restating them.
        found = []
        for shape in SHAPES:
            marks = {part: f"\0{part}\0" for part in shape.parts}
            pattern = re.escape(getattr(self, shape.kind)(*marks.values()))
            for part, mark in marks.items():
                group = f"(?P<{part}>{_TAIL_PARTS.get(part, _PART)})"
                pattern = pattern.replace(re.escape(mark), group, 1)
            found.append((shape, re.compile(pattern)))
        return tuple(found)

    def index_groups(self, article_id: str, reason_codes: tuple[str, ...]) -> list[str]:
        """Every index a comment can be in, as groups of one key per status (STATUSES order):
        the global one, the article's, and one per reason code the comment carries."""
        keys = [self.status_index(s) for s in STATUSES]
        keys += [self.article_status_index(article_id, s) for s in STATUSES]
        for code in reason_codes:
            keys += [self.reason_status_index(code, s) for s in STATUSES]
        return keys
