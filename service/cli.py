"""``comments-service``: maintenance commands for moderators' tokens, keys and retention.

Settings come from the environment as for the service; with `make run`'s defaults (no
REDIS_URL, no keys) the commands find the running embedded Redis and the keys under DATA_DIR.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence

from .api.auth import token_hash
from .bootstrap import KEYS_FILE, fill_defaults
from .chores import purge_expired
from .config import MIN_TOKEN_LENGTH, Config, ConfigError, environment
from .crypto import Cipher, KeyRing
from .logs import install_redaction
from .store import CommentStore, Keys, StoreCheck, make_redis


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
    return CommentStore(redis, Keys(config.key_prefix), Cipher(config.encryption_keys))


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
        "check",
        help="check that every comment is in exactly the keys its "
        "status implies and that no key is an orphan",
    )
    args = parser.parse_args(argv)

    try:
        configured = Config.from_env()
        config = load_config(configured)
        # The CLI is a process of its own: what redis-py or the store log here is redacted too.
        install_redaction(config.log_level)
        if args.command == "keys":
            return keys_rotate(config, keys_configured=configured.encryption_keys is not None)
        store = open_store(config)
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
        purged = purge_expired(store, config.retention_days)
        print(
            f"purged {purged} comments rejected or marked spam over "
            f"{config.retention_days} days ago"
        )
        return 0
    except ConfigError as error:
        print(f"comments-service: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
