"""The moderation policy and each article's settings (closed or open)."""

from __future__ import annotations

from dataclasses import dataclass

from ..clock import now_ms
from ._core import StoreCore


@dataclass(frozen=True)
class SubmissionSettings:
    """What a submission needs to know before the policy runs: the policy itself and whether
    the article takes comments."""

    policy_json: str | None
    closed: bool


class Settings(StoreCore):
    def submission_settings(self, article_id: str) -> SubmissionSettings:
        """The policy and the article's state: from the worker's cache (they change rarely,
        and Redis tells every worker when they do), else in one round trip."""
        k = self.keys
        name = ("settings", article_id)
        cached: SubmissionSettings | None = self.cache.get(name) if self.cache else None
        if cached is not None:
            return cached
        epoch = self.cache.begin() if self.cache else None
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(k.policy())
        pipe.hget(k.article_settings(article_id), "closed")
        policy_json, closed = pipe.execute()
        settings = SubmissionSettings(policy_json=policy_json, closed=closed == "1")
        if self.cache:
            self.cache.put(name, settings, (k.policy(), k.article_settings(article_id)), epoch)
        return settings

    def policy_json(self) -> str | None:
        value = self.redis.get(self.keys.policy())
        return None if value is None else str(value)

    def save_policy_json(self, document: str, actor: str = "operator") -> bool:
        """Store the policy; True (and a ``policy.changed`` event) if it changed."""
        k = self.keys
        return bool(
            self._save_policy(
                keys=[k.policy(), k.events(None)],
                args=[*self._event_args(actor, now_ms(), per_bucket=False), document],
            )
        )

    def set_article_open(self, article_id: str, is_open: bool, actor: str = "operator") -> bool:
        """Open or close an article; True (and its event) if that changed its state."""
        k = self.keys
        return bool(
            self._set_article_closed(
                keys=[k.article_settings(article_id), k.events(article_id)],
                args=[
                    *self._event_args(actor, now_ms(), per_bucket=True),
                    article_id,
                    "" if is_open else "1",
                ],
            )
        )
