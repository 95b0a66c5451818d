"""Mail to moderators when a comment is held for moderation: at once, or as a digest every
``NOTIFY_DIGEST_MINUTES``.

The notifier reads the event log through a consumer group of its own (``notify``), one
notifier at a time under a lease, like a webhook endpoint: a mail that could not be sent
leaves its event pending (sent on a later try; a crash means at least once). A digest's
waiting comments are a Redis list of their events' entries (no text, never an address).

The mail names the article, the author's name, the reasons and a link to the console; the
author's email only with ``NOTIFY_INCLUDE_AUTHOR_EMAIL=true`` (read then from the comment,
decrypted, and never stored for the digest). ``SMTP_URL``: ``smtp://host:port`` (plain, for a
local relay), ``smtp+starttls://user:password@host:587`` (STARTTLS required) or
``smtps://user:password@host:465`` (TLS from the start).
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.exceptions import RedisError

from ..config import Config, ConfigError
from ..events import COMMENT_SUBMITTED, render_event
from ..store import CommentStore
from ..store.webhooks import NOTIFY_GROUP
from . import observe

log = logging.getLogger(__name__)
SMTP_TIMEOUT_SECONDS = 10.0
RETRY_SECONDS = 5.0
LEASE = "notify"


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    mode: str  # "plain", "starttls", "tls"
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        modes = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}
        if parts.scheme not in modes or not parts.hostname:
            raise ConfigError("SMTP_URL must be smtp://, smtp+starttls:// or smtps://host[:port]")
        default_port = {"plain": 25, "starttls": 587, "tls": 465}[modes[parts.scheme]]
        return cls(
            host=parts.hostname,
            port=parts.port or default_port,
            mode=modes[parts.scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class Mailer:
    def __init__(self, target: SmtpTarget, sender: str, context: ssl.SSLContext | None = None):
        self.target = target
        self.sender = sender
        self.context = context or ssl.create_default_context()

    def send(self, recipients: tuple[str, ...], subject: str, text: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
        message.set_content(text)
        t = self.target
        client: smtplib.SMTP
        if t.mode == "tls":
            client = smtplib.SMTP_SSL(
                t.host, t.port, timeout=SMTP_TIMEOUT_SECONDS, context=self.context
            )
        else:
            client = smtplib.SMTP(t.host, t.port, timeout=SMTP_TIMEOUT_SECONDS)
        try:
            if t.mode == "starttls":
                client.starttls(context=self.context)
            if t.username:
                client.login(t.username, t.password or "")
            client.send_message(message)
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()


def is_held(event: dict[str, Any]) -> bool:
    comment = event.get("comment") or {}
    return event["type"] == COMMENT_SUBMITTED and comment.get("status") == "pending"


class Notifier:
    def __init__(
        self,
        store: CommentStore,
        config: Config,
        *,
        name: str,
        stop: threading.Event,
        mailer: Mailer | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.name = name
        self.stop = stop
        self.configured = bool(config.smtp_url and config.notify_emails)
        self.mailer = mailer
        if self.mailer is None and config.smtp_url:
            self.mailer = Mailer(SmtpTarget.parse(config.smtp_url), config.smtp_from)
        self.lease_ms = 30_000
        self.last_digest = time.monotonic()

    def run(self) -> None:
        holding = False
        while not self.stop.is_set():
            try:
                if not self.store.hold_lease(LEASE, self.name, self.lease_ms):
                    holding = False
                    self.stop.wait(1.0)
                    continue
                if not holding:
                    holding = True
                    self.store.ensure_groups(NOTIFY_GROUP, "$")
                    self.store.claim_pending(NOTIFY_GROUP, self.name, 0)
                if not self.step():
                    self.stop.wait(RETRY_SECONDS)
            except RedisError as error:
                holding = False
                log.warning("notifications paused: Redis %s", type(error).__name__)
                self.stop.wait(1.0)

    def step(self) -> bool:
        """Handle what is pending, then what is new; False after a mail failed."""
        for pending in (True, False):
            entries = self.store.read_group(
                NOTIFY_GROUP,
                self.name,
                pending=pending,
                count=50,
                block_ms=None if pending else 500,
            )
            for event in self.store.with_texts(entries):
                document = render_event(event.event_id, event.fields, event.text)
                if is_held(document):
                    if self.config.notify_digest_minutes:
                        # The entry, not its text: an erasure meanwhile removes that too.
                        self.store.queue_for_digest(
                            json.dumps([event.stream, event.id, event.fields])
                        )
                    elif not self.mail([document]):
                        return False
                self.store.ack(event.stream, NOTIFY_GROUP, event.id)
        return self.maybe_digest()

    def maybe_digest(self) -> bool:
        minutes = self.config.notify_digest_minutes
        if not minutes or time.monotonic() - self.last_digest < minutes * 60:
            return True
        queued = [json.loads(r) for r in self.store.digest_waiting(200)]
        waiting = [
            render_event(e.event_id, e.fields, e.text)
            for e in self.store.with_texts([(s, i, f) for s, i, f in queued])
        ]
        if waiting and not self.mail(waiting):
            return False
        self.store.digest_sent(len(queued))
        self.last_digest = time.monotonic()
        return True

    def mail(self, held: list[dict[str, Any]]) -> bool:
        if self.mailer is None or not self.config.notify_emails:
            return True
        first = held[0]["comment"]
        if len(held) == 1:
            subject = f"Comment held on {first['article_id']} by {first.get('name') or 'someone'}"
        else:
            subject = f"{len(held)} comments held for moderation"
        blocks = [self.describe(event) for event in held]
        text = "\n\n".join(blocks) + f"\n\nModerate: {self.config.console_url}\n"
        try:
            self.mailer.send(self.config.notify_emails, subject, text)
        except (smtplib.SMTPException, OSError) as error:
            observe.smtp_send("error")
            log.warning("moderator mail not sent: %s", type(error).__name__)
            return False
        observe.smtp_send("sent")
        return True

    def describe(self, event: dict[str, Any]) -> str:
        comment = event["comment"]
        reasons = event.get("reasons") or []
        lines = [
            f"Article: {comment['article_id']}",
            f"Author: {comment.get('name') or '(erased)'}",
        ]
        if self.config.notify_include_author_email:
            stored = self.store.get(comment["id"])
            if stored is not None and stored.email:
                lines.append(f"Author's email: {stored.email}")
        lines.append(
            "Reasons: "
            + (
                "; ".join(f"{r.get('code')}: {r.get('detail')}" for r in reasons)
                or "held by the policy"
            )
        )
        lines.append(f"Comment: {comment.get('comment') or '(erased)'}")
        lines.append(f"Review: {self.config.console_url}#comment={comment['id']}")
        return "\n".join(lines)
