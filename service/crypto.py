"""Encryption of personal data at rest: AES-256-GCM from the ``cryptography`` package.

A key ring holds named keys; the first encrypts, all of them decrypt, so a key can be rotated
in without a flag day: add a new key in front, run ``comments-service reencrypt``, then drop the
old one. Each ciphertext names the key that made it:

    enc1:<key id>:<base64url(nonce || ciphertext+tag)>

The associated data binds a ciphertext to its purpose (``email``), so a value copied from one
field into another does not decrypt.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc1"
KEY_BYTES = 32
NONCE_BYTES = 12


class KeyRingError(ValueError):
    """Unusable key material: refused at start."""


class DecryptionError(ValueError):
    """A stored value does not decrypt with any key in the ring."""


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[tuple[str, bytes], ...]  # (key id, 32-byte key); the first one encrypts

    @classmethod
    def parse(cls, raw: str) -> KeyRing:
        """``id1:base64key,id2:base64key`` (urlsafe or standard base64 of 32 bytes)."""
        keys: list[tuple[str, bytes]] = []
        for entry in (part.strip() for part in raw.split(",")):
            if not entry:
                continue
            key_id, sep, encoded = entry.partition(":")
            if not sep or not key_id.isalnum() or len(key_id) > 32:
                raise KeyRingError("encryption keys must look like id:base64key (alphanumeric id)")
            try:
                key = base64.urlsafe_b64decode(
                    encoded.replace("+", "-").replace("/", "_") + "=" * (-len(encoded) % 4)
                )
            except ValueError:
                raise KeyRingError(f"encryption key {key_id!r} is not base64") from None
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"encryption key {key_id!r} must be {KEY_BYTES} bytes")
            if any(existing == key_id for existing, _ in keys):
                raise KeyRingError(f"encryption key id {key_id!r} is listed twice")
            keys.append((key_id, key))
        if not keys:
            raise KeyRingError("no encryption key given")
        return cls(tuple(keys))

    @staticmethod
    def generate_entry(key_id: str | None = None) -> str:
        key_id = key_id or "k" + secrets.token_hex(4)
        return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()}"

    def serialize(self) -> str:
        """The ``id:base64key,...`` form that ENCRYPTION_KEYS and ``parse`` take."""
        return ",".join(
            f"{key_id}:{base64.urlsafe_b64encode(key).decode()}" for key_id, key in self.keys
        )

    @property
    def active_id(self) -> str:
        return self.keys[0][0]


class Cipher:
    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._aead = {key_id: AESGCM(key) for key_id, key in ring.keys}
        self._active_id, _ = ring.keys[0]

    def encrypt(self, plaintext: str, purpose: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[self._active_id].encrypt(nonce, plaintext.encode(), purpose.encode())
        token = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{PREFIX}:{self._active_id}:{token}"

    def decrypt(self, stored: str, purpose: str) -> str:
        prefix, _, rest = stored.partition(":")
        key_id, _, token = rest.partition(":")
        aead = self._aead.get(key_id)
        if prefix != PREFIX or aead is None:
            raise DecryptionError(f"no key {key_id!r} in the ring for a stored value")
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        try:
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], purpose.encode()).decode()
        except InvalidTag:
            raise DecryptionError("a stored value failed authentication") from None

    def needs_rotation(self, stored: str) -> bool:
        return not stored.startswith(f"{PREFIX}:{self._active_id}:")
