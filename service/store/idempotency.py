"""Idempotency-Key records: a client's key, the fingerprint of what it sent with it, and
(once answered) the answer, for 24 hours. See service/idempotency.py for the protocol."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ._core import StoreCore
from .records import compact

IN_FLIGHT = "in_flight"
DONE = "done"


@dataclass(frozen=True)
class KeyRecord:
    fingerprint: str
    state: str  # IN_FLIGHT or DONE
    status: int = 0
    body: str = ""  # the answer's body, decrypted
    location: str = ""


class IdempotencyRecords(StoreCore):
    def begin_idempotent(
        self, ip_hash: str, key_hash: str, fingerprint: str, lease_ms: int
    ) -> KeyRecord | None:
        """Take the key for a request being processed; None when taken, else the record
        already there (in flight, or answered)."""
        held = self._begin_idempotent(
            keys=[self.keys.idempotency(ip_hash, key_hash)],
            args=[compact({"fp": fingerprint, "state": IN_FLIGHT}), lease_ms],
        )
        if not held:
            return None
        doc = json.loads(held)
        body = doc.get("body") or ""
        return KeyRecord(
            fingerprint=str(doc["fp"]),
            state=str(doc["state"]),
            status=int(doc.get("status") or 0),
            body=self.cipher.decrypt(body, "idempotent-answer") if body else "",
            location=str(doc.get("location") or ""),
        )

    def finish_idempotent(
        self,
        ip_hash: str,
        key_hash: str,
        fingerprint: str,
        answer: tuple[int, str, str],
        keep_ms: int,
    ) -> None:
        """Keep the answer (status, body, Location) under the key. The body may carry the
        commenter's key and edit token: it is stored encrypted."""
        status, body, location = answer
        record = {
            "fp": fingerprint,
            "state": DONE,
            "status": status,
            "body": self.cipher.encrypt(body, "idempotent-answer"),
            "location": location,
        }
        # Confirmed by the replicas like the write it answers (durability.py).
        key = self.keys.idempotency(ip_hash, key_hash)
        (reply,) = self.replica_wait.batch(
            [("SET", key, compact(record), "PX", keep_ms)], [], what="idempotent answer"
        )
        if isinstance(reply, Exception):
            raise reply

    def abandon_idempotent(self, ip_hash: str, key_hash: str) -> None:
        """The request was refused: forget the key, so that a retry is processed afresh."""
        self.redis.delete(self.keys.idempotency(ip_hash, key_hash))
