"""The import commands as an operator runs them: a real `comments-service` process, its
output without a terminal (plain lines, the report), its exit statuses."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from service.crypto import KeyRing

FIXTURES = Path(__file__).parent / "import_fixtures"
pytestmark = pytest.mark.slow  # real processes


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def env(redis_url: str, redis_client: object, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATA_DIR": str(tmp_path / "data"),
        "SECRET_KEY": "cli-import-secret-0123456789abcdef",
        "ENCRYPTION_KEYS": KeyRing.generate_entry("cli"),
    }


def test_import_export_backup_restore_commands(env: dict[str, str], tmp_path: Path) -> None:
    dry = cli(env, "import", "wordpress", str(FIXTURES / "wordpress.xml"), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would import 6 comments")
    done = cli(env, "import", "wordpress", str(FIXTURES / "wordpress.xml"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        "imported 6 comments (3 approved, 1 pending, 1 rejected, 1 spam) into 1 articles"
    )
    assert "skipped: 3 (1 invalid, 1 invalid_article_id, 1 pingback)" in lines
    assert "  'café': 1 comments" in lines
    # Without a terminal: no progress bar's control characters.
    assert "\r" not in done.stdout + done.stderr and "\x1b" not in done.stdout + done.stderr
    export = tmp_path / "out.jsonl"
    exported = cli(env, "export", str(export))
    assert exported.returncode == 0 and "readable by its owner only" in exported.stdout
    assert stat.S_IMODE(export.stat().st_mode) == 0o600
    backup = cli(env, "backup", str(tmp_path / "b"))
    assert backup.returncode == 0, backup.stderr
    refused = cli(env, "restore", str(tmp_path / "b"))
    assert refused.returncode == 2 and "not empty" in refused.stderr
    wrong = cli(env, "import", "disqus", str(FIXTURES / "wordpress.xml"))
    assert wrong.returncode == 2
    assert "not a Disqus export: the document's root is <rss>" in wrong.stderr
    missing = cli(env, "import", "isso", str(tmp_path / "nothing.db"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_an_import_no_replica_confirms_fails_and_says_so(env: dict[str, str]) -> None:
    # The test Redis has no replica: WAIT 1 times out, as on a master cut off from its own.
    waiting = {**env, "REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "50"}
    refused = cli(waiting, "import", "wordpress", str(FIXTURES / "wordpress.xml"))
    assert refused.returncode == 3, refused.stderr
    assert "0 of 1 replicas confirmed in time; run it again" in refused.stderr, refused.stderr
