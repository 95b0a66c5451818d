"""Commenter keys: what makes a returning commenter "trusted", instead of their email.

Anyone who knows a trusted commenter's address could type it (issue 11): an email is no
credential. So trust belongs to a key the service hands out and only the commenter's browser
holds:

- Every accepted JSON answer (and a form's, when it has no ``redirect`` to follow) carries a
  ``commenter_key``, shown once. The widget keeps it (e.g. in ``localStorage``) and sends it
  back as the ``commenter_key`` field of the next submission.
- The key is ``<commenter id>.<secret>``: 24 hex digits naming a record, and 256 random bits.
  Redis keeps only keyed hashes: of the secret, and of the email the record is bound to
  (store/commenters.py, keys.py ``commenter:<id>``).
- A submission is trusted when its key is valid *for its email* and the record has an approval
  since ``trusted_days`` and no rejection or spam since (policy.is_trusted's rule). A decision
  on a comment stamps the record of the key that sent it: an approval earns the key trust, a
  rejection or spam verdict takes it away for ``trusted_days``.
- Every use rotates the key: the answer hands out a new secret for the same record, and the
  one it replaces keeps working for ``GRACE_MS`` (a lost answer, a second tab), then stops. A
  replaced secret presented after its grace means the key was copied: the record is revoked,
  for whoever holds it.
- A key that is not valid (unknown, expired, revoked, another email's) is ignored: the
  submission is judged as a newcomer's, and its answer hands out a new key.
- A record lives ``trusted_days`` after its last use or decision; an erasure of the email
  deletes every record bound to it (``revoke_commenters``).

An email alone therefore never earns auto-approval, and the 201 a key holder gets tells them
only their own key's standing.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from .hashing import Hasher
from .moderation.policy import DAY_MS, Policy
from .store import KeyExchange

GRACE_MS = 10 * 60 * 1000
_KEY = re.compile(r"\A([0-9a-f]{24})\.([A-Za-z0-9_-]{43})\Z")


@dataclass(frozen=True)
class CommenterKey:
    commenter_id: str
    secret: str

    @property
    def token(self) -> str:
        return f"{self.commenter_id}.{self.secret}"

    @classmethod
    def parse(cls, token: str | None) -> CommenterKey | None:
        """A key as the widget sent it; None for anything that is not one (ignored, like an
        unknown key: a stale or mangled key costs the commenter their trust, not a 422)."""
        match = _KEY.match(token or "")
        return cls(match[1], match[2]) if match else None

    @classmethod
    def new(cls) -> CommenterKey:
        return cls(secrets.token_hex(12), secrets.token_urlsafe(32))


@dataclass(frozen=True)
class PendingKey:
    """A submission's key exchange for the store, and the secret to hand out once it says
    which record the secret now belongs to."""

    exchange: KeyExchange
    fresh: CommenterKey | None

    def handed_out(self, rotated: bool) -> str | None:
        """The key the answer carries: the presented record's id with the new secret when the
        store rotated it, else the new record's."""
        if self.fresh is None:
            return None
        commenter_id = self.exchange.presented_id if rotated else self.fresh.commenter_id
        return CommenterKey(commenter_id, self.fresh.secret).token


def exchange(
    hasher: Hasher, presented: str | None, email_hash: str, policy: Policy, *, hand_out: bool = True
) -> PendingKey:
    """What the insert script needs to check ``presented`` and hand out its successor.
    Without ``hand_out`` (an answer that cannot carry a key: a redirect) nothing is issued
    and nothing presented is used, so no key is rotated out of its holder's reach."""
    if not hand_out:
        return PendingKey(KeyExchange.none(email_hash), None)
    key = CommenterKey.parse(presented)
    fresh = CommenterKey.new()
    return PendingKey(
        KeyExchange(
            email_hash=email_hash,
            presented_id=key.commenter_id if key else "",
            presented_secret=hasher.commenter_secret(key.secret) if key else "",
            fresh_id=fresh.commenter_id,
            fresh_secret=hasher.commenter_secret(fresh.secret),
            ttl_ms=policy.trusted_days * DAY_MS,
            grace_ms=GRACE_MS,
        ),
        fresh,
    )
