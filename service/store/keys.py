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
                                                 from, to, note) and, while unpublished, content
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
                                                 ttl (ms). TTL: trusted_days from its last use
{p}:retention                            zset    rejected/spam ids, score = decision time (ms)
{p}:moderators                           hash    moderator name -> SHA-256 of their token
{p}:authfail:<ip-hash>                   string  failed moderator logins from one client IP
{p}:lock:<name>                          string  a short lease so one worker runs a chore
{p}:limits:LIMITER/<scope>/<ip-hash>/..  string  rate-limit counters (fixed windows, TTL)
{p}:policy                               string  the moderation policy as JSON
{p}:dup:<fingerprint>                    string  marker of a recent comment (TTL: the window)
{p}:flood:ip:<ip-hash>                   string  marker of a recent comment (TTL: the interval)
{p}:hourly:<ip-hash>:<hour>              string  comments from one client IP in one clock hour
"""

from __future__ import annotations

from dataclasses import dataclass

STATUSES = ("pending", "approved", "rejected", "spam")


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

    def policy(self) -> str:
        return f"{self.tag}:policy"

    def duplicate(self, fingerprint: str) -> str:
        return f"{self.tag}:dup:{fingerprint}"

    def flood_ip(self, ip_hash: str) -> str:
        return f"{self.tag}:flood:ip:{ip_hash}"

    def hourly(self, ip_hash: str, hour: int) -> str:
        return f"{self.tag}:hourly:{ip_hash}:{hour}"

    @property
    def public_tracked_prefixes(self) -> tuple[str, ...]:
        """What the workers' always-on cache depends on (CLIENT TRACKING BCAST): article pages
        and counts, the policy and article settings, moderator tokens and failed logins.
        A held submission writes none of these keys, so it sends no worker any message; an
        approval sends each one message per prefix it touches (public hash, approved index)."""
        return (f"{self.tag}:public:", f"{self.tag}:idx:approved:", f"{self.tag}:article:",
                f"{self.tag}:policy", f"{self.tag}:moderators", f"{self.tag}:authfail:")

    @property
    def moderation_tracked_prefixes(self) -> tuple[str, ...]:
        """What cached moderator listings depend on: the status indexes and the comments.
        Every submission changes them, so a worker tracks them only while it serves
        moderators (see TrackedCache's idle_seconds)."""
        return (f"{self.tag}:status:", f"{self.tag}:idx:", f"{self.tag}:reason:",
                f"{self.tag}:comment:")

    def index_groups(self, article_id: str, reason_codes: tuple[str, ...]) -> list[str]:
        """Every index a comment can be in, as groups of one key per status (STATUSES order):
        the global one, the article's, and one per reason code the comment carries."""
        keys = [self.status_index(s) for s in STATUSES]
        keys += [self.article_status_index(article_id, s) for s in STATUSES]
        for code in reason_codes:
            keys += [self.reason_status_index(code, s) for s in STATUSES]
        return keys
