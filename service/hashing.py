"""Keyed hashes (HMAC-SHA256) of personal identifiers, for lookups that must not store them.

Keyed, so that the hash of a known address cannot be computed by anyone without the secret; and
never shown to anyone: not even moderators need them.
"""

from __future__ import annotations

import hmac


class Hasher:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the hashing secret must be at least 16 bytes")
        self._secret = secret

    def _digest(self, purpose: str, value: str) -> str:
        message = f"{purpose}\x00{value}".encode()
        # hmac.digest: OpenSSL's one-shot HMAC, the same digest without a Python HMAC object
        # (an import hashes every comment's source id).
        return hmac.digest(self._secret, message, "sha256")[:16].hex()

    def email(self, email: str) -> str:
        # The same mailbox whatever the case the commenter typed it in.
        return self._digest("email", email.casefold())

    def ip(self, client_ip: str) -> str:
        return self._digest("ip", client_ip)

    def duplicate(self, email: str, article_id: str, fingerprint: str) -> str:
        return self._digest("dup", f"{email.casefold()}\x00{article_id}\x00{fingerprint}")

    def email_term(self, email: str) -> str:
        """An email as a policy list term stores it: apart from ``email`` (a list term must
        not be a key to the author's records)."""
        return self._digest("term-email", email.casefold())

    def ip_term(self, client_ip: str) -> str:
        return self._digest("term-ip", client_ip)

    def commenter_secret(self, secret: str) -> str:
        """A commenter key's secret as its record keeps it (service/commenter_keys.py)."""
        return self._digest("commenter-key", secret)

    def import_seed(self, source: str) -> str:
        """The random part of an imported comment's id (service/ids.py id_at), fixed by its
        source id and unguessable without the secret."""
        return self._digest("import", source)

    def idempotency_key(self, key: str) -> str:
        """A client's Idempotency-Key as its record's name holds it (service/idempotency.py)."""
        return self._digest("idempotency-key", key)

    def request_fingerprint(self, canonical: str) -> str:
        """What an idempotent request sent (its validated fields, emails included): keyed, so
        the stored fingerprint is no key to anyone's address."""
        return self._digest("idempotency-request", canonical)

    def edit_token(self, token: str) -> str:
        """An author's edit token as the comment's record keeps it (service/edits.py)."""
        return self._digest("edit-token", token)
