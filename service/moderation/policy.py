"""The moderation policy: pure decisions, no I/O.

The content rules judge a submission by itself. The one rule that needs the commenter's
history, trust, is not given it in production: the history is read where the comment is
written, so :func:`evaluate_standings` judges the submission once for each standing (untrusted,
trusted) and the store's insert script picks the verdict that applies from the author's record,
in the same atomic step as the write. :func:`is_trusted` is that rule's definition, the oracle
the script is held to (tests/test_trust_property.py); :func:`evaluate` judges one standing from
given :class:`Facts`. Each evaluation runs every rule, keeps every reason it finds (a moderator
sees all of them, not only the first), and takes the strictest action: spam over hold over
approve.

The duplicate and flood settings are part of :class:`Policy` too, but the insert enforces them
(service/submissions.py passes them on as the store's guards): they depend on what Redis holds
at that moment.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Protocol

from ..states import Status


class Action(StrEnum):
    APPROVE = "approve"
    HOLD = "hold"
    SPAM = "spam"


SEVERITY = {Action.APPROVE: 0, Action.HOLD: 1, Action.SPAM: 2}
STATUS_FOR = {
    Action.APPROVE: Status.APPROVED,
    Action.HOLD: Status.PENDING,
    Action.SPAM: Status.SPAM,
}


class AutoApprove(StrEnum):
    TRUSTED = "trusted"  # commenters with a good recent record; everyone else is held
    ALL = "all"  # post-moderation: whatever no rule holds is published
    NONE = "none"  # pre-moderation: a human sees every comment first


class ReportAction(StrEnum):
    UNPUBLISH = "unpublish"  # back to pending, reason "reported"
    FLAG = "flag"  # stays published, listed in the Reported queue


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str
    action: Action

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "detail": self.detail, "action": self.action.value}


@dataclass(frozen=True)
class Verdict:
    action: Action
    reasons: tuple[Reason, ...]

    @property
    def status(self) -> str:
        return STATUS_FOR[self.action]


@dataclass(frozen=True)
class Policy:
    """Every setting of every rule; an action of None switches that rule off."""

    profanity: Action | None = Action.HOLD
    links: Action | None = Action.HOLD
    link_threshold: int = 2  # this many links or more in the comment fire the rule
    block_terms: tuple[str, ...] = ()
    block_action: Action = Action.SPAM
    hold_terms: tuple[str, ...] = ()
    honeypot: bool = True
    auto_approve: AutoApprove = AutoApprove.TRUSTED
    trusted_days: int = 90
    duplicate_window_seconds: int = 86_400  # 0: duplicates allowed
    flood_interval_seconds: int = 15  # 0: no minimum interval
    flood_hourly_cap: int = 30  # 0: no cap per client IP and hour
    # Reader reports (issue 16): this many active reports on a published comment send it back
    # to review (unpublish) or only flag it in the Reported queue (flag).
    report_threshold: int = 3
    report_action: ReportAction = ReportAction.UNPUBLISH
    # How long after posting an author may edit or delete their comment with its edit token.
    edit_window_seconds: int = 900
    # Campaigns (service/moderation/campaigns.py): this many near-duplicate comments from as
    # many different authors within the window are held with the reason "campaign"; 0: off.
    campaign_threshold: int = 3
    campaign_window_seconds: int = 86_400


@dataclass(frozen=True)
class Submission:
    name: str
    email: str
    comment: str
    website: str | None
    client_ip: str
    honeypot: str | None = None
    # The email's and the client address's keyed hashes as list terms store them (see
    # HASHED_TERM); the caller computes them, this module never sees the secret.
    email_term_hash: str | None = None
    ip_term_hash: str | None = None


@dataclass(frozen=True)
class Facts:
    now_ms: int
    # The submission's commenter key's (never the email's: see service/commenter_keys.py)
    last_approved_ms: int | None = None  # most recent approval
    last_negative_ms: int | None = None  # most recent rejection or spam verdict


class ProfanityFinder(Protocol):
    def matched_terms(self, text: str) -> list[str]: ...


@dataclass(frozen=True)
class Context:
    policy: Policy
    profanity: ProfanityFinder
    facts: Facts
    reasons: list[Reason] = field(default_factory=list)


DAY_MS = 86_400_000
LINK = re.compile(r"\bhttps?://|\bwww\.", re.IGNORECASE)
# Zero-width and invisible formatting characters that split a word without showing it.
INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff\u180e"), None)


def normalize(text: str) -> str:
    """NFKC, case folded, invisible characters removed: how terms and texts are compared."""
    return unicodedata.normalize("NFKC", text.translate(INVISIBLE)).casefold()


def duplicate_fingerprint(comment: str) -> str:
    """The text as duplicates are compared: normalised, whitespace collapsed."""
    return " ".join(normalize(comment).split())


@lru_cache(maxsize=32)
def term_pattern(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for a list of terms, matching only whole words (no Scunthorpe problem)."""
    cleaned = sorted({normalize(t).strip() for t in terms if t.strip()}, key=len, reverse=True)
    if not cleaned:
        return None
    alternation = "|".join(re.escape(t) for t in cleaned)
    return re.compile(r"(?<!\w)(?:" + alternation + r")(?!\w)")


def find_terms(terms: tuple[str, ...], fields: dict[str, str]) -> list[tuple[str, str]]:
    """(field, term) pairs for every list term found in the given fields."""
    pattern = term_pattern(terms)
    if pattern is None:
        return []
    hits = []
    for name, value in fields.items():
        for match in dict.fromkeys(m.group(0) for m in pattern.finditer(normalize(value))):
            hits.append((name, match))
    return hits


# A list term that is an email or an IP address is stored as this prefix and the keyed hash
# of the address (service/policy_terms.py), and matches that field exactly: the policy
# document, and every reason it gives, then hold no one's address in plaintext.
HASHED_TERM = "hash:"


@lru_cache(maxsize=32)
def split_terms(terms: tuple[str, ...]) -> tuple[tuple[str, ...], frozenset[str]]:
    """A list's word terms, and the hashes of its address terms (without the prefix)."""
    words = tuple(t for t in terms if not t.startswith(HASHED_TERM))
    hashes = frozenset(t.removeprefix(HASHED_TERM) for t in terms if t.startswith(HASHED_TERM))
    return words, hashes


# What a reason says when a list matched a field that identifies the commenter: the rule,
# never the value (nor the term, which may be most of it).
_IDENTIFIER_FIELDS = {"email": "the email", "client_ip": "the client address"}


def list_hits(terms: tuple[str, ...], sub: Submission, list_name: str) -> list[str]:
    """What one list found in a submission, each hit described for a moderator."""
    words, hashes = split_terms(terms)
    text = {"name": sub.name, "comment": sub.comment, "website": sub.website or ""}
    hits = [f"{term!r} in {name}" for name, term in find_terms(words, text)]
    identifiers = {
        "email": (sub.email, sub.email_term_hash),
        "client_ip": (sub.client_ip, sub.ip_term_hash),
    }
    for name, (value, hashed) in identifiers.items():
        subject = _IDENTIFIER_FIELDS[name]
        if hashed is not None and hashed in hashes:
            hits.append(f"{subject} is on the {list_name} list")
        elif find_terms(words, {name: value}):
            hits.append(f"{subject} matches a term of the {list_name} list")
    return hits


def check_honeypot(sub: Submission, ctx: Context) -> None:
    if ctx.policy.honeypot and sub.honeypot:
        ctx.reasons.append(Reason("honeypot", "the hidden form field was filled in", Action.SPAM))


def check_lists(sub: Submission, ctx: Context) -> None:
    blocked = list_hits(ctx.policy.block_terms, sub, "block")
    if blocked:
        ctx.reasons.append(Reason("blocked_term", "; ".join(blocked), ctx.policy.block_action))
    held = list_hits(ctx.policy.hold_terms, sub, "hold")
    if held:
        ctx.reasons.append(Reason("hold_term", "; ".join(held), Action.HOLD))


def check_profanity(sub: Submission, ctx: Context) -> None:
    if ctx.policy.profanity is None:
        return
    found = ctx.profanity.matched_terms(sub.name) + ctx.profanity.matched_terms(sub.comment)
    if found:
        terms = list(dict.fromkeys(found))
        ctx.reasons.append(
            Reason("profanity", "matched: " + ", ".join(terms), ctx.policy.profanity)
        )


def check_links(sub: Submission, ctx: Context) -> None:
    if ctx.policy.links is None or ctx.policy.link_threshold <= 0:
        return
    count = len(LINK.findall(sub.comment))
    if count >= ctx.policy.link_threshold:
        ctx.reasons.append(Reason("links", f"{count} links in the comment", ctx.policy.links))


def is_trusted(facts: Facts, trusted_days: int) -> bool:
    """An approval and no rejection or spam verdict within the last ``trusted_days`` (a stamp
    exactly ``trusted_days`` old still counts).

    The oracle of the trusted-commenter rule. Production decides trust in the insert script
    (store/scripts.py, INSERT_COMMENT) from the author's record at write time; a property test
    (tests/test_trust_property.py) holds the script to this function on a real Redis. Change
    the rule here and there together."""
    since = facts.now_ms - trusted_days * DAY_MS
    approved = facts.last_approved_ms is not None and facts.last_approved_ms >= since
    negative = facts.last_negative_ms is not None and facts.last_negative_ms >= since
    return approved and not negative


def check_trust(sub: Submission, ctx: Context) -> None:
    mode = ctx.policy.auto_approve
    if mode is AutoApprove.NONE:
        ctx.reasons.append(Reason("pre_moderation", "every comment is reviewed first", Action.HOLD))
    elif mode is AutoApprove.TRUSTED and not is_trusted(ctx.facts, ctx.policy.trusted_days):
        ctx.reasons.append(
            Reason(
                "first_comment",
                "no approved comment sent with this commenter key in the last "
                f"{ctx.policy.trusted_days} days (or a rejected one since)",
                Action.HOLD,
            )
        )


RULES = (check_honeypot, check_lists, check_profanity, check_links, check_trust)


def evaluate(sub: Submission, facts: Facts, policy: Policy, profanity: ProfanityFinder) -> Verdict:
    ctx = Context(policy=policy, profanity=profanity, facts=facts)
    for rule in RULES:
        rule(sub, ctx)
    return _verdict(ctx.reasons)


@dataclass(frozen=True)
class Verdicts:
    """The verdict for an author without standing and, when the policy trusts known
    commenters, for a trusted one: the caller learns the author's standing only when it
    writes (in the same atomic step), so it carries both."""

    untrusted: Verdict
    trusted: Verdict | None  # None: standing does not change the verdict


def evaluate_standings(
    sub: Submission, now_ms: int, policy: Policy, profanity: ProfanityFinder
) -> Verdicts:
    """What :func:`evaluate` answers for each standing, with the content rules run once."""
    content = Context(policy=policy, profanity=profanity, facts=Facts(now_ms=now_ms))
    for rule in RULES:
        if rule is not check_trust:
            rule(sub, content)
    untrusted = Context(
        policy=policy, profanity=profanity, facts=content.facts, reasons=list(content.reasons)
    )
    check_trust(sub, untrusted)
    trusted = None
    if policy.auto_approve is AutoApprove.TRUSTED:
        trusted = _verdict(content.reasons)  # a trusted author adds no reason
    return Verdicts(untrusted=_verdict(untrusted.reasons), trusted=trusted)


def trusted_since(now_ms: int, policy: Policy) -> int:
    """The earliest approval that still counts for trust (see :func:`is_trusted`)."""
    return now_ms - policy.trusted_days * DAY_MS


def _verdict(reasons: list[Reason]) -> Verdict:
    action = max((r.action for r in reasons), key=SEVERITY.__getitem__, default=Action.APPROVE)
    return Verdict(action=action, reasons=tuple(reasons))


def _action(value: str) -> Action | None:
    return None if value == "off" else Action(value)


def policy_from_document(doc: dict[str, object]) -> Policy:
    """A Policy from its validated JSON document (see schemas.PolicySchema); missing keys
    keep their defaults."""
    base = Policy()

    def get(name: str, default: object) -> object:
        return doc.get(name, default)

    def action_or_off(name: str, default: Action | None) -> Action | None:
        return _action(str(get(name, default.value if default else "off")))

    return Policy(
        auto_approve=AutoApprove(str(get("auto_approve", base.auto_approve.value))),
        trusted_days=int(str(get("trusted_days", base.trusted_days))),
        profanity=action_or_off("profanity_action", base.profanity),
        links=action_or_off("link_action", base.links),
        link_threshold=int(str(get("link_threshold", base.link_threshold))),
        block_terms=tuple(str(t) for t in _list(get("block_terms", []))),
        block_action=Action(str(get("block_action", base.block_action.value))),
        hold_terms=tuple(str(t) for t in _list(get("hold_terms", []))),
        honeypot=bool(get("honeypot", base.honeypot)),
        duplicate_window_seconds=int(
            str(get("duplicate_window_seconds", base.duplicate_window_seconds))
        ),
        flood_interval_seconds=int(str(get("flood_interval_seconds", base.flood_interval_seconds))),
        flood_hourly_cap=int(str(get("flood_hourly_cap", base.flood_hourly_cap))),
        report_threshold=int(str(get("report_threshold", base.report_threshold))),
        report_action=ReportAction(str(get("report_action", base.report_action.value))),
        edit_window_seconds=int(str(get("edit_window_seconds", base.edit_window_seconds))),
        campaign_threshold=int(str(get("campaign_threshold", base.campaign_threshold))),
        campaign_window_seconds=int(
            str(get("campaign_window_seconds", base.campaign_window_seconds))
        ),
    )


def policy_to_document(policy: Policy) -> dict[str, object]:
    return {
        "auto_approve": policy.auto_approve.value,
        "trusted_days": policy.trusted_days,
        "profanity_action": policy.profanity.value if policy.profanity else "off",
        "link_action": policy.links.value if policy.links else "off",
        "link_threshold": policy.link_threshold,
        "block_terms": list(policy.block_terms),
        "block_action": policy.block_action.value,
        "hold_terms": list(policy.hold_terms),
        "honeypot": policy.honeypot,
        "duplicate_window_seconds": policy.duplicate_window_seconds,
        "flood_interval_seconds": policy.flood_interval_seconds,
        "flood_hourly_cap": policy.flood_hourly_cap,
        "report_threshold": policy.report_threshold,
        "report_action": policy.report_action.value,
        "edit_window_seconds": policy.edit_window_seconds,
        "campaign_threshold": policy.campaign_threshold,
        "campaign_window_seconds": policy.campaign_window_seconds,
    }


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


# -- reader reports ------------------------------------------------------------------------

REPORT_REASONS = ("spam", "abuse", "off_topic", "privacy", "other")


def report_reason(counts: dict[str, int]) -> Reason:
    """The reason a comment sent back to review by its readers' reports carries: the counts by
    reason, most reported first."""
    total = sum(counts.values())
    parts = ", ".join(f"{r} {n}" for r, n in sorted(counts.items(), key=lambda i: (-i[1], i[0])))
    return Reason("reported", f"{total} reader reports: {parts}", Action.HOLD)


def reached_report_threshold(active_reports: int, policy: Policy) -> bool:
    return active_reports >= policy.report_threshold


# A campaign reason's detail, as printf-style format (the insert script fills it in Lua's
# string.format with the same three values).
CAMPAIGN_DETAIL = "campaign %s: %d similar comments from %d authors"


def campaign_reason(campaign_id: str, comments: int, authors: int) -> Reason:
    """The reason of a comment held as part of a campaign: its id (which lists the others)."""
    return Reason("campaign", CAMPAIGN_DETAIL % (campaign_id, comments, authors), Action.HOLD)


def with_reason(verdict: Verdict, reason: Reason) -> Verdict:
    """The verdict with one more reason (and the strictest action again)."""
    return _verdict([*verdict.reasons, reason])
