"""``comments-service spamcheck``: the background worker of the outside spam services.

It reads the spam checker's stream (store/spamchecks.py): a ``check`` entry for every stored
comment, a ``spam``/``ham`` entry for every moderator decision to report back. A comment is
checked with the Akismet-protocol service, then the moderation hook (service/spam_services.py);
their verdicts change the comment only through the store's transition, on the version read (a
moderator's decision meanwhile wins). Each check, verdict, failure and its latency is logged
(``spamcheck ...`` lines, no personal data). Entries are acknowledged once handled; those of a
worker that died are taken over after a minute.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

from .clock import iso_from_ms, now_ms
from .config import Config
from .crypto import Cipher
from .documents import render_public
from .models import HistoryEntry, StoredComment
from .spam_services import (
    AkismetClient,
    CheckedComment,
    HookVerdict,
    ModerationHook,
    ServiceUnavailable,
)
from .states import Status
from .store import CommentStore, ContentChanged, VersionMismatch

log = logging.getLogger("service.spamcheck")
IP_PURPOSE = "spamcheck-ip"
ATTEMPTS = 3


@dataclass(frozen=True)
class Move:
    target: Status
    actor: str
    reason: dict[str, str] | None


def check_entry(cipher: Cipher, comment: StoredComment, client_ip: str | None) -> dict[str, str]:
    """The queue entry of a stored comment's outside checks, which the insert script writes
    with the comment (the client IP, when it is to be sent, travels encrypted and is deleted
    with the entry)."""
    ip = cipher.encrypt(client_ip, IP_PURPOSE) if client_ip else ""
    return {"kind": "check", "id": comment.id, "article": comment.article_id, "ip": ip}


def enqueue_feedback(store: CommentStore, comment: StoredComment, kind: str) -> None:
    """Queue a moderator's verdict (``spam`` or ``ham``) to report back."""
    store.enqueue_spam_work(
        comment.article_id, {"kind": kind, "id": comment.id, "article": comment.article_id}
    )


class SpamWorker:
    def __init__(self, store: CommentStore, config: Config) -> None:
        self.store = store
        self.config = config
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.akismet = (
            AkismetClient(
                config.spam_check_url,
                config.spam_check_key,
                config.spam_check_site or next(iter(config.allowed_origins), ""),
                config.spam_check_send,
            )
            if config.spam_check_key
            else None
        )
        self.hook = (
            ModerationHook(
                config.moderation_hook_url,
                config.moderation_hook_secret,
                config.moderation_hook_timeout,
                config.moderation_hook_retries,
            )
            if config.moderation_hook_url
            else None
        )

    def run(self, stop: threading.Event, *, block_ms: int = 2000) -> None:
        while not stop.is_set():
            self.run_once(block_ms=block_ms)

    def run_once(self, *, block_ms: int = 0, idle_ms: int = 60_000) -> int:
        """Handle what is waiting (or arrives within ``block_ms``); how many entries."""
        work = self.store.spam_work(self.consumer, 20, block_ms, idle_ms)
        for stream, entry_id, fields in work:
            try:
                self.handle(fields)
            except Exception:  # one bad entry must not stop the worker
                log.exception("spamcheck entry %s failed", entry_id)
            self.store.spam_work_done(stream, entry_id)
        return len(work)

    def handle(self, fields: dict[str, str]) -> None:
        comment = self.store.get(fields.get("id", ""))
        if comment is None:
            return
        kind = fields.get("kind")
        if kind in ("spam", "ham"):
            self._report_back(kind, comment)
            return
        ip = fields.get("ip") or ""
        checked = _checked(comment, self.store.cipher.decrypt(ip, IP_PURPOSE) if ip else "")
        if self.akismet is not None and self._akismet(comment.id, checked):
            return
        if self.hook is not None:
            self._hook(comment.id, checked)

    def _akismet(self, comment_id: str, checked: CheckedComment) -> bool:
        """Check with the Akismet-protocol service; True when it moved or dropped the comment."""
        assert self.akismet is not None
        started = time.monotonic()
        verdict = None
        for attempt in range(ATTEMPTS):
            try:
                verdict = self.akismet.comment_check(checked)
                break
            except ServiceUnavailable as error:
                log.warning(
                    "spamcheck id=%s service=akismet failure=%s try=%d",
                    comment_id,
                    error,
                    attempt + 1,
                )
                time.sleep(0.2 * (attempt + 1))
        elapsed = round((time.monotonic() - started) * 1000)
        if verdict is None:  # fail open: the policy's verdict stands
            log.warning(
                "spamcheck id=%s service=akismet verdict=unavailable ms=%d", comment_id, elapsed
            )
            return False
        log.info(
            "spamcheck id=%s service=akismet verdict=%s discard=%s ms=%d",
            comment_id,
            "spam" if verdict.spam else "ham",
            verdict.discard,
            elapsed,
        )
        if not verdict.spam:
            return False
        if verdict.discard and self.config.spam_check_discard:
            comment = self.store.get(comment_id)
            if comment is not None:
                self.store.delete(comment)
            return True
        reason = {"code": "spam_service", "detail": "the spam service says spam", "action": "spam"}
        return self._move(
            comment_id,
            {
                Status.PENDING: Move(Status.SPAM, "spam_service", reason),
                Status.APPROVED: Move(Status.PENDING, "spam_service", reason),
            },
        )

    def _hook(self, comment_id: str, checked: CheckedComment) -> None:
        assert self.hook is not None
        started = time.monotonic()
        try:
            verdict: HookVerdict | None = self.hook.ask(checked)
        except ServiceUnavailable as error:
            elapsed = round((time.monotonic() - started) * 1000)
            log.warning(
                "spamcheck id=%s service=hook verdict=unavailable failure=%s fail=%s ms=%d",
                comment_id,
                error,
                self.config.moderation_hook_fail,
                elapsed,
            )
            if self.config.moderation_hook_fail == "closed":
                reason = {
                    "code": "moderation_hook",
                    "detail": "the moderation hook did not answer (fail-closed)",
                    "action": "hold",
                }
                self._move(comment_id, {Status.APPROVED: Move(Status.PENDING, "hook", reason)})
            return
        elapsed = round((time.monotonic() - started) * 1000)
        log.info(
            "spamcheck id=%s service=hook verdict=%s ms=%d",
            comment_id,
            verdict.action if verdict else "none",
            elapsed,
        )
        if verdict is None:
            return
        detail = "; ".join(verdict.reasons) or f"the moderation hook says {verdict.action}"
        if verdict.action == "approve":
            self._move(comment_id, {Status.PENDING: Move(Status.APPROVED, "hook", None)})
            return
        action = "hold" if verdict.action == "hold" else "spam"
        reason = {"code": "moderation_hook", "detail": detail, "action": action}
        target = Status.PENDING if action == "hold" else Status.SPAM
        moves = {Status.APPROVED: Move(target, "hook", reason)}
        if target is Status.SPAM:
            moves[Status.PENDING] = Move(Status.SPAM, "hook", reason)
        self._move(comment_id, moves)

    def _move(self, comment_id: str, moves: dict[Status, Move]) -> bool:
        """Apply the move for the comment's current status, on the version read; True when
        it changed the comment."""
        for _ in range(ATTEMPTS):
            comment = self.store.get(comment_id)
            move = moves.get(Status(comment.status)) if comment is not None else None
            if comment is None or move is None:
                return False
            moment = now_ms()
            entry = HistoryEntry(
                at=iso_from_ms(moment), actor=move.actor, to=move.target, note="outside check"
            )
            try:
                self.store.transition(
                    comment,
                    move.target,
                    entry,
                    render_public(comment.public()),
                    now_ms=moment,
                    accepted_versions=(comment.version,),
                    add_reason=move.reason,
                )
            except (VersionMismatch, ContentChanged):
                continue
            return True
        return False

    def _report_back(self, kind: str, comment: StoredComment) -> None:
        if self.akismet is None:
            return
        started = time.monotonic()
        try:
            self.akismet.submit(kind, _checked(comment, ""))
        except ServiceUnavailable as error:
            log.warning(
                "spamcheck id=%s service=akismet submit=%s failure=%s", comment.id, kind, error
            )
            return
        log.info(
            "spamcheck id=%s service=akismet submit=%s ms=%d",
            comment.id,
            kind,
            round((time.monotonic() - started) * 1000),
        )


def _checked(comment: StoredComment, client_ip: str) -> CheckedComment:
    return CheckedComment(
        comment_id=comment.id,
        article_id=comment.article_id,
        name=comment.name,
        email=comment.email,
        website=comment.website,
        text=comment.comment,
        client_ip=client_ip,
    )
