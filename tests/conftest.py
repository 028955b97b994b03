"""Shared fixtures: real PostgreSQL and SQLite databases, settings, and the real CLI."""

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
    if settings.smtp_url:
        env["NEWSLETTER_SMTP_URL"] = settings.smtp_url
    return env


@pytest.fixture
def cli(settings: Settings, engine: Engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the real `newsletter` entry point in a subprocess with the test's settings."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None):  # noqa: A002
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
