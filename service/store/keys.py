"""The whole Redis key schema. No other module builds a key name.

A key's name is ``<prefix>:<kind>:{<prefix>}:<parts>`` (``p`` below): its kind first, so that a
prefix names a kind (CLIENT TRACKING BCAST, scans), then its hash tag, then what varies.
Layout 3; service/store/layout.py migrates a store of layout 1 (``{<prefix>}:<kind>:<parts>``)
or 2 (layout 3's names, with one status, reason, retention and Reported index for all articles).

Articles are spread over BUCKETS buckets (CRC-32 of the article id), and a comment's id carries
its article's bucket (service/ids.py). Every index across articles is kept per bucket: the
moderation queue, its reason filters, the retention index and the Reported queue. A change of
one comment touches only its own bucket's indexes, and a listing across articles merges the
buckets' (store/reads.py, merged_page: two pipelined round trips at most). That is what lets
the keys of one bucket take their own hash tag and Cluster slot later (issue 13).

Until then every key carries the same hash tag, ``{<prefix>}``: a submission checks its
duplicate and flood markers and inserts the comment with its indexes in one script, and a
state change touches a comment, its bucket's indexes, the article's indexes and the author's
record in one script; the author's keys and the client's (flood markers, hourly counts) are
shared by all buckets, so today every key must share one Cluster slot. The builders already
name each key under the tag of what it belongs to (``Keys.tag_for_bucket``, ``tag_for_article``,
``tag_for_comment``, ``tag_for_author``, ``tag_for_client``, ``tag_for_campaign``, and ``tag``
for the site's), each ``{<prefix>}`` for now: layout 4 changes those methods, not the callers
(docs/sharding-plan.md §0, §3).

Sorted sets hold ids with score 0: ids sort by creation time, so lexicographic ranges are pages.
Hashed identifiers (<email-hash>, <ip-hash>, <fingerprint>) are keyed HMACs (service/hashing.py),
never the raw address.

Key                                      type    holds
p:comment:{p}:<id>                       string  one comment as JSON: status, encrypted email,
                                                 its hash, reasons, history (who or what, when,
                                                 from, to, note), while unpublished, content,
                                                 and while decided, undo (what its first
                                                 decision replaced in its commenter record)
p:status:<status>:{p}:<bucket>           zset    ids in that status of one bucket's articles
p:idx:<status>:{p}:<article>             zset    ids of one article in that status
p:reason:<code>:status:<status>:{p}:<b>  zset    ids in that status that a rule flagged with
                                                 code, of one bucket's articles
p:public:{p}:<article>                   hash    id -> public JSON of each approved comment
                                                 (the only copy of a published one's content)
p:article:settings:{p}:<article>         hash    closed=1 while comments are closed
p:author:{p}:<email-hash>                hash    last_approved / last_negative (ms); grants
                                                 no trust (a commenter key does)
p:author:comments:{p}:<email-hash>       set     ids of the author's comments (data requests)
p:author:commenters:{p}:<email-hash>     set     ids of the commenter records bound to the email
                                                 (so an erasure revokes them; TTL: trusted_days)
p:commenter:{p}:<commenter-id>           hash    one commenter key (service/commenter_keys.py):
                                                 email (its keyed hash), secret and previous
                                                 (keyed hashes of the current secret and of the
                                                 one it replaced), previous_until (ms),
                                                 last_approved / last_negative (ms): trust;
                                                 decisions (a count, for undo); ttl (ms).
                                                 TTL: trusted_days from its last use
p:retention:{p}:<bucket>                 zset    rejected/spam ids of one bucket's articles,
                                                 score = decision time (ms)
p:moderators:{p}                         hash    moderator name -> SHA-256 of their token
p:authfail:{p}:<ip-hash>                 string  failed moderator logins from one client IP
p:lock:{p}:<name>                        string  a short lease so one worker runs a chore
p:limits:{p}:LIMITER/<scope>/<ip-hash>/. string  rate-limit counters (fixed windows, TTL)
p:policy:{p}                             string  the moderation policy as JSON
p:imported:{p}:<article>                 hash    source id -> comment id of each comment an
                                                 import stored (service/importers): a second
                                                 import of the same file finds them
p:dup:{p}:<fingerprint>                  string  marker of a recent comment (TTL: the window)
p:flood:ip:{p}:<ip-hash>                 string  marker of a recent comment (TTL: the interval)
p:hourly:{p}:<ip-hash>:<hour>            string  comments from one client IP in one clock hour
p:events:{p}                             stream  the event log's site-wide events (policy,
                                                 tokens) and every event issued before the
                                                 per-bucket streams (stream index 0,
                                                 service/events.py)
p:events:{p}:<bucket>                    stream  the event log of one bucket's articles (stream
                                                 index 1 + bucket): one entry per change,
                                                 appended by the change's own script; no email,
                                                 email hash, IP hash or comment text
p:evtext:{p}:<id>                        string  the comment's public text for its events (name,
                                                 comment, website): removed or anonymised by an
                                                 erasure, so retained events lose it too
                                                 (TTL: the event log's retention age)
p:webhooks:{p}                           hash    webhook id -> endpoint JSON (secrets encrypted)
p:webhook:state:{p}:<id>                 hash    the delivery worker's view: failing, errors in a
                                                 row, last status and attempt
p:webhook:deliveries:{p}:<id>            list    the endpoint's delivery log (newest first, capped)
p:webhook:dead:{p}:<id>                  list    events that exhausted their retries (JSON)
p:webhook:replay:{p}:<id>                list    dead events a moderator asked to send again
p:notify:digest:{p}                      list    held comments waiting for the next digest mail
p:claim:{p}:<id>                         string  a moderator's claim on one comment: JSON
                                                 {moderator, since, until (ms)}; TTL:
                                                 CLAIM_SECONDS
p:reports:{p}:<id>                       hash    readers' reports of one comment: reporter's
                                                 ip-hash -> JSON {reason, note, at, dismissed}
p:reported:{p}:<bucket>                  zset    ids reported past the policy's threshold and
                                                 not yet reviewed (the Reported queue), of one
                                                 bucket's articles
p:spamcheck:{p}:<bucket>                 stream  comments of one bucket's articles to check with
                                                 the outside spam services, and moderators'
                                                 verdicts to report back (consumer group
                                                 "spamcheck")
p:spamcheck:{p}                          stream  the same, queued before the per-bucket streams:
                                                 read (and so drained) with them
p:campaign:bucket:{p}:<window>:<bucket>  hash    the LSH bands and sketches of the comments of
                                                 one time bucket (now // window ms): band
                                                 value ("<position>:<its components as
                                                 encoded>") -> the ids of its at most 20 most
                                                 recent comments, concatenated oldest first;
                                                 id -> "<email-hash tag>|<sketch>"; TTL: the
                                                 bucket's end plus a window
p:campaign:{p}:<campaign-id>             set     the ids of one campaign (its id: its first
                                                 comment's); TTL: a week. It and an earlier
                                                 member's comment key are built inside the
                                                 insert script from comment("") and
                                                 campaign("") (ids read from the bands)
p:replmark:{p}                           string  "1", written after a MULTI/WATCH transaction
                                                 for WAIT to confirm it (durability.py); TTL:
                                                 60 s
p:outbox:{p}:<bucket>                    zset    post-steps owed by split changes (a cluster's
                                                 stepped scripts, store/steps.py) of one
                                                 bucket's comments: "<kind>:<id>:<version>",
                                                 score = time of the bucket step (ms)
p:step:{p}:<digest of kind:id:version>   string  a non-idempotent step's reply (its memo), in
                                                 the step's tag; TTL: 120 s
p:idem:{p}:<ip-hash>:<key-hash>          string  one client's Idempotency-Key: JSON {fp (keyed
                                                 hash of the request), state in_flight (TTL:
                                                 the lease) or done with the answer (encrypted;
                                                 TTL: 24 h)}
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from functools import cached_property, lru_cache

from ..ids import BUCKET_BITS

# Re-exported: the index groups' order, which callers and scripts share.
from ..states import STATUSES as STATUSES
from ..states import Status


def glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern (SCAN MATCH, KEYS)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


@dataclass(frozen=True)
class KeyShape:
    """One kind of key of the schema, for the consistency check (store/check.py) to recognise
    every key it scans: which :class:`Keys` method builds it, what its variable parts are."""

    kind: str  # the name of the Keys method that builds it
    # Its arguments, in order: the parts of the name that vary, and those that only choose its
    # hash tag (today a duplicate marker's article, a commenter record's email hash): classify
    # finds only the parts a name carries, and a rebuilt name is given "" for the others.
    parts: tuple[str, ...]
    redis_type: str  # what TYPE answers for it
    expires: bool  # it always carries a TTL (a marker, a counter, a lease)


# Every key of the table above. A key under the prefix that none of these builds is an orphan.
SHAPES: tuple[KeyShape, ...] = (
    KeyShape("comment", ("comment_id",), "string", False),
    KeyShape("status_index", ("status", "bucket"), "zset", False),
    KeyShape("article_status_index", ("article_id", "status"), "zset", False),
    KeyShape("reason_status_index", ("code", "status", "bucket"), "zset", False),
    KeyShape("article_public", ("article_id",), "hash", False),
    KeyShape("article_settings", ("article_id",), "hash", False),
    KeyShape("author", ("email_hash",), "hash", False),
    KeyShape("author_comments", ("email_hash",), "set", False),
    KeyShape("author_commenters", ("email_hash",), "set", True),
    KeyShape("commenter", ("email_hash", "commenter_id"), "hash", True),
    KeyShape("retention", ("bucket",), "zset", False),
    KeyShape("moderators", (), "hash", False),
    KeyShape("auth_failures", ("ip_hash",), "string", True),
    KeyShape("lock", ("name",), "string", True),
    KeyShape("rate_limit_counter", ("counter",), "string", True),
    KeyShape("policy", (), "string", False),
    KeyShape("imported", ("article_id",), "hash", False),
    KeyShape("duplicate", ("article_id", "fingerprint"), "string", True),
    KeyShape("flood_ip", ("ip_hash",), "string", True),
    KeyShape("hourly", ("ip_hash", "hour"), "string", True),
    KeyShape("events", (), "stream", False),
    KeyShape("bucket_events", ("bucket",), "stream", False),
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
    KeyShape("reported", ("bucket",), "zset", False),
    KeyShape("spam_checks", (), "stream", False),
    KeyShape("bucket_spam_checks", ("bucket",), "stream", False),
    KeyShape("campaign_bucket", ("window_ms", "bucket"), "hash", True),
    KeyShape("campaign", ("campaign_id",), "set", True),
    KeyShape("replication_mark", ("tag",), "string", True),
    KeyShape("layout", (), "string", False),
    KeyShape("outbox", ("bucket",), "zset", False),
    KeyShape("step_memo", ("tag", "digest"), "string", True),
)
# What a variable part may hold: no ":" (ids, article ids, hashes, codes, statuses), except a
# rate-limit counter's name, which the `limits` library spells, and a replication mark's hash
# tag (one of the prefix's: "{<prefix>}" or "{<prefix>:...}").
_PART = "[^:]+"
_TAIL_PARTS = {"counter": ".+", "tag": r"\{%(prefix)s(?::[^{}]*)?\}"}


# How many buckets articles are spread over, fixed for good (a comment's id carries its
# bucket): far more than any cluster has primaries, so buckets spread evenly over them.
BUCKETS = 1 << BUCKET_BITS


def article_bucket(article_id: str) -> int:
    """The bucket of an article's keys: CRC-32 of its id (stable across processes and
    versions, unlike Python's hash), mod BUCKETS."""
    return zlib.crc32(article_id.encode()) % BUCKETS


@dataclass(frozen=True)
class Keys:
    prefix: str = "cm"

    @staticmethod
    def bucket(article_id: str) -> int:
        return article_bucket(article_id)

    # -- hash tags ----------------------------------------------------------------------------
    # Each builder names its key under the tag of what the key belongs to: an article bucket,
    # an author, a client, campaign detection, or the site (``tag``). Today every one of them
    # is ``{<prefix>}`` (one slot; see the module's docstring); layout 4 gives each its own
    # (docs/sharding-plan.md §0, §3) by changing these methods only, so the callers already
    # pass what each key will be placed by. They do not derive one from another (an article's
    # tag from its bucket's, say): that would cost a CRC or an id decode per key name for
    # nothing while all are one.

    @cached_property  # built for every key name: once
    def tag(self) -> str:
        """The site's tag: keys of no article, author or client (policy, moderators, webhooks,
        locks, site-wide events, the layout marker)."""
        return "{" + self.prefix + "}"

    def tag_for_bucket(self, bucket: int | str) -> str:
        """An article bucket's keys (its indexes across articles); layout 4:
        ``{<prefix>:<bucket>}``."""
        return self.tag

    def tag_for_article(self, article_id: str) -> str:
        """An article's keys: those of its bucket (:meth:`bucket`)."""
        return self.tag

    def tag_for_comment(self, comment_id: str) -> str:
        """A comment's keys (record, claim, reports): its article's bucket, which its id
        carries (service/ids.py; ids made before that are mapped: sharding plan §4)."""
        return self.tag

    def tag_for_author(self, email_hash: str) -> str:
        """An author's keys and their commenter records; layout 4:
        ``{<prefix>:u:<email-hash>}``."""
        return self.tag

    def tag_for_client(self, ip_hash: str) -> str:
        """One client's markers, counters and Idempotency-Keys; layout 4:
        ``{<prefix>:ip:<ip-hash>}``."""
        return self.tag

    def tag_for_campaign(self) -> str:
        """Campaign detection's time buckets and campaign sets (one atomic detection across
        articles and authors); layout 4: ``{<prefix>:cmc}``."""
        return self.tag

    def _key(self, tag: str, kind: str, *parts: str) -> str:
        """``<prefix>:<kind>:<tag>[:<part>...]``: the kind first (so that a prefix names a
        kind, for CLIENT TRACKING BCAST and for scans), then the hash tag that places the key,
        then the parts that vary."""
        return (
            f"{self.prefix}:{kind}:{tag}:{':'.join(parts)}"
            if parts
            else f"{self.prefix}:{kind}:{tag}"
        )

    # -- the keys -----------------------------------------------------------------------------

    def layout(self) -> str:
        """The layout version of the store's key names (service/store/layout.py)."""
        return self._key(self.tag, "layout")

    def comment(self, comment_id: str) -> str:
        return self._key(self.tag_for_comment(comment_id), "comment", comment_id)

    def status_index(self, status: str, bucket: int | str) -> str:
        """Ids in ``status`` of the articles of one bucket (a listing across articles
        merges the buckets': store/reads.py, merged_page)."""
        return self._key(self.tag_for_bucket(bucket), f"status:{status}", str(bucket))

    def status_indexes(self, status: str) -> tuple[str, ...]:
        """Every bucket's index of ``status``, in bucket order."""
        return _every_bucket(self, "status_index", (str(status),))

    def article_status_index(self, article_id: str, status: str) -> str:
        return self._key(self.tag_for_article(article_id), f"idx:{status}", article_id)

    def reason_status_index(self, code: str, status: str, bucket: int | str) -> str:
        """(A bucket of "" gives the name without it, which a script completes.)"""
        kind = f"reason:{code}:status:{status}"
        return self._key(self.tag_for_bucket(bucket), kind, str(bucket))

    def reason_status_indexes(self, code: str, status: str) -> tuple[str, ...]:
        return _every_bucket(self, "reason_status_index", (code, str(status)))

    def article_public(self, article_id: str) -> str:
        return self._key(self.tag_for_article(article_id), "public", article_id)

    def article_settings(self, article_id: str) -> str:
        return self._key(self.tag_for_article(article_id), "article:settings", article_id)

    def author(self, email_hash: str) -> str:
        return self._key(self.tag_for_author(email_hash), "author", email_hash)

    def author_comments(self, email_hash: str) -> str:
        return self._key(self.tag_for_author(email_hash), "author:comments", email_hash)

    def author_commenters(self, email_hash: str) -> str:
        return self._key(self.tag_for_author(email_hash), "author:commenters", email_hash)

    def commenter(self, email_hash: str, commenter_id: str) -> str:
        """One commenter record, with its author's keys: it is only ever named with the email
        hash it is bound to at hand (the record's ``email`` field)."""
        return self._key(self.tag_for_author(email_hash), "commenter", commenter_id)

    def retention(self, bucket: int) -> str:
        return self._key(self.tag_for_bucket(bucket), "retention", str(bucket))

    def retention_indexes(self) -> tuple[str, ...]:
        return tuple(self.retention(b) for b in range(BUCKETS))

    def moderators(self) -> str:
        return self._key(self.tag, "moderators")

    def auth_failures(self, ip_hash: str) -> str:
        return self._key(self.tag_for_client(ip_hash), "authfail", ip_hash)

    def lock(self, name: str) -> str:
        return self._key(self.tag, "lock", name)

    def rate_limits(self) -> str:
        """Prefix of the rate-limit counters (the ``limits`` library names the rest)."""
        return self._key(self.tag, "limits")

    def rate_limit_counter(self, counter: str) -> str:
        """One counter, as ``limits`` names it under :meth:`rate_limits` (for recognising
        them; the library builds them itself)."""
        return f"{self.rate_limits()}:{counter}"

    def policy(self) -> str:
        return self._key(self.tag, "policy")

    def imported(self, article_id: str) -> str:
        """The article's imported comments by source id (a source's thread is one article,
        so a reply finds its parent here; the key lives where the article's comments do)."""
        return self._key(self.tag_for_article(article_id), "imported", article_id)

    def duplicate(self, article_id: str, fingerprint: str) -> str:
        """A recent comment's marker, with its article's keys (the fingerprint hashes the
        article: service/hashing.py), so that the insert checks it in the article's slot."""
        return self._key(self.tag_for_article(article_id), "dup", fingerprint)

    def flood_ip(self, ip_hash: str) -> str:
        return self._key(self.tag_for_client(ip_hash), "flood:ip", ip_hash)

    def hourly(self, ip_hash: str, hour: int) -> str:
        return self._key(self.tag_for_client(ip_hash), "hourly", ip_hash, str(hour))

    def events(self, article_id: str | None = None) -> str:
        """The event stream of an article's comments, its bucket's (``None``: the site's, for
        site-wide events: policy, tokens). Readers go through :meth:`event_streams`."""
        return (
            self._key(self.tag, "events")
            if article_id is None
            else self.bucket_events(self.bucket(article_id))
        )

    def bucket_events(self, bucket: int | str) -> str:
        """The event stream of one bucket's articles, so that a change appends its event in
        the slot of the keys it changes (docs/sharding-plan.md §3)."""
        return self._key(self.tag_for_bucket(bucket), "events", str(bucket))

    def event_streams(self) -> tuple[str, ...]:
        """Every event stream, for readers that merge them by stream id: the site's first
        (stream index 0, service/events.py: it also holds every event issued before the
        buckets had their own), then each bucket's (index 1 + bucket)."""
        return _streams(self, "events", "bucket_events")

    def event_content(self, article_id: str, comment_id: str) -> str:
        """The public text a comment's events show (name, comment, website), apart from
        the stream so that an erasure can remove it from retained events."""
        return self._key(self.tag_for_article(article_id), "evtext", comment_id)

    def webhooks(self) -> str:
        return self._key(self.tag, "webhooks")

    def webhook_state(self, webhook_id: str) -> str:
        return self._key(self.tag, "webhook:state", webhook_id)

    def webhook_deliveries(self, webhook_id: str) -> str:
        return self._key(self.tag, "webhook:deliveries", webhook_id)

    def webhook_dead(self, webhook_id: str) -> str:
        return self._key(self.tag, "webhook:dead", webhook_id)

    def webhook_replay(self, webhook_id: str) -> str:
        return self._key(self.tag, "webhook:replay", webhook_id)

    def notify_digest(self) -> str:
        return self._key(self.tag, "notify:digest")

    def claim(self, comment_id: str) -> str:
        """A moderator's claim: it changes with its comment, so it is built from the comment's
        id (and moves with it when keys are sharded)."""
        return self._key(self.tag_for_comment(comment_id), "claim", comment_id)

    def reports(self, comment_id: str) -> str:
        """Readers' reports of one comment (they change with it: built from its id)."""
        return self._key(self.tag_for_comment(comment_id), "reports", comment_id)

    def reported(self, bucket: int) -> str:
        """The Reported queue of one bucket's articles (like the status indexes)."""
        return self._key(self.tag_for_bucket(bucket), "reported", str(bucket))

    def reported_indexes(self) -> tuple[str, ...]:
        return _every_bucket(self, "reported", ())

    def spam_checks(self, article_id: str | None = None) -> str:
        """The spam checker's work for a comment of ``article_id``: its bucket's stream, in
        the slot of the comment's keys (``None``: the site's stream, which holds what was
        queued before the per-bucket streams; read with them until drained)."""
        return (
            self._key(self.tag, "spamcheck")
            if article_id is None
            else (self.bucket_spam_checks(self.bucket(article_id)))
        )

    def bucket_spam_checks(self, bucket: int | str) -> str:
        return self._key(self.tag_for_bucket(bucket), "spamcheck", str(bucket))

    def spam_check_streams(self) -> tuple[str, ...]:
        """Every stream the spam checker reads (the site's first, as :meth:`event_streams`)."""
        return _streams(self, "spam_checks", "bucket_spam_checks")

    def campaign_bucket(self, window_ms: int, bucket: int) -> str:
        """One time bucket's LSH bands (across articles and authors: that is what a campaign
        is), each band value a field listing its recent comments, and their sketches by id."""
        tag = self.tag_for_campaign()
        return self._key(tag, "campaign:bucket", str(window_ms), str(bucket))

    def campaign(self, campaign_id: str) -> str:
        return self._key(self.tag_for_campaign(), "campaign", campaign_id)

    def replication_mark(self, tag: str) -> str:
        """Written (with a TTL) after a MULTI/WATCH transaction, with WAIT after it on the
        same connection: replication is one ordered stream, so a replica that has the mark
        has the transaction (store/durability.py, ReplicaWait.confirm). One per hash tag, in
        that tag's slot (so on the primary the transaction wrote to): ``tag`` is the one of
        the keys written (a ``tag_for_*`` method's, or :func:`hash_tag` of a key)."""
        return self._key(tag, "replmark")

    def outbox(self, bucket: int | str) -> str:
        """The post-steps still owed by split changes of one bucket's comments (store/steps.py):
        member ``<kind>:<id>:<version>``, score the bucket step's time (ms)."""
        return self._key(self.tag_for_bucket(bucket), "outbox", str(bucket))

    def step_memo(self, tag: str, digest: str) -> str:
        """A non-idempotent step's reply, kept so that running it again returns it and changes
        nothing (store/steps.py), in the slot of the step's own keys (``tag``); ``digest``
        names the change: :meth:`step_memo_of` gives it."""
        return self._key(tag, "step", digest)

    def step_memo_of(self, tag: str, step: str) -> str:
        """The memo of ``step`` (``<kind>:<id>:<version>``), named by a digest of it: a
        deleted comment's memo (it lives on for STEP_MEMO_MS) names no comment id."""
        return self.step_memo(tag, hashlib.sha256(step.encode()).hexdigest()[:32])

    def idempotency(self, ip_hash: str, key_hash: str) -> str:
        """One client's Idempotency-Key record (per client: the key's scope is the client)."""
        return self._key(self.tag_for_client(ip_hash), "idem", ip_hash, key_hash)

    @property
    def public_tracked_prefixes(self) -> tuple[str, ...]:
        """What the workers' always-on cache depends on (CLIENT TRACKING BCAST): article pages
        and counts, the site's feed of recent comments (the global approved index), the policy
        and article settings, moderator tokens and failed logins.
        A held submission writes none of these keys, so it sends no worker any message; an
        approval sends each one message per prefix it touches (public hash, approved indexes)."""
        return (
            self._kind_prefix("public"),
            self._kind_prefix(f"idx:{Status.APPROVED}"),
            self._kind_prefix(f"status:{Status.APPROVED}"),
            self._kind_prefix("article"),
            self._kind_prefix("policy"),
            self._kind_prefix("moderators"),
            self._kind_prefix("authfail"),
        )

    @property
    def moderation_tracked_prefixes(self) -> tuple[str, ...]:
        """What cached moderator listings depend on: the status indexes and the comments.
        Every submission changes them, so a worker tracks them only while it serves
        moderators (see TrackedCache's idle_seconds)."""
        return (
            self._kind_prefix("status"),
            self._kind_prefix("idx"),
            self._kind_prefix("reason"),
            self._kind_prefix("comment"),
            self._kind_prefix("claim"),
            self._kind_prefix("reported"),
        )

    def _kind_prefix(self, kind: str) -> str:
        """What every key of ``kind`` (and of the kinds it prefixes) begins with."""
        return f"{self.prefix}:{kind}:"

    def scan_pattern(self) -> str:
        """A SCAN MATCH pattern for every key of the prefix (glob characters escaped; a
        prefix has no colon: config.py)."""
        return glob_escape(self.prefix) + ":*"

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
                shape_of = _TAIL_PARTS.get(part, _PART) % {"prefix": re.escape(self.prefix)}
                group = f"(?P<{part}>{shape_of})"
                pattern = pattern.replace(re.escape(mark), group, 1)
            found.append((shape, re.compile(pattern)))
        return tuple(found)

    def index_groups(self, article_id: str, reason_codes: tuple[str, ...]) -> list[str]:
        """Every index a comment can be in, as groups of one key per status (STATUSES order):
        the global one, the article's, and one per reason code the comment carries."""
        bucket = self.bucket(article_id)
        keys = [self.status_index(s, bucket) for s in STATUSES]
        keys += [self.article_status_index(article_id, s) for s in STATUSES]
        for code in reason_codes:
            keys += [self.reason_status_index(code, s, bucket) for s in STATUSES]
        return keys


@lru_cache(maxsize=256)
def _every_bucket(keys: Keys, method: str, args: tuple[str, ...]) -> tuple[str, ...]:
    """Every bucket's key made by ``keys.<method>(*args, bucket)``, in bucket order: made once
    per Keys and arguments, since a replayed moderator listing checks its name on every
    request (256 names made per request cost the queue a quarter of its worker's time under
    load, py-spy, 2026-12-03). Through the method, so that a subclass's layout applies."""
    make = getattr(keys, method)
    return tuple(make(*args, b) for b in range(BUCKETS))


@lru_cache(maxsize=16)
def _streams(keys: Keys, site: str, per_bucket: str) -> tuple[str, ...]:
    """The site's stream of a kind (events, spam checks), then every article bucket's, each
    made by its method (so that a subclass's layout applies): stream index i is the i-th."""
    return (getattr(keys, site)(None), *(getattr(keys, per_bucket)(b) for b in range(BUCKETS)))


def hash_tag(name: str) -> str:
    """The hash tag of a key name (its first ``{...}``, braces included, as Redis Cluster
    reads it), for a replication mark in the key's slot. Every key of the schema has one."""
    start = name.find("{")
    end = name.find("}", start + 1)
    if start < 0 or end <= start + 1:
        raise ValueError(f"no hash tag in {name!r}")
    return name[start : end + 1]
