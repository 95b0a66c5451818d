"""Development defaults kept under DATA_DIR, so `make run` needs no settings at all.

When a secret is not configured, one is created once in a file under DATA_DIR, readable by its
owner only, and reused on every start. The CLI reads the same files, so it works against a
service started by `make run` without any settings either.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from .config import Config
from .crypto import KeyRing

TOKEN_FILE = "moderator-token"
SECRET_FILE = "secret-key"
KEYS_FILE = "encryption-keys"
REDIS_URL_FILE = "redis-url"


def read_or_create(path: Path, generate: Callable[[], str]) -> tuple[str, bool]:
    """The file's value, creating it (mode 0600, never overwritten) when absent."""
    if path.exists():
        return path.read_text().strip(), False
    value = generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value, True


def fill_defaults(config: Config, env: dict[str, str], *, create: bool) -> list[str]:
    """Put DATA_DIR's secrets into ``env`` for every setting the environment leaves out.

    Returns what a person starting the service should be told.
    """
    data = config.data_dir
    notes: list[str] = []

    def use(name: str, path: Path, generate: Callable[[], str], what: str) -> str | None:
        if not create and not path.exists():
            return None
        value, created = read_or_create(path, generate)
        env[name] = value
        notes.append(f"{what}: {'created' if created else 'using'} {path} (owner-only)")
        return value

    if config.secret_key is None:
        use(
            "SECRET_KEY",
            data / SECRET_FILE,
            lambda: secrets.token_urlsafe(32),
            "No SECRET_KEY set; hashing key",
        )
    if config.encryption_keys is None:
        use(
            "ENCRYPTION_KEYS",
            data / KEYS_FILE,
            KeyRing.generate_entry,
            "No ENCRYPTION_KEYS set; email encryption key",
        )
    if not config.moderator_tokens:
        token = use(
            "MODERATOR_TOKENS",
            data / TOKEN_FILE,
            lambda: secrets.token_urlsafe(32),
            "No MODERATOR_TOKENS set; moderator 'admin' token",
        )
        if token is not None:
            env["MODERATOR_TOKENS"] = f"admin:{token}"
    if config.redis_url is None and (data / REDIS_URL_FILE).exists() and not create:
        env["REDIS_URL"] = (data / REDIS_URL_FILE).read_text().strip()
    return notes
