"""Moderator notifications: a mail when a comment is held, at once or as a digest, to a real
SMTP server (aiosmtpd) over plain SMTP, STARTTLS and TLS; never the author's email unless
the operator turns that on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis

from devtools.processes import wait_until
from service.config import Config
from service.crypto import Cipher
from service.delivery.notify import Mailer, Notifier, SmtpTarget
from service.store import CommentStore, Keys
from service.store.webhooks import NOTIFY_GROUP
from tests.conftest import AUTH, RELAXED_POLICY, approve, submit
from tests.smtp_server import SmtpServer, body_of, smtp_server

pytestmark = pytest.mark.slow
MODERATORS = ("mod@newsroom.example", "desk@newsroom.example")


@pytest.fixture
def notifiers(redis_client: Redis) -> Iterator[Any]:
    started: list[tuple[Notifier, threading.Thread]] = []

    def start(config: Config, server: SmtpServer, mode: str = "plain") -> Notifier:
        assert config.encryption_keys is not None
        store = CommentStore(redis_client, Keys(), Cipher(config.encryption_keys))
        scheme = {"plain": "smtp", "starttls": "smtp+starttls", "tls": "smtps"}[mode]
        configured = replace(
            config,
            smtp_url=f"{scheme}://127.0.0.1:{server.port}",
            notify_emails=MODERATORS,
            console_url="https://comments.example.org/console",
        )
        mailer = Mailer(
            SmtpTarget.parse(str(configured.smtp_url)),
            "comments@newsroom.example",
            server.client_context,
        )
        notifier = Notifier(store, configured, name="test", stop=threading.Event(), mailer=mailer)
        thread = threading.Thread(target=notifier.run, daemon=True)
        thread.start()
        stream = Keys().events(None)
        assert wait_until(
            lambda: (
                bool(redis_client.exists(stream))
                and any(g["name"] == NOTIFY_GROUP for g in redis_client.xinfo_groups(stream))
            ),
            5,
        )
        started.append((notifier, thread))
        return notifier

    yield start
    for notifier, thread in started:
        notifier.stop.set()
        thread.join(timeout=5)


@pytest.mark.parametrize("mode", ["plain", "starttls", "tls"])
def test_a_held_comment_mails_the_moderators(
    client: FlaskClient, config: Config, notifiers: Any, tmp_path: Path, mode: str
) -> None:
    with smtp_server(tmp_path, mode) as server:
        notifiers(config, server, mode)
        held = submit(client, article="budget-2027", name="Dana", email="dana@example.net")
        assert held.status_code == 202
        assert wait_until(lambda: bool(server.mailbox.messages), 10)
        time.sleep(0.3)
    assert len(server.mailbox.messages) == 1
    message = server.mailbox.messages[0]
    body = body_of(message)
    assert "budget-2027" in message["Subject"] and "Dana" in message["Subject"]
    assert server.mailbox.recipients[0] == list(MODERATORS)
    assert "Article: budget-2027" in body and "Author: Dana" in body
    assert "first_comment" in body  # the reason a newcomer's comment waits
    comment_id = held.get_json()["id"]
    assert f"https://comments.example.org/console#comment={comment_id}" in body
    assert "dana@example.net" not in body + str(message)


def test_the_authors_email_only_when_the_operator_turns_it_on(
    client: FlaskClient, config: Config, notifiers: Any, tmp_path: Path
) -> None:
    with smtp_server(tmp_path) as server:
        notifiers(replace(config, notify_include_author_email=True), server)
        submit(client, email="eve@example.net")
        assert wait_until(lambda: bool(server.mailbox.messages), 10)
    assert "eve@example.net" in body_of(server.mailbox.messages[0])


def test_approved_comments_and_decisions_send_nothing(
    client: FlaskClient, config: Config, notifiers: Any, tmp_path: Path
) -> None:
    with smtp_server(tmp_path) as server:
        notifiers(config, server)
        client.put(
            "/api/v1/moderation/policy",
            json={**RELAXED_POLICY, "auto_approve": "all"},
            headers=AUTH,
        )
        comment = submit(client).get_json()["id"]
        approve(client, comment)
        held = submit(client, comment="https://a.example https://b.example", email="x@example.com")
        assert held.status_code == 202
        assert wait_until(lambda: bool(server.mailbox.messages), 10)
        time.sleep(0.3)
    assert len(server.mailbox.messages) == 1 and "links" in body_of(server.mailbox.messages[0])


def test_a_digest_gathers_the_held_comments(
    client: FlaskClient, config: Config, notifiers: Any, tmp_path: Path, redis_client: Redis
) -> None:
    with smtp_server(tmp_path) as server:
        notifier = notifiers(replace(config, notify_digest_minutes=5), server)
        for i in range(3):
            submit(client, name=f"Writer {i}", email=f"w{i}@example.com", comment=f"text {i}")
        digest = Keys().notify_digest()
        assert wait_until(lambda: redis_client.llen(digest) == 3, 10)
        assert not server.mailbox.messages  # nothing before the digest is due
        notifier.last_digest -= 5 * 60  # five minutes later
        assert wait_until(lambda: bool(server.mailbox.messages), 10)
    message = server.mailbox.messages[0]
    assert message["Subject"] == "3 comments held for moderation"
    body = body_of(message)
    assert all(f"Writer {i}" in body for i in range(3))
    # The notifier trims the list after the mail is accepted, so the mailbox can be first.
    assert wait_until(lambda: redis_client.llen(digest) == 0, 10)
    # The digest list keeps entries, never text or addresses.
    assert not redis_client.exists(digest)


def test_mail_that_fails_is_sent_later(
    client: FlaskClient, config: Config, notifiers: Any, tmp_path: Path
) -> None:
    with smtp_server(tmp_path) as server:
        notifier = notifiers(config, server)
    # The server is gone: the held comment's event stays pending.
    submit(client, name="Later")
    time.sleep(1.0)
    with smtp_server(tmp_path) as again:
        notifier.config = replace(notifier.config, smtp_url=f"smtp://127.0.0.1:{again.port}")
        assert notifier.mailer is not None
        notifier.mailer.target = SmtpTarget.parse(f"smtp://127.0.0.1:{again.port}")
        assert wait_until(lambda: bool(again.mailbox.messages), 15)
    assert "Later" in str(again.mailbox.messages[0]["Subject"])
