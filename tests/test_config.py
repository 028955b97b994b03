"""Settings come from NEWSLETTER_* variables with embedded defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.errors import ConfigError


def test_defaults_run_the_embedded_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scenario: no variables at all gives SQLite, no broker, a Maildir outbox and a kept key."""
    monkeypatch.chdir(tmp_path)
    first = Settings.from_env({})
    assert first.is_embedded and first.smtp_url is None
    assert first.outbox == Path("outbox")
    assert first.base_url == "http://127.0.0.1:8000"
    assert len(first.secret_key) > 40
    assert Settings.from_env({}).secret_key == first.secret_key
    assert (tmp_path / ".newsletter-secret-key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "env",
    [
        {"NEWSLETTER_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1/test"},
        {"NEWSLETTER_BROKER_URL": "redis://127.0.0.1:6379/0"},
    ],
)
def test_missing_secret_key_is_refused_outside_embedded_mode(env: dict[str, str]) -> None:
    """Scenario: PostgreSQL or a broker without NEWSLETTER_SECRET_KEY is a clear error."""
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEEKLY_SEND", "someday"),
        ("RATE_LIMIT", "fast"),
        ("TIMEZONE", "Mars/Olympus"),
        ("SMTP_URL", "http://mail"),
        ("BASE_URL", "ftp://x"),
        ("SMTP_CONNECTIONS", "0"),
        ("SMTP_CONNECTIONS", "two"),
        ("SMTP_CONNECTIONS", "17"),
        ("SMTP_CONNECTIONS", "٢"),  # Arabic-Indic two: int() takes it, it is no setting
    ],
)
def test_bad_values_are_refused(name: str, value: str) -> None:
    """Scenario: each malformed variable is named in the error."""
    with pytest.raises(ConfigError, match=f"NEWSLETTER_{name}"):
        Settings.from_env({f"NEWSLETTER_{name}": value, "NEWSLETTER_SECRET_KEY": "k"})


def test_weekly_send_and_list_id() -> None:
    """Scenario: 'MON 09:00' parses; List-Id derives from the base URL host."""
    settings = Settings.from_env(
        {
            "NEWSLETTER_WEEKLY_SEND": "mon 09:30",
            "NEWSLETTER_BASE_URL": "https://news.example.org/",
            "NEWSLETTER_SECRET_KEY": "k",
        }
    )
    assert settings.weekly_send is not None
    assert (settings.weekly_send.weekday, settings.weekly_send.at.hour) == (1, 9)
    assert settings.list_id_value == "digest.news.example.org"
    assert settings.base_url == "https://news.example.org"


def test_smtp_connections() -> None:
    """Scenario: two connections per worker unless told; a number within the limit is taken
    as written (with spaces around it)."""
    base = {"NEWSLETTER_SECRET_KEY": "k"}
    assert Settings.from_env(base).smtp_connections == 2
    assert Settings.from_env({**base, "NEWSLETTER_SMTP_CONNECTIONS": " 16 "}).smtp_connections == 16
    assert Settings.from_env({**base, "NEWSLETTER_SMTP_CONNECTIONS": "1"}).smtp_connections == 1
