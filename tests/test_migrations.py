"""The migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, func, inspect, select, text

from newsletter import migrate, subscriptions
from newsletter.db import make_engine, make_session_factory
from newsletter.models import Base, Delivery, Event, Subscriber

PG_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def test_upgrade_from_empty_creates_every_table(engine: Engine) -> None:
    """Scenario: a fresh database upgraded to head has every table of the models."""
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    assert "alembic_version" in tables


def test_models_and_migrations_agree(engine: Engine) -> None:
    """Scenario: autogenerate against the migrated database finds nothing to change."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


@pytest.fixture(params=["sqlite", "pg"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name = f"nlmig_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_ids_never_reused_after_upgrading_a_filled_database(empty_url: str) -> None:
    """Scenario: a database at 0005 with readers, events and deliveries is upgraded: every row
    and key survives, old rows get the pre-salt 0, and erasing the newest reader no longer
    hands their id to the next one."""
    engine = make_engine(empty_url)
    migrate.upgrade(engine, "0005")
    with engine.begin() as conn:
        for sid in (1, 2, 3):
            conn.execute(
                text(
                    "INSERT INTO subscribers (id, email, languages, status, created_at, "
                    "updated_at) VALUES (:id, :email, 'be', 'active', :now, :now)"
                ),
                {"id": sid, "email": f"r{sid}@example.org", "now": datetime.now(UTC)},
            )
            conn.execute(
                text(
                    "INSERT INTO events (subscriber_id, kind, source, created_at) "
                    "VALUES (:id, 'added', 'staff', :now)"
                ),
                {"id": sid, "now": datetime.now(UTC)},
            )
            conn.execute(
                text(
                    "INSERT INTO deliveries (edition_id, subscriber_id, status, attempts) "
                    "VALUES (1, :id, 'sent', 1)"
                ),
                {"id": sid},
            )
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval('subscribers_id_seq', 3)"))
    migrate.upgrade(engine)
    with make_session_factory(engine)() as session:
        rows = session.execute(select(Subscriber.id, Subscriber.link_salt)).all()
        assert sorted(rows) == [(1, 0), (2, 0), (3, 0)]
        assert session.scalar(select(func.count()).select_from(Event)) == 3
        assert session.scalar(select(func.count()).select_from(Delivery)) == 3
        subscriptions.forget(session, "secret", 3)
        session.commit()
        # The foreign keys still cascade: the erased reader's events and deliveries are gone.
        assert session.scalar(select(func.count()).select_from(Delivery)) == 2
        assert session.scalar(select(func.count(Event.id)).where(Event.subscriber_id == 3)) == 0
        newcomer = subscriptions.subscribe(session, "secret", "new@example.org", "en").subscriber
        session.commit()
        assert newcomer.id == 4
        assert newcomer.link_salt != 0
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            # Later migrations that rebuild these tables must keep AUTOINCREMENT (table_kwargs).
            for table in ("subscribers", "deliveries"):
                schema = conn.execute(
                    text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table}
                )
                assert "AUTOINCREMENT" in schema.scalar_one(), table
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
