"""The content version the web processes' page caches check, and the scheduler's lease.

`content_version` holds one number that triggers raise whenever published content may have
changed: an edition inserted or deleted, or its status, languages, subjects or fallback
changed (not its counters: sending progress leaves the number alone); any change to
articles, their translations or topics. Triggers catch every writer (staff pages, API, CLI,
the sending engine's set-based UPDATEs) without each having to remember.

SQLite loses a table's triggers when a batch migration copies the table: a later migration
that batch-alters editions, articles, article_translations or topics must create them again
(`create_triggers()` below); the cache tests fail on SQLite if it does not.

`scheduler_state` holds the lease that lets one process per installation run the tick, and
the time of the last tick (whichever process or Celery beat ran it).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTENT_TABLES = ("articles", "article_translations", "topics")
# The editions columns a public page shows; counters and timestamps are left out.
EDITION_COLUMNS = ("week", "status", "languages", "subjects", "fallback_language")

_SQLITE_BUMP = (
    "INSERT OR IGNORE INTO content_version (id, version) VALUES (1, 0); "
    "UPDATE content_version SET version = version + 1 WHERE id = 1;"
)


def create_triggers() -> None:
    """(Re)create the triggers that raise content_version; idempotent on both databases."""
    drop_triggers()
    if op.get_bind().dialect.name == "postgresql":
        _create_postgresql()
    else:
        _create_sqlite()


def _create_sqlite() -> None:
    for table in (*CONTENT_TABLES, "editions"):
        for event in (
            ("INSERT", "DELETE") if table == "editions" else ("INSERT", "UPDATE", "DELETE")
        ):
            op.execute(
                f"CREATE TRIGGER {table}_content_{event.lower()} AFTER {event} ON {table} "
                f"BEGIN {_SQLITE_BUMP} END"
            )
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in EDITION_COLUMNS)
    op.execute(
        f"CREATE TRIGGER editions_content_update AFTER UPDATE ON editions WHEN {changed} "
        f"BEGIN {_SQLITE_BUMP} END"
    )


def _create_postgresql() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION bump_content_version() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO content_version (id, version) VALUES (1, 1)
            ON CONFLICT (id) DO UPDATE SET version = content_version.version + 1;
            RETURN NULL;
        END $$
        """
    )
    for table in CONTENT_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_content AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bump_content_version()"
        )
    op.execute(
        "CREATE TRIGGER editions_content AFTER INSERT OR DELETE ON editions "
        "FOR EACH STATEMENT EXECUTE FUNCTION bump_content_version()"
    )
    # json has no equality operator: compare the text.
    changed = " OR ".join(f"OLD.{c}::text IS DISTINCT FROM NEW.{c}::text" for c in EDITION_COLUMNS)
    op.execute(
        f"CREATE TRIGGER editions_content_update AFTER UPDATE ON editions "
        f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION bump_content_version()"
    )


def drop_triggers() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    names = [f"{t}_content" for t in CONTENT_TABLES] if postgresql else []
    if not postgresql:
        names = [
            f"{t}_content_{e}"
            for t in (*CONTENT_TABLES, "editions")
            for e in ("insert", "update", "delete")
        ]
    names += ["editions_content", "editions_content_update"]
    for name in names:
        table = name.split("_content")[0]
        if postgresql:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    op.create_table(
        "content_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_version")),
    )
    op.execute("INSERT INTO content_version (id, version) VALUES (1, 0)")
    op.create_table(
        "scheduler_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_tick_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_state")),
    )
    create_triggers()


def downgrade() -> None:
    drop_triggers()
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS bump_content_version()")
    op.drop_table("scheduler_state")
    op.drop_table("content_version")
