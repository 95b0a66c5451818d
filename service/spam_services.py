"""Outside spam services: an Akismet-protocol classifier and a generic moderation hook.

Both run in the ``comments-service spamcheck`` worker (service/spam_worker.py), after a
comment is stored, never in the request path; a submission's answer never waits for them.

**Akismet protocol** (``SPAM_CHECK_URL``, default Akismet's ``https://rest.akismet.com/1.1``,
and ``SPAM_CHECK_KEY``): ``comment-check`` answers ``true`` (spam) or ``false``; the header
``X-akismet-pro-tip: discard`` marks blatant spam. Moderators' spam and approve decisions go
back as ``submit-spam`` and ``submit-ham``. Any service speaking the same protocol works. What
leaves the service is the operator's choice, ``SPAM_CHECK_SEND`` (default ``ip,name,website,
text``; ``email`` only when listed): the client's IP travels encrypted in the work queue only
while it is being checked.

**Moderation hook** (``MODERATION_HOOK_URL``, ``MODERATION_HOOK_SECRET``): a POST of a JSON
summary of the new comment (id, article, name, text, website; never the email), signed with
HMAC-SHA256 (``X-Comments-Signature: t=<unix seconds>,v1=<hex of HMAC(secret, "<t>.<body>")>``),
answered ``200 {"action": "approve"|"hold"|"spam", "reasons": [...]}`` or ``204`` for no
opinion. Timeout ``MODERATION_HOOK_TIMEOUT``; up to ``MODERATION_HOOK_RETRIES`` retries; when
every attempt failed, ``MODERATION_HOOK_FAIL=open`` keeps the policy's verdict and ``closed``
holds the comment. Signed by hand (three lines of hmac): the standard-webhooks library signs
a different header set, and the events branch owns the service's outgoing webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

log = logging.getLogger(__name__)


class ServiceUnavailable(Exception):
    """The outside service did not answer usably (down, timeout, an answer not in its
    protocol)."""


@dataclass(frozen=True)
class SpamVerdict:
    spam: bool
    discard: bool = False


@dataclass(frozen=True)
class CheckedComment:
    """What may be sent about a comment, before SPAM_CHECK_SEND picks."""

    comment_id: str
    article_id: str
    name: str
    email: str
    website: str | None
    text: str
    client_ip: str


class AkismetClient:
    def __init__(
        self, base_url: str, key: str, site: str, send: tuple[str, ...], timeout: float = 5.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.site = site
        self.send = send
        self.timeout = timeout

    def fields(self, comment: CheckedComment) -> dict[str, str]:
        chosen = {
            "api_key": self.key,
            "blog": self.site,
            "comment_type": "comment",
            "permalink": f"{self.site}#{comment.article_id}" if self.site else "",
        }
        if "ip" in self.send:
            chosen["user_ip"] = comment.client_ip
        if "name" in self.send:
            chosen["comment_author"] = comment.name
        if "email" in self.send:
            chosen["comment_author_email"] = comment.email
        if "website" in self.send and comment.website:
            chosen["comment_author_url"] = comment.website
        if "text" in self.send:
            chosen["comment_content"] = comment.text
        return {k: v for k, v in chosen.items() if v}

    def comment_check(self, comment: CheckedComment) -> SpamVerdict:
        body, headers = self._post("comment-check", self.fields(comment))
        if body not in ("true", "false"):
            raise ServiceUnavailable(f"comment-check answered {body[:40]!r}")
        discard = headers.get("x-akismet-pro-tip", "").lower() == "discard"
        return SpamVerdict(spam=body == "true", discard=discard)

    def submit(self, kind: str, comment: CheckedComment) -> None:
        """``kind`` is ``spam`` or ``ham``: a moderator's verdict, reported back."""
        self._post(f"submit-{kind}", self.fields(comment))

    def _post(self, method: str, fields: dict[str, str]) -> tuple[str, dict[str, str]]:
        data = urllib.parse.urlencode(fields).encode()
        request = urllib.request.Request(f"{self.base_url}/{method}", data=data, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        request.add_header("User-Agent", "comments-service/1.0 | akismet-protocol/1.1")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                text = answer.read(4096).decode("utf-8", "replace").strip()
                return text, {k.lower(): v for k, v in answer.headers.items()}
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise ServiceUnavailable(f"{method}: {type(error).__name__}") from None


@dataclass(frozen=True)
class HookVerdict:
    action: str  # approve, hold or spam
    reasons: tuple[str, ...]


HOOK_ACTIONS = ("approve", "hold", "spam")


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class ModerationHook:
    def __init__(self, url: str, secret: bytes | None, timeout: float, retries: int) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.retries = retries

    def ask(self, comment: CheckedComment) -> HookVerdict | None:
        """The hook's verdict, None for no opinion (204); :class:`ServiceUnavailable` when
        every attempt (1 + retries, with a short back-off) failed."""
        body = json.dumps(
            {
                "id": comment.comment_id,
                "article_id": comment.article_id,
                "name": comment.name,
                "comment": comment.text,
                "website": comment.website,
            },
            separators=(",", ":"),
        ).encode()
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(0.2 * 2**attempt, 2.0))
            try:
                return self._once(body)
            except ServiceUnavailable as error:
                last = str(error)
        raise ServiceUnavailable(last)

    def _once(self, body: bytes) -> HookVerdict | None:
        request = urllib.request.Request(self.url, data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        if self.secret:
            request.add_header("X-Comments-Signature", sign(self.secret, int(time.time()), body))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                if answer.status == 204:
                    return None
                document = json.loads(answer.read(65536) or b"{}")
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as error:
            raise ServiceUnavailable(type(error).__name__) from None
        action = document.get("action") if isinstance(document, dict) else None
        if action not in HOOK_ACTIONS:
            raise ServiceUnavailable(f"the hook answered no action: {str(action)[:40]!r}")
        reasons = document.get("reasons") or []
        return HookVerdict(
            action=str(action),
            reasons=tuple(str(r)[:200] for r in reasons if isinstance(r, str | int))[:20]
            if isinstance(reasons, list)
            else (),
        )
