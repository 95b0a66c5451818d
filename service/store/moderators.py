"""Moderator tokens (stored as SHA-256 hashes) and failed logins per client."""

from __future__ import annotations

from ..clock import now_ms
from ._core import StoreCore


class Moderators(StoreCore):
    def moderator_token_hashes(self, ip_hash: str) -> tuple[dict[str, str], int]:
        """Stored token hashes by moderator, and the client's recent failed logins."""
        moderators, failures_key = self.keys.moderators(), self.keys.auth_failures(ip_hash)
        name = ("auth", ip_hash)
        cached: tuple[dict[str, str], int] | None = self.cache.get(name) if self.cache else None
        if cached is not None:
            return cached
        epoch = self.cache.begin() if self.cache else None
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(moderators)
        pipe.get(failures_key)
        hashes, failures = pipe.execute()
        found = (dict(hashes), int(failures or 0))
        if self.cache:
            self.cache.put(name, found, (moderators, failures_key), epoch)
        return found

    def cached_token_hashes(self, ip_hash: str) -> tuple[dict[str, str], int] | None:
        """What :meth:`moderator_token_hashes` answers, from this worker's memory only (as
        fresh as Redis: one freshness check); None when it is not there. Counts nothing (a
        replayed answer counts its hits once it is given, service/replayed_reads.py)."""
        if self.cache is None:
            return None
        found: tuple[dict[str, str], int] | None = self.cache.get(("auth", ip_hash), count=False)
        return found

    def record_auth_failure(self, ip_hash: str, window_seconds: int) -> tuple[int, int]:
        """Count a failed login; the new count and seconds until the count resets."""
        key = self.keys.auth_failures(ip_hash)
        pipe = self.redis.pipeline(transaction=True)
        # SET NX starts the window on the first failure; INCR keeps its TTL. (EXPIRE NX would
        # say the same, but Redis 6.2 lacks it.)
        pipe.set(key, 0, ex=window_seconds, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = pipe.execute()
        self._changed(key)
        return int(count), max(int(ttl), 1)

    def auth_failure_ttl(self, ip_hash: str) -> int:
        return max(int(self.redis.ttl(self.keys.auth_failures(ip_hash))), 1)

    def save_moderator_token_hash(self, name: str, token_hash: str, actor: str = "cli") -> None:
        self._save_moderator(
            keys=[self.keys.moderators(), self.keys.events(None)],
            args=[*self._event_args(actor, now_ms(), per_bucket=False), name, token_hash],
        )
        self._changed(self.keys.moderators())

    def revoke_moderator(self, name: str, actor: str = "cli") -> bool:
        revoked = bool(
            self._save_moderator(
                keys=[self.keys.moderators(), self.keys.events(None)],
                args=[*self._event_args(actor, now_ms(), per_bucket=False), name, ""],
            )
        )
        self._changed(self.keys.moderators())
        return revoked

    def moderator_names(self) -> list[str]:
        return sorted(str(n) for n in self.redis.hkeys(self.keys.moderators()))
