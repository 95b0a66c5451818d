"""``comments-service``: maintenance commands for moderators' tokens, keys and retention, and
imports, exports, backups and restores (service/importers).

Settings come from the environment as for the service; with `make run`'s defaults (no
REDIS_URL, no keys) the commands find the running embedded Redis and the keys under DATA_DIR.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .api.auth import token_hash
from .bootstrap import KEYS_FILE, fill_defaults
from .chores import purge_expired, sweep_owed
from .config import MIN_TOKEN_LENGTH, Config, ConfigError, environment
from .crypto import Cipher, KeyRing
from .hashing import Hasher
from .importers import commands as importers
from .importers.commands import SOURCES
from .importers.run import ARTICLE_RULES, ArticleRule
from .importers.source import FormatError
from .logs import install_redaction
from .spam_worker import SpamWorker
from .store import CommentStore, Keys, StoreCheck, make_redis
from .store.client import ReplicasBehind
from .store.layout import LayoutError


def load_config(configured: Config) -> Config:
    """``configured`` (from the environment alone) completed with what DATA_DIR keeps."""
    env = environment()
    fill_defaults(configured, env, create=False)
    return Config.from_env(env)


def open_store(config: Config) -> CommentStore:
    if config.redis_url is None:
        raise ConfigError("no REDIS_URL, and no embedded Redis is running under DATA_DIR")
    if config.encryption_keys is None:
        raise ConfigError("no ENCRYPTION_KEYS, and none kept under DATA_DIR")
    redis = make_redis(
        config.redis_url,
        timeout=config.redis_timeout,
        sentinel_password=config.sentinel_password,
    )
    return CommentStore(
        redis,
        Keys(config.key_prefix),
        Cipher(config.encryption_keys),
        event_retention=config.event_retention,
        wait_replicas=config.redis_wait_replicas,
        wait_timeout_ms=config.redis_wait_timeout_ms,
    )


def tokens_create(store: CommentStore, name: str) -> int:
    token = secrets.token_urlsafe(32)
    assert len(token) >= MIN_TOKEN_LENGTH
    store.save_moderator_token_hash(name, token_hash(token))
    print(f"moderator {name!r}: {token}")
    print("The token is shown once and stored only as a hash; creating it again replaces it.")
    return 0


def tokens_list(store: CommentStore) -> int:
    for name in store.moderator_names():
        print(name)
    return 0


def tokens_revoke(store: CommentStore, name: str) -> int:
    if store.revoke_moderator(name):
        print(f"revoked {name!r}")
        return 0
    print(
        f"no token named {name!r} (MODERATOR_TOKENS entries are revoked by editing it)",
        file=sys.stderr,
    )
    return 1


def keys_rotate(config: Config, *, keys_configured: bool) -> int:
    """Put a new key in front of the file-kept key ring (for `make run`'s defaults).

    ``keys_configured``: ENCRYPTION_KEYS is set, so the key ring is not the file's to change.
    """
    if keys_configured:
        print(
            "ENCRYPTION_KEYS is set: put this new key first in it, restart, then run "
            "`comments-service reencrypt`:"
        )
        print(KeyRing.generate_entry())
        return 0
    path = config.data_dir / KEYS_FILE
    current = path.read_text().strip() if path.exists() else ""
    path.write_text(",".join(e for e in (KeyRing.generate_entry(), current) if e) + "\n")
    path.chmod(0o600)
    print(
        f"new key added in front of {path}; restart the service, then run "
        "`comments-service reencrypt`"
    )
    return 0


def reencrypt(store: CommentStore) -> int:
    rewritten = skipped = 0
    for comment_id in store.all_comment_ids():
        stored = store.raw_email(comment_id)
        if not stored or not store.cipher.needs_rotation(stored):
            continue
        email = store.cipher.decrypt(stored, "email")
        if store.rewrite_email(comment_id, stored, store.cipher.encrypt(email, "email")):
            rewritten += 1
        else:
            skipped += 1  # changed or deleted meanwhile
    print(
        f"re-encrypted {rewritten} emails with key {store.cipher.ring.active_id!r}"
        + (f"; {skipped} changed meanwhile, run again" if skipped else "")
    )
    return 0


def migrate_layout(store: CommentStore) -> int:
    """Rename the keys to the current layout, saying how far it got; exit 1 when a key could
    not be moved (its new name exists: the report names it), so that a script notices."""
    said = [0]

    def progress(moved: int) -> None:  # a line per 10,000 keys, not per batch
        if moved - said[0] >= 10_000:
            print(f"{moved} keys renamed so far")
            said[0] = moved

    report = store.migrate_layout(progress=progress)
    print(report.summary())
    return 1 if report.conflicts else 0


def check(store: CommentStore) -> int:
    """One line per inconsistency of the store's keys as it is found, then the counts by
    status; exit 1 if there was any problem."""
    run = StoreCheck(store.redis, store.keys)
    problems = 0
    for problem in run.problems():
        print(problem)
        problems += 1
    print(run.summary(problems))
    return 1 if problems else 0


def sweep(store: CommentStore) -> int:
    """Run the steps split changes still owe (store/sweep.py) once; exit 1 when another process
    holds the sweep's lease."""
    report = sweep_owed(store)
    if report is None:
        print("comments-service: another process is sweeping now; run it again later")
        return 1
    print(
        f"swept: {report.completed} changes completed, {report.dropped} stale entries dropped"
        + (f", {report.unknown} entries of unknown kinds left" if report.unknown else "")
    )
    return 0


def deliver(store: CommentStore, config: Config) -> int:
    """The delivery worker (and the moderators' notifier, when SMTP is configured) until
    SIGTERM or SIGINT."""
    from .delivery.notify import Notifier
    from .delivery.worker import DeliveryWorker

    worker = DeliveryWorker(store, config)
    notifier = Notifier(store, config, name=worker.name, stop=worker.stop)

    def stop(_signum: int, _frame: object) -> None:
        worker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threads = []
    if notifier.configured:
        threads.append(threading.Thread(target=notifier.run, name="notify", daemon=True))
    for thread in threads:
        thread.start()
    worker.run()
    for thread in threads:
        thread.join(timeout=5)
    return 0


def spamcheck(store: CommentStore, config: Config) -> int:
    """Run the spam services' worker until SIGTERM or SIGINT (service/spam_worker.py)."""
    if not config.spam_services_enabled:
        print("comments-service: neither SPAM_CHECK_KEY nor MODERATION_HOOK_URL is set")
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print("spamcheck worker running", flush=True)
    SpamWorker(store, config).run(stop)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="comments-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    tokens = commands.add_parser("tokens", help="moderator tokens").add_subparsers(
        dest="action", required=True
    )
    tokens.add_parser("create", help="create (or replace) a named token").add_argument("name")
    tokens.add_parser("list", help="list named tokens")
    tokens.add_parser("revoke", help="revoke a named token").add_argument("name")
    keys = commands.add_parser("keys", help="email encryption keys").add_subparsers(
        dest="action", required=True
    )
    keys.add_parser("rotate", help="add a new encryption key in front")
    commands.add_parser("reencrypt", help="re-encrypt every stored email with the first key")
    commands.add_parser("purge", help="purge rejected and spam comments past retention now")
    commands.add_parser(
        "deliver",
        help="deliver the event log to webhook endpoints and mail moderators (until stopped)",
    )
    commands.add_parser(
        "spamcheck",
        help="run the outside spam services' worker (SPAM_CHECK_KEY, MODERATION_HOOK_URL)",
    )
    commands.add_parser(
        "check",
        help="check that every comment is in exactly the keys its "
        "status implies and that no key is an orphan",
    )
    commands.add_parser(
        "sweep",
        help="complete the steps that split changes (on a cluster) left owed when a process "
        "died between them",
    )
    commands.add_parser(
        "migrate-layout",
        help="rename the store's keys to this version's layout (idempotent, resumable; "
        "run it with the service stopped)",
    )
    add_import_commands(commands)
    args = parser.parse_args(argv)

    try:
        configured = Config.from_env()
        config = load_config(configured)
        # The CLI is a process of its own: what redis-py or the store log here is redacted too.
        install_redaction(config.log_level, config.log_format)
        if args.command == "keys":
            return keys_rotate(config, keys_configured=configured.encryption_keys is not None)
        store = open_store(config)
        if args.command == "migrate-layout":
            return migrate_layout(store)
        if args.command in ("deliver", "spamcheck"):
            # Workers that wait out a store that is down (as the web workers do) check when
            # it answers; the launcher checked before starting them.
            store.check_layout_if_reachable()
        else:
            store.require_current_layout()
        if args.command == "tokens":
            if args.action == "create":
                return tokens_create(store, args.name)
            if args.action == "list":
                return tokens_list(store)
            return tokens_revoke(store, args.name)
        if args.command == "reencrypt":
            return reencrypt(store)
        if args.command == "check":
            return check(store)
        if args.command == "sweep":
            return sweep(store)
        if args.command in ("import", "export", "backup", "restore"):
            return import_command(args, store, config)
        if args.command == "deliver":
            return deliver(store, config)
        if args.command == "spamcheck":
            return spamcheck(store, config)
        purged = purge_expired(store, config.retention_days)
        print(
            f"purged {purged} comments rejected or marked spam over "
            f"{config.retention_days} days ago"
        )
        return 0
    except (ConfigError, FormatError, LayoutError, ValueError, OSError) as error:
        print(f"comments-service: {error}", file=sys.stderr)
        return 2
    except ReplicasBehind as error:
        # Written on the primary, not confirmed by a replica in time: it may not survive a
        # failover. Running the command again is safe (imports skip what is stored).
        print(f"comments-service: store unavailable: {error}; run it again", file=sys.stderr)
        return 3


def add_import_commands(commands: Any) -> None:
    source = commands.add_parser(
        "import",
        help="import comments: a WordPress export (WXR), a Disqus export, an Isso database "
        "or our own export (JSONL)",
    )
    source.add_argument("source", choices=SOURCES)
    source.add_argument("file", type=Path)
    source.add_argument(
        "--article-id",
        choices=ARTICLE_RULES,
        default="slug",
        help="what a post or thread's article id is: the last segment of its URL's path "
        "(default), its post id or its thread id",
    )
    source.add_argument(
        "--article-map",
        type=Path,
        help="a CSV of `source,article_id` rows (source: a thread's URL, post id or thread id)",
    )
    source.add_argument("--dry-run", action="store_true", help="report, store nothing")
    source.add_argument(
        "--rejudge",
        action="store_true",
        help="run the policy again instead of keeping the source's decisions",
    )
    source.add_argument(
        "--include-pingbacks",
        action="store_true",
        help="import WordPress pingbacks and trackbacks too",
    )
    commands.add_parser("export", help="export every comment, article and the policy").add_argument(
        "file", type=Path
    )
    commands.add_parser("backup", help="back up the whole store into DIR").add_argument(
        "dir", type=Path
    )
    commands.add_parser("restore", help="restore a backup into an empty store").add_argument(
        "dir", type=Path
    )


def import_command(args: argparse.Namespace, store: CommentStore, config: Config) -> int:
    if config.secret_key is None:
        raise ConfigError("no SECRET_KEY, and none kept under DATA_DIR")
    hasher = Hasher(config.secret_key)
    if args.command == "export":
        return importers.export(store, args.file)
    if args.command == "backup":
        return importers.backup(store, args.dir)
    if args.command == "restore":
        return importers.restore(store, hasher, args.dir)
    rule = (
        ArticleRule.from_map(args.article_map) if args.article_map else ArticleRule(args.article_id)
    )
    report = importers.run_import(
        store,
        hasher,
        args.source,
        args.file,
        rule=rule,
        dry_run=args.dry_run,
        rejudge=args.rejudge,
        include_pingbacks=args.include_pingbacks,
    )
    for line in report.lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
