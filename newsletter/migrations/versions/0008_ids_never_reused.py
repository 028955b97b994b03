"""Subscribers get a link salt; subscriber and delivery ids are never reused.

A link names a subscriber by id. SQLite hands out max(id) + 1 unless a table is AUTOINCREMENT,
so erasing the newest subscriber gave their id, and their old links, to the next one. The two
tables are rebuilt with AUTOINCREMENT (batch mode copies every row with its id; migrate.py
runs this with SQLite's foreign keys off, so dropping the old table cascades into nothing).
PostgreSQL's sequences never go back: nothing to do there.

Existing rows get the link salt 0 ("made before salts"), which lets links in mail already
sent keep working (subscriptions.token_holder); new and re-subscribed rows draw a random one.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "subscribers",
        sa.Column("link_salt", sa.BigInteger(), nullable=False, server_default="0"),
    )
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("subscribers", "link_salt", server_default=None)
        return
    with op.batch_alter_table(
        "subscribers", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.alter_column("link_salt", server_default=None)
    with op.batch_alter_table(
        "deliveries", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_column("subscribers", "link_salt")
        return
    with op.batch_alter_table("deliveries", recreate="always"):
        pass
    with op.batch_alter_table("subscribers", recreate="always") as batch:
        batch.drop_column("link_salt")
