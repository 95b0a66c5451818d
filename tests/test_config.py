from __future__ import annotations

from pathlib import Path

import pytest

from service.config import Config, ConfigError, parse_moderator_tokens

GOOD = "a" * 24


def test_defaults_from_an_empty_environment() -> None:
    config = Config.from_env({})
    assert (config.host, config.port, config.redis_url) == ("127.0.0.1", 8000, None)
    assert config.data_dir == Path("data") and config.moderator_tokens == {}


def test_values_are_parsed() -> None:
    config = Config.from_env({
        "HOST": "0.0.0.0", "PORT": "9000", "REDIS_URL": "redis://127.0.0.1:6379/3",
        "DATA_DIR": "/tmp/x", "MODERATOR_TOKENS": f"ann:{GOOD}, bo:{'b' * 30}",
        "ALLOWED_ORIGINS": "https://News.example.org/, http://localhost:3000",
        "EMAIL_CHECK_DELIVERABILITY": "yes", "REDIS_TIMEOUT": "0.5",
    })
    assert config.port == 9000 and config.redis_timeout == 0.5
    assert config.moderator_tokens == {"ann": GOOD, "bo": "b" * 30}
    assert config.allowed_origins == ("https://news.example.org", "http://localhost:3000")
    assert config.email_check_deliverability is True


@pytest.mark.parametrize(
    "raw",
    [f"ann:{'a' * 23}", "ann", f":{GOOD}", f"ann:{GOOD},ann:{'b' * 24}",
     f"ann:{GOOD},bo:{GOOD}"],
)
def test_bad_moderator_tokens_refuse_to_start(raw: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_moderator_tokens(raw)
    assert GOOD not in str(error.value)  # a token is never echoed


@pytest.mark.parametrize(
    "env",
    [{"PORT": "eighty"}, {"ALLOWED_ORIGINS": "news.example.org"},
     {"ALLOWED_ORIGINS": "https://a.org/path"}, {"KEY_PREFIX": "a{b}"},
     {"EMAIL_CHECK_DELIVERABILITY": "maybe"}, {"REDIS_TIMEOUT": "-1"}],
)
def test_unusable_settings_are_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Config.from_env(env)
