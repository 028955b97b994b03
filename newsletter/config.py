"""Settings from NEWSLETTER_* environment variables, read once at the edge and passed in."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url

from newsletter.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///newsletter.db"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


@dataclass(frozen=True)
class WeeklySend:
    """When the weekly rule fires: ISO weekday (1 = Monday) and local time."""

    weekday: int
    at: time

    @classmethod
    def parse(cls, text: str) -> WeeklySend:
        parts = text.strip().upper().split()
        if len(parts) != 2 or parts[0][:3] not in WEEKDAYS:
            raise ConfigError(f"NEWSLETTER_WEEKLY_SEND must look like 'MON 09:00', not {text!r}")
        try:
            hour, minute = (int(p) for p in parts[1].split(":"))
            at = time(hour, minute)
        except ValueError as exc:
            raise ConfigError(f"NEWSLETTER_WEEKLY_SEND has a bad time: {parts[1]!r}") from exc
        return cls(weekday=WEEKDAYS.index(parts[0][:3]) + 1, at=at)


# Connections per sending process to the relay; Postfix, for one, allows 50 per client.
MAX_SMTP_CONNECTIONS = 16


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with defaults that run the embedded mode."""

    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str | None = None
    smtp_url: str | None = None
    outbox: Path = Path("outbox")
    base_url: str = DEFAULT_BASE_URL
    base_url_set: bool = False  # NEWSLETTER_BASE_URL given; else `serve` uses its own address
    secret_key: str = field(default="", repr=False)
    from_address: str = "Situation in Belarus <digest@localhost>"
    timezone: str = "Europe/Minsk"
    weekly_send: WeeklySend | None = None
    rate_limit: float | None = None
    postal_address: str = ""
    list_id: str = ""
    dkim_key_file: Path | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    inbound_address: str | None = None
    # Bounce policy and the inbound store (NEWSLETTER_SOFT_BOUNCE_LIMIT / _DAYS, ...).
    soft_bounce_limit: int = 3
    soft_bounce_days: int = 30
    inbound_max_bytes: int = 1_048_576  # one inbound message, raw
    inbound_keep_days: int = 30  # raw inbound messages are erased after this
    # Sending engine knobs (seconds / counts); the defaults suit production.
    stale_after: float = 300.0
    retry_backoff: float = 60.0
    max_attempts: int = 8
    batch_size: int = 500
    smtp_connections: int = 2  # per sending process, served in turn (transport.SmtpLanes)
    plan_chunk: int = 10_000  # subscribers planned per transaction
    # A newly confirmed reader gets the newest edition if it went out at most this many
    # days ago (0: never).
    welcome_latest_days: int = 6
    tick_every: float = 30.0  # seconds between scheduler ticks (beat, or serve without one)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_embedded(self) -> bool:
        """SQLite and no broker: one machine, tasks in-process."""
        return self.database_url.startswith("sqlite") and not self.broker_url

    @property
    def base_host(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"

    @property
    def list_id_value(self) -> str:
        """RFC 2919 List-Id label: configured, or derived from the base URL's host."""
        return self.list_id or f"digest.{self.base_host}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read NEWSLETTER_* variables; make or refuse a missing secret key."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(f"NEWSLETTER_{name}", "").strip()
            return value or None

        database_url = get("DATABASE_URL") or DEFAULT_DATABASE_URL
        try:
            make_url(database_url)
        except Exception as exc:  # SQLAlchemy raises ArgumentError with an unhelpful text
            raise ConfigError(
                f"NEWSLETTER_DATABASE_URL is not a database URL: {database_url!r}"
            ) from exc
        smtp_url = get("SMTP_URL")
        if smtp_url and urlsplit(smtp_url).scheme not in ("smtp", "smtps"):
            raise ConfigError("NEWSLETTER_SMTP_URL must start with smtp:// or smtps://")
        base_url = (get("BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigError("NEWSLETTER_BASE_URL must be an http(s) URL")
        timezone = get("TIMEZONE") or "Europe/Minsk"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"NEWSLETTER_TIMEZONE is not a known time zone: {timezone!r}"
            ) from exc
        rate = get("RATE_LIMIT")
        try:
            rate_limit = float(rate) if rate else None
        except ValueError as exc:
            raise ConfigError(f"NEWSLETTER_RATE_LIMIT must be a number, not {rate!r}") from exc
        if rate_limit is not None and rate_limit <= 0:
            raise ConfigError("NEWSLETTER_RATE_LIMIT must be positive")
        weekly = get("WEEKLY_SEND")
        engine_knobs = {
            "stale_after": _positive(get, "STALE_AFTER", float, 300.0),
            "retry_backoff": _positive(get, "RETRY_BACKOFF", float, 60.0),
            "max_attempts": _positive(get, "MAX_ATTEMPTS", int, 8),
            "batch_size": _positive(get, "BATCH_SIZE", int, 500),
            "smtp_connections": _positive(get, "SMTP_CONNECTIONS", int, 2),
            "plan_chunk": _positive(get, "PLAN_CHUNK", int, 10_000),
            "tick_every": _positive(get, "TICK_EVERY", float, 30.0),
            "soft_bounce_limit": _positive(get, "SOFT_BOUNCE_LIMIT", int, 3),
            "soft_bounce_days": _positive(get, "SOFT_BOUNCE_DAYS", int, 30),
            "inbound_max_bytes": _positive(get, "INBOUND_MAX_BYTES", int, 1_048_576),
            "inbound_keep_days": _positive(get, "INBOUND_KEEP_DAYS", int, 30),
        }
        if engine_knobs["smtp_connections"] > MAX_SMTP_CONNECTIONS:
            raise ConfigError(
                f"NEWSLETTER_SMTP_CONNECTIONS must be at most {MAX_SMTP_CONNECTIONS} (per "
                "worker: relays limit the connections of one client)"
            )
        dkim_key = get("DKIM_KEY_FILE")
        broker_url = get("BROKER_URL")
        settings = cls(
            database_url=database_url,
            broker_url=broker_url,
            smtp_url=smtp_url,
            outbox=Path(get("OUTBOX") or "outbox"),
            base_url=base_url,
            base_url_set=get("BASE_URL") is not None,
            secret_key=get("SECRET_KEY") or "",
            from_address=get("FROM")
            or f"Situation in Belarus <digest@{urlsplit(base_url).hostname}>",
            timezone=timezone,
            weekly_send=WeeklySend.parse(weekly) if weekly else None,
            rate_limit=rate_limit,
            postal_address=get("POSTAL_ADDRESS") or "",
            list_id=get("LIST_ID") or "",
            dkim_key_file=Path(dkim_key) if dkim_key else None,
            dkim_selector=get("DKIM_SELECTOR"),
            dkim_domain=get("DKIM_DOMAIN"),
            inbound_address=_inbound_address(get("INBOUND_ADDRESS")),
            welcome_latest_days=_days(get, "WELCOME_LATEST_DAYS", 6),
            **engine_knobs,  # type: ignore[arg-type]
        )
        if settings.dkim_key_file and not (settings.dkim_selector and settings.dkim_domain):
            raise ConfigError(
                "NEWSLETTER_DKIM_KEY_FILE needs NEWSLETTER_DKIM_SELECTOR and NEWSLETTER_DKIM_DOMAIN"
            )
        if not settings.secret_key:
            settings = settings.with_secret_key(_embedded_secret_key(settings))
        return settings

    def with_secret_key(self, key: str) -> Settings:
        return replace(self, secret_key=key)


def _positive(
    get: Callable[[str], str | None], name: str, kind: type[float] | type[int], default: float
) -> float:
    """A positive number from NEWSLETTER_<name>, or the default."""
    raw = get(name)
    if raw is None:
        return default
    refusal = ConfigError(f"NEWSLETTER_{name} must be a positive number, not {raw!r}")
    if not raw.isascii():  # int() and float() also read other scripts' digits ("٢" is 2)
        raise refusal
    try:
        value = kind(raw)
    except ValueError as exc:
        raise refusal from exc
    if value <= 0:
        raise refusal
    return value


def _days(get: Callable[[str], str | None], name: str, default: int) -> int:
    """A whole number of days, 0 or more, from NEWSLETTER_<name>, or the default."""
    raw = get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 5:
        raise ConfigError(f"NEWSLETTER_{name} must be a whole number of days (0: off), not {raw!r}")
    return int(raw)


def _inbound_address(raw: str | None) -> str | None:
    """inbound@host: an ASCII address without '+' (the '+' starts each VERP token)."""
    if raw is None:
        return None
    local, at, domain = raw.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain
        or "+" in local
        or len(local) > 16  # +, a 47-character token: RFC 5321 allows 64
        or not raw.isascii()
        or any(ch in raw for ch in ' <>()[],;:"\\')
    ):
        raise ConfigError(
            "NEWSLETTER_INBOUND_ADDRESS must be a plain address like inbound@news.example.org "
            f"(no '+', a local part of at most 16 characters), not {raw!r}"
        )
    return raw.lower()


def _embedded_secret_key(settings: Settings) -> str:
    """The key kept beside the SQLite file; refused outside the embedded mode."""
    if not settings.is_embedded:
        raise ConfigError(
            "NEWSLETTER_SECRET_KEY must be set when a PostgreSQL database or a broker is "
            "configured (every process must sign links with the same key)"
        )
    database = make_url(settings.database_url).database
    folder = Path(database).resolve().parent if database and database != ":memory:" else Path.cwd()
    key_file = folder / ".newsletter-secret-key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(48)
    folder.mkdir(parents=True, exist_ok=True)
    # Exclusive create with owner-only rights: the key signs every unsubscribe link.
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
