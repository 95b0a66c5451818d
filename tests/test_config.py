from __future__ import annotations

import ast
from pathlib import Path

import pytest

from service import cli
from service.bootstrap import KEYS_FILE
from service.config import Config, ConfigError, environment, parse_moderator_tokens
from service.crypto import KeyRing

GOOD = "a" * 24


def test_defaults_from_an_empty_environment() -> None:
    config = Config.from_env({})
    assert (config.host, config.port, config.redis_url) == ("127.0.0.1", 8000, None)
    assert config.data_dir == Path("data") and config.moderator_tokens == {}


def test_values_are_parsed() -> None:
    config = Config.from_env(
        {
            "HOST": "0.0.0.0",
            "PORT": "9000",
            "REDIS_URL": "redis://127.0.0.1:6379/3",
            "DATA_DIR": "/tmp/x",
            "MODERATOR_TOKENS": f"ann:{GOOD}, bo:{'b' * 30}",
            "ALLOWED_ORIGINS": "https://News.example.org/, http://localhost:3000",
            "EMAIL_CHECK_DELIVERABILITY": "yes",
            "REDIS_TIMEOUT": "0.5",
        }
    )
    assert config.port == 9000 and config.redis_timeout == 0.5
    assert config.moderator_tokens == {"ann": GOOD, "bo": "b" * 30}
    assert config.allowed_origins == ("https://news.example.org", "http://localhost:3000")
    assert config.email_check_deliverability is True


@pytest.mark.parametrize(
    "raw",
    [f"ann:{'a' * 23}", "ann", f":{GOOD}", f"ann:{GOOD},ann:{'b' * 24}", f"ann:{GOOD},bo:{GOOD}"],
)
def test_bad_moderator_tokens_refuse_to_start(raw: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_moderator_tokens(raw)
    assert GOOD not in str(error.value)  # a token is never echoed


@pytest.mark.parametrize(
    "env",
    [
        {"PORT": "eighty"},
        {"ALLOWED_ORIGINS": "news.example.org"},
        {"ALLOWED_ORIGINS": "https://a.org/path"},
        {"KEY_PREFIX": "a{b}"},
        {"EMAIL_CHECK_DELIVERABILITY": "maybe"},
        {"REDIS_TIMEOUT": "-1"},
    ],
)
def test_unusable_settings_are_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Config.from_env(env)


SERVICE_DIR = Path(__file__).resolve().parents[1] / "service"


def reads_of_the_environment(path: Path) -> list[str]:
    """Where a module names ``os.environ``, ``os.getenv`` or ``os.putenv`` (or imports them)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in {"environ", "getenv", "putenv"}
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            found.append(f"{path.name}:{node.lineno}")
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and {a.name for a in node.names} & {"environ", "getenv", "putenv"}
        ):
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_config_is_the_only_reader_of_the_environment() -> None:
    readers = {
        path.relative_to(SERVICE_DIR).as_posix(): reads
        for path in sorted(SERVICE_DIR.rglob("*.py"))
        if (reads := reads_of_the_environment(path))
    }
    assert set(readers) == {"config.py"}, readers


def test_environment_is_a_copy_of_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIG_TEST_SETTING", "seen")
    env = environment()
    assert env["CONFIG_TEST_SETTING"] == "seen"
    env["CONFIG_TEST_SETTING"] = "changed"  # the launcher adds to it; the process keeps its own
    assert environment()["CONFIG_TEST_SETTING"] == "seen"


def test_keys_rotate_adds_a_key_in_front_of_the_data_dir_ring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ENCRYPTION_KEYS", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    old = KeyRing.generate_entry("old")
    (tmp_path / KEYS_FILE).write_text(old + "\n")
    assert cli.main(["keys", "rotate"]) == 0
    entries = (tmp_path / KEYS_FILE).read_text().strip().split(",")
    assert len(entries) == 2 and entries[1] == old
    assert KeyRing.parse(",".join(entries)).active_id != "old"
    assert str(tmp_path / KEYS_FILE) in capsys.readouterr().out


def test_keys_rotate_leaves_the_data_dir_alone_when_the_environment_sets_the_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENCRYPTION_KEYS", KeyRing.generate_entry("configured"))
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    kept = KeyRing.generate_entry("kept") + "\n"
    (tmp_path / KEYS_FILE).write_text(kept)
    assert cli.main(["keys", "rotate"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("ENCRYPTION_KEYS is set")
    KeyRing.parse(printed.splitlines()[1])  # the new key to put in front, printed
    assert (tmp_path / KEYS_FILE).read_text() == kept
