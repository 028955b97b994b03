"""Shared fixtures: real PostgreSQL and SQLite databases, settings, the real CLI, an SMTP
server, and mailcheck."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from newsletter import migrate
from newsletter.config import Settings
from newsletter.db import make_engine, make_session_factory
from newsletter.models import Base
from newsletter.runtime import Runtime

sys.path.append(str(Path(__file__).parent))  # for mailcheck_kit

from mailcheck_kit import Mailcheck, find_mailcheck

PG_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SECRET = "test-secret-key-not-for-production"


def _pg_url_for(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated to head, dropped afterwards."""
    name = f"nltest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = _pg_url_for(name)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sqlite") / "newsletter.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "pg"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that asks for the database runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


def _wipe(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a migrated database, emptied after the test (tests may commit)."""
    eng = make_engine(db_url)
    yield eng
    _wipe(eng)
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    factory = make_session_factory(engine)
    with factory() as sess:
        yield sess
        sess.rollback()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return replace(
        Settings(),
        database_url=db_url,
        secret_key=SECRET,
        outbox=tmp_path / "outbox",
        base_url="https://news.example.org",
        from_address="Situation in Belarus <digest@news.example.org>",
    )


@pytest.fixture
def runtime(settings: Settings, engine: Engine) -> Runtime:
    return Runtime(settings, _engine=engine)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a subprocess these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_DATABASE_URL=settings.database_url,
        NEWSLETTER_SECRET_KEY=settings.secret_key,
        NEWSLETTER_OUTBOX=str(settings.outbox),
        NEWSLETTER_BASE_URL=settings.base_url,
        NEWSLETTER_FROM=settings.from_address,
        NEWSLETTER_TIMEZONE=settings.timezone,
    )
    if settings.broker_url:
        env["NEWSLETTER_BROKER_URL"] = settings.broker_url
    if settings.rate_limit:
        env["NEWSLETTER_RATE_LIMIT"] = str(settings.rate_limit)
    if settings.weekly_send:
        day = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")[settings.weekly_send.weekday - 1]
        env["NEWSLETTER_WEEKLY_SEND"] = f"{day} {settings.weekly_send.at:%H:%M}"
    # The sending engine's knobs (tests shorten them).
    env.update(
        NEWSLETTER_STALE_AFTER=str(settings.stale_after),
        NEWSLETTER_RETRY_BACKOFF=str(settings.retry_backoff),
        NEWSLETTER_MAX_ATTEMPTS=str(settings.max_attempts),
        NEWSLETTER_BATCH_SIZE=str(settings.batch_size),
        NEWSLETTER_PLAN_CHUNK=str(settings.plan_chunk),
        NEWSLETTER_TICK_EVERY=str(settings.tick_every),
    )
    if settings.smtp_url:
        env["NEWSLETTER_SMTP_URL"] = settings.smtp_url
        env["NEWSLETTER_SMTP_CONNECTIONS"] = str(settings.smtp_connections)
    return env


@pytest.fixture
def env_for():  # type: ignore[no-untyped-def]
    """settings_env for tests that start their own subprocesses (workers, beat)."""
    return settings_env


@pytest.fixture
def cli(settings: Settings, engine: Engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the real `newsletter` entry point in a subprocess with the test's settings."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None):
        full_env = settings_env(settings)
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "newsletter", *args],
            capture_output=True,
            text=True,
            input=input,
            env=full_env,
            cwd=tmp_path,
            timeout=120,
        )

    return run


@pytest.fixture(scope="session")
def mailcheck() -> Mailcheck:
    """../shared/tools/mailcheck, ready to run; skips the test when it is not installed."""
    return find_mailcheck()


class RecordingSMTPHandler:
    """An aiosmtpd handler that keeps what it receives and can be told to refuse.

    `fail_with` maps a recipient address to an SMTP reply (e.g. "550 5.1.1 no such user");
    `fail_all_with` answers every RCPT with one reply (e.g. "421 4.3.0 try later") while set.
    """

    def __init__(self) -> None:
        import threading

        self.messages: list[tuple[str, list[str], bytes]] = []
        self.fail_with: dict[str, str] = {}
        self.fail_all_with: str | None = None
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if self.fail_all_with:
            return self.fail_all_with
        if address.lower() in self.fail_with:
            return self.fail_with[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def by_recipient(self) -> dict[str, list[bytes]]:
        out: dict[str, list[bytes]] = {}
        with self.lock:
            for _sender, rcpts, content in self.messages:
                for rcpt in rcpts:
                    out.setdefault(rcpt.lower(), []).append(content)
        return out


@pytest.fixture
def smtp_server(free_tcp_port: int) -> Iterator[tuple[str, RecordingSMTPHandler]]:
    """An in-process aiosmtpd server on a free port: yields (smtp URL, handler)."""
    from aiosmtpd.controller import Controller

    handler = RecordingSMTPHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_tcp_port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{free_tcp_port}", handler
    finally:
        controller.stop()
